#!/usr/bin/env bash
# The dashboard page in Debian's headless Chromium against mock_admin.py (no router needed):
# sign-in, a breaker opening within 2 s of an outage, drain and undrain, 1280x800 and 390x844.
#   Tests/dashboard/check_mock.sh [SCREENSHOT_DIR]   (default .build/dashboard-screenshots)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.build/dashboard-screenshots}

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
fi
venv=.build/venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check selenium

port=$((20000 + RANDOM % 20000))
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$venv/bin/python" Tests/dashboard/mock_admin.py --port "$port" --token "$token" >/dev/null &
mock=$!
trap 'kill "$mock" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/admin" && break
    sleep 0.1
done

"$venv/bin/python" Tests/dashboard/browser_check.py --base-url "http://127.0.0.1:$port" --token "$token" --model sonnet \
    --screenshot-dir "$out" --phone \
    --outage-cmd "curl -sf -X POST 'http://127.0.0.1:$port/mock/outage?model=sonnet&seconds=5'"

#!/usr/bin/env bash
# The dashboard of the real router in Debian's headless Chromium: two upstream-sims, the router
# with an admin token, then browser_check.py: sign-in, the primary's breaker opening within 2 s
# of an outage (the sim fails its next requests while traffic flows) and closing after recovery,
# drain and undrain, screenshots at 1280x800 and 390x844.
#   Tests/dashboard/check_router.sh SWITCHYARD_BINARY PYTHON [SCREENSHOT_DIR]
# PYTHON must have selenium (`.ci/run` installs it); chromium and chromium-driver are installed
# here from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="$1"
python="$2"
out="${3:-.build/ci-artifacts}"
mkdir -p "$out"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
base=$((21000 + RANDOM % 8000))
sim_a=$base sim_b=$((base + 1)) router=$((base + 2))
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

# The primary answers until the outage begins: then its next three requests fail (the breaker's
# threshold), and it answers again, so the half-open probe closes the breaker.
cat > "$work/routes.yaml" <<YAML
version: 1
server: { listen: 127.0.0.1:$router, admin_token_env: DASHBOARD_TOKEN }
providers:
  primary: { type: anthropic, base_url: "http://127.0.0.1:$sim_a", api_key_env: SIM_KEY }
  secondary: { type: anthropic, base_url: "http://127.0.0.1:$sim_b", api_key_env: SIM_KEY }
models:
  sonnet: { provider: primary, model: claude-sonnet-4-5 }
  haiku: { provider: secondary, model: claude-haiku-4-5 }
defaults:
  breaker: { failure_threshold: 3, open_for: 4s }
  retry: { max_attempts: 2, per_model: 1, backoff: { initial: 10ms } }
routes:
  default: { models: [sonnet, haiku] }
YAML
"$bin" upstream-sim --listen "127.0.0.1:$sim_a" --name a --script "ok*2,500*3,ok*" 2>"$work/sim-a.log" & pids+=($!)
"$bin" upstream-sim --listen "127.0.0.1:$sim_b" --name b 2>"$work/sim-b.log" & pids+=($!)
DASHBOARD_TOKEN=$token SIM_KEY=sk-ant-sim-dashboard-000000 "$bin" serve --config "$work/routes.yaml" >"$work/audit.log" 2>"$work/router.log" & pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$router/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$router/readyz" >/dev/null || { echo "router did not become ready"; cat "$work/router.log"; exit 1; }

body='{"model":"default","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
send() { curl -s -o /dev/null -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -d "$body" "http://127.0.0.1:$router/v1/messages"; }
# Two good answers first, so the figures have something to show.
send; send
# The outage: steady traffic for 12 s; the sim fails the first three, the breaker opens, later
# requests go to haiku, and once open_for has passed a probe finds sonnet well again.
outage="(for i in \$(seq 1 40); do curl -s -o /dev/null -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' -d '$body' http://127.0.0.1:$router/v1/messages; sleep 0.3; done) >/dev/null 2>&1 &"

status=0
"$python" Tests/dashboard/browser_check.py --base-url "http://127.0.0.1:$router" --token "$token" --model sonnet \
    --screenshot-dir "$out" --phone --close-timeout 20 --outage-cmd "$outage" || status=$?
if ! grep -q '"event":"admin.model_disabled"' "$work/audit.log" || ! grep -q '"event":"admin.model_enabled"' "$work/audit.log"; then
    echo "FAIL the drain and undrain are not in the audit log"
    status=1
fi
if [ "$status" -ne 0 ]; then echo "--- router log"; tail -50 "$work/router.log"; fi
ls -l "$out"/dashboard-*.png 2>/dev/null || true
exit $status

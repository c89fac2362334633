#!/usr/bin/env python3
"""Checks the dashboard at /admin in a real browser: Debian's Chromium, headless, driven by Selenium.

    browser_check.py --base-url http://127.0.0.1:8099 --token TOKEN --model sonnet --screenshot-dir out \\
        [--outage-cmd "shell command that starts an outage of MODEL"] [--phone]

In order: the page loads and (with --token) shows the sign-in form; signing in brings the live data; the
model's card appears; the outage command opens its breaker on the page within --open-limit seconds (2 by
default) and it closes again; Drain shows the drained badge and turns into Undrain, and back; screenshots at
1280x800 (taken while the breaker is open, when there is an outage) and, with --phone, at 390x844, where
nothing may overflow horizontally; no request left the page's origin and the console has no errors.
One line per check with its timing, then 'N passed, N failed'; the exit code is 1 when a check failed.

Needs `apt-get install -y chromium chromium-driver` and `pip install selenium`. The drivers are named by
path, so Selenium never tries to download one.
"""

import argparse
import base64
import os
import subprocess
import sys
import time
from urllib.parse import urlparse

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class CheckFailed(Exception):
    pass


class DashboardCheck:
    """One browser session against one dashboard; each method is a check that records a line."""

    def __init__(self, base_url, token=None, width=1280, height=800, color_scheme=None,
                 chromium=CHROMIUM, chromedriver=CHROMEDRIVER, out=print):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.out = out
        self.results = []
        options = Options()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=%d,%d" % (width, height), "--hide-scrollbars", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--lang=en-US"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        # The window size includes no browser chrome in headless mode, but pin the viewport exactly anyway.
        self.viewport(width, height, mobile=False)
        if color_scheme:
            self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                        {"features": [{"name": "prefers-color-scheme", "value": color_scheme}]})

    def close(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass

    # --- helpers ---

    def record(self, ok, name, seconds=None, detail=""):
        self.results.append((ok, name))
        timing = "%6.2f s" % seconds if seconds is not None else " " * 8
        self.out(("%s  %-44s %s  %s" % ("PASS" if ok else "FAIL", name, timing, detail)).rstrip())
        if not ok:
            raise CheckFailed(name + (": " + detail if detail else ""))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def texts(self, testid):
        """textContent of every element with this data-testid (a model in two routes has two cards)."""
        return self.js("return [...document.querySelectorAll('[data-testid=\"' + arguments[0] + '\"]')].map(n => n.textContent)", testid)

    def visible(self, testid):
        return bool(self.js("const n = document.querySelector('[data-testid=\"' + arguments[0] + '\"]');"
                            "return !!n && n.getClientRects().length > 0", testid))

    def wait(self, what, predicate, timeout, interval=0.05):
        """Polls predicate until it is true; returns the seconds it took, or raises CheckFailed."""
        start = time.monotonic()
        while True:
            try:
                if predicate():
                    return time.monotonic() - start
            except WebDriverException:
                pass
            if time.monotonic() - start > timeout:
                raise CheckFailed("%s: not within %.1f s" % (what, timeout))
            time.sleep(interval)

    def check_wait(self, name, predicate, timeout, detail=""):
        try:
            self.record(True, name, self.wait(name, predicate, timeout), detail)
        except CheckFailed as e:
            self.record(False, name, timeout, str(e).split(": ", 1)[-1])

    def click(self, testid):
        node = self.driver.find_element(By.CSS_SELECTOR, '[data-testid="%s"]' % testid)
        # Centre it so the sticky header cannot cover it.
        self.js("arguments[0].scrollIntoView({block: 'center'})", node)
        node.click()

    def viewport(self, width, height, mobile):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def screenshot(self, path, full_page=False):
        self.js("window.scrollTo(0, 0)")
        if not full_page:
            self.driver.get_screenshot_as_file(path)
            return
        size = self.js("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    # --- checks ---

    def load(self):
        start = time.monotonic()
        self.driver.get(self.base_url + "/admin")
        title = self.driver.title
        self.record("Switchyard" in title, "page loads", time.monotonic() - start, "title %r" % title)

    def sign_in(self):
        if self.token is None:
            self.check_wait("no sign-in needed (loopback mode)", lambda: self.texts("conn-state") == ["live"], 10)
            return
        self.check_wait("sign-in form shown", lambda: self.visible("login-token") and self.visible("login-submit"), 10)
        start = time.monotonic()
        self.driver.find_element(By.CSS_SELECTOR, '[data-testid="login-token"]').send_keys(self.token)
        self.click("login-submit")
        try:
            self.wait("signed in", lambda: self.texts("conn-state") == ["live"], 10)
        except CheckFailed:
            self.record(False, "signed in, stream live", time.monotonic() - start, "conn-state %s" % self.texts("conn-state"))
        stored = self.js("return sessionStorage.getItem('switchyard.adminToken') === arguments[0]", self.token)
        self.record(stored and not self.visible("login-token"), "signed in, stream live", time.monotonic() - start,
                    "token in sessionStorage")

    def model_card(self, model):
        self.check_wait("card of %s shown" % model, lambda: self.visible("model-card-" + model), 10,
                        "breaker %s" % ",".join(self.texts("breaker-" + model)))

    def outage(self, model, command, open_limit, close_timeout, screenshot_dir=None):
        breaker = "breaker-" + model
        before = self.texts(breaker)
        if before and before[0] != "closed":
            self.wait("breaker of %s closed before the outage" % model, lambda: self.texts(breaker)[0] == "closed", close_timeout)
        start = time.monotonic()
        run = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
        if run.returncode != 0:
            self.record(False, "outage command", time.monotonic() - start, "exit %d: %s" % (run.returncode, run.stderr.strip()))
        try:
            self.wait("breaker open", lambda: "open" in self.texts(breaker), open_limit + 5, interval=0.02)
        except CheckFailed:
            pass
        took = time.monotonic() - start
        shown = "open" in self.texts(breaker)
        self.record(shown and took <= open_limit, "breaker of %s shows open (limit %.1f s)" % (model, open_limit), took,
                    "" if shown else "still %s" % self.texts(breaker))
        if screenshot_dir:
            time.sleep(0.4)   # one countdown tick, so the picture shows the time left
            self.screenshot(os.path.join(screenshot_dir, "dashboard-1280x800.png"))
            self.screenshot(os.path.join(screenshot_dir, "dashboard-1280-full.png"), full_page=True)
        start = time.monotonic()
        self.check_wait("breaker of %s closes again" % model, lambda: self.texts(breaker) == ["closed"] * len(self.texts(breaker)),
                        close_timeout)

    def drain_cycle(self, model):
        button, badge = "drain-" + model, "drained-" + model
        if self.texts(button)[0] != "Drain":
            self.record(False, "drain button reads Drain", None, "reads %r" % self.texts(button)[0])
        start = time.monotonic()
        self.click(button)
        self.check_wait("Drain %s: drained badge, button Undrain" % model,
                        lambda: self.texts(badge) and set(self.texts(button)) == {"Undrain"}, 5)
        self.click(button)
        self.check_wait("Undrain %s: badge gone, button Drain" % model,
                        lambda: not self.texts(badge) and set(self.texts(button)) == {"Drain"}, 5)

    def phone(self, screenshot_dir):
        self.viewport(390, 844, mobile=True)
        time.sleep(1.2)   # a snapshot or two at the new width
        width = self.js("return [document.documentElement.scrollWidth, window.innerWidth]")
        self.screenshot(os.path.join(screenshot_dir, "dashboard-390x844.png"))
        self.screenshot(os.path.join(screenshot_dir, "dashboard-390-full.png"), full_page=True)
        self.record(width[0] <= width[1], "no horizontal overflow at 390x844", None, "scrollWidth %d, innerWidth %d" % tuple(width))
        self.viewport(1280, 800, mobile=False)

    def same_origin_only(self):
        origin = "{0.scheme}://{0.netloc}".format(urlparse(self.base_url))
        urls = self.js("return performance.getEntriesByType('resource').map(e => e.name)")
        foreign = [u for u in urls if not u.startswith(origin + "/")]
        self.record(not foreign, "no request outside the origin", None, "%d requests" % len(urls) if not foreign else ", ".join(foreign[:3]))

    def console_clean(self):
        entries = self.driver.get_log("browser")
        # Before signing in, /admin/events answers 401 by design; Chromium logs every failed load.
        errors = [e["message"] for e in entries if e["level"] == "SEVERE"
                  and not ("/admin/events" in e["message"] and "401" in e["message"])]
        self.record(not errors, "no console errors", None, "; ".join(errors[:3]))


def run(args):
    os.makedirs(args.screenshot_dir, exist_ok=True)
    check = DashboardCheck(args.base_url, args.token, color_scheme=args.color_scheme)
    try:
        check.load()
        check.sign_in()
        check.model_card(args.model)
        if args.outage_cmd:
            check.outage(args.model, args.outage_cmd, args.open_limit, args.close_timeout, args.screenshot_dir)
        else:
            check.screenshot(os.path.join(args.screenshot_dir, "dashboard-1280x800.png"))
            check.screenshot(os.path.join(args.screenshot_dir, "dashboard-1280-full.png"), full_page=True)
            check.out("skip  outage (no --outage-cmd)")
        check.drain_cycle(args.model)
        if args.phone:
            check.phone(args.screenshot_dir)
        check.same_origin_only()
        check.console_clean()
    except CheckFailed:
        try:
            check.screenshot(os.path.join(args.screenshot_dir, "dashboard-failure.png"))
        except WebDriverException:
            pass
    finally:
        check.close()
    passed = sum(1 for ok, _ in check.results if ok)
    failed = len(check.results) - passed
    print("%d passed, %d failed" % (passed, failed))
    print("screenshots in %s" % os.path.abspath(args.screenshot_dir))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True, help="the router's (or the mock's) address, e.g. http://127.0.0.1:8099")
    ap.add_argument("--token", help="the admin token; without it the page must show data with no sign-in (loopback mode)")
    ap.add_argument("--model", required=True, help="the model whose card, breaker and drain button are checked")
    ap.add_argument("--screenshot-dir", required=True)
    ap.add_argument("--outage-cmd", help="shell command that starts an outage of --model")
    ap.add_argument("--open-limit", type=float, default=2.0, help="seconds the page may take to show the breaker open")
    ap.add_argument("--close-timeout", type=float, default=60.0, help="seconds to wait for the breaker to close again")
    ap.add_argument("--phone", action="store_true", help="also check and photograph a 390x844 phone screen")
    ap.add_argument("--color-scheme", choices=["light", "dark"], help="emulate prefers-color-scheme")
    sys.exit(run(ap.parse_args()))


if __name__ == "__main__":
    main()

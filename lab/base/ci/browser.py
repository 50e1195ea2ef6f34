"""Runs a recipe's browser tests (tests/<recipe>/browser_test.py: functions test_*(page, base_url)).

They get a page with the few Playwright Page calls they use. With Playwright installed it is
Playwright's. The lab image has no Playwright (it is built offline from Debian), so there the
page is Debian's headless Chromium, driven through chromium-driver by Selenium: a real browser
engine, which runs the page's JavaScript. As Playwright's runner keeps a browser per worker, the
machine keeps its Chromiums for the builds (a start costs about a CPU-second): each build leases
one, alone, attaches to it, and clears what earlier builds stored for its app's origin. The
HTTP-level stand-in (fetch the HTML and parse it, no JavaScript, no rendering) is what runs when
neither is there. The log names the engine and its version, so nobody mistakes one for another."""
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request
from html.parser import HTMLParser


class _Parsed(HTMLParser):
    def __init__(self):
        super().__init__()
        self.title, self.texts, self.stack, self.links = "", {}, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        keys = [tag] + (["#" + attrs["id"]] if "id" in attrs else [])
        self.stack.append(keys)
        for key in keys:
            self.texts.setdefault(key, "")
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for keys in self.stack:
            for key in keys:
                self.texts[key] += data
        if self.stack and "title" in self.stack[-1]:
            self.title += data


class HttpPage:
    """The few Playwright Page calls the recipes' browser tests use, over plain HTTP."""

    engine = "http-standin (no browser: HTML fetched and parsed, no JavaScript)"

    def __init__(self):
        self.url, self.status, self.parsed = None, None, _Parsed()

    def goto(self, url):
        with urllib.request.urlopen(url, timeout=10) as response:
            self.url, self.status = url, response.status
            self.parsed = _Parsed()
            self.parsed.feed(response.read().decode())
        return self

    def title(self):
        return self.parsed.title.strip()

    def text_content(self, selector):
        if selector not in self.parsed.texts:
            raise AssertionError("no element matches %s on %s" % (selector, self.url))
        return self.parsed.texts[selector]

    def links(self):
        return list(self.parsed.links)


# Debian's chromium-driver and Chromium; the environment may name others (a test names one that cannot start).
CHROMEDRIVER = os.environ.get("CCCI_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("CCCI_CHROMIUM", "/usr/bin/chromium")
STATE = os.environ.get("CCCI_STATE", "/var/lib/ccci")
# The machine keeps up to this many Chromiums, on consecutive debugging ports, each serving one
# build at a time: an attached session never meets a tab another build is navigating or closing.
BROWSERS = int(os.environ.get("CCCI_BROWSERS", "2"))
FIRST_PORT = int(os.environ.get("CCCI_BROWSER_PORT", "9222"))
BROWSER_START_S = 30
LEASE_S = 300
# Every step of the attach is bounded: an unbounded one once held a build for five minutes.
ATTACH_S = 15
ATTACH_ATTEMPTS = 3
# Any one call to chromium-driver; its page loads are limited to 30 s on its side.
COMMAND_S = 60


class KeptBrowser:
    """One of the machine's kept Chromiums, leased to this build alone until release()."""

    def __init__(self, slot, lock):
        self.slot, self.lock, self.port = slot, lock, FIRST_PORT + slot
        self.unit = "ccci-browser-%d" % slot
        self.systemd = os.path.isdir("/run/systemd/system") and shutil.which("systemd-run")
        self.where = "unit %s (journalctl -u %s)" % (self.unit, self.unit) if self.systemd else os.path.join(STATE, "browser-%d.log" % slot)

    def version(self):
        """The browser's version, or None when nothing answers on its debugging port."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/version" % self.port, timeout=2) as response:
                return json.loads(response.read()).get("Browser", "unknown")
        except (OSError, ValueError):
            return None

    def ensure_running(self):
        if self.version():
            return
        # One that runs but does not answer is wedged, and holds the unit name and the port.
        self.stop()
        command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                   "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % self.port,
                   "--user-data-dir=" + os.path.join(STATE, "browser-profile-%d" % self.slot), "about:blank"]
        if self.systemd:
            subprocess.run(["systemctl", "reset-failed", self.unit + ".service"], capture_output=True)
            subprocess.run(["systemd-run", "--unit", self.unit, "--collect", "--quiet", "--property=Restart=no", *command], check=True)
            running = lambda: subprocess.run(["systemctl", "is-active", self.unit + ".service"], capture_output=True, text=True).stdout.strip() in ("active", "activating")
        else:
            with open(self.where, "ab") as out:
                process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
            with open(self.pidfile(), "w") as handle:
                handle.write(str(process.pid))
            running = lambda: process.poll() is None
        deadline = time.time() + BROWSER_START_S
        while time.time() < deadline:
            if self.version():
                return
            if not running():
                raise RuntimeError("%s exited as it started; see %s" % (CHROMIUM, self.where))
            time.sleep(0.1)
        raise RuntimeError("%s did not answer on 127.0.0.1:%d within %d s; see %s" % (CHROMIUM, self.port, BROWSER_START_S, self.where))

    def stop(self):
        if self.systemd:
            # Killed first: a wedged browser may never act on the SIGTERM of a plain stop.
            subprocess.run(["systemctl", "kill", "--signal=SIGKILL", self.unit + ".service"], capture_output=True, timeout=30)
            subprocess.run(["systemctl", "stop", self.unit + ".service"], capture_output=True, timeout=30)
            return
        try:
            with open(self.pidfile()) as handle:
                os.killpg(int(handle.read()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def pidfile(self):
        return os.path.join(STATE, "browser-%d.pid" % self.slot)

    def release(self):
        self.lock.close()


def lease_browser():
    """The first kept browser no other build holds; the lease ends with this process at the latest."""
    os.makedirs(STATE, exist_ok=True)
    deadline = time.time() + LEASE_S
    while True:
        for slot in range(BROWSERS):
            lock = open(os.path.join(STATE, "browser-%d.lock" % slot), "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return KeptBrowser(slot, lock)
            except BlockingIOError:
                lock.close()
        if time.time() > deadline:
            raise RuntimeError("none of the %d kept browsers came free within %d s (locks %s/browser-N.lock)" % (BROWSERS, LEASE_S, STATE))
        time.sleep(0.05)


def attach(browser):
    """chromium-driver attached to the leased browser; an attach that hangs is killed, not waited for."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.debugger_address = "127.0.0.1:%d" % browser.port
    service, outcome = Service(CHROMEDRIVER), {}

    def start():
        try:
            outcome["driver"] = webdriver.Chrome(service=service, options=options)
        except Exception as error:
            outcome["error"] = error

    worker = threading.Thread(target=start, daemon=True)
    worker.start()
    worker.join(ATTACH_S)
    if not worker.is_alive():
        if "error" in outcome:
            raise outcome["error"]
        return outcome["driver"]
    process = getattr(service, "process", None)
    if process is not None and process.poll() is None:
        process.kill()
    worker.join(5)
    raise TimeoutError("%s did not attach to the browser on 127.0.0.1:%d within %d s, and was killed" % (CHROMEDRIVER, browser.port, ATTACH_S))


class SeleniumPage:
    """The same Page calls, on headless Chromium through chromium-driver, in a kept browser leased to this build."""

    def __init__(self):
        import selenium
        from selenium.webdriver.remote.remote_connection import RemoteConnection

        # Bounds every call to chromium-driver, and Selenium's own shutdown request, which sets none.
        socket.setdefaulttimeout(COMMAND_S)
        RemoteConnection.set_timeout(COMMAND_S)
        # Missing, it stays missing: no attempt or restart would cure it.
        if not os.path.exists(CHROMIUM):
            raise RuntimeError("no Chromium at %s (CCCI_CHROMIUM)" % CHROMIUM)
        self.browser = lease_browser()
        try:
            for attempt in range(1, ATTACH_ATTEMPTS + 1):
                try:
                    self.browser.ensure_running()
                    self.driver = attach(self.browser)
                    break
                except Exception as error:
                    if attempt == ATTACH_ATTEMPTS:
                        raise
                    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                    print("browser step: attach %d of %d to the kept browser on 127.0.0.1:%d failed (%s); restarting it, see %s" % (attempt, ATTACH_ATTEMPTS, self.browser.port, first, self.browser.where), flush=True)
                    self.browser.stop()
        except BaseException:
            self.browser.release()
            raise
        self.driver.set_page_load_timeout(30)
        version = self.driver.capabilities.get("browserVersion", "unknown")
        # The browser is started with no sandbox: the lab runs it as root in a container, where Chromium's own cannot start.
        self.engine = "chromium %s headless (Selenium %s, chromium-driver; kept browsers, one build at a time in each, its origin cleared first; no sandbox: root in a lab container)" % (version, selenium.__version__)

    def forget(self, base_url):
        """Nothing a build before this one stored for the app's origin is left (cookies, storage, cache)."""
        parts = urllib.parse.urlsplit(base_url)
        self.driver.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": "%s://%s" % (parts.scheme, parts.netloc), "storageTypes": "all"})

    def goto(self, url):
        self.driver.get(url)
        return self

    def title(self):
        return self.driver.title

    def text_content(self, selector):
        from selenium.common.exceptions import NoSuchElementException
        from selenium.webdriver.common.by import By

        try:
            return self.driver.find_element(By.CSS_SELECTOR, selector).get_attribute("textContent")
        except NoSuchElementException:
            raise AssertionError("no element matches %s on %s" % (selector, self.driver.current_url))

    def links(self):
        return self.driver.execute_script("return Array.from(document.querySelectorAll('a[href]'), (a) => a.getAttribute('href'))")

    def close(self):
        # The next build finds a blank tab; an attached browser outlives the session, and the lease ends.
        try:
            self.driver.get("about:blank")
        finally:
            try:
                self.driver.quit()
            finally:
                self.browser.release()


def new_page():
    if importlib.util.find_spec("playwright"):
        from playwright.sync_api import sync_playwright  # pragma: no cover - not in the lab image

        browser = sync_playwright().start().chromium.launch()
        page = browser.new_page()
        page.engine = "playwright chromium %s" % browser.version
        page.links = lambda: page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        return page
    if importlib.util.find_spec("selenium") and os.path.exists(CHROMEDRIVER):
        return SeleniumPage()
    return HttpPage()


def main():
    base_url = sys.argv[1]
    path = os.path.join(os.environ["RECIPE_DIR"], "browser_test.py")
    spec = importlib.util.spec_from_file_location("browser_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [(name, getattr(module, name)) for name in sorted(dir(module)) if name.startswith("test_")]
    try:
        page = new_page()
    except Exception as error:
        # Named in the log as the engine line, so that a browser that cannot start reads as such.
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print("browser tests: engine none: the browser did not start: %s" % first, flush=True)
        traceback.print_exc()
        sys.exit(1)
    print("browser tests: engine %s" % page.engine, flush=True)
    try:
        if hasattr(page, "forget"):
            page.forget(base_url)
    except Exception:
        print("browser tests: none ran: could not clear what earlier builds stored for %s\n%s" % (base_url, traceback.format_exc()), flush=True)
        page.close()
        sys.exit(1)
    failed = 0
    for name, test in tests:
        try:
            test(page, base_url)
            print("browser test %s: passed" % name, flush=True)
        except Exception:
            failed += 1
            print("browser test %s: FAILED\n%s" % (name, traceback.format_exc()), flush=True)
    if hasattr(page, "close"):
        page.close()
    print("browser tests: %d passed, %d failed (%s)" % (len(tests) - failed, failed, os.path.relpath(path, os.path.dirname(os.environ["RECIPE_DIR"]))), flush=True)
    sys.exit(1 if failed or not tests else 0)


if __name__ == "__main__":
    main()

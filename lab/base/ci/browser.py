"""Runs a recipe's browser tests (tests/<recipe>/browser_test.py: functions test_*(page, base_url)).

They get a page with the few Playwright Page calls they use. With Playwright installed it is
Playwright's. The lab image has no Playwright (it is built offline from Debian), so there the
page is Debian's headless Chromium, driven through chromium-driver by Selenium: a real browser
engine, which runs the page's JavaScript. As Playwright's runner keeps one browser per worker, the
machine keeps one Chromium for its builds (a start costs about a CPU-second); each build attaches
to it and works in a tab of its own, on an app origin whose stored data is cleared first. The
HTTP-level stand-in (fetch the HTML and parse it, no JavaScript, no rendering) is what runs when
neither is there. The log names the engine and its
version, so nobody mistakes one for another."""
import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
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
BROWSER_PORT = int(os.environ.get("CCCI_BROWSER_PORT", "9222"))
BROWSER_UNIT = "ccci-browser"
BROWSER_START_S = 30


ATTACH_ATTEMPTS = 5


def devtools(method, path):
    """A call to the shared browser's DevTools HTTP endpoint: its answer as JSON, or its text."""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (BROWSER_PORT, path), method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


def browser_version():
    """The shared browser's version, or None when nothing answers on its debugging port."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/json/version" % BROWSER_PORT, timeout=2) as response:
            return json.loads(response.read()).get("Browser", "unknown")
    except (OSError, ValueError):
        return None


def shared_browser():
    """Starts the machine's Chromium unless it runs; builds that start at once start one between them."""
    os.makedirs(STATE, exist_ok=True)
    with open(os.path.join(STATE, "browser.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if browser_version():
            return
        if not os.path.exists(CHROMIUM):
            raise RuntimeError("no Chromium at %s (CCCI_CHROMIUM)" % CHROMIUM)
        log = os.path.join(STATE, "browser.log")
        command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                   "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % BROWSER_PORT,
                   "--user-data-dir=" + os.path.join(STATE, "browser-profile"), "about:blank"]
        if os.path.isdir("/run/systemd/system") and shutil.which("systemd-run"):
            subprocess.run(["systemctl", "reset-failed", BROWSER_UNIT + ".service"], capture_output=True)
            subprocess.run(["systemd-run", "--unit", BROWSER_UNIT, "--collect", "--quiet", "--property=Restart=no", *command], check=True)
            where = "unit %s (journalctl -u %s)" % (BROWSER_UNIT, BROWSER_UNIT)
            running = lambda: subprocess.run(["systemctl", "is-active", BROWSER_UNIT + ".service"], capture_output=True, text=True).stdout.strip() in ("active", "activating")
        else:
            with open(log, "ab") as out:
                process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
            where = log
            running = lambda: process.poll() is None
        deadline = time.time() + BROWSER_START_S
        while time.time() < deadline:
            if browser_version():
                return
            if not running():
                raise RuntimeError("%s exited as it started; see %s" % (CHROMIUM, where))
            time.sleep(0.1)
        raise RuntimeError("%s did not answer on 127.0.0.1:%d within %d s; see %s" % (CHROMIUM, BROWSER_PORT, BROWSER_START_S, where))


class SeleniumPage:
    """The same Page calls, on headless Chromium through chromium-driver, in a tab of the shared browser."""

    def __init__(self):
        import selenium
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        from selenium.common.exceptions import WebDriverException

        shared_browser()
        # The tab is opened first, through the browser's own endpoint: a session that attaches starts
        # in whichever tab it finds, perhaps one another build is navigating or closing, and that
        # race only ever costs an attempt, never this build's tab.
        self.tab = devtools("PUT", "/json/new?about:blank")["id"]
        options = webdriver.ChromeOptions()
        options.debugger_address = "127.0.0.1:%d" % BROWSER_PORT
        for attempt in range(1, ATTACH_ATTEMPTS + 1):
            driver = None
            try:
                driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
                driver.switch_to.window(self.tab)
                break
            except WebDriverException:
                if driver:
                    driver.quit()
                if attempt == ATTACH_ATTEMPTS:
                    devtools("GET", "/json/close/" + self.tab)
                    raise
                time.sleep(0.2)
        self.driver = driver
        self.driver.set_page_load_timeout(30)
        version = self.driver.capabilities.get("browserVersion", "unknown")
        # The browser is started with no sandbox: the lab runs it as root in a container, where Chromium's own cannot start.
        self.engine = "chromium %s headless (Selenium %s, chromium-driver; one browser shared by the builds, a tab and a cleared origin each; no sandbox: root in a lab container)" % (version, selenium.__version__)

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
        # chromium-driver, then the tab: an attached browser outlives the session, for the next build.
        try:
            self.driver.quit()
        finally:
            devtools("GET", "/json/close/" + self.tab)


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

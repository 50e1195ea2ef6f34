"""Runs a recipe's browser tests (tests/<recipe>/browser_test.py: functions test_*(page, base_url)).

They get a page with the few Playwright Page calls they use. With Playwright installed it is
Playwright's. The lab image has no Playwright (it is built offline from Debian), so there the
page is Debian's headless Chromium, driven through chromium-driver by Selenium: a real browser
engine, which runs the page's JavaScript. The HTTP-level stand-in (fetch the HTML and parse it,
no JavaScript, no rendering) is what runs when neither is there. The log names the engine and its
version, so nobody mistakes one for another."""
import importlib.util
import os
import sys
import traceback
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


# Debian's chromium-driver; the environment may name another (a test names one that cannot start).
CHROMEDRIVER = os.environ.get("CCCI_CHROMEDRIVER", "/usr/bin/chromedriver")


class SeleniumPage:
    """The same Page calls, on headless Chromium through chromium-driver."""

    def __init__(self):
        import selenium
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        # The lab runs it as root in a container, where Chromium's own sandbox cannot start.
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)
        version = self.driver.capabilities.get("browserVersion", "unknown")
        self.engine = "chromium %s headless (Selenium %s, chromium-driver; no sandbox: root in a lab container)" % (version, selenium.__version__)

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
        self.driver.quit()


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

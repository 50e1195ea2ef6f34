"""Runs a recipe's browser tests (tests/<recipe>/browser_test.py: functions test_*(page, base_url)).

With Playwright installed they drive headless Chromium. This image is built offline and carries
no Playwright and no browser, so they then run on an HTTP-level stand-in page: it fetches the
page and reads its HTML (title, elements by #id or tag, links), with no JavaScript and no
rendering. The log says which engine ran, so nobody mistakes one for the other."""
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

    engine = "http-standin (no Playwright in this image: HTML fetched and parsed, no JavaScript)"

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


def new_page():
    if importlib.util.find_spec("playwright"):
        from playwright.sync_api import sync_playwright  # pragma: no cover - not in the lab image

        browser = sync_playwright().start().chromium.launch()
        page = browser.new_page()
        page.engine = "playwright chromium %s" % browser.version
        page.links = lambda: page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        return page
    return HttpPage()


def main():
    base_url = sys.argv[1]
    path = os.path.join(os.environ["RECIPE_DIR"], "browser_test.py")
    spec = importlib.util.spec_from_file_location("browser_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [(name, getattr(module, name)) for name in sorted(dir(module)) if name.startswith("test_")]
    page = new_page()
    print("browser tests: engine %s" % page.engine, flush=True)
    failed = 0
    for name, test in tests:
        try:
            test(page, base_url)
            print("browser test %s: passed" % name, flush=True)
        except Exception:
            failed += 1
            print("browser test %s: FAILED\n%s" % (name, traceback.format_exc()), flush=True)
    print("browser tests: %d passed, %d failed (%s)" % (len(tests) - failed, failed, os.path.relpath(path, os.path.dirname(os.environ["RECIPE_DIR"]))), flush=True)
    sys.exit(1 if failed or not tests else 0)


if __name__ == "__main__":
    main()

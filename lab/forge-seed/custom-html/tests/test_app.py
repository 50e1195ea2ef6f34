"""custom-html's own tests: they run as the recipe-tests stage, and their exit code is the stage's."""
import json
import os
import sys
import urllib.request

url, expected = os.environ["APP_URL"], os.environ["RECIPE_VERSION"]
failures = 0


def check(number, what, ok):
    global failures
    print("%s %d - %s" % ("ok" if ok else "not ok", number, what), flush=True)
    failures += not ok


with urllib.request.urlopen(url + "/VERSION", timeout=5) as response:
    version = response.read().decode().strip()
check(1, "custom-html runs the upgraded version %s (got %s)" % (expected, version), version == expected)
with urllib.request.urlopen(url + "/records", timeout=5) as response:
    records = json.loads(response.read())
check(2, "custom-html kept its records through upgrade and restore (%d)" % len(records), len(records) >= 2)
sys.exit(1 if failures else 0)

"""The shared test harness: one step of a recipe's pipeline (ci/pipeline.json), run by Drone.
Everything recipe-specific comes from the recipe's own tree, tests/<recipe>/: enrolling a recipe
never touches this file. Each step does its work for real on this machine and says what it saw."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid

RECIPE = os.environ["RECIPE"]
RECIPE_DIR = os.environ["RECIPE_DIR"]
BUILD = os.environ.get("DRONE_BUILD_NUMBER", "0")
STATE = os.environ.get("CCCI_STATE", "/var/lib/ccci")
APP = os.path.join(STATE, "apps", RECIPE)
BACKUPS = os.path.join(STATE, "backups", RECIPE)
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(RECIPE_DIR, "recipe.json"), encoding="utf-8") as handle:
    SPEC = json.load(handle)
URL = "http://127.0.0.1:%d" % SPEC["port"]
UNIT = "ccci-app-%s" % RECIPE


def say(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)


def fail(text):
    say("FAILED: " + text)
    sys.exit(1)


def get(path):
    with urllib.request.urlopen(URL + path, timeout=5) as response:
        return response.read().decode()


def post(path, payload):
    request = urllib.request.Request(URL + path, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_version(version, timeout=20):
    deadline, seen = time.time() + timeout, "nothing"
    while time.time() < deadline:
        try:
            seen = get("/VERSION").strip()
            if seen == version:
                return
        except OSError as error:
            seen = str(error)
        time.sleep(0.2)
    fail("%s did not answer version %s within %d s (last: %s)" % (RECIPE, version, timeout, seen))


def systemd():
    return os.path.isdir("/run/systemd/system") and shutil.which("systemd-run")


def start_app():
    command = [sys.executable, os.path.join(HERE, "app.py"), "--port", str(SPEC["port"]), "--root", APP, "--title", SPEC["title"]]
    if systemd():
        subprocess.run(["systemctl", "reset-failed", UNIT + ".service"], capture_output=True)
        subprocess.run(["systemd-run", "--unit", UNIT, "--collect", "--quiet", "--property=Restart=no", *command], check=True)
    else:
        with open(os.path.join(APP, "app.log"), "ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
        with open(os.path.join(APP, "app.pid"), "w") as pid:
            pid.write(str(process.pid))


def stop_app():
    if systemd():
        subprocess.run(["systemctl", "stop", UNIT + ".service"], capture_output=True)
        return
    try:
        with open(os.path.join(APP, "app.pid")) as pid:
            os.kill(int(pid.read()), 15)
        time.sleep(0.3)
    except (OSError, ValueError):
        pass


def records():
    return json.loads(get("/records"))


def deploy():
    say("install: deploying %s %s (fresh: app state and data wiped)" % (RECIPE, SPEC["install"]))
    stop_app()
    shutil.rmtree(APP, ignore_errors=True)
    os.makedirs(os.path.join(APP, "data"))
    with open(os.path.join(APP, "VERSION"), "w") as version:
        version.write(SPEC["install"])
    start_app()
    wait_version(SPEC["install"])
    say("install: %s %s answers on %s (title %r)" % (RECIPE, SPEC["install"], URL, SPEC["title"]))


def upgrade():
    before = get("/VERSION").strip()
    note = post("/records", {"note": "written by %s %s before the upgrade (build %s)" % (RECIPE, before, BUILD)})
    say("upgrade: %s runs %s, holds %d record(s)" % (RECIPE, before, len(records())))
    stop_app()
    with open(os.path.join(APP, "VERSION"), "w") as version:
        version.write(SPEC["upgrade"])
    start_app()
    wait_version(SPEC["upgrade"])
    kept = [r for r in records() if r["id"] == note["id"]]
    if not kept:
        fail("the record written before the upgrade is gone")
    say("upgrade: %s %s -> %s; the record written before it is still there" % (RECIPE, before, SPEC["upgrade"]))


def backup():
    marker = "backup-check-%s-%s" % (BUILD, uuid.uuid4().hex[:12])
    post("/records", {"note": marker})
    os.makedirs(BACKUPS, exist_ok=True)
    archive = os.path.join(BACKUPS, "build-%s.tar.gz" % BUILD)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(os.path.join(APP, "data"), arcname="data")
    with open(archive + ".marker", "w") as out:
        out.write(marker)
    with open(archive, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    say("backup: %s data (%d records, marker %s) saved to %s, sha256 %s" % (RECIPE, len(records()), marker, archive, digest[:16]))


def restore():
    archive = os.path.join(BACKUPS, "build-%s.tar.gz" % BUILD)
    with open(archive + ".marker") as handle:
        marker = handle.read()
    stop_app()
    shutil.rmtree(os.path.join(APP, "data"))
    os.makedirs(os.path.join(APP, "data"))
    start_app()
    wait_version(SPEC["upgrade"])
    if any(r["note"] == marker for r in records()):
        fail("the data was not wiped before the restore")
    say("restore: %s data wiped, the app holds %d records" % (RECIPE, len(records())))
    stop_app()
    shutil.rmtree(os.path.join(APP, "data"))
    with tarfile.open(archive) as tar:
        tar.extractall(APP)
    start_app()
    wait_version(SPEC["upgrade"])
    if not any(r["note"] == marker for r in records()):
        fail("marker %s did not survive backup and restore" % marker)
    say("restore: %s restored from %s; marker %s survived (%d records)" % (RECIPE, archive, marker, len(records())))


def browser():
    sys.exit(subprocess.run([sys.executable, os.path.join(HERE, "browser.py"), URL]).returncode)


# The recipe repo on the forge, read with the bot's token (the real cc-ci clones it at the PR's head).
FORGE = os.environ.get("CCCI_FORGE", "http://127.0.0.1:3000")
FORGE_TOKEN_SECRET = os.environ.get("CCCI_FORGE_TOKEN_SECRET", "forge_bot_token")
SECRETS = os.environ.get("CCCI_SECRETS_DIR", "/run/secrets")


def forge_get(path):
    with open(os.path.join(SECRETS, FORGE_TOKEN_SECRET), encoding="utf-8") as handle:
        token = handle.read().strip()
    request = urllib.request.Request(FORGE + "/api/v1" + path, headers={"Authorization": "token " + token, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        fail("the forge answered %d on GET %s" % (error.code, path))


def recipe_tests():
    """The recipe repo's own tests/ (test*.py), at the head of the PR the build is for: each runs
    with APP_URL and RECIPE_VERSION set, and one that exits non-zero fails the stage."""
    repo, number = os.environ.get("PR_REPO", ""), os.environ.get("PR", "")
    if not repo or not number:
        fail("the build names no pull request (PR_REPO=%r, PR=%r): no recipe repo to read tests/ from" % (repo, number))
    pull = forge_get("/repos/%s/pulls/%s" % (repo, number))
    if not pull:
        fail("%s has no pull request #%s" % (repo, number))
    sha = pull["head"]["sha"]
    listing = forge_get("/repos/%s/contents/tests?ref=%s" % (repo, sha)) or []
    names = sorted(entry["name"] for entry in listing if entry["type"] == "file" and entry["name"].startswith("test") and entry["name"].endswith(".py"))
    if not names:
        fail("%s has no recipe-local tests in tests/ at %s (PR #%s)" % (repo, sha[:12], number))
    local = os.path.join(STATE, "recipe-tests", RECIPE, BUILD)
    shutil.rmtree(local, ignore_errors=True)
    os.makedirs(local)
    failed = 0
    for name in names:
        entry = forge_get("/repos/%s/contents/tests/%s?ref=%s" % (repo, name, sha))
        with open(os.path.join(local, name), "wb") as out:
            out.write(base64.b64decode(entry["content"]))
        say("recipe-tests: running %s@%s tests/%s" % (repo, sha[:12], name))
        code = subprocess.run([sys.executable, os.path.join(local, name)], env=dict(os.environ, APP_URL=URL, RECIPE_VERSION=SPEC["upgrade"])).returncode
        say("recipe-tests: %s exited %d" % (name, code))
        failed += code != 0
    say("recipe-tests: %d of %d recipe-local test files passed (%s tests/ at %s)" % (len(names) - failed, len(names), repo, sha[:12]))
    sys.exit(1 if failed else 0)


STEPS = {"deploy": deploy, "browser": browser, "upgrade": upgrade, "backup": backup, "restore": restore, "recipe-tests": recipe_tests}

if __name__ == "__main__":
    STEPS[sys.argv[1]]()

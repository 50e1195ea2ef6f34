"""Lab stand-in for Drone: server and runner in one process. It answers the subset of Drone's
API that the bridge, the dashboard and the acceptance specs use (`Authorization: Bearer …`),
serves an HTML UI page at /, and runs each build's pipeline (ci/pipeline.json) for real on
this machine, one step after another, keeping each step's status, exit code, times and log."""
import argparse
import html
import json
import multiprocessing
import multiprocessing.connection
import os
import runpy
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ccci import Handler, JsonStore, log, now, secret, serve

ARGS = None
STORE = None
POOL = ThreadPoolExecutor(max_workers=6)
RECIPE_LOCKS = {}
FINISHED = ("success", "failure", "error", "killed", "skipped")


class Drone(Handler):
    ROUTES = [
        ("GET", r"/", "ui"),
        ("GET", r"/healthz", "health"),
        ("GET", r"/api/user", "me"),
        ("GET", r"/api/repos/([^/]+)/([^/]+)", "repo"),
        ("GET", r"/api/repos/([^/]+)/([^/]+)/builds", "builds"),
        ("POST", r"/api/repos/([^/]+)/([^/]+)/builds", "create"),
        ("GET", r"/api/repos/([^/]+)/([^/]+)/builds/(\d+)", "build"),
        ("GET", r"/api/repos/([^/]+)/([^/]+)/builds/(\d+)/logs/(\d+)/(\d+)", "logs"),
    ]

    def dispatch(self, method):
        path = self.path.split("?")[0]
        if path.startswith("/api/"):
            header = self.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or header[len("Bearer "):].strip() != secret(ARGS.token_secret):
                return self.send(401, {"message": "Unauthorized"})
        return super().dispatch(method)

    def health(self):
        self.send(200, b"ok", "text/plain")

    def ui(self):
        with STORE.lock:
            builds = sorted(STORE.data["builds"].values(), key=lambda b: -b["number"])[:25]
        rows = "".join(
            "<tr><td>#%d</td><td>%s</td><td>%s</td></tr>" % (b["number"], html.escape(b["params"].get("RECIPE", "")), b["status"]) for b in builds
        )
        page = "<!doctype html><html><head><title>Drone</title></head><body><h1>Drone</h1><h2>%s</h2><table>%s</table></body></html>" % (html.escape(ARGS.repo), rows)
        self.send(200, page, "text/html; charset=utf-8")

    def me(self):
        self.send(200, {"id": 1, "login": ARGS.user, "admin": True, "active": True})

    def known(self, owner, name):
        if "%s/%s" % (owner, name) != ARGS.repo:
            self.send(404, {"message": "Not Found"})
            return False
        return True

    def repo(self, owner, name):
        if self.known(owner, name):
            self.send(200, {"id": 1, "namespace": owner, "name": name, "slug": ARGS.repo, "active": True, "default_branch": "main", "counter": STORE.data["counter"]})

    def builds(self, owner, name):
        if not self.known(owner, name):
            return
        # As Drone's list handler: per_page outside 1..100 is 25, page 0 and 1 the first; no Link header.
        def number(name):
            try:
                return int(self.query.get(name, 0))
            except ValueError:
                return 0
        page, per_page = max(1, number("page")), number("per_page")
        per_page = per_page if 1 <= per_page <= 100 else 25
        with STORE.lock:
            builds = sorted(STORE.data["builds"].values(), key=lambda b: -b["number"])
            listed = [{k: v for k, v in b.items() if k != "stages"} for b in builds[(page - 1) * per_page: page * per_page]]
        self.send(200, listed)

    def build(self, owner, name, number):
        if not self.known(owner, name):
            return
        with STORE.lock:
            build = STORE.data["builds"].get(number)
            payload = json.loads(json.dumps(build)) if build else None
        self.send(200, payload) if payload else self.send(404, {"message": "Not Found"})

    def logs(self, owner, name, number, stage, step):
        if not self.known(owner, name):
            return
        path = log_path(int(number), int(stage), int(step))
        if not os.path.exists(path):
            return self.send(404, {"message": "Not Found"})
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
        self.send(200, [{"pos": i, "out": line + "\n", "time": 0} for i, line in enumerate(lines)])

    def create(self, owner, name):
        if not self.known(owner, name):
            return
        params = {k: v for k, v in self.query.items() if k not in ("branch", "commit")}
        recipe = params.get("RECIPE", "")
        if not os.path.isdir(os.path.join(ARGS.tests, recipe)) or "/" in recipe or not recipe:
            return self.send(400, {"message": "unknown recipe %r" % recipe})
        with STORE.lock:
            STORE.data["counter"] += 1
            number = STORE.data["counter"]
            build = new_build(number, params, self.query.get("branch", "main"))
            STORE.data["builds"][str(number)] = build
            STORE.save()
            payload = json.loads(json.dumps(build))
        POOL.submit(run_build, number)
        log("build #%d created for %s" % (number, recipe))
        self.send(200, payload)


def new_build(number, params, branch):
    # As Drone: a stage's and a step's end is `stopped`; only the build has `finished`.
    t = now()
    pipeline = load_pipeline()
    stages = []
    for s_index, stage in enumerate(pipeline, start=1):
        steps = [{"id": number * 1000 + s_index * 100 + i, "number": i, "name": step, "status": "pending", "exit_code": 0, "started": 0, "stopped": 0}
                 for i, step in enumerate(stage["steps"], start=1)]
        stages.append({"id": number * 100 + s_index, "number": s_index, "name": stage["name"], "kind": "pipeline", "type": "exec",
                       "status": "pending", "exit_code": 0, "started": 0, "stopped": 0, "steps": steps})
    return {"id": number, "number": number, "status": "pending", "event": "custom", "trigger": "@api", "ref": "refs/heads/" + branch,
            "source": branch, "target": branch, "message": "!testme %s" % params.get("RECIPE", ""), "sender": params.get("SENDER", ""),
            "params": params, "created": t, "updated": t, "started": 0, "finished": 0, "stages": stages}


def load_pipeline():
    with open(ARGS.pipeline, encoding="utf-8") as handle:
        return json.load(handle)


def log_path(number, stage, step):
    return os.path.join(ARGS.state_dir, "logs", str(number), "%d-%d.log" % (stage, step))


def update(number, change):
    with STORE.lock:
        build = STORE.data["builds"][str(number)]
        change(build)
        build["updated"] = now()
        STORE.save()


def run_build(number):
    try:
        execute(number)
    except Exception as error:
        log("build #%d: runner error %r" % (number, error))
        update(number, lambda b: b.update(status="error", finished=now()))


def execute(number):
    build = STORE.data["builds"][str(number)]
    recipe = build["params"]["RECIPE"]
    lock = RECIPE_LOCKS.setdefault(recipe, threading.Lock())
    with lock:  # one build per recipe at a time: a recipe's app owns its port
        update(number, lambda b: b.update(status="running", started=now()))
        failed = False
        for stage in build["stages"]:
            s, stage_failed = stage["number"], False
            if failed:
                update(number, lambda b: skip(b["stages"][s - 1]))
                continue
            update(number, lambda b: b["stages"][s - 1].update(status="running", started=now()))
            for step in stage["steps"]:
                i = step["number"]
                if stage_failed:
                    update(number, lambda b: b["stages"][s - 1]["steps"][i - 1].update(status="skipped"))
                    continue
                update(number, lambda b: b["stages"][s - 1]["steps"][i - 1].update(status="running", started=now()))
                code = run_step(number, s, i, step["name"], build["params"])
                status = "success" if code == 0 else "failure"
                t = now()
                update(number, lambda b: b["stages"][s - 1]["steps"][i - 1].update(status=status, exit_code=code, stopped=t))
                if code != 0:
                    stage_failed = True
            t = now()
            exit_code = next((st["exit_code"] for st in STORE.data["builds"][str(number)]["stages"][s - 1]["steps"] if st["exit_code"]), 0)
            update(number, lambda b: b["stages"][s - 1].update(status="failure" if stage_failed else "success", exit_code=exit_code, stopped=t))
            failed = failed or stage_failed
        update(number, lambda b: b.update(status="failure" if failed else "success", finished=now()))
        log("build #%d (%s): %s" % (number, recipe, "failure" if failed else "success"))


def skip(stage):
    stage["status"] = "skipped"
    for step in stage["steps"]:
        step["status"] = "skipped"


def slow_down(out):
    """The lab made slow on purpose (the harness's ACCEPT_LAB_SLOW): each build's first step takes
    that much longer, as a real recipe build takes minutes. A sleep, so that it costs no CPU."""
    try:
        with open("/etc/accept-lab/slow-seconds", encoding="utf-8") as handle:
            seconds = int(handle.read().strip())
    except (OSError, ValueError):
        return
    out.write("the lab is slow: this build takes %d s longer\n" % seconds)
    out.flush()
    time.sleep(seconds)


# Steps start from a fork server that has already imported what harness.py imports: a fresh
# interpreter importing them costs about 0.1 CPU-s per step, and a cold run has about 54 steps.
STEP_TIMEOUT = 300
STEP_PRELOAD = ["__main__", "base64", "hashlib", "json", "shutil", "subprocess", "tarfile", "urllib.error", "urllib.request", "uuid"]
STEPS = multiprocessing.get_context("forkserver")
STEP_STATUS = threading.Lock()


def harness_step(harness, name, env, log_file):
    """In a child of the fork server: harness.py as __main__ for one step, with the step's
    environment and its log as stdout and stderr, as `python3 harness.py NAME` would have."""
    os.environ.clear()
    os.environ.update(env)
    out = os.open(log_file, os.O_WRONLY | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    sys.stdout.reconfigure(line_buffering=True)
    sys.argv = [harness, name]
    runpy.run_path(harness, run_name="__main__")


def run_harness(name, env, path):
    process = STEPS.Process(target=harness_step, args=(ARGS.harness, name, env, path), name="step-" + name)
    # A child's exit status is read once from a pipe, and start() polls every other child: with
    # builds on several threads, starts and reads go one at a time, or one thread takes another's.
    with STEP_STATUS:
        process.start()
    ended = multiprocessing.connection.wait([process.sentinel], STEP_TIMEOUT)
    with STEP_STATUS:
        if not ended:
            process.kill()
            process.join()
            with open(path, "a", encoding="utf-8") as out:
                out.write("step %s timed out after %d s\n" % (name, STEP_TIMEOUT))
            return 124
        # As subprocess's returncode: the exit status, or minus the signal that ended the step.
        return process.exitcode


def run_step(number, stage, step, name, params):
    path = log_path(number, stage, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    env = dict(os.environ, CI="true", DRONE="true", DRONE_BUILD_NUMBER=str(number), DRONE_STEP_NAME=name,
               RECIPE=params["RECIPE"], RECIPE_DIR=os.path.join(ARGS.tests, params["RECIPE"]), PYTHONUNBUFFERED="1",
               PR=str(params.get("PR", "")), PR_REPO=params.get("PR_REPO", ""))
    with open(path, "w", encoding="utf-8") as out:
        if stage == 1 and step == 1:
            slow_down(out)
    return run_harness(name, env, path)


def main():
    global ARGS, STORE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--repo", required=True, help="owner/name of the one repo builds run in")
    parser.add_argument("--user", required=True)
    parser.add_argument("--token-secret", required=True)
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--harness", required=True)
    parser.add_argument("--tests", required=True, help="the per-recipe tree")
    parser.add_argument("--python", default="/usr/bin/python3")
    ARGS = parser.parse_args()
    STEPS.set_executable(shutil.which(ARGS.python) or ARGS.python)
    STEPS.set_forkserver_preload(STEP_PRELOAD)
    STORE = JsonStore(os.path.join(ARGS.state_dir, "builds.json"), {"counter": 0, "builds": {}})
    # Builds stored by an older stand-in carried `finished` on stages and steps too: Drone has none.
    for build in STORE.data["builds"].values():
        for stage in build.get("stages", []):
            stage.pop("finished", None)
            for step in stage.get("steps", []):
                step.pop("finished", None)
    # A restart (every rebuild restarts us) cut short whatever was running: run it again.
    for build in STORE.data["builds"].values():
        if build["status"] not in FINISHED:
            fresh = new_build(build["number"], build["params"], build["source"])
            fresh["created"] = build["created"]
            STORE.data["builds"][str(build["number"])] = fresh
            POOL.submit(run_build, build["number"])
    STORE.save()
    serve(Drone, ARGS.port)


if __name__ == "__main__":
    main()

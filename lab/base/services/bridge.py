"""Lab stand-in for ccci-bridge: turns `!testme` comments on enrolled recipe PRs into Drone
builds, and posts each build's outcome back to the PR. Two ways in: it polls the forge for new
comments, and it takes Gitea webhooks at POST /hook, signed with HMAC-SHA256 keyed by the
sops secret webhook_hmac. Only members of the org may trigger a build."""
import argparse
import hashlib
import hmac
import json
import threading
import time
import urllib.parse

from ccci import Handler, JsonStore, call, log, request, secret, serve

ARGS = None
STORE = None


def forge(method, path, payload=None):
    return call(method, ARGS.forge + "/api/v1" + path, "token " + secret(ARGS.forge_token_secret), payload)


PAGE = 50  # Gitea's largest page (MAX_RESPONSE_ITEMS)


def forge_list(path):
    """Every item of a forge list, page by page; (status, items), the status of the first page
    that failed, if any. Pages go by number: Link's URLs are under the forge's public URL, which
    the bridge does not dial. A list Gitea does not paginate (an issue's comments) has no
    rel="next" and ends after its one answer."""
    items, page = [], 1
    while True:
        joiner = "&" if "?" in path else "?"
        status, headers, body = request("GET", "%s/api/v1%s%spage=%d&limit=%d" % (ARGS.forge, path, joiner, page, PAGE), "token " + secret(ARGS.forge_token_secret))
        if status != 200:
            return status, items
        items.extend(body or [])
        more = 'rel="next"' in ((headers or {}).get("Link") or "")
        if not more or len(body or []) < PAGE or page >= 1000:
            return 200, items
        page += 1


def drone(method, path):
    return call(method, ARGS.drone + "/api" + path, "Bearer " + secret(ARGS.drone_token_secret))


def enrolled():
    with open(ARGS.recipes, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def is_member(login):
    status, _ = forge("GET", "/orgs/%s/members/%s" % (ARGS.org, urllib.parse.quote(login)))
    if 300 <= status < 400:
        # Gitea tells membership only to a member or admin: the redirect says nothing of login.
        raise RuntimeError("membership of %s unknown: the forge token's user is not a member or admin of %s, so the forge will not tell" % (login, ARGS.org))
    if status not in (204, 404):
        # Neither yes nor no (the forge is restarting, say): ask again on the next poll.
        raise RuntimeError("membership of %s unknown: forge answered %s" % (login, status))
    return status == 204


def handle_comment(recipe, pull, comment_id, login, body):
    """Returns what became of one comment; each comment counts once, however it arrived."""
    with STORE.lock:
        if comment_id in STORE.data["seen"]:
            return {"ignored": "comment %d already handled" % comment_id}
        STORE.data["seen"].append(comment_id)
        STORE.save()
    try:
        return trigger(recipe, pull, comment_id, login, body)
    except Exception:
        # A comment counts as handled only once it was decided: a forge or Drone that was
        # restarting (a rebuild restarts them) must not swallow the !testme.
        with STORE.lock:
            STORE.data["seen"].remove(comment_id)
            STORE.save()
        raise


def trigger(recipe, pull, comment_id, login, body):
    if not body.strip().startswith("!testme"):
        return {"ignored": "not a !testme comment"}
    if recipe not in enrolled():
        return {"ignored": "%s is not enrolled" % recipe}
    if not is_member(login):
        log("ignored !testme from %s on %s#%d: not a member of %s" % (login, recipe, pull, ARGS.org))
        return {"ignored": "%s is not a member of %s" % (login, ARGS.org)}
    query = urllib.parse.urlencode({"branch": "main", "RECIPE": recipe, "PR": pull, "PR_REPO": "%s/%s" % (ARGS.org, recipe), "COMMENT_ID": comment_id, "SENDER": login})
    status, build = drone("POST", "/repos/%s/builds?%s" % (ARGS.drone_repo, query))
    if status != 200:
        log("drone refused the build for %s#%d: %s %s" % (recipe, pull, status, build))
        raise RuntimeError("drone answered %s" % status)
    with STORE.lock:
        STORE.data["pending"].append({"build": build["number"], "recipe": recipe, "pull": pull})
        STORE.save()
    log("!testme from %s on %s#%d: build #%d" % (login, recipe, pull, build["number"]))
    return {"triggered": build["number"]}


def poll_once():
    for recipe in enrolled():
        status, pulls = forge_list("/repos/%s/%s/pulls?state=open" % (ARGS.org, recipe))
        if status != 200:
            continue
        for pull in pulls:
            status, comments = forge_list("/repos/%s/%s/issues/%d/comments" % (ARGS.org, recipe, pull["number"]))
            for comment in comments if status == 200 else []:
                if comment["id"] not in STORE.data["seen"]:
                    handle_comment(recipe, pull["number"], comment["id"], comment["user"]["login"], comment["body"])


def report_outcomes():
    for entry in list(STORE.data["pending"]):
        status, build = drone("GET", "/repos/%s/builds/%d" % (ARGS.drone_repo, entry["build"]))
        if status == 200 and build["status"] not in ("pending", "running"):
            verdict = "passed" if build["status"] == "success" else "failed"
            body = "cc-ci build #%d of %s %s (%s): https://%s/runs/%d/ (Drone: https://drone.%s/%s/%d)" % (
                build["number"], entry["recipe"], verdict, build["status"], ARGS.domain, build["number"], ARGS.domain, ARGS.drone_repo, build["number"])
            status, _ = forge("POST", "/repos/%s/%s/issues/%d/comments" % (ARGS.org, entry["recipe"], entry["pull"]), {"body": body})
            if status == 201:
                with STORE.lock:
                    STORE.data["pending"].remove(entry)
                    STORE.save()


def loop():
    first = not STORE.data["started"]
    while True:
        try:
            if first:
                # A new bridge does not replay history: what is already there counts as seen.
                for recipe in enrolled():
                    status, pulls = forge_list("/repos/%s/%s/pulls?state=open" % (ARGS.org, recipe))
                    for pull in pulls if status == 200 else []:
                        status, comments = forge_list("/repos/%s/%s/issues/%d/comments" % (ARGS.org, recipe, pull["number"]))
                        STORE.data["seen"].extend(c["id"] for c in comments if status == 200)
                STORE.data["started"] = True
                STORE.save()
                first = False
            poll_once()
            report_outcomes()
        except Exception as error:
            log("poll failed: %r" % (error,))
        time.sleep(ARGS.poll_seconds)


class Bridge(Handler):
    ROUTES = [("POST", r"/hook", "hook"), ("GET", r"/healthz", "health")]

    def health(self):
        self.send(200, b"ok", "text/plain")

    def hook(self):
        raw = self.body()
        signature = self.headers.get("X-Gitea-Signature", "").strip()
        if not signature:
            return self.send(401, {"message": "unsigned webhook"})
        expected = hmac.new(secret("webhook_hmac").encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower(), expected):
            return self.send(403, {"message": "bad signature"})
        try:
            event = json.loads(raw or b"{}")
        except ValueError:
            return self.send(400, {"message": "body is not JSON"})
        kind = self.headers.get("X-Gitea-Event", "")
        comment, issue, repo = event.get("comment") or {}, event.get("issue") or {}, event.get("repository") or {}
        if kind != "issue_comment" or event.get("action") != "created" or not comment or not issue.get("pull_request"):
            return self.send(200, {"ignored": "event %s is not a new PR comment" % (kind or "(none)")})
        if (repo.get("owner") or {}).get("login") != ARGS.org:
            return self.send(200, {"ignored": "not a repo of %s" % ARGS.org})
        outcome = handle_comment(repo.get("name", ""), int(issue.get("number", 0)), int(comment.get("id", 0)), (comment.get("user") or {}).get("login", ""), comment.get("body", ""))
        self.send(202 if "triggered" in outcome else 200, outcome)


def main():
    global ARGS, STORE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--forge", required=True)
    parser.add_argument("--forge-token-secret", required=True)
    parser.add_argument("--org", required=True)
    parser.add_argument("--drone", required=True)
    parser.add_argument("--drone-token-secret", required=True)
    parser.add_argument("--drone-repo", required=True)
    parser.add_argument("--recipes", required=True)
    parser.add_argument("--poll-seconds", type=float, default=30)
    ARGS = parser.parse_args()
    STORE = JsonStore(ARGS.state, {"started": False, "seen": [], "pending": []})
    threading.Thread(target=loop, daemon=True).start()
    serve(Bridge, ARGS.port)


if __name__ == "__main__":
    main()

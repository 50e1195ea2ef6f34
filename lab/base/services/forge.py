"""Lab stand-in for the forge: the subset of Gitea's API v1 that cc-ci's bridge and the
acceptance specs use, with `Authorization: token …`. Users, the org and the recipe repos come
from a seed file; tokens from sops secrets in /run/secrets."""
import argparse
import itertools

from ccci import Handler, JsonStore, iso, log, now, secret, serve

ARGS = None
STORE = None


def user_json(login):
    return {"id": ARGS.users.index(login) + 1, "login": login, "username": login, "full_name": login, "email": "%s@forge.invalid" % login}


class Forge(Handler):
    ROUTES = [
        ("GET", r"/api/v1/version", "version"),
        ("GET", r"/api/v1/user", "me"),
        ("GET", r"/api/v1/orgs/([^/]+)/members/([^/]+)", "member"),
        ("POST", r"/api/v1/orgs/([^/]+)/repos", "create_repo"),
        ("GET", r"/api/v1/repos/([^/]+)/([^/]+)", "repo"),
        ("GET", r"/api/v1/repos/([^/]+)/([^/]+)/pulls", "pulls"),
        ("POST", r"/api/v1/repos/([^/]+)/([^/]+)/pulls", "create_pull"),
        ("GET", r"/api/v1/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", "comments"),
        ("POST", r"/api/v1/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", "create_comment"),
    ]

    def caller(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("token "):
            return None
        given = header[len("token "):].strip()
        for login, secret_name in STORE.data["tokens"].items():
            try:
                if given and given == secret(secret_name):
                    return login
            except OSError:
                continue
        return None

    def dispatch(self, method):
        if self.path.split("?")[0] != "/api/v1/version":
            self.login = self.caller()
            if not self.login:
                return self.send(401, {"message": "token is required"})
        return super().dispatch(method)

    def version(self):
        self.send(200, {"version": "1.21.11+ccci-lab-standin"})

    def me(self):
        self.send(200, user_json(self.login))

    def member(self, org, login):
        if login in STORE.data["orgs"].get(org, []):
            return self.send(204)
        self.send(404, {"message": "not a member"})

    def find_repo(self, owner, name):
        return STORE.data["repos"].get("%s/%s" % (owner, name))

    def repo_json(self, full):
        owner, name = full.split("/")
        return {"id": list(STORE.data["repos"]).index(full) + 1, "name": name, "full_name": full, "owner": {"login": owner}, "html_url": "%s/%s" % (ARGS.url, full), "default_branch": "main"}

    def create_repo(self, org):
        if self.login not in STORE.data["orgs"].get(org, []):
            return self.send(403, {"message": "not a member of %s" % org})
        name = self.json_body().get("name", "")
        full = "%s/%s" % (org, name)
        with STORE.lock:
            if not name or full in STORE.data["repos"]:
                return self.send(409, {"message": "repository already exists"})
            STORE.data["repos"][full] = {"pulls": []}
            STORE.save()
        self.send(201, self.repo_json(full))

    def repo(self, owner, name):
        if not self.find_repo(owner, name):
            return self.send(404, {"message": "repository does not exist"})
        self.send(200, self.repo_json("%s/%s" % (owner, name)))

    def pull_json(self, full, pull):
        return {
            "id": pull["id"], "number": pull["number"], "title": pull["title"], "body": pull.get("body", ""),
            "state": pull["state"], "user": user_json(pull["user"]),
            "html_url": "%s/%s/pulls/%d" % (ARGS.url, full, pull["number"]),
            "head": {"ref": pull["head"], "label": pull["head"], "sha": pull["sha"]}, "base": {"ref": "main", "label": "main"},
            "created_at": iso(pull["created"]), "updated_at": iso(pull["created"]),
        }

    def pulls(self, owner, name):
        repo = self.find_repo(owner, name)
        if not repo:
            return self.send(404, {"message": "repository does not exist"})
        state = self.query.get("state", "open")
        full = "%s/%s" % (owner, name)
        self.send(200, [self.pull_json(full, p) for p in repo["pulls"] if state == "all" or p["state"] == state])

    def create_pull(self, owner, name):
        repo = self.find_repo(owner, name)
        if not repo:
            return self.send(404, {"message": "repository does not exist"})
        body = self.json_body()
        with STORE.lock:
            pull = new_pull(repo, self.login, body.get("title", "untitled"), body.get("head", "main"), body.get("body", ""))
            STORE.save()
        self.send(201, self.pull_json("%s/%s" % (owner, name), pull))

    def issue(self, owner, name, index):
        repo = self.find_repo(owner, name)
        return next((p for p in repo["pulls"] if p["number"] == int(index)), None) if repo else None

    def comment_json(self, owner, name, index, comment):
        base = "%s/%s/%s" % (ARGS.url, owner, name)
        return {
            "id": comment["id"], "body": comment["body"], "user": user_json(comment["user"]),
            "html_url": "%s/pulls/%s#issuecomment-%d" % (base, index, comment["id"]),
            "pull_request_url": "%s/pulls/%s" % (base, index), "issue_url": "%s/issues/%s" % (base, index),
            "created_at": iso(comment["created"]), "updated_at": iso(comment["created"]),
        }

    def comments(self, owner, name, index):
        issue = self.issue(owner, name, index)
        if not issue:
            return self.send(404, {"message": "issue does not exist"})
        self.send(200, [self.comment_json(owner, name, index, c) for c in issue["comments"]])

    def create_comment(self, owner, name, index):
        issue = self.issue(owner, name, index)
        if not issue:
            return self.send(404, {"message": "issue does not exist"})
        text = self.json_body().get("body", "")
        with STORE.lock:
            comment = {"id": next_id(), "user": self.login, "body": text, "created": now()}
            issue["comments"].append(comment)
            STORE.save()
        log("comment %d by %s on %s/%s#%s" % (comment["id"], self.login, owner, name, index))
        self.send(201, self.comment_json(owner, name, index, comment))


def next_id():
    STORE.data["next_id"] += 1
    return STORE.data["next_id"]


def new_pull(repo, login, title, head, body=""):
    number = max([p["number"] for p in repo["pulls"]] + [0]) + 1
    pull = {"id": next_id(), "number": number, "title": title, "body": body, "state": "open", "user": login,
            "head": head, "sha": "%040x" % next_id(), "created": now(), "comments": []}
    repo["pulls"].append(pull)
    return pull


def main():
    global ARGS, STORE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--url", required=True, help="public URL, for html_url fields")
    parser.add_argument("--org", required=True)
    parser.add_argument("--members", required=True, help="login=secret,… of org members")
    parser.add_argument("--outsiders", default="", help="login=secret,… of users outside the org")
    parser.add_argument("--recipes", required=True, help="the enrolment list: one repo and one open PR each")
    ARGS = parser.parse_args()
    pairs = lambda text: [item.split("=", 1) for item in text.split(",") if item]
    members, outsiders = pairs(ARGS.members), pairs(ARGS.outsiders)
    ARGS.users = [login for login, _ in itertools.chain(members, outsiders)]
    STORE = JsonStore(ARGS.state, {"next_id": 100, "orgs": {}, "repos": {}, "tokens": {}})
    with STORE.lock:
        STORE.data["tokens"] = dict(members + outsiders)
        STORE.data["orgs"][ARGS.org] = [login for login, _ in members]
        with open(ARGS.recipes, encoding="utf-8") as handle:
            recipes = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
        for recipe in recipes:
            repo = STORE.data["repos"].setdefault("%s/%s" % (ARGS.org, recipe), {"pulls": []})
            if not any(p["state"] == "open" for p in repo["pulls"]):
                new_pull(repo, members[0][0], "Bump %s" % recipe, "bump-%s" % recipe)
        STORE.save()
    serve(Forge, ARGS.port)


if __name__ == "__main__":
    main()

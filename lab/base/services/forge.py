"""Lab stand-in for the forge: the subset of Gitea's API v1 that cc-ci's bridge and the
acceptance specs use, with `Authorization: token …`. Users, the org and the recipe repos come
from a seed file; tokens from sops secrets in /run/secrets.

Each repo holds files on branches, as a git repo would, but as JSON: a commit is a whole tree
(path → text) under a made-up sha, a branch names a commit. The recipe repos start from --seed
(<recipe>/… there is the recipe repo's own tree, its tests/ among it)."""
import argparse
import base64
import hashlib
import itertools
import http.client
import os
import re
import shutil
import socket
import threading
import time
import urllib.parse

from ccci import Handler, JsonStore, iso, log, now, secret, serve

ARGS = None
STORE = None
# Gitea's [api] DEFAULT_PAGING_NUM and MAX_RESPONSE_ITEMS: a list's page size unless asked, and its cap.
DEFAULT_LIMIT, MAX_LIMIT = 30, 50


def user_json(login):
    return {"id": ARGS.users.index(login) + 1, "login": login, "username": login, "full_name": login, "email": "%s@forge.invalid" % login}


class Forge(Handler):
    ROUTES = [
        ("GET", r"/api/v1/version", "version"),
        ("GET", r"/api/v1/user", "me"),
        ("GET", r"/api/v1/orgs/([^/]+)/members/([^/]+)", "member"),
        ("GET", r"/api/v1/orgs/([^/]+)/public_members/([^/]+)", "public_member"),
        ("POST", r"/api/v1/orgs/([^/]+)/repos", "create_repo"),
        ("GET", r"/api/v1/repos/([^/]+)/([^/]+)", "repo"),
        ("GET", r"/api/v1/repos/([^/]+)/([^/]+)/pulls", "pulls"),
        ("POST", r"/api/v1/repos/([^/]+)/([^/]+)/pulls", "create_pull"),
        ("GET", r"/api/v1/repos/([^/]+)/([^/]+)/pulls/(\d+)", "pull"),
        ("GET", r"/api/v1/repos/([^/]+)/([^/]+)/contents/?(.*)", "contents"),
        ("POST", r"/api/v1/repos/([^/]+)/([^/]+)/contents/(.+)", "create_file"),
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
            if method != "GET" and self.server.server_address[1] == ARGS.port:
                try:
                    self.count_machine_write(method)
                except Exception as error:  # answered, as a route's own fault is
                    return self.fault(method, error)
        return super().dispatch(method)

    def count_machine_write(self, method):
        # The plain port is the machine's (its proxy device); the harness dials HTTPS. The count
        # by login and route is what the run reports as the throwaway's own writes.
        route = next((name for verb, pattern, name in self.ROUTES if verb == method and re.fullmatch(pattern, self.path.split("?")[0])), "unknown")
        with STORE.lock:
            writes = STORE.data.setdefault("machine_writes", {}).setdefault(self.login, {})
            writes[route] = writes.get(route, 0) + 1
            STORE.save()

    def version(self):
        self.send(200, {"version": "1.21.11+ccci-lab-standin"})

    def me(self):
        self.send(200, user_json(self.login))

    def send_page(self, items):
        """One page of a list as Gitea answers it: page (1-based) and limit from the query, the
        other pages in Link (their URLs under the public --url, as Gitea's AppURL) and the whole
        list's length in X-Total-Count."""
        try:
            page, limit = max(1, int(self.query.get("page", 1))), int(self.query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            page, limit = 1, DEFAULT_LIMIT
        limit = DEFAULT_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)
        pages = max(1, -(-len(items) // limit))
        path = self.path.split("?")[0]

        def link(number, rel):
            query = urllib.parse.urlencode(dict(self.query, page=str(number), limit=str(limit)))
            return '<%s%s?%s>; rel="%s"' % (ARGS.url.rstrip("/"), path, query, rel)

        links = ([link(page + 1, "next")] if page < pages else []) + ([link(pages, "last")] if page != pages else [])
        links += [link(1, "first"), link(page - 1, "prev")] if page > 1 else []
        headers = {"X-Total-Count": str(len(items))}
        if links:
            headers["Link"] = ",".join(links)
        self.send(200, items[(page - 1) * limit: page * limit], headers=headers)

    def member(self, org, login):
        members = STORE.data["orgs"].get(org)
        if members is None or login not in ARGS.users:
            return self.send(404, {"message": "user or organization does not exist"})
        if self.login not in members:
            # As Gitea: only a member (or an admin) is told; anyone else is sent to the public list.
            # 303 is Base.Redirect's default since Gitea 1.20 (302 before).
            location = "/api/v1/orgs/%s/public_members/%s" % (urllib.parse.quote(org), urllib.parse.quote(login))
            return self.send(303, b"", headers={"Location": location})
        if login in members:
            return self.send(204)
        self.send(404, {"message": "not a member"})

    def public_member(self, org, login):
        # Gitea's default keeps memberships private, and the lab publicises none.
        self.send(404, {"message": "not a public member"})

    def find_repo(self, owner, name):
        return STORE.data["repos"].get("%s/%s" % (owner, name))

    def repo_json(self, full):
        owner, name = full.split("/")
        return {"id": list(STORE.data["repos"]).index(full) + 1, "name": name, "full_name": full, "owner": {"login": owner}, "html_url": "%s/%s" % (ARGS.url, full), "default_branch": "main"}

    def create_repo(self, org):
        # Gitea lets only members of a team with "Create repositories" (or owners) create one.
        if org != ARGS.org or self.login not in ARGS.creators:
            return self.send(403, {"message": "Given user is not allowed to create repository in organization."})
        name = self.json_body().get("name", "")
        full = "%s/%s" % (org, name)
        with STORE.lock:
            if not name or full in STORE.data["repos"]:
                return self.send(409, {"message": "repository already exists"})
            repo = STORE.data["repos"][full] = new_repo()
            if self.json_body().get("auto_init"):
                commit(repo, "main", {"README.md": "# %s\n" % name})
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
            "head": {"ref": pull["head"], "label": pull["head"], "sha": STORE.data["repos"][full]["branches"].get(pull["head"], pull["sha"])},
            "base": {"ref": pull.get("base", "main"), "label": pull.get("base", "main")},
            "created_at": iso(pull["created"]), "updated_at": iso(pull["created"]),
        }

    def pulls(self, owner, name):
        repo = self.find_repo(owner, name)
        if not repo:
            return self.send(404, {"message": "repository does not exist"})
        state = self.query.get("state", "open")
        full = "%s/%s" % (owner, name)
        listed = [p for p in repo["pulls"] if state == "all" or p["state"] == state]
        # Gitea's default order: newest first.
        listed.sort(key=lambda p: (p["created"], p["id"]), reverse=True)
        self.send_page([self.pull_json(full, p) for p in listed])

    def create_pull(self, owner, name):
        repo = self.find_repo(owner, name)
        if not repo:
            return self.send(404, {"message": "repository does not exist"})
        body = self.json_body()
        head, base = body.get("head", ""), body.get("base", "main")
        # As Gitea: both branches must exist (404), and a head that is its base has no changes (422).
        if head == base:
            return self.send(422, {"message": "Invalid PullRequest: There are no changes between the head and the base"})
        missing = [branch for branch in (head, base) if branch not in repo["branches"]]
        if missing:
            return self.send(404, {"message": "branch %s does not exist" % missing[0]})
        with STORE.lock:
            pull = new_pull(repo, self.login, body.get("title", "untitled"), head, body.get("body", ""), base)
            STORE.save()
        self.send(201, self.pull_json("%s/%s" % (owner, name), pull))

    def pull(self, owner, name, index):
        found = self.issue(owner, name, index)
        if not found:
            return self.send(404, {"message": "pull request does not exist"})
        self.send(200, self.pull_json("%s/%s" % (owner, name), found))

    def tree_at(self, repo, ref):
        """The files of `ref` (a branch, or a commit's sha), or None; Gitea's default is the default branch."""
        sha = repo["branches"].get(ref or "main", ref)
        return repo["commits"].get(sha)

    def content_json(self, owner, name, path, ref, text=None, listed=False):
        """Gitea's ContentsResponse: a listing's entries carry no content (null), a file's own answer does."""
        entry = {"name": path.rsplit("/", 1)[-1], "path": path, "type": "file" if text is not None else "dir",
                 "url": "%s/api/v1/repos/%s/%s/contents/%s?ref=%s" % (ARGS.url, owner, name, path, ref), "encoding": None, "content": None}
        if text is not None:
            data = text.encode()
            entry.update(size=len(data), sha=hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
            if not listed:
                entry.update(encoding="base64", content=base64.b64encode(data).decode())
        return entry

    def contents(self, owner, name, path):
        """GET …/contents/{path}?ref=: a file with its content (base64), or a directory as a list of its entries."""
        repo = self.find_repo(owner, name)
        ref = self.query.get("ref") or "main"
        tree = self.tree_at(repo, ref) if repo else None
        if tree is None:
            return self.send(404, {"message": "object does not exist [id: %s, rel_path: ]" % ref})
        path = path.strip("/")
        if path in tree:
            return self.send(200, self.content_json(owner, name, path, ref, tree[path]))
        prefix = path + "/" if path else ""
        children = sorted({item[len(prefix):].split("/", 1)[0] for item in tree if item.startswith(prefix)})
        if not children:
            return self.send(404, {"message": "object does not exist [id: %s, rel_path: %s]" % (ref, path)})
        self.send(200, [self.content_json(owner, name, prefix + child, ref, tree.get(prefix + child), listed=True) for child in children])

    def create_file(self, owner, name, path):
        """POST …/contents/{path} {content (base64), message, branch, new_branch}: one commit that adds the file."""
        repo = self.find_repo(owner, name)
        if not repo:
            return self.send(404, {"message": "repository does not exist"})
        if self.login not in STORE.data["orgs"].get(owner, []):
            return self.send(403, {"message": "user %s does not have permission to write to %s/%s" % (self.login, owner, name)})
        body = self.json_body()
        branch, new_branch = body.get("branch") or "main", body.get("new_branch") or ""
        try:
            text = base64.b64decode(body.get("content", ""), validate=True).decode()
        except ValueError as error:
            return self.send(422, {"message": "content is not base64: %s" % error})
        with STORE.lock:
            tree = self.tree_at(repo, branch) if branch in repo["branches"] else None
            if tree is None:
                return self.send(404, {"message": "branch does not exist [name: %s]" % branch})
            if new_branch and new_branch in repo["branches"]:
                return self.send(422, {"message": "branch already exists [name: %s]" % new_branch})
            if path in tree:
                return self.send(422, {"message": "repository file already exists [path: %s]" % path})
            sha = commit(repo, new_branch or branch, dict(tree, **{path: text}))
            STORE.save()
        log("file %s by %s on %s/%s@%s" % (path, self.login, owner, name, new_branch or branch))
        self.send(201, {"content": self.content_json(owner, name, path, new_branch or branch, text),
                        "commit": {"sha": sha, "message": body.get("message", "Add %s" % path)}})

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
        # As Gitea: no page/limit on an issue's comments; all of them, oldest first, and their count.
        listed = sorted(issue["comments"], key=lambda c: (c["created"], c["id"]))
        self.send(200, [self.comment_json(owner, name, index, c) for c in listed], headers={"X-Total-Count": str(len(listed))})

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


def new_repo():
    return {"pulls": [], "commits": {}, "branches": {}}


def commit(repo, branch, tree):
    """Points `branch` at a new commit holding `tree`; answers its sha."""
    sha = hashlib.sha1(("%s %d %s" % (branch, next_id(), sorted(tree.items()))).encode()).hexdigest()
    repo["commits"][sha] = tree
    repo["branches"][branch] = sha
    return sha


def seed_tree(recipe):
    """The recipe repo's own files, from --seed/<recipe>/ (none when it has no seed)."""
    root = os.path.join(ARGS.seed, recipe) if ARGS.seed else ""
    tree = {"README.md": "# %s\n" % recipe}
    for folder, _, files in os.walk(root):
        for file in files:
            full = os.path.join(folder, file)
            with open(full, encoding="utf-8") as handle:
                tree[os.path.relpath(full, root)] = handle.read()
    return tree


def new_pull(repo, login, title, head, body="", base="main"):
    number = max([p["number"] for p in repo["pulls"]] + [0]) + 1
    pull = {"id": next_id(), "number": number, "title": title, "body": body, "state": "open", "user": login,
            "head": head, "base": base, "sha": "%040x" % next_id(), "created": now(), "comments": []}
    repo["pulls"].append(pull)
    return pull


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.unix_path)


def instance_exists():
    """Whether --instance is still in its project, asked of incusd's own socket; None if it cannot tell."""
    try:
        connection = _UnixConnection(ARGS.incus_socket)
        connection.request("GET", "/1.0/instances/%s?project=%s" % (urllib.parse.quote(ARGS.instance), urllib.parse.quote(ARGS.project)))
        status = connection.getresponse().status
        connection.close()
    except OSError:
        return None
    return {200: True, 404: False}.get(status)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def watch_instance():
    """A forge of one throwaway (the lab runs one per run, outside it, as the real forge is): it
    ends once its throwaway is gone, and before that exists, once the run that started it is."""
    seen = False
    while True:
        time.sleep(1)
        exists = instance_exists()
        seen = seen or exists is True
        if exists is False and (seen or not pid_alive(ARGS.owner_pid)):
            log("throwaway %s is gone: the forge stops" % ARGS.instance)
            if ARGS.remove_on_exit:
                shutil.rmtree(ARGS.remove_on_exit, ignore_errors=True)
            os._exit(0)


def main():
    global ARGS, STORE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--url", required=True, help="public URL, for html_url fields")
    parser.add_argument("--org", required=True)
    parser.add_argument("--members", required=True, help="login=secret,… of org members")
    parser.add_argument("--outsiders", default="", help="login=secret,… of users outside the org")
    parser.add_argument("--creators", default="", help="login,… of members whose team may create repos in the org")
    parser.add_argument("--recipes", required=True, help="the enrolment list: one repo and one open PR each")
    parser.add_argument("--seed", default="", help="<recipe>/… under it: each recipe repo's own files (its tests/ among them)")
    parser.add_argument("--tls-port", type=int, default=0, help="also serve HTTPS there, with --cert and --key")
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--instance", default="", help="the throwaway this forge serves: it stops once that is gone (with --project, --incus-socket, --owner-pid)")
    parser.add_argument("--project", default="default")
    parser.add_argument("--incus-socket", default="/var/lib/incus/unix.socket")
    parser.add_argument("--owner-pid", type=int, default=0)
    parser.add_argument("--remove-on-exit", default="", help="a directory of this forge's own, removed when it stops")
    ARGS = parser.parse_args()
    pairs = lambda text: [item.split("=", 1) for item in text.split(",") if item]
    members, outsiders = pairs(ARGS.members), pairs(ARGS.outsiders)
    ARGS.users = [login for login, _ in itertools.chain(members, outsiders)]
    ARGS.creators = [login for login in ARGS.creators.split(",") if login in dict(members)]
    STORE = JsonStore(ARGS.state, {"next_id": 100, "orgs": {}, "repos": {}, "tokens": {}})
    with STORE.lock:
        STORE.data["tokens"] = dict(members + outsiders)
        STORE.data["orgs"][ARGS.org] = [login for login, _ in members]
        with open(ARGS.recipes, encoding="utf-8") as handle:
            recipes = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
        for recipe in recipes:
            repo = STORE.data["repos"].setdefault("%s/%s" % (ARGS.org, recipe), new_repo())
            for key, empty in new_repo().items():
                repo.setdefault(key, empty)
            if "main" not in repo["branches"]:
                commit(repo, "main", seed_tree(recipe))
            if not any(p["state"] == "open" for p in repo["pulls"]):
                # The seeded PR's branch: main's tree and a bump of the recipe's version note.
                head = "bump-%s" % recipe
                tree = repo["commits"][repo["branches"]["main"]]
                commit(repo, head, dict(tree, **{"VERSION.md": "bump of %s\n" % recipe}))
                new_pull(repo, members[0][0], "Bump %s" % recipe, head)
        STORE.save()
    if ARGS.instance:
        threading.Thread(target=watch_instance, daemon=True).start()
    if ARGS.tls_port:
        threading.Thread(target=serve, args=(Forge, ARGS.tls_port, (ARGS.cert, ARGS.key)), daemon=True).start()
    serve(Forge, ARGS.port)


if __name__ == "__main__":
    main()

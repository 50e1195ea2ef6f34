"""Lab stand-in for ccci-dashboard: the runs, each at /runs/<n>/, and a badge per recipe at
/badge/<recipe>.svg, read from Drone's API. It shows statuses and links, never logs."""
import argparse
import html

from ccci import Handler, call, secret, serve

ARGS = None
COLOURS = {"passing": "#4c1", "failing": "#e05d44", "running": "#dfb317", "unknown": "#9f9f9f"}


def drone(path):
    return call("GET", ARGS.drone + "/api" + path, "Bearer " + secret(ARGS.drone_token_secret))


def enrolled():
    with open(ARGS.recipes, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def page(title, body):
    return "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head><body><h1>%s</h1>%s</body></html>" % (html.escape(title), html.escape(title), body)


def badge_state(status):
    return {"success": "passing", "failure": "failing", "error": "failing", "killed": "failing", "pending": "running", "running": "running"}.get(status, "unknown")


class Dashboard(Handler):
    ROUTES = [
        ("GET", r"/", "index"),
        ("GET", r"/runs/(\d+)/?", "run"),
        ("GET", r"/badge/([A-Za-z0-9._-]+)\.svg", "badge"),
    ]

    def builds(self):
        status, builds = drone("/repos/%s/builds?per_page=100" % ARGS.drone_repo)
        return builds if status == 200 else []

    def index(self):
        rows = "".join(
            '<tr><td><a href="/runs/%d/">#%d</a></td><td>%s</td><td>%s</td></tr>' % (b["number"], b["number"], html.escape(b["params"].get("RECIPE", "")), html.escape(b["status"]))
            for b in self.builds()
        )
        badges = "".join('<li>%s <img src="/badge/%s.svg" alt="%s status"></li>' % (html.escape(r), html.escape(r), html.escape(r)) for r in enrolled())
        self.send(200, page("cc-ci runs", "<ul>%s</ul><table><tr><th>run</th><th>recipe</th><th>status</th></tr>%s</table>" % (badges, rows)), "text/html; charset=utf-8")

    def run(self, number):
        status, build = drone("/repos/%s/builds/%s" % (ARGS.drone_repo, number))
        if status != 200:
            return self.send(404, page("run %s not found" % number, ""), "text/html; charset=utf-8")
        recipe = build["params"].get("RECIPE", "")
        stages = "".join(
            "<tr><td>%s</td><td>%s</td><td>%s</td></tr>" % (html.escape(s["name"]), html.escape(s["status"]), s.get("exit_code", ""))
            for s in build.get("stages", [])
        )
        body = (
            "<p>recipe <b>%s</b>, PR #%s, status <b class=\"status\">%s</b></p><table><tr><th>stage</th><th>status</th><th>exit code</th></tr>%s</table>"
            '<p><a href="https://drone.%s/%s/%d">build #%d in Drone</a></p>'
        ) % (html.escape(recipe), html.escape(str(build["params"].get("PR", ""))), html.escape(build["status"]), stages, ARGS.domain, ARGS.drone_repo, build["number"], build["number"])
        self.send(200, page("run #%d: %s" % (build["number"], recipe), body), "text/html; charset=utf-8")

    def badge(self, recipe):
        if recipe not in enrolled():
            return self.send(404, page("no such recipe", ""), "text/html; charset=utf-8")
        latest = next((b for b in self.builds() if b["params"].get("RECIPE") == recipe), None)
        state = badge_state(latest["status"]) if latest else "unknown"
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="150" height="20" role="img" aria-label="%s: %s">'
            "<title>%s: %s</title>"
            '<rect width="80" height="20" fill="#555"/><rect x="80" width="70" height="20" fill="%s"/>'
            '<g fill="#fff" font-family="Verdana,sans-serif" font-size="11">'
            '<text x="5" y="14">%s</text><text x="85" y="14">%s</text></g></svg>'
        ) % (recipe, state, recipe, state, COLOURS[state], recipe[:12], state)
        self.send(200, svg, "image/svg+xml", {"Cache-Control": "no-cache"})


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--drone", required=True)
    parser.add_argument("--drone-token-secret", required=True)
    parser.add_argument("--drone-repo", required=True)
    parser.add_argument("--recipes", required=True)
    ARGS = parser.parse_args()
    serve(Dashboard, ARGS.port)


if __name__ == "__main__":
    main()

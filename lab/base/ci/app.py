"""What a recipe deploys in the lab: a small web app with a version, a page and records kept
on disk, so that install, upgrade and backup/restore have something real to act on.

A build starts it four times (install, upgrade, restore twice), so it speaks the little HTTP its
clients need (one request per connection) over socketserver: http.server's imports alone cost
more CPU than everything the app then does in a build."""
import html
import json
import os
import socketserver
import sys
import threading

LOCK = threading.Lock()
REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}


def options(argv):
    wanted, given = {"--port", "--root", "--title"}, {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if flag not in wanted:
            sys.exit("app.py: unknown option %s (expects --port, --root and --title)" % flag)
        given[flag] = value
    missing = sorted(wanted - set(given))
    if missing or len(argv) % 2:
        sys.exit("app.py: missing %s (expects --port N --root DIR --title TEXT)" % (", ".join(missing) or "a value"))
    return int(given["--port"]), given["--root"], given["--title"]


def main():
    port, root, title = options(sys.argv[1:])
    store = os.path.join(root, "data", "records.json")
    with open(os.path.join(root, "VERSION")) as handle:
        version = handle.read().strip()

    def load():
        try:
            with open(store) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return []

    def page():
        heading = html.escape("%s %s" % (title, version))
        return ('<!doctype html><html><head><title>%s</title></head><body><h1 id="name">%s</h1>'
                '<p id="version">%s</p><a id="records" href="/records">records</a><p id="rendered"></p>'
                # Only a browser that runs scripts shows this text: an HTML fetch sees an empty element.
                '<script>document.getElementById("rendered").textContent = "rendered by JavaScript";</script>'
                '</body></html>') % (heading, html.escape(title), version)

    def add(note):
        with LOCK:
            records = load()
            record = {"id": len(records) + 1, "note": note, "version": version}
            records.append(record)
            with open(store + ".tmp", "w") as handle:
                json.dump(records, handle)
            os.replace(store + ".tmp", store)
        return record

    def answer(method, path, body):
        if method == "GET" and path == "/VERSION":
            return 200, version + "\n", "text/plain"
        if method == "GET" and path == "/records":
            return 200, json.dumps(load()), "application/json"
        if method == "GET" and path == "/":
            return 200, page(), "text/html"
        if method == "POST" and path == "/records":
            try:
                note = json.loads(body or b"{}").get("note", "")
            except ValueError:
                return 400, "body is not JSON\n", "text/plain"
            return 201, json.dumps(add(note)), "application/json"
        return 404, "not found\n", "text/plain"

    class App(socketserver.StreamRequestHandler):
        def handle(self):
            request = self.rfile.readline(65537).decode("latin-1").split()
            if len(request) != 3:
                return
            length = 0
            while True:
                line = self.rfile.readline(65537)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            status, text, kind = answer(request[0], request[1], self.rfile.read(length) if length else b"")
            data = text.encode()
            head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, REASONS[status], kind, len(data))
            self.wfile.write(head.encode("latin-1") + data)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    Server(("127.0.0.1", port), App).serve_forever()


if __name__ == "__main__":
    main()

"""What a recipe deploys in the lab: a small web app with a version, a page and records kept
on disk, so that install, upgrade and backup/restore have something real to act on."""
import argparse
import html
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--title", required=True)
    args = parser.parse_args()
    store = os.path.join(args.root, "data", "records.json")
    with open(os.path.join(args.root, "VERSION")) as handle:
        version = handle.read().strip()

    def load():
        try:
            with open(store) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return []

    class App(BaseHTTPRequestHandler):
        def reply(self, status, body, kind):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/VERSION":
                return self.reply(200, version + "\n", "text/plain")
            if self.path == "/records":
                return self.reply(200, json.dumps(load()), "application/json")
            if self.path == "/":
                title = html.escape("%s %s" % (args.title, version))
                page = ('<!doctype html><html><head><title>%s</title></head><body><h1 id="name">%s</h1>'
                        '<p id="version">%s</p><a id="records" href="/records">records</a><p id="rendered"></p>'
                        # Only a browser that runs scripts shows this text: an HTML fetch sees an empty element.
                        '<script>document.getElementById("rendered").textContent = "rendered by JavaScript";</script>'
                        '</body></html>') % (title, html.escape(args.title), version)
                return self.reply(200, page, "text/html")
            self.reply(404, "not found\n", "text/plain")

        def do_POST(self):
            if self.path != "/records":
                return self.reply(404, "not found\n", "text/plain")
            note = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}").get("note", "")
            with LOCK:
                records = load()
                record = {"id": len(records) + 1, "note": note, "version": version}
                records.append(record)
                with open(store + ".tmp", "w") as handle:
                    json.dump(records, handle)
                os.replace(store + ".tmp", store)
            self.reply(201, json.dumps(record), "application/json")

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), App).serve_forever()


if __name__ == "__main__":
    main()

"""Shared plumbing of cc-ci's lab stand-ins: a small JSON-over-HTTP server and client.

Stand-ins speak the HTTP shapes of the real systems (Gitea, Drone, the bridge, the dashboard),
so that the acceptance specs cannot tell them apart. Python stdlib only: the image has no more.
"""
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRETS = os.environ.get("CCCI_SECRETS_DIR", "/run/secrets")


def secret(name):
    # Read on every use: a rotation lands in /run/secrets at the next rebuild, without a restart.
    with open(os.path.join(SECRETS, name), encoding="utf-8") as handle:
        return handle.read().strip()


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def now():
    return int(time.time())


def iso(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class JsonStore:
    """A JSON document on disk, written atomically; services restart on every rebuild."""

    def __init__(self, path, initial):
        self.path = path
        self.lock = threading.RLock()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, encoding="utf-8") as handle:
                self.data = json.load(handle)
        except FileNotFoundError:
            self.data = initial
            self.save()

    def save(self):
        with self.lock:
            # Named for this process: another process on the same file (a forge not yet stopped)
            # must not rename this one's half-written copy, nor this one its.
            tmp = "%s.%d.tmp" % (self.path, os.getpid())
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle)
            os.replace(tmp, self.path)


class Handler(BaseHTTPRequestHandler):
    """Routes by (method, regex) to methods; subclasses fill ROUTES."""

    ROUTES = []
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        # The caller's login, where a handler knows it, tells whose request it was: the bridge's
        # bot and the harness's users all connect from the same address.
        log("%s %s %s" % (self.address_string(), getattr(self, "login", None) or "-", fmt % args))

    def parse_request(self):
        # A kept-alive connection reuses this handler for each request: nothing of the last one stays.
        self._body, self.login = None, None
        return super().parse_request()

    def body(self):
        # Read once and kept: send() drains a body no handler read, or on a kept-alive
        # connection it would be taken for the start of the next request.
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def json_body(self):
        raw = self.body()
        return json.loads(raw) if raw else {}

    def send(self, status, payload=b"", content_type="application/json", headers=None):
        if not isinstance(payload, bytes):
            payload = (json.dumps(payload) if content_type == "application/json" else payload).encode()
        self.body()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def dispatch(self, method):
        path, _, query = self.path.partition("?")
        self.query = dict(urllib.parse.parse_qsl(query))
        for verb, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                try:
                    return getattr(self, name)(*match.groups())
                except Exception as error:  # a stand-in must answer, not hang
                    return self.fault(method, error)
        return self.send(404, {"message": "not found"})

    def fault(self, method, error):
        """The stand-in's own fault, answered 500 and named: a lab ERROR must say what broke, not only that something did."""
        log("error in %s %s: %r" % (method, self.path.partition("?")[0], error))
        return self.send(500, {"message": "internal error of the lab's stand-in: %s: %s" % (type(error).__name__, error)})

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")


def serve(handler, port, tls=None):
    """Serves on 127.0.0.1:port until the process ends; with tls=(cert, key), HTTPS."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    if tls:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    log("listening on %s://127.0.0.1:%d" % ("https" if tls else "http", port))
    server.serve_forever()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect is an answer of its own: Gitea redirects a membership check it will not answer.
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def request(method, url, auth=None, payload=None, timeout=10):
    """JSON API call, redirects not followed; returns (status, headers, decoded body or None)."""
    data = json.dumps(payload).encode() if payload is not None else None
    outgoing = urllib.request.Request(url, data=data, method=method)
    if auth:
        outgoing.add_header("Authorization", auth)
    if data is not None:
        outgoing.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(outgoing, timeout=timeout) as response:
            raw = response.read()
            return response.status, response.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, error.headers, json.loads(raw) if raw else None
        except ValueError:
            return error.code, error.headers, None


def call(method, url, auth=None, payload=None, timeout=10):
    """JSON API call; returns (status, decoded body or None)."""
    status, _, body = request(method, url, auth, payload, timeout)
    return status, body


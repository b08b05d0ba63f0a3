"""A local HTTP server on 127.0.0.1 that serves scripts: plain, redirecting, slow, cut off
half-way, stalled, behind basic auth, and whose content can change between requests."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Route:
    body: bytes = b""
    redirect: str | None = None  # a path on this server or a full URL
    status: int = 200
    # Send this many bytes of the body, then close (Content-Length says the full size).
    cut_after: int | None = None
    # Send half, then wait for this event (the client times out meanwhile), then the rest.
    stall: threading.Event | None = None
    # Seconds between chunks of 16 bytes: slow, but within any sensible timeout.
    drip: float = 0.0
    auth: tuple[str, str] | None = None
    etag: bool = True


@dataclass
class ScriptServer:
    """Routes by path; every request is logged as (path, headers)."""

    routes: dict[str, Route] = field(default_factory=dict)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str, host: str = "127.0.0.1", userinfo: str = "") -> str:
        return f"{self.scheme}://{userinfo}{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.log if p == path)


def _handler(server: ScriptServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # stdlib's name
            pass

        def do_GET(self) -> None:  # stdlib's name
            path = self.path
            server.log.append((path, dict(self.headers.items())))
            route = server.routes.get(path)
            if route is None:
                self._plain(404, b"not found")
                return
            if route.auth is not None:
                user, password = route.auth
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {token}":
                    self._plain(401, b"who are you?")
                    return
            if route.redirect is not None:
                self.send_response(302)
                location = route.redirect
                if location.startswith("/"):
                    location = server.url(location)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.status != 200:
                self._plain(route.status, b"error")
                return
            body = route.body
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if route.etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/x-python")
            self.send_header("Content-Length", str(len(body)))
            if route.etag:
                self.send_header("ETag", etag)
            self.end_headers()
            if route.cut_after is not None:
                self.wfile.write(body[: route.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            if route.stall is not None:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                route.stall.wait(60)
                with contextlib.suppress(OSError):  # the client gave up, as it should
                    self.wfile.write(body[len(body) // 2 :])
                self.close_connection = True
                return
            if route.drip:
                for start in range(0, len(body), 16):
                    self.wfile.write(body[start : start + 16])
                    self.wfile.flush()
                    threading.Event().wait(route.drip)  # the slowness being tested
                return
            self.wfile.write(body)

        def _plain(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve_scripts(
    routes: dict[str, Route] | None = None, *, tls: tuple[Path, Path] | None = None
) -> Iterator[ScriptServer]:
    """Serve `routes`; with `tls` (certificate, key) over https."""
    state = ScriptServer(routes=dict(routes or {}))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        state.scheme = "https"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        for route in state.routes.values():
            if route.stall is not None:
                route.stall.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def make_certificate(directory: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 (openssl's command line); None without it."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key

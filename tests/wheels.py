"""Tiny wheels and a local PEP 503 index on 127.0.0.1, for tests that never touch the network."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.utils import canonicalize_name

_JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_wheel(
    directory: Path,
    name: str,
    version: str = "1.0",
    *,
    modules: dict[str, str] | None = None,
    requires: list[str] | None = None,
    console_scripts: dict[str, str] | None = None,
    requires_python: str | None = None,
    extras: dict[str, list[str]] | None = None,
    other_files: dict[str, str] | None = None,
) -> Path:
    """Write a pure-Python wheel `name-version-py3-none-any.whl` and return its path.

    `modules` maps a module name to its source; by default one module `<name>` with
    `VERSION = "<version>"`. `other_files` maps paths in site-packages (a `.pth` file) to
    their text.
    """
    directory.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    module_name = dist.lower()
    modules = modules if modules is not None else {module_name: f'VERSION = "{version}"\n'}
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    for req in requires or []:
        meta.append(f"Requires-Dist: {req}")
    for extra, reqs in (extras or {}).items():
        meta.append(f"Provides-Extra: {extra}")
        for req in reqs:
            meta.append(f'Requires-Dist: {req} ; extra == "{extra}"')
    files: dict[str, bytes] = {
        f"{mod.replace('.', '/')}.py": src.encode() for mod, src in modules.items()
    }
    files.update({path: text.encode() for path, text in (other_files or {}).items()})
    files[f"{info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: runner-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if console_scripts:
        lines = ["[console_scripts]"] + [f"{k} = {v}" for k, v in console_scripts.items()]
        files[f"{info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, data in files.items():
            zf.writestr(arcname, data)
    return path


class _IndexHandler(http.server.SimpleHTTPRequestHandler):
    delay = 0.0
    upload_times: dict[str, str] | None = None
    wheel_dir: Path
    requests: list[str]
    hits: list[float]

    def log_message(self, format: str, *args: object) -> None:  # stdlib's name
        pass

    def do_GET(self) -> None:  # stdlib's name
        self.requests.append(self.path)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts[:1] == ["simple"] and len(parts) == 2:
            project = canonicalize_name(parts[1])
            links = []
            for wheel in sorted(self.wheel_dir.glob("*.whl")):
                if canonicalize_name(wheel.name.split("-")[0]) == project:
                    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
                    links.append(f'<a href="/files/{wheel.name}#sha256={sha}">{wheel.name}</a>')
            if not links:
                self.send_error(404)
                return
            if self.upload_times is not None and _JSON_TYPE in self.headers.get("Accept", ""):
                self._send(self._json_page(project), _JSON_TYPE)
                return
            body = ("<html><body>" + "\n".join(links) + "</body></html>").encode()
            self._send(body, "text/html")
        elif parts[:1] == ["files"] and len(parts) == 2:
            path = self.wheel_dir / parts[1]
            if not path.is_file():
                self.send_error(404)
                return
            if self.delay:
                self.hits.append(time.monotonic())
                time.sleep(self.delay)
            self._send(path.read_bytes(), "application/octet-stream")
        else:
            self.send_error(404)

    def _json_page(self, project: str) -> bytes:
        """PEP 691 JSON page with PEP 700 upload times (what --uploaded-prior-to reads)."""
        files = []
        for wheel in sorted(self.wheel_dir.glob("*.whl")):
            if canonicalize_name(wheel.name.split("-")[0]) == project:
                entry = {
                    "filename": wheel.name,
                    "url": f"/files/{wheel.name}",
                    "hashes": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()},
                }
                assert self.upload_times is not None
                if wheel.name in self.upload_times:
                    entry["upload-time"] = self.upload_times[wheel.name]
                files.append(entry)
        page = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
        return json.dumps(page).encode()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve_index(
    wheel_dir: Path,
    *,
    delay: float = 0.0,
    requests: list[str] | None = None,
    upload_times: dict[str, str] | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Serve `wheel_dir` as a simple index on 127.0.0.1; yields (index URL, request log).

    With `upload_times` ({wheel file name: RFC 3339 time}), clients asking for the JSON
    simple API get it, with those upload times; HTML pages are unchanged.

    Pass your own `requests` list (e.g. one whose append sets an event) to observe requests.
    """
    requests = requests if requests is not None else []
    handler = type(
        "Handler",
        (_IndexHandler,),
        {
            "delay": delay,
            "wheel_dir": wheel_dir,
            "requests": requests,
            "hits": [],
            "upload_times": upload_times,
        },
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", requests
    finally:
        server.shutdown()
        server.server_close()

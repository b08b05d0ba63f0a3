"""Scripts run from URLs: storage by content, freshness, --sha256, --offline, redirects,
failures half-way, credentials; against a local HTTP server (tests/scriptserver.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from runner import remote
from runner.errors import UsageError
from tests.conftest import RUNNER, run_runner
from tests.scriptserver import Route, make_certificate, serve_scripts

pytestmark = pytest.mark.timeout(180)

TOOL = b"""# /// script
# dependencies = []
# ///
import sys
print("tool v1", __file__, sys.argv[1:])
"""
TOOL2 = TOOL.replace(b"tool v1", b"tool v2")
SECRET = "s3cret-pa55"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def stored_files(cache: Path) -> list[str]:
    d = cache / "urls"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def all_cache_bytes(cache: Path) -> bytes:
    return b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file() and not p.is_symlink())


def test_a_url_runs_from_a_stored_copy_and_is_not_fetched_again_while_fresh(
    cache_dir: Path,
) -> None:
    with serve_scripts({"/tool.py": Route(TOOL)}) as srv:
        url = srv.url("/tool.py")
        r = run_runner("run", "--allow-insecure-http", url, "a", "--b")
        assert r.returncode == 0, r.stderr
        copy = cache_dir / "urls" / f"{sha(TOOL)}.py"
        assert r.stdout == f"tool v1 {copy} ['a', '--b']\n"  # __file__ is the stored copy
        assert copy.read_bytes() == TOOL
        again = run_runner("run", "--allow-insecure-http", url)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("tool v1 ")
        assert srv.hits("/tool.py") == 1  # within RUNNER_URL_TTL: no network


def test_plain_http_is_refused_without_the_flag(cache_dir: Path) -> None:
    with serve_scripts({"/tool.py": Route(TOOL)}) as srv:
        r = run_runner("run", srv.url("/tool.py"))
        assert r.returncode == 2
        assert "http://" in r.stderr and "--allow-insecure-http" in r.stderr
        assert srv.log == []  # refused before any request
        assert r.stdout == ""


def test_changed_content_after_the_window_and_sha256_pins(cache_dir: Path) -> None:
    route = Route(TOOL)
    with serve_scripts({"/tool.py": route}) as srv:
        url = srv.url("/tool.py")
        pinned = run_runner("run", "--allow-insecure-http", "--sha256", sha(TOOL), url)
        assert pinned.returncode == 0 and pinned.stdout.startswith("tool v1"), pinned.stderr
        route.body = TOOL2  # the server now serves something else
        stale_ok = run_runner("run", "--allow-insecure-http", url)
        assert stale_ok.stdout.startswith("tool v1")  # still fresh: the stored copy
        env = {"RUNNER_URL_TTL": "0"}
        # The pin refuses the new content: its own exit code, nothing runs, nothing stored.
        refused = run_runner("run", "--allow-insecure-http", "--sha256", sha(TOOL), url, env=env)
        assert refused.returncode == 108, refused.stderr
        assert refused.stdout == ""
        assert sha(TOOL) in refused.stderr and sha(TOOL2) in refused.stderr
        assert f"{sha(TOOL2)}.py" not in stored_files(cache_dir)
        # Without a pin the new version runs once the window has passed.
        fresh = run_runner("run", "--allow-insecure-http", url, env=env)
        assert fresh.returncode == 0, fresh.stderr
        assert fresh.stdout.startswith("tool v2")
        # The new pin matches.
        new_pin = run_runner("run", "--allow-insecure-http", "--sha256", sha(TOOL2).upper(), url)
        assert new_pin.returncode == 0 and new_pin.stdout.startswith("tool v2")


def test_after_the_window_an_unchanged_script_is_revalidated_not_downloaded(
    cache_dir: Path,
) -> None:
    with serve_scripts({"/tool.py": Route(TOOL)}) as srv:
        url = srv.url("/tool.py")
        env = {"RUNNER_URL_TTL": "0"}
        assert run_runner("run", "--allow-insecure-http", url, env=env).returncode == 0
        r = run_runner("run", "--allow-insecure-http", url, env=env)
        assert r.returncode == 0 and r.stdout.startswith("tool v1"), r.stderr
        assert srv.hits("/tool.py") == 2
        assert "If-None-Match" in srv.log[-1][1]  # answered 304: the stored copy is current


def test_offline_uses_the_stored_copy_or_says_there_is_none(cache_dir: Path) -> None:
    with serve_scripts({"/tool.py": Route(TOOL), "/never.py": Route(TOOL)}) as srv:
        url = srv.url("/tool.py")
        missing = run_runner("run", "--offline", "--allow-insecure-http", srv.url("/never.py"))
        assert missing.returncode == 105
        assert "--offline" in missing.stderr and "not been downloaded" in missing.stderr
        assert run_runner("run", "--allow-insecure-http", url).returncode == 0
        env = {"RUNNER_URL_TTL": "0"}  # long past the window: offline still runs the copy
        r = run_runner("run", "--offline", "--allow-insecure-http", url, env=env)
        assert r.returncode == 0 and r.stdout.startswith("tool v1"), r.stderr
        bad_pin = run_runner(
            "run", "--offline", "--allow-insecure-http", "--sha256", "a" * 64, url, env=env
        )
        assert bad_pin.returncode == 108 and "stored copy" in bad_pin.stderr
        assert srv.hits("/tool.py") == 1 and srv.hits("/never.py") == 0


def test_redirects_are_followed_a_handful_of_times_at_most(cache_dir: Path) -> None:
    routes = {"/final.py": Route(TOOL)}
    for i in range(1, 8):  # /r1 -> /r2 -> ... -> /r7 -> /final.py
        routes[f"/r{i}"] = Route(redirect=f"/r{i + 1}" if i < 7 else "/final.py")
    routes["/loop"] = Route(redirect="/loop")
    with serve_scripts(routes) as srv:
        ok = run_runner("run", "--allow-insecure-http", srv.url("/r4"))  # 4 redirects
        assert ok.returncode == 0 and ok.stdout.startswith("tool v1"), ok.stderr
        too_many = run_runner("run", "--allow-insecure-http", srv.url("/r1"))  # 7 redirects
        assert too_many.returncode == 105 and "redirects more than" in too_many.stderr
        loop = run_runner("run", "--allow-insecure-http", srv.url("/loop"))
        assert loop.returncode == 105
        assert srv.hits("/loop") <= remote.MAX_REDIRECTS + 1


def test_a_redirect_from_https_to_http_is_refused() -> None:
    handler = remote._redirect_handler(False, urllib.request.Request("https://a.example/t.py"))
    request = urllib.request.Request("https://a.example/t.py")
    with pytest.raises(UsageError, match="plain http://"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://b.example/t.py")  # type: ignore[arg-type]


def test_a_download_cut_off_half_way_leaves_nothing_behind(cache_dir: Path) -> None:
    with serve_scripts({"/cut.py": Route(TOOL, cut_after=len(TOOL) // 2)}) as srv:
        r = run_runner("run", "--allow-insecure-http", srv.url("/cut.py"))
        assert r.returncode == 105, r.stderr
        assert f"stopped after {len(TOOL) // 2} bytes" in r.stderr
        assert "nothing was stored" in r.stderr
        assert r.stdout == ""
        assert stored_files(cache_dir) == []  # no copy, no record, no temporary file


def test_a_stalled_download_times_out_and_a_slow_one_completes(cache_dir: Path) -> None:
    stall = threading.Event()
    routes = {"/stall.py": Route(TOOL, stall=stall), "/slow.py": Route(TOOL, drip=0.02)}
    with serve_scripts(routes) as srv:
        r = run_runner(
            "run", "--allow-insecure-http", srv.url("/stall.py"), env={"RUNNER_URL_TIMEOUT": "1"}
        )
        stall.set()
        assert r.returncode == 105, r.stderr
        assert "stopped after" in r.stderr
        assert stored_files(cache_dir) == []
        slow = run_runner("run", "--allow-insecure-http", srv.url("/slow.py"))
        assert slow.returncode == 0 and slow.stdout.startswith("tool v1"), slow.stderr


def test_credentials_in_the_url_are_used_but_never_shown_or_stored(cache_dir: Path) -> None:
    routes = {
        "/private/tool.py": Route(TOOL, auth=("me", SECRET)),
        "/private/gone.py": Route(status=404, auth=("me", SECRET)),
    }
    with serve_scripts(routes) as srv:
        routes["/private/elsewhere.py"] = Route(redirect=srv.url("/open.py", host="localhost"))
        srv.routes.update(routes)
        srv.routes["/open.py"] = Route(TOOL2)
        url = srv.url("/private/tool.py", userinfo=f"me:{SECRET}@")
        r = run_runner("run", "-v", "--allow-insecure-http", url)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("tool v1")
        gone = run_runner(
            "run", "--allow-insecure-http", srv.url("/private/gone.py", userinfo=f"me:{SECRET}@")
        )
        assert gone.returncode == 101 and "HTTP 404" in gone.stderr
        elsewhere = run_runner(
            "run",
            "--allow-insecure-http",
            srv.url("/private/elsewhere.py", userinfo=f"me:{SECRET}@"),
        )
        assert elsewhere.returncode == 0, elsewhere.stderr
        for out in (r, gone, elsewhere):
            assert SECRET not in out.stdout + out.stderr
        assert SECRET.encode() not in all_cache_bytes(cache_dir)
        assert b"me:" not in all_cache_bytes(cache_dir / "urls")
        # The credentials went to the server that asked, not to the host it redirected to.
        open_headers = [h for p, h in srv.log if p == "/open.py"]
        assert open_headers and all("Authorization" not in h for h in open_headers)


def test_a_relative_find_links_in_a_remote_script_is_refused(cache_dir: Path) -> None:
    body = TOOL.replace(b"# ///\n", b'# [tool.runner]\n# find-links = ["wheels"]\n# ///\n', 1)
    with serve_scripts({"/rel.py": Route(body)}) as srv:
        r = run_runner("run", "--allow-insecure-http", srv.url("/rel.py"))
        assert r.returncode == 102, r.stderr
        assert "find-links 'wheels' is a relative path" in r.stderr
        assert srv.url("/rel.py") in r.stderr
        assert r.stdout == ""


def test_a_malformed_sha256_is_a_usage_error(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_bytes(TOOL)
    r = run_runner("run", "--sha256", "xyz", str(script))
    assert r.returncode == 2 and "not a sha256 digest" in r.stderr


def test_sha256_pins_a_local_file_too(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_bytes(TOOL)
    assert run_runner("run", str(script)).returncode == 0  # warm from now on
    r = run_runner("run", "--sha256", "0" * 64, str(script))
    assert r.returncode == 108 and r.stdout == ""
    r = run_runner("run", "--sha256", sha(TOOL), str(script), "x")
    assert r.returncode == 0 and r.stdout == f"tool v1 {script} ['x']\n", r.stderr
    assert r.stderr == ""  # a matching pin keeps the warm path


def test_url_names_and_public_urls() -> None:
    assert remote.url_name("https://h/a/tool.py?raw=1") == "tool.py"
    assert remote.url_name("https://h/a/my%20tool.py") == "mytool.py"
    assert remote.url_name("https://h/") == ""
    assert remote.public_url("https://u:p@h:8443/x.py") == "https://h:8443/x.py"
    assert remote.is_url("HTTPS://h/x.py") and not remote.is_url("./https.py")


def test_prune_removes_unused_downloads_but_not_installed_commands(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_BIN_DIR", str(tmp_path / "bin"))
    with serve_scripts({"/tool.py": Route(TOOL)}) as srv:
        url = srv.url("/tool.py")
        assert run_runner("run", "--allow-insecure-http", url).returncode == 0
        assert run_runner("install", "--allow-insecure-http", url).returncode == 0
    assert len(stored_files(cache_dir)) == 2  # the copy and the URL's record
    r = run_runner("cache", "prune", "--older-than", "0s")
    assert r.returncode == 0, r.stderr
    assert stored_files(cache_dir) == []
    assert (cache_dir / "installed" / "tool" / "tool.py").read_bytes() == TOOL
    out = subprocess.run(
        [str(tmp_path / "bin" / "tool"), "z"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.startswith("tool v1"), out.stderr


def test_https_verifies_the_certificate_with_the_usual_variables(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    tls = make_certificate(tmp_path)
    if tls is None:
        pytest.skip("needs the openssl command to make a certificate")
    with serve_scripts(
        {"/tool.py": Route(TOOL), "/down": Route(redirect="http://127.0.0.1:9/x")}, tls=tls
    ) as srv:
        url = srv.url("/tool.py")
        unknown = run_runner("run", url)
        assert unknown.returncode == 105 and "SSL_CERT_FILE" in unknown.stderr
        assert stored_files(cache_dir) == []
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            r = run_runner("run", url, env={name: str(tls[0]), "RUNNER_URL_TTL": "0"})
            assert r.returncode == 0 and r.stdout.startswith("tool v1"), (name, r.stderr)
        down = run_runner("run", srv.url("/down"), env={"SSL_CERT_FILE": str(tls[0])})
        assert down.returncode == 2 and "plain http://" in down.stderr


def test_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_scripts() as proxy:
        proxy.routes["http://tools.invalid/tool.py"] = Route(TOOL)
        env = {"http_proxy": proxy.url(""), "no_proxy": "", "NO_PROXY": ""}
        r = run_runner("run", "--allow-insecure-http", "http://tools.invalid/tool.py", env=env)
        assert r.returncode == 0 and r.stdout.startswith("tool v1"), r.stderr
        assert proxy.hits("http://tools.invalid/tool.py") == 1


def test_a_fresh_download_starts_on_the_warm_path(cache_dir: Path) -> None:
    """Within RUNNER_URL_TTL a URL needs neither the network nor the full CLI."""
    with serve_scripts({"/tool.py": Route(TOOL)}) as srv:
        url = srv.url("/tool.py")
        assert run_runner("run", "--allow-insecure-http", url).returncode == 0
        got = subprocess.run(
            [sys.executable, "-X", "importtime", RUNNER, "run", "--allow-insecure-http", url, "w"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert got.returncode == 0, got.stderr
        assert got.stdout == f"tool v1 {cache_dir / 'urls' / (sha(TOOL) + '.py')} ['w']\n"
        imported = {
            line.rsplit("|", 1)[1].strip()
            for line in got.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
        }
        assert "runner.urlstore" in imported
        assert not {"runner.api", "runner.remote", "urllib.request", "typing"} & imported
        assert srv.hits("/tool.py") == 1
        # Damage to the stored copy sends the run to the full path, which downloads again.
        (cache_dir / "urls" / f"{sha(TOOL)}.py").write_bytes(b"print('tampered')\n")
        again = run_runner("run", "--allow-insecure-http", url)
        assert again.returncode == 0 and again.stdout.startswith("tool v1"), again.stderr

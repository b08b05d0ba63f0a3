"""Installers: pip and uv behind one interface, chosen by --installer; failures explained."""

# ruff: noqa: RUF001  # the multiplication sign is what pip and uv print

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from runner import installers, proc
from runner.errors import InstallError, NetworkError
from runner.installers import (
    Diagnosis,
    InstallFailed,
    InstallRequest,
    PipInstaller,
    Problem,
    UvInstaller,
    find_uv,
    get_installer,
    important_lines,
)
from runner.records import record_problems
from runner.spec import IndexSettings
from tests.conftest import INSTALLERS, RUNNER, published, run_runner, store_dirs, write_script
from tests.wheels import make_wheel, serve_index

UV = find_uv()
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed")


def local(wheelhouse: Path) -> list[str]:
    # Index settings given as flags reach both installers (uv has no UV_NO_INDEX variable,
    # so the offline_wheels fixture alone would send uv to the dead index).
    return ["--no-index", "--find-links", str(wheelhouse)]


def manifest(env_dir: Path) -> dict[str, object]:
    return json.loads((env_dir / "runner-env.json").read_text())


def the_env(cache: Path) -> Path:
    (pointer,) = published(cache)
    return pointer.resolve()


# ---------------------------------------------------------------------------- choosing


def test_default_is_auto_and_pip_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_installer("PIP"), PipInstaller)
    monkeypatch.setattr(installers, "_find_uv", lambda: ("/opt/uv", "PATH"))
    chosen = get_installer(None)
    assert isinstance(chosen, UvInstaller) and chosen.uv == "/opt/uv"
    assert chosen.why == "found at /opt/uv via PATH; default when uv is available"
    monkeypatch.setattr(installers, "_find_uv", lambda: (None, "PATH"))
    fallback = get_installer(None)
    assert isinstance(fallback, PipInstaller) and "uv is not available" in fallback.why


@needs_uv
def test_uv_and_auto_use_uv_when_it_is_available() -> None:
    for name in ("uv", "auto"):
        chosen = get_installer(name)
        assert isinstance(chosen, UvInstaller)
        assert os.access(chosen.uv, os.X_OK)


def test_auto_falls_back_to_pip_and_explicit_uv_fails_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(installers, "_find_uv", lambda: (None, "PATH"))
    assert isinstance(get_installer("auto"), PipInstaller)
    with pytest.raises(InstallError) as info:
        get_installer("uv")
    assert "runner[uv]" in (info.value.hint or "")
    assert info.value.exit_code == 104


def test_unknown_installer_is_an_error() -> None:
    with pytest.raises(InstallError, match="unknown installer 'conda'"):
        get_installer("conda")


def test_find_uv_falls_back_to_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "uv", None)  # the optional extra is not installed
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert find_uv() == str(fake)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_uv() is None


def test_both_installers_get_the_same_options_and_no_urls_on_the_command_line(
    tmp_path: Path,
) -> None:
    request = InstallRequest(
        python="/env/bin/python",
        requirements=("alpha>=1",),
        index=IndexSettings(
            index_url="http://u:pw@i/simple", extra_index_urls=("http://x/simple",)
        ),
        offline=True,
        exclude_newer="2025-01-01T00:00:00Z",
        refresh=True,
    )
    reqs = tmp_path / "r.txt"
    pip = PipInstaller().command(request, reqs)
    uv = UvInstaller("/bin/uv").command(request, reqs)
    assert uv[:5] == ["/bin/uv", "pip", "install", "--python", "/env/bin/python"]
    # runner compiles bytecode itself afterwards, on every core (tests/test_bytecode.py).
    assert "--compile-bytecode" not in uv
    assert "--no-compile" in pip and "--compile" not in pip
    for cmd in (pip, uv):
        assert "2025-01-01T00:00:00Z" in cmd and "--upgrade" in cmd
        assert cmd[-2:] == ["-r", str(reqs)]  # requirements and index options: in the file
        assert not any("://" in arg or "alpha" in arg for arg in cmd)
        assert "--no-config" not in cmd  # each installer keeps its own configuration
    assert "--offline" in uv and "--exclude-newer" in uv
    # uv rejects --refresh together with offline mode: offline it only upgrades.
    assert "--refresh" not in uv
    # Into a POSIX venv from outside: uv knows the base interpreter from its cache.
    into = InstallRequest(
        python="/env/bin/python",
        requirements=("a",),
        base_python="/py/3.11",
        prefix=Path("/env"),
    )
    outside = UvInstaller("/bin/uv").command(into, reqs)
    assert outside[3:7] == ["--prefix", "/env", "--python", "/py/3.11"]
    assert "--prefix" not in PipInstaller().command(into, reqs)
    online = UvInstaller("/bin/uv").command(
        InstallRequest(python="p", requirements=("a",), refresh=True), reqs
    )
    assert "--refresh" in online and "--upgrade" in online
    pinned_request = InstallRequest(
        python="p", requirements=("alpha",), pinned_file=tmp_path / "req.txt"
    )
    pinned = UvInstaller("/bin/uv").command(pinned_request, reqs)
    assert pinned[-4:] == ["--no-deps", "--require-hashes", "-r", str(tmp_path / "req.txt")]
    assert installers.requirement_lines(pinned_request, installers.Handoff()) == []


# ---------------------------------------------------------------------------- failure text

PIP_NOT_FOUND = """\
Looking in links: /w
ERROR: Could not find a version that satisfies the requirement nosuch (from versions: none)
ERROR: No matching distribution found for nosuch
"""
UV_NOT_FOUND = """\
Using Python 3.11.7 environment at: /env
  × No solution found when resolving dependencies:
  ╰─▶ Because nosuch was not found in the package registry and you require nosuch, we can
      conclude that your requirements are unsatisfiable.
"""
UV_NEW_NOT_FOUND = """\
error: No solution found when resolving dependencies
  cause: Because only alpha==1.0 is available and you require alpha>=2, we can conclude \
that your requirements are unsatisfiable.
"""
UV_NETWORK = """\
error: Request failed after 3 retries in 6.7s
  cause: Failed to fetch: http://127.0.0.1:9/simple/nosuch/
  cause: error sending request for url (http://127.0.0.1:9/simple/nosuch/)
  cause: tcp connect error
  cause: Connection refused (os error 111)
"""
PIP_BUILD_FAILURE = (
    "Collecting cext\n  Building wheel for cext (pyproject.toml): started\n"
    "  error: subprocess-exited-with-error\n  \n"
    "  × Building wheel for cext (pyproject.toml) did not run successfully.\n"
    "  │ exit code: 1\n  ╰─> [60 lines of output]\n"
    + "".join(f"      compiling step {i}\n" for i in range(57))
    + "      cext.c:3:1: error: expected ';' before '}' token\n"
    + "      error: command '/usr/bin/gcc' failed with exit code 1\n"
    + "      [end of output]\n  \n"
    "  note: This error originates from a subprocess, and is likely not a problem with pip.\n"
    "  ERROR: Failed building wheel for cext\n"
    "ERROR: Failed to build installable wheels for some pyproject.toml based projects (cext)\n"
)


def outcome(text: str, code: int = 1) -> proc.Outcome:
    return proc.Outcome(cmd=("x",), returncode=code, output=text)


@pytest.mark.parametrize(
    ("text", "package"),
    [(PIP_NOT_FOUND, "nosuch"), (UV_NOT_FOUND, "nosuch"), (UV_NEW_NOT_FOUND, "alpha>=2")],
)
def test_a_missing_package_is_named(text: str, package: str, tmp_path: Path) -> None:
    err = installers.failure(outcome(text), "x", tmp_path / "x.log")
    assert type(err) is InstallFailed and err.exit_code == 104
    assert err.diagnosis == Diagnosis(Problem.NOT_FOUND, (package,))
    assert f"no release of {package} can be installed" in err.message
    assert str(tmp_path / "x.log") in (err.hint or "")
    assert "Using Python" not in (err.details or "") and "Looking in" not in (err.details or "")


def test_uv_network_failure_is_a_network_error(tmp_path: Path) -> None:
    err = installers.failure(outcome(UV_NETWORK, 2), "uv", tmp_path / "x.log")
    assert isinstance(err, NetworkError) and err.exit_code == 105
    assert err.diagnosis.problem is Problem.NETWORK
    assert "Connection refused" in (err.details or "")


def test_a_build_failure_shows_the_compiler_error_not_the_wall(tmp_path: Path) -> None:
    err = installers.failure(outcome(PIP_BUILD_FAILURE), "pip", tmp_path / "x.log")
    details = (err.details or "").splitlines()
    assert any("expected ';' before '}'" in line for line in details)
    assert any("Failed building wheel for cext" in line for line in details)
    assert not any("compiling step 10" in line for line in details)
    assert len(details) <= 25


def test_important_lines_strip_colour_and_credentials() -> None:
    lines = important_lines(
        "\x1b[31merror\x1b[0m: Failed to fetch https://user:secret@host/simple/x\n"
    )
    assert lines and "secret" not in lines[0] and "\x1b" not in lines[0]


# ---------------------------------------------------------------------------- end to end

SCRIPT_BODY = "import alpha, beta\nprint('ok', alpha.VERSION)\n"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_bytecode_is_compiled_at_build_time_despite_dontwritebytecode(
    installer: str, tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", SCRIPT_BODY, ["beta"])
    result = run_runner(
        "run",
        "--installer",
        installer,
        *local(offline_wheels),
        str(script),
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok 1.0\n"
    env_dir = the_env(cache_dir)
    assert manifest(env_dir)["installer"] == installer
    (site,) = env_dir.glob("lib/python*/site-packages")
    compiled = {p.name.split(".")[0] for p in (site / "__pycache__").glob("*.pyc")}
    assert {"alpha", "beta"} <= compiled


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX scripts")
@pytest.mark.parametrize("installer", INSTALLERS)
def test_console_scripts_run_the_environments_interpreter_wherever_the_cache_is(
    installer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline_wheels: Path
) -> None:
    # A space and a path too long for a shebang line: the script header is sh's form.
    cache = tmp_path / ("a cache " + "x" * 120)
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(cache))
    body = (
        "import subprocess\n"
        "print(subprocess.run(['gamma-cli'], capture_output=True, text=True).stdout.strip())\n"
    )
    script = write_script(tmp_path / "s.py", body, ["gamma"])
    result = run_runner("run", "-v", "--installer", installer, *local(offline_wheels), str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gamma-cli ok\n"  # gamma imports: the environment's interpreter
    env_dir = the_env(cache)
    header = (env_dir / "bin" / "gamma-cli").read_bytes().split(b"\n")[:3]
    assert header[0] == b"#!/bin/sh" and str(env_dir / "bin" / "python").encode() in header[1]
    if installer == "uv":  # installed from outside with --prefix, then pointed at the env
        assert "--prefix" in next((cache / "logs").glob("*.log")).read_text()
        assert "pointed 1 script at the environment's interpreter" in result.stderr
    for site in env_dir.glob("lib/python*/site-packages"):
        for dist_info in site.glob("*.dist-info"):
            assert record_problems(site, dist_info, hashes=True) == []


def _installed_in_base() -> str | None:
    """A distribution installed in the site-packages of the interpreter the tests' runner
    builds for (pip, where ensurepip ran); None if it has none."""
    import sysconfig

    base = {"base": sys.base_prefix, "platbase": sys.base_prefix}
    purelib = Path(sysconfig.get_paths(vars=base)["purelib"])
    names = sorted(p.name.split("-")[0] for p in purelib.glob("*.dist-info"))
    return "pip" if "pip" in names else (names[0] if names else None)


@pytest.mark.parametrize("installer", INSTALLERS)
def test_what_the_base_interpreter_has_installed_is_installed_into_the_environment(
    installer: str, tmp_path: Path, cache_dir: Path
) -> None:
    name = _installed_in_base()
    if name is None:
        pytest.skip("the base interpreter has no distributions installed")
    house = tmp_path / "house"
    make_wheel(house, name, "0.0.1", modules={"only_in_the_wheel": "OK = 1\n"})
    body = f"import importlib.metadata as m, only_in_the_wheel\nprint(m.version({name!r}))\n"
    script = write_script(tmp_path / "s.py", body, [name])
    result = run_runner("run", "--installer", installer, *local(house), str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0.0.1\n"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_missing_package_exits_104_naming_it_and_the_log(
    installer: str, tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "", ["alpha", "no-such-thing"])
    result = run_runner("run", "--installer", installer, *local(offline_wheels), str(script))
    assert result.returncode == 104, result.stderr
    assert "no release of no-such-thing can be installed" in result.stderr
    logs = list((cache_dir / "logs").glob("*.log"))
    assert len(logs) == 1
    assert str(logs[0]) in result.stderr
    log = logs[0].read_text()
    first, rest = log.split("\n", 1)
    assert first.startswith("$ ") and installer in first
    # The log holds everything the installer said; the message only the lines that matter.
    # (uv: "Using CPython 3.11.7 interpreter at: ..." with --prefix, else "Using Python ...")
    marker = "Looking in links" if installer == "pip" else "Using "
    assert marker in rest and marker not in result.stderr
    assert "no-such-thing" in rest
    assert store_dirs(cache_dir) == [] and published(cache_dir) == []


@pytest.mark.parametrize(("first", "second"), [("pip", "uv"), ("uv", "pip")])
def test_switching_installer_reuses_the_environment(
    first: str, second: str, tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    if UV is None:
        pytest.skip("uv is not installed")
    script = write_script(tmp_path / "s.py", SCRIPT_BODY, ["beta"])
    built = run_runner("run", "--installer", first, *local(offline_wheels), str(script))
    assert built.returncode == 0, built.stderr
    (env_dir,) = store_dirs(cache_dir)
    for how in (["--installer", second], []):
        for alias in (cache_dir / "scripts").iterdir():
            alias.unlink()  # make the cold path look the environment up by its key
        again = run_runner(
            "run", *how, *local(offline_wheels), str(script), env={"RUNNER_INSTALLER": second}
        )
        assert again.returncode == 0, again.stderr
        assert again.stdout == "ok 1.0\n"
        assert again.stderr == ""
        assert store_dirs(cache_dir) == [env_dir]
    assert manifest(env_dir)["installer"] == first


@needs_uv
def test_auto_builds_with_uv(tmp_path: Path, cache_dir: Path, offline_wheels: Path) -> None:
    script = write_script(tmp_path / "s.py", SCRIPT_BODY, ["beta"])
    result = run_runner(
        "run", *local(offline_wheels), str(script), env={"RUNNER_INSTALLER": "auto"}
    )
    assert result.returncode == 0, result.stderr
    assert manifest(the_env(cache_dir))["installer"] == "uv"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_verbose_streams_the_installer_output_and_quiet_is_silent(
    installer: str, tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", SCRIPT_BODY, ["beta"])
    loud = run_runner("run", "-v", "--installer", installer, *local(offline_wheels), str(script))
    assert loud.returncode == 0, loud.stderr
    said = "Successfully installed alpha-1.0 beta-1.0" if installer == "pip" else "+ beta==1.0"
    assert said in loud.stderr
    how = "requested with --installer" if installer == "pip" else "found at "
    assert f"runner: installer: {installer} ({how}" in loud.stderr
    (log,) = (cache_dir / "logs").glob("*.log")
    assert said in log.read_text()
    silent = run_runner(
        "run", "-q", "--refresh", "--installer", installer, *local(offline_wheels), str(script)
    )
    assert silent.returncode == 0
    assert silent.stdout == "ok 1.0\n"
    assert silent.stderr == ""


# ---------------------------------------------------------------- one index configuration

PASSWORD = "pw-s3cr3t-4711"


class _Seen(list[str]):
    """A request log that sets an event on the first request: the installer is running."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def append(self, item: str) -> None:
        super().append(item)
        self.event.set()


def _installer_cmdlines(marker: str, password: str) -> tuple[list[str], list[str]]:
    """(command lines naming `marker`, command lines holding `password`) of every process."""
    ours: list[str] = []
    leaking: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                text = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone already
        if marker in text:
            ours.append(text)
        if password in text:
            leaking.append(text)
    return ours, leaking


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc/<pid>/cmdline")
@pytest.mark.parametrize("source", ["pip.conf", "script block"])
@pytest.mark.parametrize("installer", INSTALLERS)
def test_find_links_and_two_indexes_best_match_and_no_credentials_anywhere(
    installer: str,
    source: str,
    tmp_path: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pip's semantics across indexes for both installers: the right alpha is only on the
    index uv looks at second, beta only in a find-links directory; that index's password
    never reaches a command line, the output, the build log or the cache."""
    first, second, links = tmp_path / "first", tmp_path / "second", tmp_path / "links dir"
    # uv looks at extra indexes before the main one: its first index has only the wrong alpha.
    make_wheel(first, "alpha", "2.0")
    make_wheel(second, "alpha", "1.0")
    make_wheel(links, "beta", "1.0", requires=["alpha>=2"])
    body = "import alpha, beta\nprint('alpha', alpha.VERSION)\n"
    password = f"pw-{uuid.uuid4().hex}"  # tests running alongside use their own passwords
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    seen = _Seen()
    with (
        serve_index(first, delay=1.0, requests=seen) as (first_url, first_requests),
        serve_index(second, delay=1.0) as (second_url, _),
    ):
        secret_url = first_url.replace("http://", f"http://runner-user:{password}@")
        if source == "pip.conf":
            conf = tmp_path / "pip.conf"
            conf.write_text(
                f"[global]\nindex-url = {secret_url}\nextra-index-url = {second_url}\n"
                f"find-links = {links.as_uri()}\n"
            )
            monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
            monkeypatch.delenv("PIP_INDEX_URL")
            script = write_script(tmp_path / "s.py", body, ["beta"])
        else:
            script = write_script(tmp_path / "s.py", body, ["beta"])
            table = (
                f'# [tool.runner]\n# index-url = "{secret_url}"\n'
                f'# extra-index-urls = ["{second_url}"]\n# find-links = ["{links}"]\n# ///\n'
            )
            script.write_text(script.read_text().replace("# ///\n", table, 1))
        runner = subprocess.Popen(
            [RUNNER, "run", "-v", "--installer", installer, str(script)],
            env={**os.environ, "TMPDIR": str(private_tmp)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while not seen.event.wait(0.2):  # the installer is running once it asks
                if runner.poll() is not None:
                    _, early = runner.communicate(timeout=30)
                    pytest.fail(f"runner finished before asking the index: {early}")
            ours, leaking = _installer_cmdlines(str(cache_dir / "store"), password)
            # In the unpublished build directory (prune removes it if the build is killed).
            files = list((cache_dir / "store").glob("*/.runner-req-*/requirements.txt"))
            modes = [
                (stat.S_IMODE(f.stat().st_mode), stat.S_IMODE(f.parent.stat().st_mode))
                for f in files
            ]
            out, err = runner.communicate(timeout=180)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.communicate(timeout=30)
    assert runner.returncode == 0, err
    assert out == "alpha 2.0\n"
    assert any("/files/alpha-2.0" in r for r in first_requests)
    assert ours and any(" install " in c for c in ours), "the installer was not caught running"
    assert leaking == []
    assert modes == [(0o600, 0o700)]
    assert list(private_tmp.iterdir()) == []  # never in $TMPDIR
    assert not list(cache_dir.rglob(".runner-req-*"))  # and gone afterwards
    assert f"installer: {installer} (" in err
    assert password not in out + err
    for path in cache_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert password.encode() not in path.read_bytes(), path
    (log,) = (cache_dir / "logs").glob("*.log")
    assert "Prepared" in log.read_text() or "Successfully installed" in log.read_text()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_thousands_of_requirements_never_reach_the_command_line(
    installer: str, tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    """With a small stack limit the kernel takes at most 128 KiB of arguments; the
    requirements (about 150 KiB) go through the private requirements file instead."""
    ignored = [f"unused-package-number-{i:05d} ; python_version < '3'" for i in range(3000)]
    payload = sum(len(r) + 1 for r in ignored)
    script = write_script(tmp_path / "s.py", SCRIPT_BODY, ["beta", *ignored])

    runner_args = [RUNNER, "run", "--installer", installer, str(script)]
    result = subprocess.run(
        # 512 KiB of stack: the kernel then accepts 128 KiB of arguments at most.
        ["sh", "-c", 'ulimit -s 512 && exec "$@"', "sh", *runner_args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert payload > 128 * 1024  # more than any argument list could carry here
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok 1.0\n"


# ---------------------------------------------------------------- outcomes, not wording

PIP_HASH = """\
ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated \
the package versions, please update the hashes. Otherwise, examine the package contents \
carefully; someone may have tampered with them.
    alpha==1.0 from http://127.0.0.1:1/files/alpha-1.0-py3-none-any.whl:
        Expected sha256 0000
             Got        1111
"""
UV_HASH = """\
error: Failed to download `alpha==1.0`
  Caused by: Hash mismatch for `alpha==1.0`

Expected:
  sha256:0000

Computed:
  sha256:1111
"""
PIP_NO_SPACE = (
    "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n"
)
UV_NO_SPACE = "error: failed to write to file: No space left on device (os error 28)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PIP_HASH, Diagnosis(Problem.HASH_MISMATCH, ("alpha==1.0",))),
        (UV_HASH, Diagnosis(Problem.HASH_MISMATCH, ("alpha==1.0",))),
        (PIP_NO_SPACE, Diagnosis(Problem.NO_SPACE)),
        (UV_NO_SPACE, Diagnosis(Problem.NO_SPACE)),
        (UV_NETWORK, Diagnosis(Problem.NETWORK)),
        (PIP_NOT_FOUND, Diagnosis(Problem.NOT_FOUND, ("nosuch",))),
        (PIP_BUILD_FAILURE, Diagnosis(Problem.OTHER)),
    ],
)
def test_installer_output_is_read_into_a_diagnosis(text: str, expected: Diagnosis) -> None:
    assert installers.diagnose(text) == expected
    err = installers.failure(outcome(text), "x", Path("x.log"))
    assert err.diagnosis == expected
    assert isinstance(err, NetworkError) == (expected.problem is Problem.NETWORK)


def test_a_full_disk_reported_by_the_installer_is_a_cache_error(
    tmp_path: Path, cache_dir: Path
) -> None:
    """The builder matches on the diagnosis (not on wording) and names the cache."""
    from runner.builder import build
    from runner.cache import Cache
    from runner.errors import CacheError
    from runner.interpreters import probe
    from runner.report import Reporter
    from runner.spec import make_spec

    class FullDisk:
        name = "fake"
        why = "test"

        def needs_seed(self, interpreter: object) -> bool:
            return False

        def install(self, request: InstallRequest, *, log_path: Path, reporter: object) -> None:
            raise installers.failure(outcome(UV_NO_SPACE), "fake", log_path)

    cache = Cache(cache_dir)
    cache.ensure()
    spec = make_spec(["alpha"], probe(sys.executable))
    with pytest.raises(CacheError) as info:
        build(spec, cache, FullDisk(), Reporter(quiet=True))
    assert info.value.exit_code == 106
    assert str(cache_dir) in info.value.message and "space" in info.value.message
    assert "os error 28" in (info.value.details or "")
    assert store_dirs(cache_dir) == []


def test_proc_redacts_what_it_captures_logs_and_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "x.log"
    said = proc.run(
        [sys.executable, "-c", f"print('fetching https://u:{PASSWORD}@host/simple')"],
        log_path=log,
        stream=True,
    )
    assert said.ok and "https://***@host/simple" in said.output
    assert PASSWORD not in said.output + log.read_text() + capsys.readouterr().err


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_tampered_locked_artifact_is_named_from_the_diagnosis(
    installer: str, tmp_path: Path, cache_dir: Path
) -> None:
    """The lock's hash check fails with either installer; the message names the package from
    the structured outcome (no log is re-read) and the lock exit status is used."""
    index = tmp_path / "index"
    make_wheel(index, "alpha", "1.0")
    script = write_script(tmp_path / "job.py", SCRIPT_BODY.replace(", beta", ""), ["alpha"])
    with serve_index(index) as (url, _):
        secret_url = url.replace("http://", f"http://u:{PASSWORD}@")
        locked = run_runner("lock", str(script), "--index-url", secret_url)
        assert locked.returncode == 0, locked.stderr
        # `pip lock` got the index URL in its private requirements file, not on its argv.
        (lock_log,) = (cache_dir / "logs").glob("*.log")
        command = lock_log.read_text().splitlines()[0]
        assert command.startswith("$ ") and " lock " in command and "://" not in command
        make_wheel(index, "alpha", "1.0", modules={"alpha": "VERSION = 'evil'\n"})
        result = run_runner("run", "--installer", installer, "--index-url", url, str(script))
    assert result.returncode == 107, result.stderr
    assert "alpha==1.0: the downloaded artifact does not match the sha256" in result.stderr
    assert published(cache_dir) == []

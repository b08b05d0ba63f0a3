"""Progress output: a live line on a terminal, plain lines elsewhere, -q/-v, NO_COLOR, waiting."""

from __future__ import annotations

import fcntl
import io
import os
import select
import socket
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from runner.installers import PipProgress, UvProgress
from runner.report import Reporter
from tests.conftest import RUNNER, read_all, run_runner, store_dirs, write_script
from tests.wheels import serve_index


class Terminal(io.StringIO):
    """A stream that says it is a terminal; `drawn` fires when a redraw shows a clock > 0."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = threading.Event()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text.startswith("\r\033[Krunner:") and "(0.0 s)" not in text:
            self.drawn.set()
        return super().write(text)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    return Terminal()


def test_plain_lines_once_per_phase() -> None:
    out = io.StringIO()
    r = Reporter(stream=out)
    assert not r.live
    r.phase("creating an environment")
    r.step("resolving", "1 package")
    r.step("resolving", "2 packages")  # same phase: no new line
    r.step("installing", "2 packages")
    r.end_status()
    r.info("environment ready in 0.1 s")
    assert out.getvalue().splitlines() == [
        "runner: creating an environment",
        "runner: resolving 1 package",
        "runner: installing 2 packages",
        "runner: environment ready in 0.1 s",
    ]


def test_quiet_says_nothing_and_verbose_shows_details_not_derived_phases(
    terminal: Terminal,
) -> None:
    quiet = Reporter(quiet=True, stream=terminal)
    quiet.phase("creating")
    quiet.step("resolving")
    quiet.info("ready")
    quiet.warn("careful")
    quiet.end_status()
    assert terminal.getvalue() == ""
    loud_out = io.StringIO()
    loud = Reporter(verbose=True, stream=loud_out)
    loud.phase("creating")
    loud.step("resolving")  # the installer's own output is streamed instead
    loud.detail("built /x")
    assert loud_out.getvalue() == "runner: creating\nrunner: built /x\n"


def test_live_line_is_rewritten_in_place_and_erased(terminal: Terminal) -> None:
    r = Reporter(stream=terminal)
    assert r.live and r.color
    r.phase("creating an environment")
    r.step("resolving")
    r.step("downloading", "rich-14.0-py3-none-any.whl")
    assert terminal.drawn.wait(10)  # the clock ticks without new output
    r.info("a message in the middle")
    r.step("installing", "5 packages")
    r.end_status()
    text = terminal.getvalue()
    assert text.endswith("\r\033[K")
    # Only whole messages end a line; the status itself never does.
    assert [line for line in text.split("\n") if line][:-1] == [
        line for line in text.split("\n") if "a message in the middle" in line
    ]
    for phase in ("creating an environment", "resolving", "downloading rich", "installing 5"):
        assert f"\r\033[Krunner: \033[36m{phase}" in text
    after_message = text.split("a message in the middle\n", 1)[1]
    assert after_message.startswith("\r\033[Krunner: \033[36mdownloading")  # redrawn


def test_no_color_and_dumb_terminals(terminal: Terminal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    r = Reporter(stream=terminal)
    r.step("resolving")
    r.warn("careful")
    r.end_status()
    text = terminal.getvalue()
    assert "\r\033[Krunner: resolving (0.0 s)" in text
    assert "\033[3" not in text and "\033[2m" not in text
    assert "runner: warning: careful\n" in text
    monkeypatch.setenv("TERM", "dumb")
    dumb = Terminal()
    r = Reporter(stream=dumb)
    r.step("resolving")
    r.end_status()
    assert dumb.getvalue() == "runner: resolving\n"


def test_the_live_line_fits_the_terminal(terminal: Terminal) -> None:
    r = Reporter(stream=terminal)  # StringIO has no size: 80 columns
    r.step("downloading", "x" * 200)
    r.end_status()
    drawn = terminal.getvalue().split("\r\033[K")[1]
    visible = drawn.replace("\033[36m", "").replace("\033[0m", "").replace("\033[2m", "")
    assert len(visible) < 80 and visible.rstrip().endswith("s)")


def test_phases_derived_from_pip_output() -> None:
    out = io.StringIO()
    progress = PipProgress(Reporter(stream=out))
    for line in [
        "Looking in indexes: https://example/simple",
        "Collecting rich",
        "  Downloading rich-14.0.0-py3-none-any.whl.metadata (18 kB)",
        "Collecting pygments<3.0.0,>=2.13.0 (from rich)",
        "Downloading rich-14.0.0-py3-none-any.whl (243 kB)",
        "Installing collected packages: pygments, mdurl, markdown-it-py, rich",
        "Successfully installed markdown-it-py-3.0.0 mdurl-0.1.2 pygments-2.19.1 rich-14.0.0",
    ]:
        progress(line)
    assert out.getvalue().splitlines() == [
        "runner: resolving 1 package",
        "runner: downloading rich-14.0.0-py3-none-any.whl",
        "runner: installing 4 packages",
    ]


def test_phases_derived_from_uv_output() -> None:
    out = io.StringIO()
    progress = UvProgress(Reporter(stream=out))
    progress.start()
    for line in [
        "Using Python 3.11.7 environment at: /cache/store/x",
        "Resolved 4 packages in 120ms",
        "Prepared 4 packages in 80ms",
        "Installed 4 packages in 9ms",
        "Bytecode compiled 312 files in 150ms",
        " + rich==14.0.0",
    ]:
        progress(line)
    assert out.getvalue().splitlines() == [
        "runner: resolving",
        "runner: downloading 4 packages",
        "runner: installing 4 packages",
    ]  # bytecode is runner's own step, reported by the builder


# ---------------------------------------------------------------------------- real processes

BODY = "import alpha\nprint('ok')\n"


def local(wheelhouse: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheelhouse)]


def test_a_warm_run_prints_nothing_and_a_cold_one_says_what_it_does(
    tmp_path: Path, wheelhouse: Path
) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["alpha"])
    cold = run_runner("run", *local(wheelhouse), str(script))
    assert cold.returncode == 0, cold.stderr
    lines = cold.stderr.splitlines()
    assert lines[0].startswith("runner: building an environment for")
    assert "runner: installing 1 package" in lines
    assert lines[-1].startswith("runner: environment ready in ")
    assert "\r" not in cold.stderr and "\033" not in cold.stderr  # not a terminal
    warm = run_runner("run", *local(wheelhouse), str(script))
    assert (warm.returncode, warm.stdout, warm.stderr) == (0, "ok\n", "")


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run runner with stderr on a pseudo-terminal; return (status, stdout, terminal text)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child = subprocess.Popen(
        [RUNNER, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, **env},
    )
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + 120
    while True:
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            child.kill()
            raise AssertionError(f"no end of output on the terminal within 120 s: {received!r}")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal has closed it
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    stdout = read_all(child.stdout)
    assert child.stdout is not None
    child.stdout.close()
    return child.wait(timeout=120), stdout, received.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("no_color", ["", "1"])
def test_a_build_on_a_terminal_shows_a_live_status(
    tmp_path: Path, wheelhouse: Path, no_color: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["alpha"])
    monkeypatch.delenv("NO_COLOR", raising=False)
    env = {"TERM": "xterm", "NO_COLOR": no_color} if no_color else {"TERM": "xterm"}
    status, stdout, screen = run_on_terminal(["run", *local(wheelhouse), str(script)], env)
    assert (status, stdout) == (0, "ok\n"), screen
    lines = screen.split("\n")
    # Two finished lines; everything else was drawn over in place and erased.
    assert lines[0].startswith("runner: building an environment for"), repr(screen)
    assert lines[1].startswith("\r\033[K") and "environment ready in" in lines[1], repr(screen)
    assert lines[2:] == [""], repr(screen)
    colour = "" if no_color else "\033[36m"
    assert f"\r\033[Krunner: {colour}installing 1 package" in screen
    assert ("\033[36m" in screen) is not bool(no_color)


def test_a_waiting_process_says_whose_build_and_for_which_script(
    tmp_path: Path, wheelhouse: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["alpha"])
    with serve_index(wheelhouse, delay=2.5) as (url, requests):
        args = [RUNNER, "run", "--index-url", url, str(script)]
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        # The first process holds the build lock once it downloads from the index.
        while not any(r.startswith("/files/") for r in requests):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        second = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        out, err = first.communicate(timeout=120)
    assert (first.returncode, out) == (0, "ok\n"), err
    assert (second.returncode, second.stdout) == (0, "ok\n"), second.stderr
    owner = f"pid {first.pid} on {socket.gethostname()}, building for {script}"
    assert f"waiting for another build of this environment ({owner})" in second.stderr
    assert "building an environment" not in second.stderr
    assert len(store_dirs(cache_dir)) == 1

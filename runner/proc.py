"""The one subprocess wrapper: argument lists only, output captured to a log, streamed on -v."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from runner.redact import redact_text
from runner.values import dataclass


@dataclass(frozen=True)
class Outcome:
    """A finished command: its exit status and everything it printed (stdout+stderr),
    credentials in URLs redacted."""

    cmd: tuple[str, ...]
    returncode: int
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def spawn_detached(
    cmd: Sequence[str], *, fds: tuple[int, ...] = (), stderr: IO[str] | None = None
) -> int | None:
    """Start `cmd` in the background, never as a child of this process; its pid where known.

    Through `sh -c 'CMD &'`: sh exits at once, so the job is adopted by init, never a child
    of the script this process is about to become by exec (a script may wait for any child,
    or count them). In a session of its own: a Ctrl-C in the terminal does not reach it.
    `fds` stay open in it; its stderr goes to `stderr` (else nowhere), stdin and stdout
    nowhere.
    """
    errors = stderr if stderr is not None else subprocess.DEVNULL
    if os.path.exists("/bin/sh"):
        child = subprocess.Popen(
            ["/bin/sh", "-c", '"$@" </dev/null >/dev/null & echo $!', "sh", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            pass_fds=fds,
            start_new_session=True,
        )
        out, _ = child.communicate(timeout=60)
        text = out.decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    job = subprocess.Popen(  # no sh (Windows): a child, in a session of its own
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        pass_fds=fds,
        start_new_session=True,
    )
    return job.pid


def yield_processor(nice: int) -> None:
    """Lower this process's priority by `nice` (housekeeping started detached: the
    background compile, the daily prune), and its scheduling group's where it has one.

    Linux schedules a session (a detached job has its own, `spawn_detached`) as one group
    when autogroup is on; nice then only ranks the group's own processes, and the group
    gets as much processor as a script's: 10 numpy + pandas scripts started at once took
    28% longer beside a background compile at nice 10 in a group at nice 0.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.nice(nice)
    try:  # only a session of its own: never the group of the shell that started us
        alone = os.getsid(0) != os.getsid(os.getppid())
    except (OSError, AttributeError):
        alone = False
    if alone:
        with contextlib.suppress(OSError), open("/proc/self/autogroup", "w", encoding="ascii") as g:
            g.write(str(nice))


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    stream: bool = False,
    on_line: Callable[[str], None] | None = None,
    timeout: float | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> Outcome:
    """Run `cmd`, capturing its output; with `stream`, echo each line to stderr as it comes.

    With `timeout` (seconds), a command still running then is killed (`timed_out`).
    `meanwhile` is called once the command has started, before its output is read: work of
    ours that would otherwise wait for it (it runs on another core; its output waits in the
    pipe).
    """
    try:
        os.getcwd()
        cwd = None
    except FileNotFoundError:
        cwd = "/"  # the caller's directory was deleted: pip and uv cannot start in it
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        text=True,
        errors="replace",
        bufsize=1,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    # The pipe is read until EOF; a timer kills a command that outlives `timeout`.
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, expire) if timeout is not None else None
    if timer is not None:
        timer.start()
    log = open(log_path, "w", encoding="utf-8") if log_path is not None else None  # noqa: SIM115  # closed below
    try:
        if log is not None:
            # URLs in the command may carry index credentials: never write those down.
            log.write("$ " + redact_text(" ".join(cmd)) + "\n")
        if meanwhile is not None:
            meanwhile()
        for raw in proc.stdout:
            # An installer may echo an index URL with its credentials: what runner keeps,
            # logs or shows never has them.
            line = redact_text(raw)
            lines.append(line)
            if log is not None:
                log.write(line)
            if stream:
                sys.stderr.write(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if log is not None:
            log.close()
    # Only our own kill is a timeout: a command that dies of a signal by itself (a crash)
    # is not (Timer.cancel also sets `finished`, so that cannot tell them apart).
    timed_out = expired.is_set() and returncode < 0
    return Outcome(
        cmd=tuple(cmd), returncode=returncode, output="".join(lines), timed_out=timed_out
    )


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for installer subprocesses: the user's, minus what would confuse them."""
    env = dict(os.environ)
    # Our own launcher's state must not leak into an installer run.
    for name in (
        "PYTHONHOME",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "__PYVENV_LAUNCHER__",
    ):
        env.pop(name, None)
    if extra:
        env.update(extra)
    return env

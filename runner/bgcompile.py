"""Bytecode compiled after publish: the background job for large environments, and the places
that start it (`runner run`) or finish it in the foreground (`runner sync`, `cache verify
--repair`).

`builder.build(background_bytecode=True)` publishes an environment of
`builder.BACKGROUND_MIN_FILES` modules or more before compiling it, with its `__pycache__`
directories made and the marker `runner-bytecode-pending` beside its manifest
(`builder.defer_bytecode`). Right after publishing, the run starts the job detached
(`python -m runner.bgcompile`, niced, output appended to the build's log in `logs/`), and
the job

1. holds the marker locked (flock LOCK_EX): one job per environment. The run takes the lock
   before starting the job, which inherits it, so the marker never looks abandoned while a
   job is on its way;
2. holds the environment's lease (flock LOCK_SH, as a running script does): prune and clean
   skip the environment and never wait for it;
3. waits until the script that started it has exited (a pidfd of the run, which execs the
   script; at most WAIT_FOR_SCRIPT seconds), so the compile does not slow the first run's
   own imports (which write the bytecode of what they import, unless
   PYTHONDONTWRITEBYTECODE is set: the job keeps those files, see `bytecode.compile_tree`),
   then compiles at nice NICE, its scheduling group too (`proc.yield_processor`). Starting
   at once was tried twice. At nice 10, 10 numpy + pandas scripts started together ended
   27-45% later (their own imports write bytecode too) for a compile done 16-20% sooner.
   At nice 19, group included, the batch ended no later and one run's bytecode was
   complete 0.7 s sooner, but that run's own imports took 15% longer (1.49 s against 1.30
   without the job, on the "other" core of 2: shared caches, memory, disk), so its first
   run ended 1.28x `uv run`'s time instead of 1.09x;
4. runs `builder.compile_and_share_bytecode`, the build's own bytecode step;
5. flushes the cache's filesystem (unless RUNNER_NO_SYNC), then removes the marker: a
   marker that is gone means bytecode that is on disk.

A marker nobody holds means a job was killed. The warm path notices (one failed `open`
when there is no marker: `start.bytecode_unattended`) and takes the cold path, which
starts the job again; `runner sync` and `cache verify --repair` finish it in the
foreground. Every start is counted in the marker; a restarted job rewrites every .pyc
(after a power cut a .pyc written without fsync may be cut short behind a valid header,
which compileall would keep), and after MAX_STARTS the marker goes: the environment works
without its bytecode, only slower to import.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runner import layout, start

# The job imports the builder (packaging, the installers...) only once the script has ended:
# its start-up must not compete with the script's.
if TYPE_CHECKING:
    from runner.cache import Cache
    from runner.interpreters import Interpreter
    from runner.report import Reporter

# A job that was started this many times without finishing is not started again.
MAX_STARTS = 3
# The job yields the processor to the script that just started (and to everything else).
NICE = 10
# Seconds the job waits for the script that started it to exit before compiling anyway.
WAIT_FOR_SCRIPT = 10.0


def marker_path(env_dir: Path) -> Path:
    return env_dir / layout.BYTECODE_PENDING


def claim(env_dir: Path, *, wait: bool) -> int | None:
    """The pending marker's descriptor, locked exclusively: the right to compile. None if
    nothing is pending or the marker cannot be locked, or (without `wait`) a job holds it."""
    return start.claim_bytecode(str(env_dir), wait=wait)


def _count_start(fd: int) -> int:
    """Add one to the starts recorded in the (claimed) marker; the new count."""
    text = os.pread(fd, 32, 0).strip()
    starts = (int(text) if text.isdigit() else 0) + 1
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(starts).encode("ascii"), 0)
    return starts


def _give_up(env_dir: Path, starts: int, reporter: Reporter) -> None:
    with contextlib.suppress(OSError):
        os.unlink(marker_path(env_dir))
    reporter.detail(
        f"not compiling the bytecode of {env_dir} again: {starts - 1} background compiles "
        "were started and none finished; its modules are compiled as they are imported"
    )


def start_background(env_dir: Path, cache: Cache, reporter: Reporter) -> None:
    """`runner run`, after it published or found an environment: start the background
    compile if the bytecode is pending and no job is at it. Never waits, never raises."""
    fd = claim(env_dir, wait=False)
    if fd is None:
        if os.path.lexists(marker_path(env_dir)):
            reporter.detail(f"the bytecode of {env_dir} is being compiled in the background")
        return
    try:
        starts = _count_start(fd)
        if starts > MAX_STARTS:
            _give_up(env_dir, starts, reporter)
            return
        if starts > 1:
            reporter.detail(
                f"the background bytecode compile of {env_dir} did not finish (it was "
                "stopped); starting it again"
            )
        log = cache.log_path(env_dir.name.partition("-")[0])
        cmd = [sys.executable, "-m", "runner.bgcompile", "--fd", str(fd)]
        fds = [fd]
        starter = _own_pidfd()  # this process, which becomes the script
        if starter is not None:
            cmd += ["--wait-fd", str(starter)]
            fds.append(starter)
        try:
            pid = _spawn([*cmd, str(env_dir)], tuple(fds), log)
        finally:
            if starter is not None:
                os.close(starter)
        reporter.detail(
            f"compiling the bytecode in the background (pid {pid or '?'}, output in {log}); "
            "the script starts now, and imports what is not compiled yet from source"
        )
    except Exception as exc:  # housekeeping never fails a run (OSError, a hung sh...)
        reporter.detail(
            f"could not start the background bytecode compile ({exc}); the next run tries again"
        )
    finally:
        os.close(fd)  # the job holds the lock through its own copy


def _own_pidfd() -> int | None:
    """A descriptor that becomes readable when this process (after exec: the script) ends
    (Linux 5.3 and later); None elsewhere."""
    try:
        return os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return None


def _wait_for(pidfd: int, timeout: float) -> bool:
    """Wait until the process behind `pidfd` has ended, at most `timeout` s; whether it has."""
    import select

    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(int(timeout * 1000)))


def _spawn(cmd: list[str], fds: tuple[int, ...], log: Path) -> int | None:
    """Start `cmd` detached (`proc.spawn_detached`), its errors appended to `log`."""
    from runner import proc

    with open(log, "a", encoding="utf-8") as err:
        return proc.spawn_detached(cmd, fds=fds, stderr=err)


def finish(env_dir: Path, cache: Cache, reporter: Reporter) -> bool:
    """Compile pending bytecode now, in this process (`runner sync`, `cache verify
    --repair`), after waiting for a job that is at it; whether this call compiled it."""
    fd = claim(env_dir, wait=False)
    if fd is None and os.path.lexists(marker_path(env_dir)):
        reporter.info(f"waiting for the background bytecode compile of {env_dir}")
        fd = claim(env_dir, wait=True)
    if fd is None:
        return False
    try:
        starts = _count_start(fd)
        return compile_pending(env_dir, cache, reporter, force=starts > 1)
    finally:
        os.close(fd)
        reporter.end_status()


def compile_pending(
    env_dir: Path, cache: Cache, reporter: Reporter, *, force: bool, starter: int | None = None
) -> bool:
    """The job, holding the claim: lease, (wait for the script behind the pidfd `starter`),
    compile and share, flush, remove the marker. Whether it compiled (False: the environment
    is gone). A failing compile is not a failure: the environment works without bytecode,
    so the marker goes all the same."""
    lease = start.take_lease(str(env_dir))
    if lease is None:  # removed by a cleanup meanwhile: nothing to compile
        reporter.detail(f"{env_dir} is gone; nothing to compile")
        return False
    try:
        if cache.config.hang_at is not None:  # crash tests stop the job here
            from runner.builder import checkpoint

            checkpoint("background-compile", cache.config)
        if starter is not None and not _wait_for(starter, WAIT_FOR_SCRIPT):
            reporter.detail(f"the script still runs after {WAIT_FOR_SCRIPT:g} s: compiling now")
        from runner import durable, records
        from runner.builder import compile_and_share_bytecode
        from runner.filestore import ShareResult
        from runner.venvs import Created

        began = time.monotonic()
        created = Created(
            python=layout.env_python(str(env_dir)),
            site_packages=tuple(str(p) for p in records.site_packages(env_dir)),
        )
        try:
            compile_and_share_bytecode(
                env_dir,
                created,
                cache,
                reporter,
                interpreter=_interpreter(env_dir, cache),
                # The build shared the sources; their digests are not known here (the
                # bytecode index hashes what it needs).
                sources=ShareResult(0, 0, 0, 0, 0) if cache.config.link_mode == "link" else None,
                same_interpreter=False,
                force=force,
            )
        except Exception as exc:
            reporter.warn(f"the bytecode compile of {env_dir} failed: {exc!r}")
        if cache.config.sync:
            # Only now may the marker go: a .pyc cut short by a power cut would fail its
            # import (the header would pass), and a later job keeps what looks up to date.
            durable.flush(env_dir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker_path(env_dir))
        reporter.detail(f"the bytecode of {env_dir} is complete ({time.monotonic() - began:.2f} s)")
        return True
    finally:
        os.close(lease)


def _interpreter(env_dir: Path, cache: Cache) -> Interpreter | None:
    """The environment's interpreter as the build probed it (cached in `interpreters/`),
    for the bytecode index's keys; None if it cannot be told."""
    from runner import interpreters
    from runner.errors import RunnerError

    manifest = cache.read_manifest(env_dir)
    described = manifest.get("interpreter") if manifest else None
    path = described.get("path") if isinstance(described, dict) else None
    if not isinstance(path, str):
        return None
    try:
        return interpreters.probe(path, cache.root)
    except RunnerError:
        return None


def main(argv: list[str]) -> int:
    """`python -m runner.bgcompile [--fd N [--wait-fd M]] STORE_DIR`: the detached job. With
    `--fd` it holds the claim its starter took; without, it claims the marker itself. With
    `--wait-fd` (a pidfd) it lets that process end first."""
    fds: dict[str, int] = {}
    while len(argv) > 2 and argv[0] in ("--fd", "--wait-fd") and argv[1].isdigit():
        fds[argv[0]] = int(argv[1])
        argv = argv[2:]
    if len(argv) != 1:
        sys.stderr.write("usage: python -m runner.bgcompile [--fd N [--wait-fd M]] STORE_DIR\n")
        return 2
    fd = fds.get("--fd")
    from runner import proc

    proc.yield_processor(NICE)
    from runner.cache import Cache
    from runner.config import Config
    from runner.report import Reporter

    cache = Cache(config=Config.from_environ())
    env_dir = Path(argv[-1])
    reporter = Reporter(verbose=True)  # standard error is the build's log
    if env_dir.parent != cache.store or layout.store_key(env_dir.name) is None:
        reporter.warn(f"{env_dir} is not an environment of the cache at {cache.root}")
        return 2
    if fd is None:
        fd = claim(env_dir, wait=False)
        if fd is None:
            reporter.detail(f"nothing to do for {env_dir}: no pending bytecode, or a job is at it")
            return 0
        starts = _count_start(fd)
    else:
        text = os.pread(fd, 32, 0).strip()
        starts = int(text) if text.isdigit() else 1
    reporter.detail(f"compiling the bytecode of {env_dir} (start {starts}) at pid {os.getpid()}")
    try:
        compile_pending(env_dir, cache, reporter, force=starts > 1, starter=fds.get("--wait-fd"))
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

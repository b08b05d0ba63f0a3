"""The console entry point: a warm `run` execs its environment using only the stdlib; a cold
`run` goes straight to the core (no typer); every other command goes to the CLI.

On a warm hit the launcher reads the script, hashes its raw block with the options that
select the environment, follows the alias `scripts/<digest>` (after the cache trust check),
takes the environment's lease and execs its Python. On a miss, copies of the same script
queue on `locks/alias-<digest>.lock` *before* importing anything heavy: one runs the cold
path, the others wait and then take the warm path to what it published.
"""

import os
import sys

from runner import alias, blocks, layout, options, trust
from runner.config import Config
from runner.start import bytecode_unattended, exec_environment, now_ns, take_lease

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runner.options import ParsedRun

# A waiter says again what it waits for this often (seconds).
WAIT_REMINDER = 30
EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------- digests


def digest_for_bytes(
    data: bytes,
    pairs: list[tuple[str, str]],
    lock_bytes: bytes | None,
    script_dir: str,
    runner_python: str | None,
) -> str | None:
    """The alias digest for a script's raw bytes; None where only the full parser can tell.

    Decodes as the cold path's `metadata.decode_source` does for the files it accepts here:
    a UTF-8 BOM is dropped, the rest must be UTF-8. A file whose first two lines (as
    `tokenize.detect_encoding` reads them: split at b"\\n" only) contain `coding` may
    declare another encoding and is left to the full parser.
    """
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    if data.find(b"coding", 0, second if second >= 0 else len(data)) >= 0:
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    found = blocks.script_block(text)
    if found is False:
        return None
    content = found[0] if isinstance(found, tuple) else None
    return alias.selection_digest(content, pairs, lock_bytes, script_dir, runner_python)


# --------------------------------------------------------------------------- the warm path


class _Warm:
    """What the launcher learned about a script: its digest (None: the cold path decides)."""

    __slots__ = ("data", "digest")

    def __init__(self, data: bytes | None, digest: str | None) -> None:
        self.data = data
        self.digest = digest


def _read_script(parsed: "ParsedRun", config: Config) -> _Warm:
    """Read the script (once) and compute its alias digest where the launcher can."""
    import stat

    script = parsed.script
    try:
        fd = os.open(script, os.O_RDONLY)
    except OSError:
        return _Warm(None, None)  # the cold path explains what is wrong
    try:
        st = os.fstat(fd)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
    except OSError:
        return _Warm(None, None)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        # A pipe, FIFO or process substitution can be read only once: the cold path stores
        # these bytes in the cache and runs the stored copy (like `runner run -`).
        return _Warm(data, None)
    try:
        lock_path = layout.lock_path_for(script)
        with open(lock_path, "rb") as f:
            lock_bytes: bytes | None = f.read()
    except FileNotFoundError:
        lock_bytes = None
    except OSError:
        return _Warm(data, None)
    try:
        script_dir = os.path.dirname(os.path.abspath(script))
        pairs = options.selection_pairs(parsed.values)
    except OSError:  # the current directory was deleted
        return _Warm(data, None)
    digest = digest_for_bytes(data, pairs, lock_bytes, script_dir, config.python)
    return _Warm(data, digest)


def _fresh_download(parsed: "ParsedRun", config: Config) -> "ParsedRun":
    """A URL downloaded less than RUNNER_URL_TTL seconds ago runs from its stored copy (warm
    if its environment is published); everything else about URLs is runner.remote's."""
    url = parsed.script
    if parsed.values["refresh"]:
        return parsed
    if url[:5].lower() == "http:" and not parsed.values["allow_insecure_http"]:
        return parsed  # the cold path refuses it
    root = _trusted_root(config)
    if root is None or trust.subdir_problem(root, "urls", allow_shared=config.allow_shared_cache):
        return parsed
    from runner import urlstore

    stored = urlstore.fresh_copy(root, url, config.url_ttl, now_ns() / 10**9)
    if stored is None:
        return parsed
    return options.ParsedRun(parsed.values, stored, parsed.args)


def _pin_matches(data: bytes | None, pin: object) -> bool:
    """Whether the script's bytes have the sha256 that --sha256 pins them to."""
    from runner.hashing import sha256_hex

    if data is None or not isinstance(pin, str):
        return False
    return sha256_hex(data) == pin.strip().lower().removeprefix("sha256:")


def try_alias(root: str, digest: str, parsed: "ParsedRun", config: Config) -> None:
    """Exec the script if the alias names a trusted, published, valid environment."""
    scripts = os.path.join(root, "scripts")
    if trust.subdir_problem(root, "scripts", allow_shared=config.allow_shared_cache):
        return
    env_dir = alias.read(os.path.join(scripts, digest), os.environ, now_ns() // 10**9)
    if env_dir is None or not trust.env_dir_ok(
        root, env_dir, allow_shared=config.allow_shared_cache
    ):
        return
    fd = take_lease(env_dir)
    if fd is None:
        return
    if bytecode_unattended(env_dir):  # its background compile was killed: the cold path
        os.close(fd)  # starts it again
        return
    try:
        exec_environment(env_dir, parsed.script, parsed.args, config)
    except OSError:
        os.close(fd)


def _trusted_root(config: Config) -> str | None:
    """The cache root, made if missing (mode 0700), if it passes the trust rule; None
    otherwise (the cold path explains)."""
    root = config.cache_root
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except OSError:
        return None
    if trust.root_problem(root, allow_shared=config.allow_shared_cache) is not None:
        return None
    return root


# --------------------------------------------------------------------------- waiting


class _Reminder(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Reminder


def queue_for_script(root: str, digest: str, script: str, *, quiet: bool = False) -> int | None:
    """Take `locks/alias-<digest>.lock`, waiting while another copy of this script runs the
    cold path; the descriptor (close-on-exec), or None where locking is unavailable. Says
    on stderr what it waits for, unless `quiet` (-q: errors only).

    Only stdlib and no heavy imports: a hundred waiters cost a hundred blocked processes,
    not a hundred interpreters importing the CLI.
    """
    try:
        import fcntl
    except ImportError:
        return None
    locks = os.path.join(root, "locks")
    path = os.path.join(locks, f"alias-{digest}.lock")
    try:
        if trust.subdir_problem(root, "locks", allow_shared=True) is not None:
            # A first run on a new cache; another copy of a burst may make it first.
            try:  # noqa: SIM105  # contextlib would cost the warm path an import
                os.mkdir(locks, 0o755)
            except FileExistsError:
                pass
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _say_who(fd, script)
        return fd
    except BlockingIOError:
        pass
    except OSError:
        os.close(fd)
        return None  # this filesystem cannot lock: everyone takes the cold path
    import signal
    import time

    started = time.monotonic()
    try:
        owner = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
    except OSError:
        owner = "another process"
    if not quiet:
        sys.stderr.write(f"runner: waiting for another build of this environment ({owner})\n")
        sys.stderr.flush()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        while True:
            signal.alarm(WAIT_REMINDER)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                _say_who(fd, script)
                return fd
            except _Reminder:
                if quiet:
                    continue
                waited = int(time.monotonic() - started)
                sys.stderr.write(
                    f"runner: still waiting ({waited} s) for another build of this "
                    f"environment ({owner})\n"
                )
                sys.stderr.flush()
            except OSError:
                os.close(fd)
                return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _say_who(fd: int, script: str) -> None:
    """Write who holds the queue, for the waiters' message."""
    text = f"pid {os.getpid()} on {os.uname().nodename}, building for {script}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8", "surrogateescape"), 0)
    except OSError:
        pass


def _failure_path(root: str, digest: str) -> str:
    return os.path.join(root, "locks", f"alias-{digest}.failed")


def failure_stamp(root: str, digest: str) -> tuple[int, int] | None:
    """Which failure record of this script exists now (inode, mtime), if any."""
    try:
        st = os.stat(_failure_path(root, digest))
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def failure_since(root: str, digest: str, before: tuple[int, int] | None) -> tuple[int, str] | None:
    """(exit status, message) of a cold run of this script that failed while we waited: its
    record differs from the one seen before (records are replaced atomically, so a new one
    is a new inode). No clocks are compared: hosts sharing a cache may disagree on the time."""
    now = failure_stamp(root, digest)
    if now is None or now == before:
        return None
    try:
        with open(_failure_path(root, digest), encoding="utf-8") as f:
            status, _, message = f.read().partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    return (int(status), message) if status.isdigit() else None


# --------------------------------------------------------------------------- entry point


def _usage_error(message: str, hint: str) -> int:
    from runner.errors import UsageError, format_error

    error = UsageError(message, hint)
    sys.stderr.write(format_error(error))
    return error.exit_code


def run(parsed: "ParsedRun", config: Config) -> int:
    """`runner run`: warm if the environment is published, else the cold path (once per
    script at a time)."""
    warm = _Warm(None, None)
    lock_fd = None
    root = None
    if parsed.script[:8].lower().startswith(("https://", "http://")):
        parsed = _fresh_download(parsed, config)
    # --refresh must build anew: no alias may answer for it.
    if parsed.script != "-" and config.depth < config.max_depth and not parsed.values["refresh"]:
        warm = _read_script(parsed, config)
        if parsed.values["sha256"] and not _pin_matches(warm.data, parsed.values["sha256"]):
            warm = _Warm(warm.data, None)  # the cold path refuses it, with the message
        if warm.digest is not None and os.name == "posix":
            root = _trusted_root(config)
        if root is not None and warm.digest is not None:
            if config.fastpath:
                try_alias(root, warm.digest, parsed, config)
            quiet = bool(parsed.values["quiet"])
            before = failure_stamp(root, warm.digest)
            lock_fd = queue_for_script(root, warm.digest, parsed.script, quiet=quiet)
            if lock_fd is not None and config.fastpath:
                try_alias(root, warm.digest, parsed, config)  # another copy built it
                failed = failure_since(root, warm.digest, before)
                if failed is not None:
                    status, message = failed
                    sys.stderr.write(message)
                    return status
    try:
        return cold_run(parsed, config, warm.data, failure_digest=warm.digest if root else None)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def cold_run(
    parsed: "ParsedRun", config: Config, data: bytes | None, *, failure_digest: str | None
) -> int:
    """The cold path, without typer: the core decides, builds if needed, and execs."""
    from runner.errors import RunnerError, format_error

    try:
        from runner import api

        return api.run_command(parsed, config, data)
    except RunnerError as exc:
        from runner.redact import redact_text  # a message may quote a URL with a password

        text = redact_text(format_error(exc))
        sys.stderr.write(text)
        if failure_digest is not None:
            _record_failure(config.cache_root, failure_digest, exc.exit_code, text)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("runner: interrupted\n")
        return EXIT_INTERRUPTED


def _record_failure(root: str, digest: str, status: int, text: str) -> None:
    """Tell the copies of this script queued behind us why we failed, so they fail at once
    with the same message instead of retrying one after another."""
    import contextlib
    from pathlib import Path

    from runner.fsutil import atomic_write_text

    with contextlib.suppress(OSError):
        atomic_write_text(Path(_failure_path(root, digest)), f"{status}\n{text}")


def main() -> int:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv and argv[0] == "run":
        parsed = options.parse_run(argv[1:])
        if isinstance(parsed, options.UsageProblem):
            return _usage_error(parsed.message, parsed.hint)
        if parsed is not None:
            return run(parsed, Config.from_environ())
    from runner.cli import main as cli_main

    return cli_main()

"""Start a script in an environment: the lease, the script's variables, exec (stdlib only).

Both the launcher (warm path) and the run pipeline (cold path) start scripts through these.
"""

import os
import sys

from runner import layout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runner.config import Config

# Last use is recorded by touching the lease file, at most this often.
TOUCH_INTERVAL_NS = 3600 * 10**9


def take_lease(env_dir: str) -> int | None:
    """Hold a shared lock on the environment's lease file; None if the env is not usable.

    The descriptor is inheritable so the lease lives exactly as long as the exec'd script.
    After the lock is held the manifest is checked again: cleanup removes an environment
    only while holding the exclusive lock, so a manifest seen now stays until we exit.
    """
    try:
        fd = os.open(os.path.join(env_dir, layout.LEASE_NAME), os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, AttributeError):  # AttributeError: no O_CLOEXEC (Windows)
        try:
            fd = os.open(os.path.join(env_dir, layout.LEASE_NAME), os.O_RDONLY)
        except OSError:
            return None
    try:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the child process design covers it
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            # contextlib.suppress would cost the warm path an import.
            try:  # noqa: SIM105
                fcntl.flock(fd, fcntl.LOCK_SH)
            except OSError:
                pass  # no flock on this filesystem: run without a lease
        os.stat(os.path.join(env_dir, layout.MANIFEST_NAME))
        os.stat(layout.env_python(env_dir))  # follows the link: the base interpreter exists
        st = os.fstat(fd)
        now = now_ns()
        if now - st.st_mtime_ns > TOUCH_INTERVAL_NS:
            try:  # noqa: SIM105  # as above: no contextlib on the warm path
                os.utime(os.path.join(env_dir, layout.LEASE_NAME), ns=(now, now))
            except OSError:
                pass  # read-only cache: last use is simply not recorded
    except OSError:
        os.close(fd)
        return None
    os.set_inheritable(fd, True)
    return fd


def claim_bytecode(env_dir: str, *, wait: bool = False) -> int | None:
    """The pending-bytecode marker's descriptor, locked exclusively: the right to compile
    (`runner.bgcompile`). None if nothing is pending, the marker cannot be opened for
    writing (another user's) or locked (this filesystem cannot), or (without `wait`) a
    compile holds it. The holder may have finished and removed the marker before the lock
    came: that is None too."""
    path = os.path.join(env_dir, layout.BYTECODE_PENDING)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)  # finished meanwhile
    except (ImportError, OSError):
        os.close(fd)
        return None
    return fd


def bytecode_unattended(env_dir: str) -> bool:
    """Whether the environment's bytecode is pending with no background compile working on
    it (the job was killed): then the cold path starts it again (`runner.bgcompile`).

    Costs the warm path one failed `open` when nothing is pending (the usual case). Where
    the lock cannot be taken for another reason than a holder, nothing can tell: False.
    So is a marker this user cannot write (another user's, in a shared cache): the cold
    path could not start the compile either.
    """
    fd = claim_bytecode(env_dir)
    if fd is None:
        return False
    os.close(fd)  # releases the lock at once
    return True


def now_ns() -> int:
    import time  # builtin module, no file I/O

    return time.time_ns()


def script_environ(env_dir: str, depth: int) -> dict[str, str]:
    """The script's environment variables: the caller's, as if the env were activated."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = env_dir
    bin_dir = os.path.dirname(layout.env_python(env_dir))
    env["PATH"] = bin_dir + os.pathsep + env["PATH"] if env.get("PATH") else bin_dir
    env.pop("PYTHONHOME", None)
    env["RUNNER_DEPTH"] = str(depth + 1)  # a runner loop is detected, not repeated
    return env


def script_argument(script: str) -> str:
    """The script as the interpreter's first argument: always a path, never an option
    (a file named `-mhttp.server` must not become `python -m http.server`)."""
    return os.path.join(".", script) if script.startswith("-") else script


def exec_environment(env_dir: str, script: str, args: "list[str]", config: "Config") -> None:
    """Replace this process with the environment's Python running the script (POSIX).

    Call it holding take_lease's descriptor: it is inheritable, so the script holds the lease.
    """
    python = layout.env_python(env_dir)
    env = script_environ(env_dir, config.depth)
    if config.debug_rss:
        _report_rss()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(python, [python, script_argument(script), *args], env)


def _report_rss() -> None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    sys.stderr.write(
                        "runner: launcher peak RSS " + line.split(":", 1)[1].strip() + "\n"
                    )
    except OSError:
        pass

"""The warm path: find a published environment for a script and exec it, using only the stdlib.

This module is the console-script entry point. It must stay cheap to import: only `os`,
`sys` and (lazily) `fcntl` and a sha256 implementation. Anything unusual returns to `main`,
which hands over to the full CLI; the full CLI redoes the work with proper error messages.

The block scanner here is the one the metadata parser uses, so the fast path and the cold
path can never disagree about which block a script has.
"""

import os
import sys

# Bump when the alias format or the digest inputs change: old aliases then simply miss.
ALIAS_FORMAT = "2"
MANIFEST_NAME = "runner-env.json"
LEASE_NAME = "runner-lease"
# Last use is recorded by touching the lease file, at most this often.
TOUCH_INTERVAL_NS = 3600 * 10**9
# Every launch passes RUNNER_DEPTH + 1 to the script; at this depth (RUNNER_MAX_DEPTH
# overrides) the CLI refuses to launch again: a script starting itself through runner.
MAX_DEPTH = 16

_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")

# Options of `runner run` the fast path understands. Values that select an environment are
# folded into the alias digest; the cold path builds the same pairs (see `selection_pairs`).
_VALUE_OPTIONS = {
    "--python": "python",
    "-p": "python",
    "--with": "with",
    "--index-url": "index-url",
    "--extra-index-url": "extra-index-url",
    "--find-links": "find-links",
    "--exclude-newer": "exclude-newer",
    "--installer": "",  # does not select the environment
}
_FLAG_OPTIONS = {
    "--no-index": "no-index",
    "--locked": "locked",
    "--offline": "",
    "-q": "",
    "--quiet": "",
}


# --------------------------------------------------------------------------- block scanner


def split_lines(text: str) -> list[str]:
    """Split source text into lines the way Python's tokenizer does (\\r\\n, \\r, \\n)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _opener_type(line: str) -> str | None:
    if line.startswith("# /// "):
        kind = line[6:]
        if kind and all(c in _TYPE_CHARS for c in kind):
            return kind
    return None


def _is_content(line: str) -> bool:
    return line == "#" or line.startswith("# ")


def find_blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """Return (type, opener index, closer index) for every closed metadata block.

    Exactly what the specification's reference regular expression finds: a block opens with
    `# /// TYPE`, every following line of its run is `#` or starts with `# `, and the block
    ends at the *last* `# ///` line of that run that has at least one content line before
    it. Ordinary comments may follow the closer. A run with no such `# ///` line is an
    unclosed block and is ignored.
    """
    blocks: list[tuple[str, int, int]] = []
    i, n = 0, len(lines)
    while i < n:
        kind = _opener_type(lines[i])
        if kind is None:
            i += 1
            continue
        j = i + 1
        while j < n and _is_content(lines[j]):
            j += 1
        # The regex's greedy content group backtracks to the last closer of the run; it
        # needs one content line at least, so the closer cannot be the line after the opener.
        for end in range(j - 1, i + 1, -1):
            if lines[end] == "# ///":
                blocks.append((kind, i, end))
                break
        # Closed or not, no opener inside this run can start a block of its own: its closer
        # candidates would be a subset of this opener's. Skipping the run keeps it linear.
        i = j
    return blocks


def block_content(lines: list[str], start: int, end: int) -> str:
    """The embedded text of a block: each line without its leading `# ` (or `#`)."""
    return "".join(line[2:] + "\n" for line in lines[start + 1 : end])


def script_block(text: str) -> tuple[str, int] | bool | None:
    """Return (content, opener index) of the single `script` block, None, or False if duplicated."""
    lines = split_lines(text.removeprefix("\ufeff"))
    found = [b for b in find_blocks(lines) if b[0] == "script"]
    if not found:
        return None
    if len(found) > 1:
        return False
    _, start, end = found[0]
    return block_content(lines, start, end), start


# --------------------------------------------------------------------------- digests


def _sha256(data: bytes) -> str:
    # The builtin modules skip hashlib's OpenSSL import on the warm path.
    try:
        from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment,unused-ignore]
    digest: str = sha256(data).hexdigest()
    return digest


def canonical_option(name: str, value: str) -> str:
    """Make an option value independent of the working directory where it names a path."""
    if name == "python" and ("/" in value or os.sep in value):
        return os.path.abspath(value)
    if name == "find-links" and "://" not in value:
        return os.path.abspath(value)
    return value


def lock_path_for(script: str) -> str:
    """The PEP 751 lock file that belongs to a script: `pylock.<name>.toml` beside it.

    <name> is the file name without a trailing `.py`, with any other dots turned into `-`
    (PEP 751 names cannot contain dots): `tool.py` -> `pylock.tool.toml`,
    `my.tool.py` -> `pylock.my-tool.toml`, `tool` -> `pylock.tool.toml`.
    """
    directory, name = os.path.split(script)
    if name.endswith(".py"):
        name = name[:-3]
    name = name.replace(".", "-") or "script"
    return os.path.join(directory, f"pylock.{name}.toml")


def selection_digest(
    content: str | None,
    pairs: list[tuple[str, str]],
    lock_bytes: bytes | None,
    script_dir: str,
) -> str:
    """Digest of every input that selects a script's environment, for the warm-path alias.

    `content` is the raw `script` block (None without one); `pairs` the canonical
    selecting options. The script's directory matters only where relative paths in the
    block or a lock file can depend on it.
    """
    parts = ["runner-alias", ALIAS_FORMAT]
    parts.append("block" if content is not None else "noblock")
    parts.append(content or "")
    for name, value in sorted(pairs):
        parts.append(f"opt:{name}={value}")
    runner_python = os.environ.get("RUNNER_PYTHON")
    if runner_python:
        parts.append("env:RUNNER_PYTHON=" + canonical_option("python", runner_python))
    if lock_bytes is not None:
        parts.append("lock:" + _sha256(lock_bytes))
    if lock_bytes is not None or (content is not None and "find-links" in content):
        parts.append("dir:" + script_dir)
    # Length-prefixed parts: no two different input lists can encode alike.
    encoded = "".join(f"{len(part)}:{part}," for part in parts)
    return _sha256(encoded.encode("utf-8", "surrogateescape"))


# --------------------------------------------------------------------------- cache location


def default_cache_root() -> str:
    """The cache root: RUNNER_CACHE_DIR, else the platform's user cache directory."""
    explicit = os.environ.get("RUNNER_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "runner", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/runner")
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "runner")
    return os.path.expanduser("~/.cache/runner")


# --------------------------------------------------------------------------- aliases


def read_alias(root: str, digest: str) -> str | None:
    """Return the store directory an alias names if every recorded check still holds."""
    try:
        with open(os.path.join(root, "scripts", digest), encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.split("\n")
    if lines[0] != "runner-alias " + ALIAS_FORMAT or lines[-2:] != ["end", ""]:
        return None  # foreign, old or truncated
    env_dir = None
    for line in lines[1:-2]:
        kind, _, rest = line.partition("\t")
        if kind == "env":
            env_dir = rest
        elif kind == "stat":
            path, _, expect = rest.rpartition("\t")
            try:
                st = os.stat(path)
            except OSError:
                return None
            if expect != f"{st.st_mtime_ns}:{st.st_size}":
                return None
        elif kind == "var":
            name, _, expect = rest.partition("\t")
            if os.environ.get(name, "") != expect:
                return None
        elif kind == "expires":  # epoch seconds: a relative upload cutoff moves at midnight
            if not rest.isdigit() or _now_ns() // 10**9 >= int(rest):
                return None
        elif kind != "script":  # "script" lines only inform `runner cache list`
            return None
    return env_dir


# --------------------------------------------------------------------------- exec


def env_python(env_dir: str) -> str:
    if sys.platform == "win32":
        return os.path.join(env_dir, "Scripts", "python.exe")
    return os.path.join(env_dir, "bin", "python")


def take_lease(env_dir: str) -> int | None:
    """Hold a shared lock on the environment's lease file; None if the env is not usable.

    The descriptor is inheritable so the lease lives exactly as long as the exec'd script.
    After the lock is held the manifest is checked again: cleanup removes an environment
    only while holding the exclusive lock, so a manifest seen now stays until we exit.
    """
    try:
        fd = os.open(os.path.join(env_dir, LEASE_NAME), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
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
        os.stat(os.path.join(env_dir, MANIFEST_NAME))
        os.stat(env_python(env_dir))  # follows the link: the base interpreter still exists
        st = os.fstat(fd)
        now = _now_ns()
        if now - st.st_mtime_ns > TOUCH_INTERVAL_NS:
            try:  # noqa: SIM105  # as above: no contextlib on the warm path
                os.utime(os.path.join(env_dir, LEASE_NAME), ns=(now, now))
            except OSError:
                pass  # read-only cache: last use is simply not recorded
    except OSError:
        os.close(fd)
        return None
    os.set_inheritable(fd, True)
    return fd


def _now_ns() -> int:
    import time  # builtin module, no file I/O

    return time.time_ns()


def nesting_depth() -> int:
    """How many runner launches enclose this process (RUNNER_DEPTH; 0 when unset or invalid)."""
    value = os.environ.get("RUNNER_DEPTH", "")
    return int(value) if value.isdigit() else 0


def max_depth() -> int:
    value = os.environ.get("RUNNER_MAX_DEPTH", "")
    return int(value) if value.isdigit() else MAX_DEPTH


def script_environ(env_dir: str) -> dict[str, str]:
    """The script's environment variables: the caller's, as if the env were activated."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = env_dir
    bin_dir = os.path.dirname(env_python(env_dir))
    env["PATH"] = bin_dir + os.pathsep + env["PATH"] if env.get("PATH") else bin_dir
    env.pop("PYTHONHOME", None)
    env["RUNNER_DEPTH"] = str(nesting_depth() + 1)  # a runner loop is detected, not repeated
    return env


def exec_environment(env_dir: str, script: str, args: list[str]) -> None:
    """Replace this process with the environment's Python running the script (POSIX).

    Call it holding take_lease's descriptor: it is inheritable, so the script holds the lease.
    """
    python = env_python(env_dir)
    env = script_environ(env_dir)
    if os.environ.get("RUNNER_DEBUG_RSS"):
        _report_rss()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(python, [python, script, *args], env)


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


# --------------------------------------------------------------------------- entry point


def parse_run_argv(argv: list[str]) -> tuple[list[tuple[str, str]], str, list[str]] | None:
    """Recognise `run [simple options] SCRIPT [args]`; None for anything else."""
    if len(argv) < 2 or argv[0] != "run":
        return None
    pairs: list[tuple[str, str]] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        if name in _VALUE_OPTIONS and (name.startswith("--") or not eq):
            if not eq:
                if i + 1 >= len(argv):
                    return None
                value = argv[i + 1]
                i += 1
            key = _VALUE_OPTIONS[name]
            if key:
                pairs.append((key, canonical_option(key, value)))
        elif arg in _FLAG_OPTIONS:
            if _FLAG_OPTIONS[arg]:
                pairs.append((_FLAG_OPTIONS[arg], ""))
        else:
            return None
        i += 1
    if i >= len(argv) or argv[i] == "-":
        return None
    return pairs, argv[i], argv[i + 1 :]


def digest_for_bytes(
    data: bytes, pairs: list[tuple[str, str]], lock_bytes: bytes | None, script_dir: str
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
    found = script_block(text)
    if found is False:
        return None
    content = found[0] if isinstance(found, tuple) else None
    return selection_digest(content, pairs, lock_bytes, script_dir)


def try_warm(argv: list[str]) -> None:
    """Exec the script if its environment is published and valid; return otherwise."""
    parsed = parse_run_argv(argv)
    if parsed is None or os.name != "posix":
        return
    if "RUNNER_DEPTH" in os.environ and nesting_depth() >= max_depth():
        return  # the full CLI reports the runaway nesting
    pairs, script, args = parsed
    try:
        with open(script, "rb") as f:
            data = f.read()
    except OSError:
        return
    lock_path = lock_path_for(script)
    try:
        with open(lock_path, "rb") as f:
            lock_bytes: bytes | None = f.read()
    except FileNotFoundError:
        lock_bytes = None
    except OSError:
        return
    script_dir = os.path.dirname(os.path.abspath(script))
    digest = digest_for_bytes(data, pairs, lock_bytes, script_dir)
    if digest is None:
        return
    env_dir = read_alias(default_cache_root(), digest)
    if env_dir is None:
        return
    fd = take_lease(env_dir)
    if fd is None:
        return
    try:
        exec_environment(env_dir, script, args)
    except OSError:
        os.close(fd)


def main() -> int:
    """Console-script entry point: the warm path first, the full CLI otherwise."""
    if not os.environ.get("RUNNER_NO_FASTPATH"):
        try_warm(sys.argv[1:])
    from runner.cli import main as cli_main

    return cli_main()

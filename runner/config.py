"""The one place runner reads its own environment variables: a settings value (stdlib only).

The launcher and the CLI build it once (`Config.from_environ()`) and pass it down; the core
takes it as an argument and never reads `RUNNER_*` variables itself. A plain class, not a
dataclass: the launcher builds it on every warm run, and dataclasses costs ~20 ms to import.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_DEPTH = 16
SOFT_LEASE_SECONDS = 60.0
DEFAULT_GRACE = 3600.0
URL_TTL = 300.0
URL_TIMEOUT = 30.0


def _flag(environ: "Mapping[str, str]", name: str) -> bool:
    return environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _seconds(environ: "Mapping[str, str]", name: str, default: float, *, zero: bool) -> float:
    try:
        value = float(environ.get(name, ""))
    except ValueError:
        return default
    if not value >= 0 or value == float("inf") or (value == 0 and not zero):  # NaN too
        return default
    return value


def _optional_seconds(environ: "Mapping[str, str]", name: str) -> float | None:
    value = _seconds(environ, name, -1.0, zero=True)
    return None if value < 0 else value


def _count(environ: "Mapping[str, str]", name: str, default: int) -> int:
    value = environ.get(name, "")
    return int(value) if value.isdigit() else default


def _link_mode(environ: "Mapping[str, str]") -> str:
    """How environments get their files: `link` (hard links into the cache's file store) or
    `copy` (each keeps its own). An unknown value means the default. The default on Windows
    is `copy`: a read-only file there cannot be deleted or replaced without first changing
    its attributes, which the cleanup code does not do yet."""
    value = environ.get("RUNNER_LINK_MODE", "").strip().lower()
    if value in ("link", "copy"):
        return value
    return "copy" if sys.platform == "win32" else "link"


def default_cache_root(environ: "Mapping[str, str]") -> str:
    """The cache root: RUNNER_CACHE_DIR, else the platform's user cache directory."""
    explicit = environ.get("RUNNER_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    if sys.platform == "win32":
        base = environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "runner", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/runner")
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "runner")
    return os.path.expanduser("~/.cache/runner")


class Config:
    """Everything runner takes from its environment variables (README lists them)."""

    __slots__ = (
        "allow_shared_cache",
        "auto_prune",
        "auto_prune_after",
        "bin_dir",
        "cache_root",
        "debug_rss",
        "depth",
        "fastpath",
        "hang_at",
        "hang_file",
        "installer",
        "link_mode",
        "lock_lease",
        "lock_timeout",
        "max_depth",
        "offline",
        "prune_grace",
        "python",
        "soft_locks",
        "sync",
        "url_timeout",
        "url_ttl",
    )

    def __init__(
        self,
        cache_root: str,
        *,
        python: str | None = None,
        installer: str | None = None,
        offline: bool = False,
        fastpath: bool = True,
        depth: int = 0,
        max_depth: int = MAX_DEPTH,
        allow_shared_cache: bool = False,
        soft_locks: bool = False,
        lock_lease: float = SOFT_LEASE_SECONDS,
        lock_timeout: float | None = None,
        prune_grace: float = DEFAULT_GRACE,
        auto_prune: bool = True,
        auto_prune_after: str = "30d",
        sync: bool = True,
        debug_rss: bool = False,
        hang_at: str | None = None,
        hang_file: str | None = None,
        url_ttl: float = URL_TTL,
        url_timeout: float = URL_TIMEOUT,
        bin_dir: str | None = None,
        link_mode: str = "link",
    ) -> None:
        self.cache_root = cache_root  # RUNNER_CACHE_DIR, else the platform's cache folder
        self.python = python  # RUNNER_PYTHON
        self.installer = installer  # RUNNER_INSTALLER
        self.offline = offline  # RUNNER_OFFLINE
        self.fastpath = fastpath  # RUNNER_NO_FASTPATH turns the warm path off
        self.depth = depth  # RUNNER_DEPTH: how many runner launches enclose this process
        self.max_depth = max_depth  # RUNNER_MAX_DEPTH
        self.allow_shared_cache = allow_shared_cache  # RUNNER_ALLOW_SHARED_CACHE
        self.soft_locks = soft_locks  # RUNNER_LOCK=soft
        self.lock_lease = lock_lease  # RUNNER_LOCK_LEASE (seconds)
        # RUNNER_LOCK_TIMEOUT: seconds a run waits for another build of its environment
        # (None: as long as it takes)
        self.lock_timeout = lock_timeout
        self.prune_grace = prune_grace  # RUNNER_PRUNE_GRACE (seconds)
        self.auto_prune = auto_prune  # RUNNER_NO_AUTO_PRUNE turns it off
        self.auto_prune_after = auto_prune_after  # RUNNER_AUTO_PRUNE_AFTER
        self.sync = sync  # RUNNER_NO_SYNC: builds are not flushed to disk (tests)
        self.debug_rss = debug_rss  # RUNNER_DEBUG_RSS: report the launcher's peak memory
        self.hang_at = hang_at  # RUNNER_TEST_HANG_AT: crash tests stop a build there
        self.hang_file = hang_file  # RUNNER_TEST_HANG_FILE
        self.url_ttl = url_ttl  # RUNNER_URL_TTL: seconds a downloaded script stays fresh
        self.url_timeout = url_timeout  # RUNNER_URL_TIMEOUT: seconds per network step
        self.bin_dir = bin_dir  # RUNNER_BIN_DIR: where `runner install` puts launchers
        self.link_mode = link_mode  # RUNNER_LINK_MODE: "link" (share files) or "copy"

    @classmethod
    def from_environ(cls, environ: "Mapping[str, str] | None" = None) -> "Config":
        env = os.environ if environ is None else environ
        return cls(
            default_cache_root(env),
            python=env.get("RUNNER_PYTHON", "").strip() or None,
            installer=env.get("RUNNER_INSTALLER", "").strip() or None,
            offline=_flag(env, "RUNNER_OFFLINE"),
            fastpath=not env.get("RUNNER_NO_FASTPATH"),
            depth=_count(env, "RUNNER_DEPTH", 0),
            max_depth=_count(env, "RUNNER_MAX_DEPTH", MAX_DEPTH),
            allow_shared_cache=bool(env.get("RUNNER_ALLOW_SHARED_CACHE")),
            soft_locks=env.get("RUNNER_LOCK") == "soft",
            lock_lease=_seconds(env, "RUNNER_LOCK_LEASE", SOFT_LEASE_SECONDS, zero=False),
            lock_timeout=_optional_seconds(env, "RUNNER_LOCK_TIMEOUT"),
            prune_grace=_seconds(env, "RUNNER_PRUNE_GRACE", DEFAULT_GRACE, zero=True),
            auto_prune=env.get("RUNNER_NO_AUTO_PRUNE", "") in ("", "0"),
            auto_prune_after=env.get("RUNNER_AUTO_PRUNE_AFTER") or "30d",
            sync=not env.get("RUNNER_NO_SYNC"),
            debug_rss=bool(env.get("RUNNER_DEBUG_RSS")),
            hang_at=env.get("RUNNER_TEST_HANG_AT") or None,
            hang_file=env.get("RUNNER_TEST_HANG_FILE") or None,
            url_ttl=_seconds(env, "RUNNER_URL_TTL", URL_TTL, zero=True),
            url_timeout=_seconds(env, "RUNNER_URL_TIMEOUT", URL_TIMEOUT, zero=False),
            bin_dir=env.get("RUNNER_BIN_DIR") or None,
            link_mode=_link_mode(env),
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Config({fields})"

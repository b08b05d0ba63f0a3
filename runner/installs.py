"""Scripts installed as commands: a stored copy in the cache and a launcher on PATH.

    <cache>/installed/<name>/<file>          the script's copy (and its pylock file, if any)
    <cache>/installed/<name>/command.json    where it came from, its sha256, the run options
    <bin dir>/<name>                         the launcher (`RUNNER_BIN_DIR`, else ~/.local/bin)

`installed/` is not a prunable store: cleanup may remove the command's environment (the
launcher then builds it again), never the script. A launcher starts runner's own
interpreter on the same entry point as `python -m runner`, with `run OPTIONS SCRIPT` in
front of the user's arguments, so a warm start costs what a warm `runner run` costs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import CacheError, ScriptError, UsageError
from runner.fsutil import atomic_write_bytes, atomic_write_text, remove_tree
from runner.records import SHEBANG_MAX
from runner.values import replace  # RunOptions is a runner.values class

if TYPE_CHECKING:
    from runner.api import RunOptions
    from runner.cache import Cache
    from runner.config import Config
    from runner.report import Reporter

INSTALLED_DIR = "installed"
RECORD_NAME = "command.json"
# The second line of every launcher runner writes; a file without it is never replaced.
MARKER = "# runner-launcher:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def bin_dir(config: Config) -> Path:
    """Where launchers go: RUNNER_BIN_DIR, else ~/.local/bin."""
    if config.bin_dir:
        return Path(os.path.abspath(os.path.expanduser(config.bin_dir)))
    return Path(os.path.expanduser("~/.local/bin"))


def on_path(directory: Path) -> bool:
    entries = os.environ.get("PATH", "").split(os.pathsep)
    real = os.path.realpath(directory)
    return any(e and os.path.realpath(os.path.expanduser(e)) == real for e in entries)


@dataclass(frozen=True)
class Installed:
    """One installed command, as its record describes it."""

    name: str
    source: str  # the URL without credentials, or the original file's absolute path
    sha256: str
    script: str  # the stored copy the launcher runs
    launcher: str
    run_args: tuple[str, ...]  # runner options the launcher passes before the script
    installed: float

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["run_args"] = list(self.run_args)
        return data


def check_name(name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise UsageError(
            f"{name!r} cannot be a command name",
            hint="Use letters, digits and . _ + - (not starting with a dot or dash): "
            "--name my-tool.",
        )
    return name


def default_name(filename: str) -> str:
    """A command name from a file name: `tool.py` -> `tool`."""
    stem = filename[:-3] if filename.endswith(".py") else filename
    return stem


def installed_root(cache_root: Path) -> Path:
    return cache_root / INSTALLED_DIR


def read(cache_root: Path, name: str) -> Installed | None:
    path = installed_root(cache_root) / name / RECORD_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Installed(
            name=str(data["name"]),
            source=str(data["source"]),
            sha256=str(data["sha256"]),
            script=str(data["script"]),
            launcher=str(data["launcher"]),
            run_args=tuple(str(a) for a in data["run_args"]),
            installed=float(data["installed"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_installed(cache_root: Path) -> list[Installed]:
    root = installed_root(cache_root)
    try:
        names = sorted(n for n in os.listdir(root) if not n.startswith("."))
    except OSError:
        return []
    return [found for n in names if (found := read(cache_root, n)) is not None]


# --------------------------------------------------------------------------- launchers


def is_ours(path: Path) -> bool:
    """Whether `path` is a launcher runner wrote (its second line carries the marker)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    lines = head.split(b"\n")
    return len(lines) > 1 and lines[1].startswith(MARKER.encode())


def launcher_text(name: str, script: str, run_args: tuple[str, ...]) -> str:
    """A launcher: runner's interpreter in the shebang when the kernel can read it, else sh.

    Both run runner's entry point (the one `python -m runner` runs) with `run ARGS SCRIPT`
    before the user's arguments: no shell, no second interpreter start on the warm path.
    """
    python = sys.executable
    argv = ["run", *run_args, script]
    marker = f"{MARKER} {name} (written by `runner install`; `runner uninstall {name}` removes it)"
    shebang = f"#!{python} -P"
    if len(shebang.encode()) <= SHEBANG_MAX and not any(c.isspace() for c in python):
        return (
            f"{shebang}\n{marker}\n"
            "import sys\n"
            f"sys.argv[1:1] = {argv!r}\n"
            "import runner.__main__  # noqa: F401  # runs runner exactly as `python -m runner`\n"
        )
    command = " ".join(shlex.quote(a) for a in [python, "-P", "-m", "runner", *argv])
    return f'#!/bin/sh\n{marker}\nexec {command} "$@"\n'


def write_launcher(path: Path, text: str, *, force: bool) -> None:
    """Write the launcher; never replace a file runner did not write, nor ours without force."""
    if os.path.lexists(path):
        if not is_ours(path):
            raise ScriptError(
                f"{path} exists and was not written by runner; not replacing it",
                hint="Choose another name with --name, or remove that file yourself.",
            )
        if not force:
            raise ScriptError(
                f"a command named {path.name} is already installed ({path})",
                hint="Update it with `runner install --force`, or choose another --name.",
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        if force:
            atomic_write_bytes(path, data, mode=0o755)
        else:
            _create_exclusive(path, data)
    except OSError as exc:
        raise ScriptError(
            f"cannot write the launcher {path}: {exc.strerror}",
            hint="Check that the directory is writable, or choose another with RUNNER_BIN_DIR.",
        ) from None


def _create_exclusive(path: Path, data: bytes) -> None:
    from runner.fsutil import write_temp

    tmp = write_temp(path, data, mode=0o755)
    try:
        os.link(tmp, path)  # refuses to replace a file that appeared meanwhile
    except FileExistsError:
        raise ScriptError(
            f"{path} appeared while installing; not replacing it",
            hint="Run the command again to see what is there.",
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# --------------------------------------------------------------------------- store


def store_copy(cache_root: Path, name: str, filename: str, data: bytes, lock: bytes | None) -> Path:
    """Put the script (and its lock file) in `installed/<name>/`, replacing an older copy
    as a whole; returns the script's stored path."""
    from runner.layout import lock_path_for

    root = installed_root(cache_root)
    final = root / name
    stage = root / f".{name}.{secrets.token_hex(6)}.tmp"
    try:
        stage.mkdir(parents=True, mode=0o755)
        atomic_write_bytes(stage / filename, data)
        if lock is not None:
            atomic_write_bytes(Path(lock_path_for(str(stage / filename))), lock)
        old = None
        if final.exists():
            old = root / f".{name}.{secrets.token_hex(6)}.old"
            os.replace(final, old)
        os.replace(stage, final)
        if old is not None:
            remove_tree(old)
    except OSError as exc:
        remove_tree(stage)
        raise CacheError(
            f"cannot store the command's script in {root}: {exc.strerror}",
            hint="Check that the runner cache is writable.",
        ) from None
    return final / filename


def write_record(cache_root: Path, installed: Installed) -> None:
    path = installed_root(cache_root) / installed.name / RECORD_NAME
    atomic_write_text(path, json.dumps(installed.to_json(), indent=2) + "\n")


def new_record(
    *, name: str, source: str, sha256: str, script: Path, launcher: Path, run_args: tuple[str, ...]
) -> Installed:
    return Installed(
        name=name,
        source=source,
        sha256=sha256,
        script=str(script),
        launcher=str(launcher),
        run_args=run_args,
        installed=time.time(),
    )


def remove(cache: Cache, name: str) -> tuple[bool, bool, str | None]:
    """Remove an installed command: (launcher removed, copy removed, launcher left alone)."""
    cache_root = cache.root
    record = read(cache_root, name)
    launcher = Path(record.launcher) if record is not None else bin_dir(cache.config) / name
    removed_launcher = False
    foreign = None
    if os.path.lexists(launcher):
        if is_ours(launcher):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(launcher)
            removed_launcher = True
        else:
            foreign = str(launcher)
    directory = installed_root(cache_root) / name
    had_copy = directory.is_dir()
    if had_copy:
        remove_tree(directory)
    return removed_launcher, had_copy, foreign


# --------------------------------------------------------------------------- install


def launcher_args(options: RunOptions) -> tuple[str, ...]:
    """The `runner run` options a launcher repeats, so it selects the same environment."""
    from runner.options import canonical as canonical_option
    from runner.redact import redact_url

    args: list[str] = []
    values = [("--python", "python", options.python)]
    values += [("--with", "with", r) for r in options.with_requirements]
    values += [("--index-url", "index-url", options.index_url)]
    values += [("--extra-index-url", "extra-index-url", u) for u in options.extra_index_urls]
    values += [("--find-links", "find-links", u) for u in options.find_links]
    values += [("--exclude-newer", "exclude-newer", options.exclude_newer)]
    for flag, name, value in values:
        if not value:
            continue
        if redact_url(value) != value:
            raise UsageError(
                f"{flag}: the URL holds credentials, which would be written into the launcher",
                hint="Keep credentials in pip's configuration, a keyring or ~/.netrc, and give "
                "the URL without them.",
            )
        args += [flag, canonical_option(name, value)]
    if options.no_index:
        args.append("--no-index")
    if options.locked:
        args.append("--locked")
    if options.installer:
        args += ["--installer", options.installer]
    return tuple(args)


def options_from_args(args: tuple[str, ...]) -> RunOptions:
    """The RunOptions a launcher's arguments stand for (the inverse of launcher_args)."""
    from runner.api import RunOptions

    single = {"--python": "python", "--index-url": "index_url"}
    single |= {"--exclude-newer": "exclude_newer", "--installer": "installer"}
    many: dict[str, list[str]] = {"--with": [], "--extra-index-url": [], "--find-links": []}
    values: dict[str, object] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--no-index", "--locked"):
            values[arg[2:].replace("-", "_")] = True
        elif i + 1 < len(args) and arg in single:
            values[single[arg]] = args[i + 1]
            i += 1
        elif i + 1 < len(args) and arg in many:
            many[arg].append(args[i + 1])
            i += 1
        i += 1
    return RunOptions(
        with_requirements=tuple(many["--with"]),
        extra_index_urls=tuple(many["--extra-index-url"]),
        find_links=tuple(many["--find-links"]),
        **values,  # type: ignore[arg-type]
    )


def install(
    source: str,
    options: RunOptions,
    reporter: Reporter,
    *,
    name: str | None = None,
    sha256: str | None = None,
    allow_insecure_http: bool = False,
    force: bool = False,
    cache: Cache | None = None,
    target_dir: Path | None = None,
) -> Installed:
    """Store a copy of SCRIPT or URL, build its environment, write its launcher."""
    from runner import api, remote
    from runner.cache import Cache
    from runner.layout import lock_path_for

    if os.name != "posix":
        raise UsageError(
            "runner install writes POSIX launchers; Windows is not supported yet",
            hint="Run the script with `runner run SCRIPT|URL` instead.",
        )
    cache = cache or Cache()
    target_dir = target_dir or bin_dir(cache.config)
    if not remote.is_url(source) and (not os.path.exists(source) or is_ours(Path(source))):
        # `runner install --force NAME` (or the launcher's path): update an installed
        # command from where it came from.
        named = os.path.basename(source)
        previous = read(cache.root, named) if _NAME.match(named) else None
        if previous is None and os.path.exists(source):
            raise UsageError(
                f"{source} is a launcher runner wrote, not a script",
                hint="Install the script itself (`runner list` shows where each came from).",
            )
        if previous is not None:
            source, name = previous.source, name or previous.name
            if replace(options, offline=False) == type(options)():  # no options given
                options = replace(options_from_args(previous.run_args), offline=options.offline)
    run_args = launcher_args(options)
    if remote.is_url(source):
        filename = remote.url_name(source) or "script.py"
        shown = remote.public_url(source)
    else:
        filename = os.path.basename(os.path.abspath(source))
        shown = os.path.abspath(source)
    name = check_name(name or default_name(filename))
    launcher = target_dir / name
    if os.path.lexists(launcher) and (not is_ours(launcher) or not force):
        write_launcher(launcher, "", force=force)  # raises with the right message
    local = remote.resolve(
        source,
        sha256=sha256,
        allow_insecure_http=allow_insecure_http,
        offline=options.offline,
        refresh=force,
        config=cache.config,
    )
    script = api.load_script(local)
    remote.check_remote_metadata(script.data, shown, what="a command's stored copy")
    lock_bytes = None
    if not remote.is_url(source):
        with contextlib.suppress(FileNotFoundError):
            lock_bytes = Path(lock_path_for(local)).read_bytes()
    # Build first: a failed build leaves an older installation of the command as it was.
    api.environment_for(script, options, cache, reporter)
    stored = store_copy(cache.root, name, filename, script.data, lock_bytes)
    api.environment_for(api.load_script(str(stored)), options, cache, reporter)  # the alias
    record = new_record(
        name=name,
        source=shown,
        sha256=remote.sha256_of(script.data),
        script=stored,
        launcher=launcher,
        run_args=run_args,
    )
    write_record(cache.root, record)
    write_launcher(launcher, launcher_text(name, str(stored), run_args), force=force)
    return record

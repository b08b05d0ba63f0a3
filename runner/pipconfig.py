"""Ambient index configuration: pip's, read the way pip reads it, and whether uv has its own.

runner hands pip's effective index settings to uv, so both installers see the same indexes.
This module only reads; it never writes configuration and never puts anything into an
environment's key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from runner.values import dataclass

# pip reads the [global] section, then the section of its command, then PIP_* variables; a
# later source wins. runner only ever runs `pip install`.
_SECTIONS = ("global", "install")
_TRUE = ("y", "yes", "t", "true", "on", "1")
_FALSE = ("n", "no", "f", "false", "off", "0")
# The options runner translates for uv (pip's names).
_KEYS = (
    "index-url",
    "extra-index-url",
    "find-links",
    "no-index",
    "trusted-host",
    "cert",
    "client-cert",
    "proxy",
    "constraint",
)


def ambient_environ() -> Mapping[str, str]:
    """The variables this module reads; the one place it looks at the process environment
    (to become part of the settings value built at the edge)."""
    return os.environ


@dataclass(frozen=True)
class PipIndexConfig:
    """pip's effective index settings, from its configuration files and PIP_* variables."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()
    cert: str | None = None
    client_cert: str | None = None
    proxy: str | None = None
    constraints: tuple[str, ...] = ()  # constraints files pip applies to every install
    # Where the values came from (files read, "PIP_* variables"), for -v.
    sources: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self == PipIndexConfig(sources=self.sources)


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").removeprefix("--")


def config_files(environ: Mapping[str, str], platform: str = sys.platform) -> list[str]:
    """pip's configuration files in the order pip loads them (a later file wins).

    Global files, then the user's (legacy `~/.pip/pip.conf` before the XDG one) unless
    PIP_CONFIG_FILE names an existing file, then PIP_CONFIG_FILE itself. The virtual
    environment's own `pip.conf` does not apply: pip runs inside the new, empty environment.
    PIP_CONFIG_FILE set to the null device turns all files off.
    """
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    windows = platform == "win32"
    basename = "pip.ini" if windows else "pip.conf"
    home = environ.get("HOME") or os.path.expanduser("~")
    if windows:
        program_data = environ.get("ALLUSERSPROFILE", r"C:\ProgramData")
        site_dirs = [os.path.join(program_data, "pip")]
        appdata = environ.get("APPDATA", os.path.join(home, "AppData", "Roaming"))
        user_dir = os.path.join(appdata, "pip")
    elif platform == "darwin":
        site_dirs = ["/Library/Application Support/pip"]
        app_support = os.path.join(home, "Library", "Application Support", "pip")
        linux_like = os.path.join(home, ".config", "pip")
        user_dir = app_support if os.path.isdir(app_support) else linux_like
    else:
        xdg_dirs = environ.get("XDG_CONFIG_DIRS", "").strip() or "/etc/xdg"
        site_dirs = [os.path.join(d, "pip") for d in xdg_dirs.split(os.pathsep) if d]
        site_dirs.append("/etc")
        config_home = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.join(home, ".config")
        user_dir = os.path.join(config_home, "pip")
    files = [os.path.join(d, basename) for d in site_dirs]
    if not (env_file and os.path.exists(env_file)):
        files.append(os.path.join(home, "pip" if windows else ".pip", basename))
        files.append(os.path.join(user_dir, basename))
    if env_file:
        files.append(env_file)
    return files


def _read_file(path: str) -> dict[str, dict[str, str]]:
    import configparser  # only where a configuration file exists: not on every cold run

    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            parser.read_file(f)
    except (OSError, configparser.Error):
        return {}  # pip fails loudly on a broken file; the installer will say so itself
    return {
        section: {_normalize(k): v for k, v in parser.items(section)}
        for section in _SECTIONS
        if parser.has_section(section)
    }


def read_pip_config(environ: Mapping[str, str] | None = None) -> PipIndexConfig:
    """pip's effective values of the index options, as `pip install` would see them."""
    environ = ambient_environ() if environ is None else environ
    per_section: dict[str, dict[str, str]] = {s: {} for s in _SECTIONS}
    sources: list[str] = []
    for path in config_files(environ):
        found = _read_file(path)
        if found:
            sources.append(path)
        for section, values in found.items():
            per_section[section].update(values)
    env_values = {
        _normalize(name[4:]): value
        for name, value in environ.items()
        if name.startswith("PIP_") and _normalize(name[4:]) in _KEYS
    }
    if any(env_values.values()):
        sources.append("PIP_* variables")
    effective: dict[str, str] = {}
    # Section by section, as pip does: [install] of any file beats [global] of any file.
    for values in (*per_section.values(), env_values):
        effective.update({k: v for k, v in values.items() if k in _KEYS and v})

    def words(key: str) -> tuple[str, ...]:
        return tuple(effective.get(key, "").split())

    no_index = effective.get("no-index", "").strip().lower()
    return PipIndexConfig(
        index_url=effective.get("index-url", "").strip() or None,
        extra_index_urls=words("extra-index-url"),
        find_links=words("find-links"),
        no_index=no_index in _TRUE,
        trusted_hosts=words("trusted-host"),
        cert=effective.get("cert", "").strip() or None,
        client_cert=effective.get("client-cert", "").strip() or None,
        proxy=effective.get("proxy", "").strip() or None,
        constraints=words("constraint"),
        sources=tuple(sources),
    )


# uv's own index configuration: when any of it is present, uv's configuration wins.
UV_INDEX_VARIABLES = (
    "UV_INDEX",
    "UV_DEFAULT_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_INDEX_STRATEGY",
    "UV_INSECURE_HOST",
)
_UV_INDEX_KEYS = (
    "index",
    "index-url",
    "extra-index-url",
    "find-links",
    "no-index",
    "index-strategy",
    "allow-insecure-host",
)


def _sets_uv_index(table: object) -> bool:
    if not isinstance(table, dict):
        return False
    if any(key in table for key in _UV_INDEX_KEYS):
        return True
    return _sets_uv_index(table.get("pip"))


def _uv_file_sets_index(path: Path, *, pyproject: bool) -> bool:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return not pyproject  # a broken uv.toml is uv's to report, and uv's to configure
    if pyproject:
        tool = data.get("tool")
        return isinstance(tool, dict) and _sets_uv_index(tool.get("uv"))
    return _sets_uv_index(data)


def uv_config_files(
    environ: Mapping[str, str], cwd: str, platform: str = sys.platform
) -> list[tuple[Path, bool]]:
    """The files uv would read its settings from: (path, is a pyproject.toml)."""
    if environ.get("UV_NO_CONFIG"):
        return []
    found: list[tuple[Path, bool]] = []
    if environ.get("UV_CONFIG_FILE"):
        found.append((Path(environ["UV_CONFIG_FILE"]), False))
    # The nearest project directory: uv.toml there wins over [tool.uv] in pyproject.toml.
    for directory in (Path(cwd), *Path(cwd).parents):
        candidates = [(directory / "uv.toml", False), (directory / "pyproject.toml", True)]
        present = [(p, py) for p, py in candidates if p.is_file()]
        if present:
            found += present
            break
    home = environ.get("HOME") or os.path.expanduser("~")
    if platform == "win32":
        user = Path(environ.get("APPDATA", os.path.join(home, "AppData", "Roaming")))
        system = [Path(environ.get("SYSTEMDRIVE", "C:") + "\\") / "ProgramData"]
    else:
        user = Path(environ.get("XDG_CONFIG_HOME", "").strip() or os.path.join(home, ".config"))
        xdg_dirs = environ.get("XDG_CONFIG_DIRS", "").strip() or "/etc/xdg"
        system = [Path(d) for d in xdg_dirs.split(":") if d] + [Path("/etc")]
    found.append((user / "uv" / "uv.toml", False))
    found += [(d / "uv" / "uv.toml", False) for d in system]
    return [(p, py) for p, py in found if p.is_file()]


def uv_index_configuration(
    environ: Mapping[str, str] | None = None, cwd: str | None = None
) -> str | None:
    """Where the user configured uv's indexes explicitly (a variable or a file), or None."""
    environ = ambient_environ() if environ is None else environ
    for name in UV_INDEX_VARIABLES:
        if environ.get(name):
            return name
    if cwd is None:
        try:
            cwd = os.getcwd()
        except OSError:  # the current directory was deleted: no project configuration
            cwd = "/"
    for path, pyproject in uv_config_files(environ, cwd):
        if _uv_file_sets_index(path, pyproject=pyproject):
            return str(path)
    return None

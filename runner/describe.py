"""What `runner show` reports about a script: block, interpreter, environment, lock, alias.

One value (`describe`) that the CLI renders as text or JSON, so both always say the same.
Nothing is built here; the caller builds first if asked to.
"""

from __future__ import annotations

import os
from typing import Any

from runner import alias as aliases
from runner import layout
from runner.api import Prepared, RunOptions, Script, prepare
from runner.cache import Cache
from runner.redact import redact_url


def block_range(script: Script) -> tuple[int, int] | None:
    """1-based first and last line of the `script` block in the file, or None."""
    meta = script.metadata
    if meta.block is None or meta.block_line is None:
        return None
    return meta.block_line, meta.block_line + meta.block.count("\n") + 1


def describe(
    script: Script,
    options: RunOptions,
    cache: Cache,
    *,
    source: str | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Everything `show` prints, as plain data (credentials redacted)."""
    from runner import lockfile
    from runner.hashing import sha256_hex

    prepared = prepare(script, options, cache)
    spec = prepared.spec
    meta = script.metadata
    lines = block_range(script)
    interpreter = prepared.selection.interpreter
    env_dir = cache.lookup(spec.key)
    pointer = cache.pointer_target(spec.key)
    manifest = cache.read_manifest(env_dir) if env_dir is not None else None
    lock_path = layout.lock_path_for(script.path)
    lock = lockfile.load_lock(lock_path)
    lock_info: dict[str, Any] = {"path": os.path.abspath(lock_path), "exists": lock is not None}
    if lock is not None:
        why = lock.mismatch(meta, interpreter)
        lock_info["current"] = why is None
        lock_info["problem"] = why
    index = spec.index
    return {
        "script": os.path.abspath(script.path),
        "source": source,
        "command": command,
        "sha256": sha256_hex(script.data),
        "block": {"first_line": lines[0], "last_line": lines[1]} if lines else None,
        "requires_python": meta.requires_python,
        "dependencies": list(meta.dependencies) + list(options.with_requirements),
        "interpreter": {
            "path": interpreter.path,
            "implementation": interpreter.implementation,
            "version": interpreter.version,
            "reason": prepared.selection.reason,
        },
        "environment": {
            "key": spec.key,
            "path": str(env_dir or pointer) if (env_dir or pointer) else None,
            "exists": env_dir is not None,
        },
        "lock": lock_info,
        "distributions": (
            [
                {"name": str(d.get("name")), "version": str(d.get("version"))}
                for d in manifest.get("installed", [])
                if isinstance(d, dict)
            ]
            if manifest is not None
            else None
        ),
        "index": {
            "index_url": redact_url(index.index_url) if index.index_url else None,
            "extra_index_urls": [redact_url(u) for u in index.extra_index_urls],
            "find_links": [redact_url(u) for u in index.find_links],
            "no_index": index.no_index,
            "exclude_newer": spec.exclude_newer,
        },
        "alias": _alias_state(prepared, cache, env_dir),
    }


def _alias_state(prepared: Prepared, cache: Cache, env_dir: Any) -> dict[str, Any]:
    if prepared.digest is None:
        why = prepared.notes[0] if prepared.notes else "this run's options need the full path"
        return {"digest": None, "state": "unused", "detail": why}
    path = cache.scripts / prepared.digest
    import time

    target = aliases.read(str(path), os.environ, int(time.time()))
    if not path.exists():
        state, detail = "missing", "the next run takes the full path and writes it"
    elif target is None:
        state, detail = "stale", "its checks no longer hold; the next run writes it anew"
    elif env_dir is not None and os.path.normpath(target) != os.path.normpath(env_dir):
        state, detail = "elsewhere", f"points to another environment ({target})"
    else:
        state, detail = "valid", "a run starts on the warm path"
    return {"digest": prepared.digest, "state": state, "detail": detail}


def render(info: dict[str, Any]) -> str:
    """The human form of `describe`'s value (what --json prints, as lines)."""
    out: list[str] = []

    def line(label: str, value: object) -> None:
        out.append(f"{label + ':':<18}{value}")

    line("script", info["script"])
    if info["source"]:
        line("source", info["source"])
    if info["command"]:
        line("command", info["command"])
    line("sha256", info["sha256"])
    block = info["block"]
    line(
        "block",
        f"lines {block['first_line']}-{block['last_line']}" if block else "none (no dependencies)",
    )
    line("requires-python", info["requires_python"] or "(not set)")
    line("dependencies", ", ".join(info["dependencies"]) or "(none)")
    interp = info["interpreter"]
    line(
        "interpreter",
        f"{interp['implementation']} {interp['version']} ({interp['path']})",
    )
    line("  chosen as", interp["reason"])
    env = info["environment"]
    line("environment", env["key"])
    line("  path", env["path"] or "(none)")
    line("  exists", "yes" if env["exists"] else "no (the next run builds it)")
    lock = info["lock"]
    if lock["exists"]:
        state = "current" if lock["current"] else f"stale: {lock['problem']}"
        line("lock", f"{lock['path']} ({state})")
    else:
        line("lock", f"none ({lock['path']} does not exist)")
    dists = info["distributions"]
    if dists is None:
        line("installed", "(no environment yet)")
    else:
        line("installed", ", ".join(f"{d['name']}=={d['version']}" for d in dists) or "(nothing)")
    index = info["index"]
    line("index-url", index["index_url"] or "(pip's or uv's own configuration)")
    for url in index["extra_index_urls"]:
        line("extra-index-url", url)
    for link in index["find_links"]:
        line("find-links", link)
    if index["no_index"]:
        line("no-index", "yes")
    if index["exclude_newer"]:
        line("exclude-newer", index["exclude_newer"])
    alias = info["alias"]
    line("warm alias", f"{alias['state']}: {alias['detail']}")
    if alias["digest"]:
        line("  digest", alias["digest"])
    return "\n".join(out) + "\n"

"""`runner cache dir|list|prune|clean|verify`: inspect and clean the cache safely.

JSON schemas (stable; `"version"` changes if a field changes meaning or goes away):

`runner cache list --json`::

    {"version": 1, "root": str,
     "disk_usage": int  (bytes the environments and the file store really use together),
     "file_store_size": int  (bytes in the file store, files shared between environments),
     "environments": [{"key": str, "short_key": str, "path": str,
                       "state": "published" | "aliased" | "unpublished" | "incomplete",
                       "requirements": [str], "installed": [{"name": str, "version": str}],
                       "interpreter": str,
                       "size": int  (bytes: apparent size, shared files included),
                       "own_size": int  (bytes only this environment holds: freed by
                                         removing it),
                       "created": float | null, "last_used": float | null  (Unix seconds),
                       "in_use": bool | null  (null: the filesystem cannot tell),
                       "scripts": [str]  (scripts that used it, most recent first)}]}

`runner cache prune --json` and `runner cache clean --json`::

    {"version": 1, "dry_run": bool, "complete": bool, "bytes_freed": int,
     "removed": [{"kind": "environment" | "unpublished" | "trash" | "alias" | "pointer" | "temp"
                          | "log" | "stdin script" | "stray" | "stored files" | "index entries",
                  "path": str, "key": str | null, "size": int, "reason": str}],
     "kept": [{"key": str  ("" for entries runner did not make), "path": str,
               "reason": "in use" | "build in progress" | "cannot lock" | "lease file missing"
                         | "incomplete build" | "recently unpublished" | "not made by runner",
               "detail": str | null  (what uses it: "process 123 (python3)"),
               "removable_after": float | null  (Unix seconds, for the grace-period ones)}],
     "not_found": [str]  (clean SCRIPT...: scripts without an environment)}

`runner cache verify --json`::

    {"version": 1, "repair": bool,
     "environments": [{"key": str, "path": str, "state": str, "ok": bool,
                       "problems": [str], "action": str | null}],
     "stored_files": [{"path": str, "problem": str, "environments": [str] (store dirs linking
                       it), "action": str | null}]  (damaged files of the file store only),
     "bytecode_index": {"entries": int, "orphans": int (entries linking no stored file: never
                        used), "removed": int (with --repair)}}
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer

JSON_VERSION = 1

cache_app = typer.Typer(
    name="cache",
    help="Inspect and clean runner's cache (never touches environments of running scripts).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", "-n", help="Only report what would be removed.")
]
GraceOpt = Annotated[
    str | None,
    typer.Option(
        "--grace",
        hidden=True,
        help="Age before unpublished leftovers are removed (default 1h, or RUNNER_PRUNE_GRACE).",
    ),
]


def _cache() -> Any:
    from runner.cache import Cache
    from runner.cliopts import config

    cache = Cache(config=config())
    if cache.root.exists():
        cache.check_ownership()  # the trust rule: never list, prune or run another's cache
    return cache


def _key_for(script: str) -> str | None:
    """The environment key `runner run SCRIPT` would use with default options."""
    from runner import api
    from runner.errors import RunnerError

    try:
        cache = _cache()
        return api.prepare(api.load_script(script), api.RunOptions(), cache).spec.key
    except RunnerError:
        return None


def _emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


@cache_app.command("dir")
def dir_() -> None:
    """Print the cache root."""
    print(_cache().root)


@cache_app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """One row per environment: key, dependencies, interpreter, size, age, use."""
    from runner import lifecycle

    cache = _cache()
    infos = lifecycle.list_environments(cache)
    usage = lifecycle.cache_usage(cache)
    if json_:
        envs = []
        for info in infos:
            row = asdict(info)
            row["short_key"] = info.short_key
            row["requirements"] = list(info.requirements)
            row["installed"] = [{"name": n, "version": v} for n, v in info.installed]
            row["scripts"] = list(info.scripts)
            envs.append(row)
        _emit_json(
            {
                "version": JSON_VERSION,
                "root": str(cache.root),
                "disk_usage": usage.disk,
                "file_store_size": usage.file_store,
                "environments": envs,
            }
        )
        return
    print(render_table(infos, usage))


def _deps(info: Any) -> str:
    if info.state == "incomplete":
        return "(incomplete)"
    if not info.requirements:
        return "(no dependencies)"
    text = ", ".join(info.requirements)
    return text if len(text) <= 40 else text[:37] + "..."


def render_table(infos: Any, usage: Any = None) -> str:
    from runner.lifecycle import format_age, format_size

    if not infos:
        return "no environments in the cache"
    now = time.time()
    header = (
        "KEY",
        "STATE",
        "DEPENDENCIES",
        "PYTHON",
        "SIZE",
        "OWN",
        "CREATED",
        "LAST USED",
        "IN USE",
        "SCRIPTS",
    )
    rows = [header]
    for info in infos:
        in_use = "?" if info.in_use is None else ("yes" if info.in_use else "no")
        scripts = ", ".join(info.scripts[:2]) + (
            f" (+{len(info.scripts) - 2})" if len(info.scripts) > 2 else ""
        )
        rows.append(
            (
                info.short_key,
                info.state,
                _deps(info),
                info.interpreter,
                format_size(info.size),
                format_size(info.own_size),
                format_age(info.created, now),
                format_age(info.last_used, now),
                in_use,
                scripts or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    ]
    total = sum(i.size for i in infos)
    summary = f"{len(infos)} environment{'s' if len(infos) != 1 else ''}, {format_size(total)}"
    if usage is not None:
        summary += (
            f" apparent; {format_size(usage.disk)} on disk"
            f" ({format_size(usage.file_store)} in the shared file store)"
        )
    lines.append(summary)
    return "\n".join(line.rstrip() for line in lines)


def _result_json(result: Any, not_found: list[str]) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "dry_run": result.dry_run,
        "complete": result.complete,
        "bytes_freed": result.bytes_freed,
        "removed": [asdict(r) for r in result.removed],
        "kept": [asdict(k) for k in result.kept],
        "not_found": not_found,
    }


def render_result(result: Any, not_found: list[str]) -> str:
    from runner.lifecycle import format_age, format_size

    verb = "would remove" if result.dry_run else "removed"
    lines = []
    for r in result.removed:
        lines.append(f"runner: {verb} {r.kind} {r.path} ({format_size(r.size)}; {r.reason})")
    now = time.time()
    for k in result.kept:
        why = k.reason + (f": {k.detail}" if k.detail else "")
        if k.removable_after is not None:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(k.removable_after))
            left = format_age(now - max(0.0, k.removable_after - now), now).replace(" ago", "")
            why += f"; removable after {when}" + ("" if left == "just now" else f", in {left}")
        lines.append(f"runner: kept {k.path} ({why})")
    for script in not_found:
        lines.append(f"runner: no environment found for {script}")
    if not result.complete:
        lines.append("runner: stopped early (time budget); run again to finish")
    envs = sum(1 for r in result.removed if r.kind in ("environment", "unpublished"))
    others = len(result.removed) - envs
    lines.append(
        f"runner: {verb} {envs} environment{'s' if envs != 1 else ''} and "
        f"{others} other entr{'ies' if others != 1 else 'y'}, "
        f"{'would free' if result.dry_run else 'freed'} {format_size(result.bytes_freed)}; "
        f"{len(result.kept)} kept"
    )
    return "\n".join(lines)


def _grace(text: str | None) -> float | None:
    from runner.lifecycle import parse_duration

    return None if text is None else parse_duration(text, "--grace")


@cache_app.command()
def prune(
    older_than: Annotated[
        str,
        typer.Option("--older-than", help="Remove environments unused this long (30d, 12h, 90m)."),
    ] = "30d",
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    grace: GraceOpt = None,
) -> None:
    """Remove unused environments, killed builds' leftovers and stale entries."""
    from runner import lifecycle

    older, grace_seconds = lifecycle.parse_duration(older_than), _grace(grace)  # before any work
    result = lifecycle.prune(_cache(), older_than=older, dry_run=dry_run, grace=grace_seconds)
    if json_:
        _emit_json(_result_json(result, []))
    else:
        _err(render_result(result, []))


@cache_app.command()
def clean(
    scripts: Annotated[
        list[str] | None, typer.Argument(help="Only the environments serving these scripts.")
    ] = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
    grace: GraceOpt = None,
) -> None:
    """Remove every environment not in use (or only those serving SCRIPT...)."""
    from runner import lifecycle

    grace_seconds = _grace(grace)  # before any work
    result, not_found = lifecycle.clean(
        _cache(),
        scripts=list(scripts or ()),
        key_for=_key_for,
        dry_run=dry_run,
        grace=grace_seconds,
    )
    if json_:
        _emit_json(_result_json(result, not_found))
    else:
        _err(render_result(result, not_found))


@cache_app.command()
def verify(
    repair: Annotated[
        bool, typer.Option("--repair", help="Unpublish damaged environments so they are rebuilt.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Check every environment's files against their RECORDs (exit 106 if any is damaged)."""
    from runner import lifecycle, pycindex

    cache = _cache()
    # Stored files first: repairing one unpublishes the environments linking it.
    stored = lifecycle.verify_stored_files(cache, repair=repair)
    index = pycindex.verify(cache.root, repair=repair)
    checks = lifecycle.verify(cache, repair=repair)
    bad = [c for c in checks if not c.ok]
    if json_:
        _emit_json(
            {
                "version": JSON_VERSION,
                "repair": repair,
                "environments": [
                    {**asdict(c), "problems": list(c.problems), "ok": c.ok} for c in checks
                ],
                "stored_files": [
                    {**asdict(s), "environments": list(s.environments)} for s in stored
                ],
                "bytecode_index": {
                    "entries": index.entries,
                    "orphans": index.orphans,
                    "removed": index.removed,
                },
            }
        )
    else:
        for s in stored:
            _err(f"runner: damaged stored file {s.path}: {s.problem}")
            for env in s.environments:
                _err(f"  used by {env}")
            if s.action:
                _err(f"  -> {s.action}")
        if index.orphans:
            done = " (removed)" if index.removed else " (--repair removes them)"
            _err(
                f"runner: {index.orphans} of {index.entries} bytecode index entries link no "
                f"stored file: never used{done}"
            )
        for c in checks:
            if c.ok and c.action:
                _err(f"runner: {c.path}: {c.action}")
        for c in bad:
            _err(f"runner: damaged environment {c.path}:")
            for problem in c.problems:
                _err(f"  {problem}")
            if c.action:
                _err(f"  -> {c.action}")
        _err(
            f"runner: checked {len(checks)} environment{'s' if len(checks) != 1 else ''}, "
            f"{len(bad)} damaged; {len(stored)} damaged stored "
            f"file{'s' if len(stored) != 1 else ''}"
        )
    unrepaired = [c for c in bad if c.action not in ("unpublished", "removed")]
    if any(s.action is None for s in stored):
        from runner.errors import CacheError

        raise CacheError(
            f"{len(stored)} damaged file{'s' if len(stored) != 1 else ''} in the cache's "
            "file store",
            hint="Run `runner cache verify --repair`: it takes them out of the store and "
            "unpublishes the environments using them; the next run rebuilds those.",
        )
    if unrepaired:
        from runner.errors import CacheError

        raise CacheError(
            f"{len(unrepaired)} damaged environment{'s' if len(unrepaired) != 1 else ''} in "
            f"the cache",
            hint="Run `runner cache verify --repair` to unpublish them; the next run rebuilds."
            if not repair
            else "They are in use or being rebuilt; run `runner cache verify --repair` later.",
        )


def register(app: typer.Typer) -> None:
    """Add the `cache` command group to the top-level app."""
    app.add_typer(cache_app, name="cache")

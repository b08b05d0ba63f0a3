"""The METADATA headers runner reads itself agree with importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import sys
from pathlib import Path

import pytest

from runner import records
from runner.records import find_distribution, installed_distributions, read_metadata


def test_headers_continuations_and_body(tmp_path: Path) -> None:
    meta = tmp_path / "METADATA"
    meta.write_text(
        "Metadata-Version: 2.1\n"
        "Name: Demo-Pkg\n"
        "Version: 1.2\n"
        "License: line one\n"
        "  continued\n"
        "Requires-Dist: alpha>=1\n"
        "Requires-Dist: beta ; extra == 'fast'\n"
        "\n"
        "Requires-Dist: not-a-header (the description starts after the blank line)\n"
    )
    dist = read_metadata(str(meta))
    assert dist is not None
    assert (dist.name, dist.version) == ("Demo-Pkg", "1.2")
    assert dist.requires == ["alpha>=1", "beta ; extra == 'fast'"]
    meta.write_text("Version: 1\n")
    assert read_metadata(str(meta)) is None  # no name: not a distribution
    assert read_metadata(str(tmp_path / "missing")) is None


def test_agrees_with_importlib_metadata_on_this_environment() -> None:
    site = [p for p in sys.path if p.endswith("site-packages")]
    ours = {
        d.name: (d.version, d.requires, d.requires_python) for d in installed_distributions(site)
    }
    compared = 0
    for dist in importlib.metadata.distributions(path=site):
        name = dist.metadata["Name"]
        if name in ours:
            theirs = (dist.version, dist.requires or [], dist.metadata["Requires-Python"] or "")
            assert ours[name] == theirs, name
            compared += 1
    assert compared >= 10


def test_pips_requires_python_is_read_from_its_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import installers

    expected = importlib.metadata.metadata("pip")["Requires-Python"]
    # Read from pip's own METADATA: importlib.metadata is not used (its import costs ~20 ms).
    monkeypatch.setitem(sys.modules, "importlib.metadata", None)
    assert installers._requires_python_of_pip() == expected


def test_find_distribution_by_canonical_name(tmp_path: Path) -> None:
    for entry, name in (
        ("Zope.Interface-6.0.dist-info", "Zope.Interface"),
        ("a_b-1.dist-info", "a_b"),
    ):
        (tmp_path / entry).mkdir()
        (tmp_path / entry / "METADATA").write_text(f"Name: {name}\nVersion: 1\n")
    (tmp_path / "pip_tools-7.dist-info").mkdir()  # not pip
    (tmp_path / "pip_tools-7.dist-info" / "METADATA").write_text("Name: pip-tools\n")
    assert find_distribution(str(tmp_path), "pip") is None
    found = find_distribution(str(tmp_path), "a-b")
    assert found is not None and found.name == "a_b"
    found = find_distribution(str(tmp_path), "zope-interface")
    assert found is not None and found.name == "Zope.Interface"
    assert find_distribution(str(tmp_path / "missing"), "pip") is None


def _install_scripts(env: Path, scripts: dict[str, bytes]) -> Path:
    """An environment at `env` with one distribution whose RECORD lists `scripts` in bin."""
    import base64
    import hashlib

    site = env / "lib" / "python3.11" / "site-packages"
    dist_info = site / "demo-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (env / "bin").mkdir()
    (site / "demo.py").write_text("X = 1\n")
    rows = ["demo.py,,6"]
    for name, data in scripts.items():
        (env / "bin" / name).write_bytes(data)
        (env / "bin" / name).chmod(0o755)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"../../../bin/{name},sha256={digest},{len(data)}")
    (dist_info / "METADATA").write_text("Name: demo\nVersion: 1.0\n")
    (dist_info / "RECORD").write_text("\n".join([*rows, "demo-1.0.dist-info/RECORD,,"]) + "\n")
    return dist_info


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX scripts")
@pytest.mark.parametrize("env_name", ["env", "e n v", "long" + "x" * 130])
def test_scripts_written_for_the_base_interpreter_are_pointed_at_the_environment(
    tmp_path: Path, env_name: str
) -> None:
    from runner.records import record_problems, repoint_scripts

    base = tmp_path / "base" / "bin" / "python3.11"
    base.parent.mkdir(parents=True)
    base.write_bytes(b"")
    spaced = tmp_path / "a b" / "python3"  # another path to the same file, with a space
    spaced.parent.mkdir()
    spaced.symlink_to(base)
    body = b"import sys\nsys.exit(0)\n"
    big = b"".join(b"# line %d\n" % i for i in range(5000)) + body  # past the header read
    env = tmp_path / env_name
    dist_info = _install_scripts(
        env,
        {
            "short": b"#!" + str(base).encode() + b"\n" + body,
            "trampoline": b"#!/bin/sh\n'''exec' '" + str(spaced).encode() + b'\' "$0" "$@"\n'
            b"' '''\n" + body,
            "env-form": b"#!/usr/bin/env python3\n" + body,
            "other": b"#!/opt/other/python\n" + body,
            "shell": b"#!/bin/bash\necho hi\n",
            "args": b"#!" + str(base).encode() + b" -E\n" + body,
            "big": b"#!" + str(base).encode() + b"\n" + big,
        },
    )
    python = str(env / "bin" / "python")
    os.symlink(base, python)  # as in a venv: the scripts' new interpreter is the same file
    changed = repoint_scripts(env, str(base), python)
    assert sorted(os.path.basename(p) for p in changed) == ["big", "short", "trampoline"]
    assert (env / "bin" / "big").read_bytes() == records.shebang(python) + big
    for name in ("short", "trampoline"):
        data = (env / "bin" / name).read_bytes()
        assert data.endswith(body) and str(base).encode() not in data
        if len(python) + 2 <= 127 and " " not in python:
            assert data == f"#!{python}\n".encode() + body
        else:  # the kernel would not read that line: sh starts the interpreter
            assert data.startswith(b"#!/bin/sh\n'''exec' ")
            assert shlex.split(data.split(b"\n")[1].decode())[1] == python
        assert os.stat(env / "bin" / name).st_mode & 0o777 == 0o755
    # Left as the wheel shipped them: another interpreter, or a line with arguments.
    assert (env / "bin" / "env-form").read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert (env / "bin" / "other").read_bytes().startswith(b"#!/opt/other/python\n")
    assert (env / "bin" / "args").read_bytes().startswith(b"#!" + str(base).encode() + b" -E")
    # The RECORD agrees with the new files: sizes and hashes.
    site = dist_info.parent
    assert record_problems(site, dist_info, hashes=True) == []
    assert repoint_scripts(env, str(base), python) == []  # nothing left to change
    assert not list((env / "bin").glob(".*"))  # no temporary files left behind

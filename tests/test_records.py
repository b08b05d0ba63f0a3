"""The METADATA headers runner reads itself agree with importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

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

"""The METADATA headers runner reads itself agree with importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from runner.records import installed_distributions, read_metadata


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
    ours = {d.name: (d.version, d.requires) for d in installed_distributions(site)}
    compared = 0
    for dist in importlib.metadata.distributions(path=site):
        name = dist.metadata["Name"]
        if name in ours:
            assert ours[name] == (dist.version, dist.requires or []), name
            compared += 1
    assert compared >= 10

"""Print a pip constraints file pinning every `>=` floor that pyproject.toml declares.

`.ci/run` installs the project with it into a second virtual environment and runs the tests
there too, so the floors are versions the code has really been tested with.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name, then (after extras) a `>=` floor among the specifiers.
_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?[^;]*?>=\s*([^,;\s]+)")


def floors(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # The build backend too: PIP_CONSTRAINT also reaches pip's isolated build environment.
    requirements = list(project["build-system"]["requires"])
    requirements += project["project"]["dependencies"]
    optional = project["project"].get("optional-dependencies", {})
    for extra in extras:
        requirements += optional[extra]
    pins = {}
    for requirement in requirements:
        match = _FLOOR.match(requirement)
        if match is None:
            raise SystemExit(f"no '>=' floor in {requirement!r}: declare one")
        pins[match.group(1).lower()] = f"{match.group(1)}=={match.group(2)}"
    return sorted(pins.values())


if __name__ == "__main__":
    print("\n".join(floors(sys.argv[1:])))

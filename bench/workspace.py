"""The benchmarks' shared set-up: a two-package script served from local wheels."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.wheels import make_wheel  # the repo's own tiny-wheel builder

SCRIPT = '# /// script\n# dependencies = ["alpha", "beta"]\n# ///\nimport alpha, beta\n'


def two_package_script(prefix: str) -> tuple[Path, Path, dict[str, str]]:
    """A fresh work directory, the script in it, and an environment that installs only
    from its wheels (no network; no ambient pip, uv or runner settings)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    wheels = work / "wheels"
    make_wheel(wheels, "alpha", "1.0")
    make_wheel(wheels, "beta", "1.0", requires=["alpha"])
    script = work / "two.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "RUNNER_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        UV_OFFLINE="1",  # uv has no UV_NO_INDEX: offline it uses the find-links only
        UV_FIND_LINKS=str(wheels),
        UV_CACHE_DIR=str(work / "uv-cache"),
        RUNNER_NO_AUTO_PRUNE="1",
    )
    return work, script, env

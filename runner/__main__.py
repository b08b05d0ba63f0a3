"""`python -m runner`: the same entry point, and the same behaviour, as the console script."""

import os
import sys

# `-m` puts the current directory first on sys.path, the console script does not: drop it,
# so a `typer.py` or `click.py` that happens to be in the current directory changes nothing.
if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from runner.launcher import main  # after the sys.path fix, on purpose

raise SystemExit(main())

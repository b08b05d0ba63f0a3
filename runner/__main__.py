"""`python -m runner`: the same entry point as the console script."""

from runner.launcher import main

raise SystemExit(main())

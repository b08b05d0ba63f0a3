"""`python -m runner`: the same entry point as the console script."""

from runner.fastpath import main

raise SystemExit(main())

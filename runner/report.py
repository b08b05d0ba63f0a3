"""Human-facing progress output (stderr only). The core calls it; it never decides anything."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO


class Reporter:
    """Progress and diagnostics for one command. Quiet: errors only. Verbose: everything."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None):
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stderr
        self.color = (
            not os.environ.get("NO_COLOR") and hasattr(self.stream, "isatty") and self.stream.isatty()
        )
        self._started = time.monotonic()

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        if not self.quiet:
            self._write(f"runner: {message}")

    def detail(self, message: str) -> None:
        """Only with -v."""
        if self.verbose:
            self._write(f"runner: {message}")

    def warn(self, message: str) -> None:
        if not self.quiet:
            prefix = "\033[33mwarning\033[0m" if self.color else "warning"
            self._write(f"runner: {prefix}: {message}")

    def phase(self, message: str) -> None:
        """A step of a build (creating, installing, compiling...)."""
        self.info(message)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

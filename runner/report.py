"""Human-facing progress output (stderr only). The core calls it; it never decides anything.

On a terminal a build shows one live status line (phase and elapsed time) that is rewritten
in place and erased when the build ends; elsewhere (a pipe, a CI log, TERM=dumb, -v) each new
phase is one plain line. `quiet` keeps errors only (the CLI renders those); `verbose` adds
details, and the installer's own output is streamed instead of the derived phases.
NO_COLOR turns colour off.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from runner.redact import redact_text

_TICK = 0.1  # seconds between redraws of the live line's clock


class Reporter:
    """Progress and diagnostics for one command. Quiet: errors only. Verbose: everything."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None):
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stderr
        tty = _isatty(self.stream)
        self.color = tty and not os.environ.get("NO_COLOR")
        # A live line needs a terminal that understands "erase line"; -v streams raw output
        # that a rewritten line would garble.
        self.live = tty and not quiet and not verbose and os.environ.get("TERM") != "dumb"
        self._started = time.monotonic()
        self._lock = threading.RLock()
        self._status: str | None = None
        self._status_since = 0.0
        self._on_screen = False
        self._last_phase: str | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ lines

    def _write(self, text: str) -> None:
        with self._lock:
            self._erase()
            self.stream.write(redact_text(text) + "\n")
            if self._status is not None:
                self._draw()
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

    # ------------------------------------------------------------------ build progress

    def phase(self, message: str) -> None:
        """A step of runner's own (creating an environment, installing...)."""
        self._progress(message, message)

    def step(self, phase: str, detail: str = "") -> None:
        """A phase derived from the installer's output (resolving, downloading, installing N
        packages, compiling). With -v the installer's output is shown instead."""
        if self.verbose:
            return
        self._progress(f"{phase} {detail}" if detail else phase, phase)

    def _progress(self, text: str, phase: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self.live:
                if self._status is None:
                    self._status_since = time.monotonic()
                self._status = text
                self._draw()
                self.stream.flush()
                self._start_ticker()
            elif phase != self._last_phase:
                self._last_phase = phase
                self._write(f"runner: {text}")

    def end_status(self) -> None:
        """The build is over: erase the live line (the caller reports the outcome)."""
        with self._lock:
            self._status = None
            self._last_phase = None
            self._stop.set()
            self._erase()
            self.stream.flush()
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join()
        self._stop = threading.Event()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # ------------------------------------------------------------------ the live line

    def _draw(self) -> None:
        if self._status is None:
            return
        clock = f" ({time.monotonic() - self._status_since:.1f} s)"
        text = self._status
        room = _columns(self.stream) - 1 - len("runner: ") - len(clock)
        if len(text) > room:
            text = text[: max(room - 1, 0)] + "…"
        if self.color:
            text = f"\033[36m{text}\033[0m"
            clock = f"\033[2m{clock}\033[0m"
        self.stream.write(f"\r\033[Krunner: {text}{clock}")
        self._on_screen = True

    def _erase(self) -> None:
        if self._on_screen:
            self.stream.write("\r\033[K")
            self._on_screen = False

    def _start_ticker(self) -> None:
        if self._ticker is not None:
            return
        stop = self._stop

        def tick() -> None:
            while not stop.wait(_TICK):
                with self._lock:
                    if self._status is None:
                        return
                    self._draw()
                    self.stream.flush()

        self._ticker = threading.Thread(target=tick, name="runner-status", daemon=True)
        self._ticker.start()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _columns(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80
    return max(columns, 20) if columns else 80  # a pty nobody sized reports 0

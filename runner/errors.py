"""One error base class for everything runner reports to a user, with documented exit codes."""

from __future__ import annotations

# Exit codes are chosen away from the ones scripts commonly use (0-2, 126-128+N) so a
# caller can tell runner's own failure from the script's. README.md lists them.
EXIT_USAGE = 2
EXIT_SCRIPT = 101
EXIT_METADATA = 102
EXIT_INTERPRETER = 103
EXIT_INSTALL = 104
EXIT_NETWORK = 105
EXIT_CACHE = 106
EXIT_LOCKFILE = 107
EXIT_HASH = 108


class RunnerError(Exception):
    """A failure runner explains to the user: what went wrong, and how to fix it."""

    exit_code = 100

    def __init__(self, message: str, hint: str | None = None, *, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Captured output of a failed subprocess, shown below the message.
        self.details = details

    def __str__(self) -> str:
        return self.message


class UsageError(RunnerError):
    exit_code = EXIT_USAGE


class ScriptError(RunnerError):
    """The script file is missing, unreadable or undecodable."""

    exit_code = EXIT_SCRIPT


class MetadataError(RunnerError):
    """The script's `# /// script` block is malformed."""

    exit_code = EXIT_METADATA


class InterpreterError(RunnerError):
    """No usable interpreter satisfies the script's requirements."""

    exit_code = EXIT_INTERPRETER


class InstallError(RunnerError):
    """The installer could not install the script's dependencies."""

    exit_code = EXIT_INSTALL


class NetworkError(InstallError):
    """A package index could not be reached."""

    exit_code = EXIT_NETWORK


class CacheError(RunnerError):
    """The cache cannot be used (permissions, disk space, ownership)."""

    exit_code = EXIT_CACHE


class LockfileError(RunnerError):
    """A pylock file is missing, out of date or invalid."""

    exit_code = EXIT_LOCKFILE


def format_error(exc: RunnerError) -> str:
    """The text runner prints for its own failure: the message, the failed command's
    captured output (indented), and the fix."""
    lines = [f"runner: error: {exc.message}"]
    if exc.details:
        lines += ["  " + line for line in exc.details.rstrip().splitlines()]
    if exc.hint:
        lines.append(f"runner: hint: {exc.hint}")
    return "\n".join(lines) + "\n"


class HashMismatchError(RunnerError):
    """A script's content differs from the sha256 it was pinned to (--sha256)."""

    exit_code = EXIT_HASH

"""The one table of run options (`run`, `sync`, `python`, `lock` share it) and its parser.

Each option says how it is spelled, whether it takes a value, whether it selects the
environment (then its canonical value goes into the warm-path alias digest) and how its
value is canonicalized. The launcher parses `runner run` with `parse_run` (stdlib only);
the CLI declares its typer options from the same table, and a property test requires both
to read every argument list alike. Stdlib only: the launcher imports it on every run.
"""

# No dataclasses, typing or __future__ here: their imports alone would double the launcher's
# own cost on a warm run.
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class Option:
    """One option of `run`: its spellings, whether it takes a value (and may repeat), and the
    name under which its canonical value enters the alias digest ("": it does not select the
    environment). `name` is the field of `api.RunOptions` it fills (or quiet/verbose)."""

    __slots__ = ("flags", "help", "metavar", "multiple", "name", "selects", "takes_value")

    def __init__(
        self,
        name: str,
        flags: tuple[str, ...],
        help: str,
        *,
        takes_value: bool = False,
        multiple: bool = False,
        selects: str = "",
        metavar: str = "",
    ) -> None:
        self.name = name
        self.flags = flags
        self.help = help
        self.takes_value = takes_value
        self.multiple = multiple
        self.selects = selects
        self.metavar = metavar

    def empty(self) -> object:
        """The option's value when it is not given."""
        if not self.takes_value:
            return False
        return () if self.multiple else None


RUN_OPTIONS: tuple[Option, ...] = (
    Option(
        "python",
        ("--python", "-p"),
        "Interpreter: a path, a version like 3.12, a specifier, or a command on PATH.",
        takes_value=True,
        selects="python",
        metavar="PYTHON",
    ),
    Option(
        "with_requirements",
        ("--with",),
        "Extra requirement for this run (repeatable).",
        takes_value=True,
        multiple=True,
        selects="with",
        metavar="REQ",
    ),
    Option(
        "index_url",
        ("--index-url",),
        "Base URL of the package index.",
        takes_value=True,
        selects="index-url",
        metavar="URL",
    ),
    Option(
        "extra_index_urls",
        ("--extra-index-url",),
        "Additional index URL (repeatable).",
        takes_value=True,
        multiple=True,
        selects="extra-index-url",
        metavar="URL",
    ),
    Option(
        "find_links",
        ("--find-links",),
        "Directory or URL with distributions (repeatable).",
        takes_value=True,
        multiple=True,
        selects="find-links",
        metavar="PATH",
    ),
    Option("no_index", ("--no-index",), "Ignore package indexes.", selects="no-index"),
    Option(
        "exclude_newer",
        ("--exclude-newer",),
        "Only use distributions uploaded before this time.",
        takes_value=True,
        selects="exclude-newer",
        metavar="TIME",
    ),
    Option(
        "locked",
        ("--locked",),
        "Require an up-to-date pylock file beside the script.",
        selects="locked",
    ),
    Option("refresh", ("--refresh", "--upgrade"), "Build anew with the newest allowed versions."),
    Option("offline", ("--offline",), "Never touch the network (also RUNNER_OFFLINE)."),
    Option(
        "installer",
        ("--installer",),
        "pip, uv or auto (also RUNNER_INSTALLER).",
        takes_value=True,
        metavar="NAME",
    ),
    Option(
        "sha256",
        ("--sha256",),
        "Run only if the script's content has this sha256 (a file or a URL).",
        takes_value=True,
        metavar="HEX",
    ),
    Option(
        "allow_insecure_http",
        ("--allow-insecure-http",),
        "Allow downloading the script (or a redirect) over plain http://.",
    ),
    Option("quiet", ("--quiet", "-q"), "Only report errors."),
    Option("verbose", ("--verbose", "-v"), "Show the installer's output."),
)
BY_NAME = {option.name: option for option in RUN_OPTIONS}
_BY_FLAG = {flag: option for option in RUN_OPTIONS for flag in option.flags}
HELP_FLAGS = ("--help", "-h")


# Presentation flags: they change what runner prints, not the environment.
PRESENTATION = frozenset({"quiet", "verbose"})
# Checks on the script itself (runner.remote): they decide whether it runs, not where.
SCRIPT_CHECKS = frozenset({"sha256", "allow_insecure_http"})
ENV_FIELDS = tuple(o.name for o in RUN_OPTIONS if o.name not in PRESENTATION | SCRIPT_CHECKS)


def selection_pairs(values: "Mapping[str, object]") -> list[tuple[str, str]]:
    """(name, canonical value) of every given option that selects the environment."""
    pairs: list[tuple[str, str]] = []
    for option in RUN_OPTIONS:
        if not option.selects:
            continue
        value = values.get(option.name)
        if not option.takes_value:
            if value:
                pairs.append((option.selects, ""))
            continue
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, str) and item:
                pairs.append((option.selects, canonical(option.selects, item)))
    return pairs


def is_path_value(value: str) -> bool:
    """Whether a --python value names a file: it has a path separator or starts with `~`.

    A bare name (`pypy3`, `python3.12`) is a version or a command on PATH, whatever files the
    current directory holds: write `./pypy3` for a file there.
    """
    return "/" in value or os.sep in value or value.startswith("~")


def canonical(name: str, value: str) -> str:
    """Make an option value independent of the working directory where it names a path.

    The launcher canonicalizes at parse time, so the working directory is the one the run
    started in."""
    if name == "python" and is_path_value(value):
        return os.path.abspath(os.path.expanduser(value))
    if name == "find-links" and "://" not in value:
        return os.path.abspath(os.path.expanduser(value))
    return value


class ParsedRun:
    """`runner run [OPTIONS] SCRIPT [ARGS]...` as the launcher reads it. `values` maps every
    option of the table (the ones not given too) to its value."""

    __slots__ = ("args", "script", "values")

    def __init__(self, values: "dict[str, object]", script: str, args: list[str]) -> None:
        self.values = values
        self.script = script
        self.args = args


class UsageProblem:
    """The command line cannot be read: a message and a hint, for exit status 2."""

    __slots__ = ("hint", "message")

    def __init__(self, message: str, hint: str) -> None:
        self.message = message
        self.hint = hint


def parse_run(argv: list[str]) -> "ParsedRun | UsageProblem | None":
    """Read the arguments after `run` as click does for the CLI's `run`; None where the CLI
    must answer (help)."""
    values: dict[str, object] = {o.name: o.empty() for o in RUN_OPTIONS}

    def take(option: Option, value: str | None) -> None:
        if not option.takes_value:
            values[option.name] = True
        elif option.multiple:
            values[option.name] = (*values[option.name], value)  # type: ignore[misc]
        else:
            values[option.name] = value

    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg in HELP_FLAGS:
            return None
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            option = _BY_FLAG.get(name)
            if option is None:
                return _unknown(name)
            if option.takes_value:
                if not eq:
                    if i + 1 >= len(argv):
                        return _needs_value(name)
                    i += 1
                    value = argv[i]
                take(option, value)
            elif eq:
                return UsageProblem(
                    f"option {name} does not take a value", hint=f"Write {name} alone."
                )
            else:
                take(option, None)
        else:
            # Short options: `-p VALUE`, `-pVALUE`, and clusters of flags such as `-qv`.
            j = 1
            while j < len(arg):
                flag = "-" + arg[j]
                option = _BY_FLAG.get(flag)
                if option is None:
                    return _unknown(flag if j > 1 else arg)
                if option.takes_value:
                    value = arg[j + 1 :]
                    if not value:
                        if i + 1 >= len(argv):
                            return _needs_value(flag)
                        i += 1
                        value = argv[i]
                    take(option, value)
                    break
                take(option, None)
                j += 1
        i += 1
    if i >= len(argv):
        return UsageProblem(
            "missing the script to run",
            hint="Usage: runner run [OPTIONS] SCRIPT [ARGS]... ('-' reads standard input).",
        )
    return ParsedRun(values, argv[i], argv[i + 1 :])


def _unknown(flag: str) -> UsageProblem:
    return UsageProblem(
        f"no such option: {flag}",
        hint="runner's options go before the script (`runner run --help` lists them); "
        f"for a file named {flag}, write ./{flag}.",
    )


def _needs_value(flag: str) -> UsageProblem:
    return UsageProblem(f"option {flag} requires a value", hint=f"Write {flag} VALUE.")

"""The `# ///` block scanner: what the specification's reference regex finds (stdlib only).

The launcher hashes the raw block it finds here; the metadata parser parses the same block,
so the warm path and the cold path can never disagree about which block a script has.
"""

_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def split_lines(text: str) -> list[str]:
    """Split source text into lines the way Python's tokenizer does (\\r\\n, \\r, \\n)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _opener_type(line: str) -> str | None:
    if line.startswith("# /// "):
        kind = line[6:]
        if kind and all(c in _TYPE_CHARS for c in kind):
            return kind
    return None


def _is_content(line: str) -> bool:
    return line == "#" or line.startswith("# ")


def find_blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """Return (type, opener index, closer index) for every closed metadata block.

    Exactly what the specification's reference regular expression finds: a block opens with
    `# /// TYPE`, every following line of its run is `#` or starts with `# `, and the block
    ends at the *last* `# ///` line of that run that has at least one content line before
    it. Ordinary comments may follow the closer. A run with no such `# ///` line is an
    unclosed block and is ignored.
    """
    blocks: list[tuple[str, int, int]] = []
    i, n = 0, len(lines)
    while i < n:
        kind = _opener_type(lines[i])
        if kind is None:
            i += 1
            continue
        j = i + 1
        while j < n and _is_content(lines[j]):
            j += 1
        # The regex's greedy content group backtracks to the last closer of the run; it
        # needs one content line at least, so the closer cannot be the line after the opener.
        for end in range(j - 1, i + 1, -1):
            if lines[end] == "# ///":
                blocks.append((kind, i, end))
                break
        # Closed or not, no opener inside this run can start a block of its own: its closer
        # candidates would be a subset of this opener's. Skipping the run keeps it linear.
        i = j
    return blocks


def unclosed_openers(lines: list[str]) -> list[tuple[str, int]]:
    """(type, 0-based index) of every `# /// TYPE` line that does not open a closed block.

    The specification says to ignore such a line; runner still tells the user about it.
    Opener lines inside a block's content belong to that block and are not reported.
    """
    inside: set[int] = set()
    for _, start, end in find_blocks(lines):
        inside.update(range(start, end + 1))
    found = []
    for i, line in enumerate(lines):
        kind = _opener_type(line)
        if kind is not None and i not in inside:
            found.append((kind, i))
    return found


def block_content(lines: list[str], start: int, end: int) -> str:
    """The embedded text of a block: each line without its leading `# ` (or `#`)."""
    return "".join(line[2:] + "\n" for line in lines[start + 1 : end])


def script_block(text: str) -> tuple[str, int] | bool | None:
    """Return (content, opener index) of the single `script` block, None, or False if duplicated."""
    lines = split_lines(text.removeprefix("\ufeff"))
    found = [b for b in find_blocks(lines) if b[0] == "script"]
    if not found:
        return None
    if len(found) > 1:
        return False
    _, start, end = found[0]
    return block_content(lines, start, end), start

"""Downloaded scripts in the cache: where they are, and the record of what a URL served
(stdlib only: the launcher reads a record to start a fresh download on the warm path).

    urls/<sha256 of the content>.py     the script, named by its content
    urls/<sha256 of the URL>.url        what the URL served last and when (no credentials)

`runner.remote` downloads and writes; this module only names and reads.
"""

import os

from runner.hashing import sha256_hex

URL_DIR = "urls"
RECORD_FORMAT = "1"


def copy_path(root: str, digest: str) -> str:
    return os.path.join(root, URL_DIR, digest + ".py")


def record_path(root: str, public_url: str) -> str:
    """The record of a URL, named by the URL *without* credentials (`public_url`)."""
    name = sha256_hex(public_url.encode("utf-8", "surrogateescape"))
    return os.path.join(root, URL_DIR, name + ".url")


def read_record(root: str, public_url: str) -> "dict[str, str] | None":
    """The fields of the URL's record (url, sha256, fetched, maybe etag and last-modified),
    or None: missing, foreign, truncated, or for another URL."""
    try:
        with open(record_path(root, public_url), encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if lines[:1] != ["runner-url " + RECORD_FORMAT] or lines[-2:] != ["end", ""]:
        return None
    fields = {}
    for line in lines[1:-2]:
        name, _, value = line.partition("\t")
        fields[name] = value
    digest = fields.get("sha256", "")
    if fields.get("url") != public_url or len(digest) != 64:
        return None
    try:
        float(fields.get("fetched", ""))
    except ValueError:
        return None
    return fields


def fresh_copy(root: str, url: str, ttl: float, now_s: float) -> str | None:
    """The stored copy of `url` if it was downloaded less than `ttl` seconds ago and is
    intact (its content still has its name's sha256); None otherwise, and for a URL with
    credentials (only the full path strips them)."""
    if "@" in url.partition("://")[2].partition("/")[0]:
        return None
    fields = read_record(root, url)
    if fields is None or not 0 <= now_s - float(fields["fetched"]) < ttl:
        return None
    path = copy_path(root, fields["sha256"])
    try:
        with open(path, "rb") as f:
            data = f.read()
        if sha256_hex(data) != fields["sha256"]:
            return None
        os.utime(path)  # its mtime is its last use: prune keeps it
    except OSError:
        return None
    return path

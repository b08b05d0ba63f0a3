"""The bytecode index: a variant links the .pyc files the store already holds for its
sources instead of compiling them again.

A variant of a heavy environment (numpy + pandas + one small package) shares its sources
with the store, then compiled every one of them again, to the byte: the same source, the
same recorded file name, the same mtime (the stored file's), the same interpreter. The
index remembers which stored .pyc compiling a source gave:

    files/pyc/<64 hex>   a hard link to the stored .pyc (`files/<ab>/<62 hex>`)

named by the sha256 of canonical JSON holding the index format, the interpreter's magic
number and cache tag, the optimization level and invalidation mode, the source's sha256,
the environment-relative directory the .pyc records (`bytecode.compile_tree(relative_to=)`)
and the file name: everything a .pyc's bytes depend on except the source's mtime and size,
which its 16-byte header holds and a hit compares with the source in hand.

Hard links, not small files holding the .pyc's sha256: a new inode costs 150-250 us on this
project's test machine (ext4) and a link 15 us, so recording numpy + pandas' 1,970 sources
took 0.39 s of a 7.3 s first build as symbolic links, and takes 0.05 s as hard links, with
no inode and no block per entry. One directory, not 256: making them cost a first build
65 ms more.

A first build (an empty index) reads nothing but still records: 0.03 s computing keys and
0.05 s linking entries of an 8.3 s numpy + pandas build (1%), which the first variant gets
back many times over (its compile step: 4-6 s down to 0.1 s).

Invariants:

- An entry is a hint, never trusted alone. A hit needs the entry to be a read-only regular
  file that the store names too (two links at least) and whose header is exactly what
  compiling the source in hand writes (magic number, flags 0 for timestamp invalidation,
  the source's mtime and size). The key holds the rest (content, recorded file name,
  interpreter), so a linked .pyc is byte for byte what compiling would have written. A
  stale entry (uv re-extracted a source, with a new mtime) is a miss; the build compiles
  that file and replaces the entry.
- The compile step runs as before: compileall (force=False) finds a linked .pyc up to date
  and leaves it; everything else compiles.
- Recorded are only .pyc files this build compiled (none was there before: an installer's
  shipped .pyc is never propagated), that went into the store, and whose header matches
  the source as it was looked up.
- Anything unexpected (a missing file, EXDEV, a read-only store) is a miss or an entry not
  written; nothing here fails a build. A linked .pyc appears at its name complete (os.link)
  or not at all, so a build killed at any point leaves nothing half-made; entries are
  made by os.link too, or replaced by renaming a link made under a temporary name.
- The index is under files/ and follows the cache trust rule like the store (the builder
  checks files/); files/pyc must itself be a real directory of the caller's, not writable
  by others: an index others could write is never read.
- The store's names and the index's together hold a stored .pyc: prune and clean remove
  its entries when nothing else links it (renamed aside first, as the store's own files,
  so that a build linking it at that moment keeps it), then the file (`lifecycle`). `cache
  verify` removes the entries of a damaged file before the file itself, and entries that
  link no stored file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from runner import bytecode, filestore, layout
from runner.cache import Cache
from runner.interpreters import Interpreter
from runner.report import Reporter
from runner.values import dataclass

INDEX_FORMAT = 1
# What bytecode.compile_tree writes: the default optimization level (plain .pyc) and
# timestamp invalidation (header flags 0).
OPTIMIZATION = 0
INVALIDATION = "timestamp"
TEMP_PREFIX = filestore.TEMP_PREFIX  # an entry being swapped in or removed: `.tmp-<hex>`
LINK_THREADS = filestore.SHARE_THREADS
_FLAGS_TIMESTAMP = b"\0\0\0\0"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)

T = TypeVar("T")
R = TypeVar("R")

_link = os.link  # tests replace it to simulate filesystems without hard links


@dataclass(frozen=True)
class Compiler:
    """What names and heads the .pyc files of an interpreter."""

    magic: bytes  # importlib.util.MAGIC_NUMBER, 4 bytes
    cache_tag: str  # sys.implementation.cache_tag

    @classmethod
    def of(cls, magic_hex: str, cache_tag: str) -> Compiler | None:
        """From an interpreter probe's fields; None when the probe could not tell."""
        try:
            magic = bytes.fromhex(magic_hex)
        except ValueError:
            return None
        if len(magic) != 4 or not cache_tag or "/" in cache_tag or os.sep in cache_tag:
            return None
        return cls(magic, cache_tag)

    def key_prefix(self) -> str:
        """The canonical JSON of a key up to the source's digest (see `entry_key`)."""
        fixed = [INDEX_FORMAT, self.magic.hex(), self.cache_tag, OPTIMIZATION, INVALIDATION]
        return json.dumps(fixed, separators=(",", ":"))[:-1] + ","


def index_root(cache_root: Path) -> Path:
    return filestore.store_root(cache_root) / layout.PYC_INDEX_DIR


def entry_key(compiler: Compiler, source_digest: str, rel_dir: str, name: str) -> str:
    """The index key of one source: sha256 of the canonical JSON of
    [format, magic, cache tag, optimization, invalidation, source sha256, dir, name]."""
    return _key(compiler.key_prefix(), source_digest, json.dumps(rel_dir), name)


def _key(prefix: str, source_digest: str, rel_dir_json: str, name: str) -> str:
    # json.dumps escapes everything outside ASCII (and lone surrogates): any name is text.
    text = f'{prefix}"{source_digest}",{rel_dir_json},{json.dumps(name)}]'
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def is_entry_name(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def expected_header(compiler: Compiler, st: os.stat_result) -> bytes:
    """The 16 bytes compiling a source with this stat writes first (py_compile's layout)."""
    mtime = int(st.st_mtime) & 0xFFFFFFFF
    size = st.st_size & 0xFFFFFFFF
    return (
        compiler.magic + _FLAGS_TIMESTAMP + mtime.to_bytes(4, "little") + size.to_bytes(4, "little")
    )


def pyc_path(source: str, cache_tag: str) -> str | None:
    """Where compiling `source` writes its .pyc (importlib.util.cache_from_source without a
    pycache prefix), or None for a name the index leaves alone."""
    directory, name = os.path.split(source)
    stem = name[:-3]
    if not stem or not name.endswith(".py"):
        return None
    return os.path.join(directory, "__pycache__", f"{stem}.{cache_tag}.pyc")


def _read_header(path: str | Path) -> tuple[bytes, os.stat_result] | None:
    """The first 16 bytes of a regular file (never through a symlink), with its stat."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return os.read(fd, 16), st
    except OSError:
        return None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- a build


@dataclass(frozen=True)
class _Source:
    path: str  # the .py file
    pyc: str  # where its .pyc goes
    key: str
    header: bytes  # what compiling it now writes first


@dataclass(frozen=True)
class Lookup:
    """What `link_known` did; `record` writes entries for `misses` after compiling."""

    root: Path  # files/pyc
    files: int  # sources looked up
    hits: int  # .pyc files linked from the index
    misses: tuple[_Source, ...]  # sources left to compile, to record afterwards
    seconds: float


def usable_root(cache_root: Path, *, allow_shared: bool) -> tuple[Path | None, str | None]:
    """The index directory (made if missing), or None and why it cannot be used: the trust
    rule, applied to files/pyc as to files/ (the builder checks files/ itself)."""
    from runner import trust

    root = index_root(cache_root)
    try:
        root.mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        return None, f"{root} cannot be made ({exc.strerror})"
    problem = trust.subdir_problem(str(root.parent), root.name, allow_shared=allow_shared)
    return (None, problem) if problem is not None else (root, None)


def _has_entries(root: Path) -> bool:
    try:
        with os.scandir(root) as it:
            return any(True for _ in it)
    except OSError:
        return False


def _link_hit(entry: Path, source: _Source) -> bool:
    """Link the entry's .pyc into the environment if it is what compiling would write."""
    found = _read_header(entry)
    if found is None:
        return False
    header, st = found
    # Stored files are read-only and named by the store too; anything else is not trusted.
    if header != source.header or st.st_mode & 0o222 or st.st_nlink < 2:
        return False
    try:
        os.makedirs(os.path.dirname(source.pyc), exist_ok=True)  # the mode compiling gives
        _link(entry, source.pyc)
    except OSError:  # EXDEV, EMLINK, a read-only store...: it compiles instead
        return False
    try:
        linked = os.lstat(source.pyc)
        if (linked.st_dev, linked.st_ino) == (st.st_dev, st.st_ino):
            return True
        os.unlink(source.pyc)  # the entry was replaced after we read it: compile instead
    except OSError:
        pass
    return False


def _chunked(items: list[T], fn: Callable[[T], R]) -> list[R]:
    """`fn` over `items` in LINK_THREADS threads, in order. In a few chunks, not one task an
    item: a task costs 30-60 us (more than a stat or a link), and a thread waiting on the
    filesystem or hashing a large file releases the GIL anyway."""
    if len(items) < 2 * LINK_THREADS:
        return [fn(item) for item in items]
    size = -(-len(items) // LINK_THREADS)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    from concurrent.futures import ThreadPoolExecutor  # after the installer starts

    with ThreadPoolExecutor(max_workers=LINK_THREADS) as pool:
        done = pool.map(lambda chunk: [fn(item) for item in chunk], chunks)
        return [result for chunk in done for result in chunk]


def link_known(
    env_dir: Path,
    site_packages: Iterable[str],
    root: Path,
    compiler: Compiler,
    digests: Mapping[str, str],
) -> Lookup:
    """Link the stored .pyc of every source of the environment the index knows, before it
    is compiled. `digests` are the sources' sha256 the file store computed ({path: hex});
    the others (an installer's cache's files) are hashed here. Never raises for a file."""
    started = time.monotonic()
    sources = bytecode.python_files(tuple(site_packages))
    rel_dirs: dict[str, str] = {}  # directory -> its environment-relative name, as JSON
    found: list[tuple[str, str, os.stat_result]] = []
    for path in sources:
        pyc = pyc_path(path, compiler.cache_tag)
        if pyc is None or os.path.lexists(pyc):
            continue  # a .pyc shipped by the package: compiled as before, never recorded
        try:
            found.append((path, pyc, os.stat(path)))
        except OSError:
            continue

    def digest_of(item: tuple[str, str, os.stat_result]) -> str | None:
        try:
            return digests.get(item[0]) or filestore.hash_file(item[0])
        except OSError:
            return None

    prefix = compiler.key_prefix()
    keyed: list[_Source] = []
    for (path, pyc, st), digest in zip(found, _chunked(found, digest_of), strict=True):
        directory, name = os.path.split(path)
        rel_dir = rel_dirs.get(directory)
        if rel_dir is None:  # as compile_tree records it
            try:
                rel_dir = rel_dirs[directory] = json.dumps(os.path.relpath(directory, env_dir))
            except ValueError:  # another drive
                continue
        if digest is not None:
            key = _key(prefix, digest, rel_dir, name)
            keyed.append(_Source(path, pyc, key, expected_header(compiler, st)))
    hit = [False] * len(keyed)
    if _has_entries(root):  # an empty index (a first build) has nothing to find
        hit = _chunked(keyed, lambda source: _link_hit(root / source.key, source))
    misses = tuple(source for source, linked in zip(keyed, hit, strict=True) if not linked)
    return Lookup(root, len(sources), sum(hit), misses, time.monotonic() - started)


def record(lookup: Lookup, stored: Mapping[str, str]) -> int:
    """After compiling and sharing bytecode: an entry for every source compiled this time
    whose .pyc went into the store (`stored`: {path: sha256} from `filestore.share`).
    Returns the number of entries written; never raises for an entry."""

    store = lookup.root.parent

    def one(source: _Source) -> bool:
        digest = stored.get(source.pyc)
        if digest is None:
            return False  # not compiled (a syntax error) or not stored
        # The stored copy, not the environment's name: a script running meanwhile may have
        # written its own .pyc there since (`filestore._link_opened`).
        try:
            executable = bool(os.stat(source.pyc).st_mode & 0o111)
        except OSError:
            return False
        pyc = str(filestore.stored_path(store, digest, executable))
        found = _read_header(pyc)
        if found is None or found[0] != source.header:
            return False  # its source changed since it was looked up
        try:
            write_entry(lookup.root / source.key, pyc)
        except OSError:
            return False
        return True

    return sum(_chunked(list(lookup.misses), one))


def write_entry(entry: Path, pyc: str) -> None:
    """Make `entry` a link to `pyc` (a stored file); an older entry is replaced atomically."""
    try:
        _link(pyc, entry)
        return
    except FileExistsError:
        with contextlib.suppress(OSError):
            if os.path.samefile(pyc, entry):
                return
    # Under the store's temporary prefix: collect removes it if we are killed in between.
    filestore.replace_with_link(pyc, entry, entry.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}"))


# --------------------------------------------------------------------------- cleanup, verify


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _names(root: Path) -> list[str]:
    if not _real_dir(root):  # never through a symlink
        return []
    try:
        return sorted(os.listdir(root))
    except OSError:
        return []


def entries_by_inode(cache_root: Path) -> dict[tuple[int, int], list[Path]]:
    """Every entry of the index, by the (device, inode) it links."""
    root = index_root(cache_root)
    found: dict[tuple[int, int], list[Path]] = {}
    for name in _names(root):
        if not is_entry_name(name):
            continue
        try:
            st = os.lstat(root / name)
        except OSError:
            continue
        found.setdefault((st.st_dev, st.st_ino), []).append(root / name)
    return found


def temp_entries(cache_root: Path) -> Iterator[Path]:
    root = index_root(cache_root)
    for name in _names(root):
        if name.startswith(TEMP_PREFIX):
            yield root / name


def remove_entries_if_unused(entries: list[Path], held: int) -> int:
    """Remove the entries of one stored file that nothing but the store and the index links
    (`held` names in all); returns how many went.

    Each is renamed aside first and its link count looked at again: a build that linked the
    file meanwhile keeps it (the entry goes back), one that comes later finds no entry.
    """
    removed = 0
    for entry in entries:
        aside = entry.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        try:
            os.rename(entry, aside)
        except OSError:
            return removed
        try:
            if os.lstat(aside).st_nlink <= held:
                os.unlink(aside)
                removed += 1
                held -= 1
                continue
            with contextlib.suppress(FileExistsError):
                os.link(aside, entry)  # linked in the meantime: keep it
            return removed
        except OSError:
            return removed
        finally:
            with contextlib.suppress(OSError):
                os.unlink(aside)
    return removed


def remove_entry(path: Path) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class IndexCheck:
    """What `cache verify` found in the index (entries are hints: none is damage)."""

    entries: int
    orphans: int  # entries linking no stored file: never used, removed with repair
    removed: int


def verify(cache_root: Path, *, repair: bool = False) -> IndexCheck:
    stored = {(f.st.st_dev, f.st.st_ino) for f in filestore.stored_files(cache_root)}
    by_inode = entries_by_inode(cache_root)
    orphans = [p for ident, paths in by_inode.items() if ident not in stored for p in paths]
    removed = sum(remove_entry(p) for p in orphans) if repair else 0
    return IndexCheck(sum(len(p) for p in by_inode.values()), len(orphans), removed)


# --------------------------------------------------------------------------- the builder's calls


def link_before_compile(
    env_dir: Path,
    site_packages: Iterable[str],
    cache: Cache,
    interpreter: Interpreter,
    sources: filestore.ShareResult | None,
    reporter: Reporter,
) -> Lookup | None:
    """The builder's step between sharing sources and compiling: link what the index knows.
    None when the index is not used (the sources were not shared; `-v` says why else)."""
    if sources is None:
        return None
    compiler = Compiler.of(interpreter.magic, interpreter.cache_tag)
    if compiler is None:
        reporter.detail("not using the bytecode index: the interpreter's magic number is unknown")
        return None
    root, problem = usable_root(cache.root, allow_shared=cache.config.allow_shared_cache)
    if root is None:
        reporter.detail(f"not using the bytecode index: {problem}")
        return None
    try:
        lookup = link_known(env_dir, site_packages, root, compiler, sources.digests)
    except OSError as exc:  # an optimisation: compiling does it all
        reporter.detail(f"not using the bytecode index: {exc}")
        return None
    reporter.detail(
        f"bytecode index: {lookup.hits} of {lookup.files} files' bytecode linked from the "
        f"store, {len(lookup.misses)} to compile, in {lookup.seconds:.2f} s"
    )
    return lookup


def record_after_compile(
    lookup: Lookup | None, compiled: filestore.ShareResult | None, reporter: Reporter
) -> None:
    """The builder's step after sharing the bytecode: remember what was compiled."""
    if lookup is None or compiled is None or not lookup.misses:
        return
    started = time.monotonic()
    try:
        written = record(lookup, compiled.digests)
    except OSError as exc:
        reporter.detail(f"could not record bytecode in the index: {exc}")
        return
    reporter.detail(
        f"bytecode index: recorded {written} entries in {time.monotonic() - started:.2f} s"
    )

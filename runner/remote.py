"""Scripts from URLs: download once, keep the copy by content, reuse it within a freshness window.

`resolve(arg, ...)` is the one function the run path calls on its script argument: a local
path comes back unchanged (checked against `--sha256` if given), a URL becomes the path of a
stored copy in `<cache>/urls/`:

    urls/<sha256 of the content>.py     the script, named by its content
    urls/<sha256 of the URL>.url        what the URL served last and when (no credentials)

Module-level imports stay stdlib-light (the network modules are imported only to download), so
a launcher can read a fresh record cheaply.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, NamedTuple

from runner import urlstore
from runner.errors import (
    HashMismatchError,
    MetadataError,
    NetworkError,
    RunnerError,
    ScriptError,
    UsageError,
)

if TYPE_CHECKING:
    import urllib.request
    from email.message import Message

    from runner.config import Config

MAX_REDIRECTS = 5
MAX_BYTES = 16 * 1024 * 1024  # a script, not a data set
CHUNK = 64 * 1024


class UrlSettings(NamedTuple):
    ttl: float
    timeout: float
    cafiles: tuple[str, ...]


def url_settings(config: Config) -> UrlSettings:
    """What shapes downloads: RUNNER_URL_TTL and RUNNER_URL_TIMEOUT (from the settings
    value), and the certificate bundles named by REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, added
    to the system's (SSL_CERT_FILE / SSL_CERT_DIR are read by OpenSSL itself). Proxies:
    http_proxy, https_proxy, no_proxy (read by urllib)."""
    bundles = (os.environ.get("REQUESTS_CA_BUNDLE", ""), os.environ.get("CURL_CA_BUNDLE", ""))
    return UrlSettings(
        ttl=config.url_ttl,
        timeout=config.url_timeout,
        cafiles=tuple(dict.fromkeys(b for b in bundles if b)),
    )


# --------------------------------------------------------------------------- naming


def is_url(arg: str) -> bool:
    """Whether a script argument is a URL runner downloads (http or https)."""
    return arg[:8].lower().startswith(("https://", "http://"))


def public_url(url: str) -> str:
    """The URL without any user name or password: what runner shows and stores."""
    from runner.redact import redact_url

    return redact_url(url, mask="")


def url_name(url: str) -> str:
    """The file name a URL's path ends with (`tool.py` for .../tool.py?x=1), or ''."""
    from urllib.parse import unquote, urlsplit

    name = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    return "".join(c for c in name if c.isalnum() or c in "._-").lstrip(".")


def sha256_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def check_sha256_arg(value: str | None) -> str | None:
    """Validate `--sha256 HEX` (64 hex digits, any case); the lower-case digest."""
    if value is None:
        return None
    digest = value.strip().lower()
    if digest.startswith("sha256:"):
        digest = digest[7:]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(
            f"--sha256: {value!r} is not a sha256 digest (64 hexadecimal digits)",
            hint="Compute it with `sha256sum tool.py` (or `shasum -a 256`).",
        )
    return digest


# --------------------------------------------------------------------------- records


class Record(NamedTuple):
    """What a URL served last: its content's digest, when, and the validators to ask again."""

    url: str
    sha256: str
    fetched: float
    etag: str = ""
    last_modified: str = ""


def url_dir(cache_root: str) -> str:
    return os.path.join(cache_root, urlstore.URL_DIR)


def copy_path(cache_root: str, digest: str) -> str:
    return urlstore.copy_path(cache_root, digest)


def record_path(cache_root: str, url: str) -> str:
    return urlstore.record_path(cache_root, public_url(url))


def read_record(cache_root: str, url: str) -> Record | None:
    """The stored record for `url`, or None (missing, foreign, truncated or for another URL)."""
    fields = urlstore.read_record(cache_root, public_url(url))
    if fields is None:
        return None
    return Record(
        url=fields["url"],
        sha256=fields["sha256"],
        fetched=float(fields["fetched"]),
        etag=fields.get("etag", ""),
        last_modified=fields.get("last-modified", ""),
    )


def _write_record(cache_root: str, record: Record) -> None:
    from pathlib import Path

    from runner.fsutil import atomic_write_text

    lines = [
        f"runner-url {urlstore.RECORD_FORMAT}",
        f"url\t{record.url}",
        f"sha256\t{record.sha256}",
        f"fetched\t{record.fetched:.3f}",
    ]
    if record.etag:
        lines.append(f"etag\t{record.etag}")
    if record.last_modified:
        lines.append(f"last-modified\t{record.last_modified}")
    lines.append("end")
    if any("\n" in line or line.count("\t") > 1 for line in lines):
        return  # a header we cannot store faithfully: the next run simply asks again
    atomic_write_text(Path(record_path(cache_root, record.url)), "\n".join(lines) + "\n")


def _store(cache_root: str, data: bytes, digest: str) -> str:
    """Write the content-addressed copy (atomically; an existing identical copy is kept)."""
    from pathlib import Path

    from runner.fsutil import atomic_write_bytes

    path = copy_path(cache_root, digest)
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return path
    except OSError:
        pass
    atomic_write_bytes(Path(path), data)
    return path


def _use(path: str) -> bool:
    """Mark a stored copy as used now (prune keeps it); False if it is gone."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.isfile(path)  # a read-only cache still serves what it holds
    return True


def _hash_of(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return sha256_of(f.read())
    except OSError:
        return None


# --------------------------------------------------------------------------- resolve


def resolve(
    arg: str,
    *,
    sha256: str | None = None,
    allow_insecure_http: bool = False,
    offline: bool = False,
    refresh: bool = False,
    config: Config,
    data: bytes | None = None,
) -> str:
    """The local file to run for a script argument.

    A local path is returned as given (after checking `sha256`, if given). A URL is
    downloaded, unless a copy fetched within RUNNER_URL_TTL exists (any stored copy with
    `offline`; none with `refresh`), checked against `sha256`, stored by content in the
    cache, and the stored copy's path is returned (`data`: a local file's bytes, if read
    already). Raises UsageError (http:// without
    `allow_insecure_http`), HashMismatchError, NetworkError, ScriptError or MetadataError.
    """
    expected = check_sha256_arg(sha256)
    if not is_url(arg):
        if expected is not None:
            actual = sha256_of(data) if data is not None else _hash_of(arg)
            if actual is not None and actual != expected:
                raise _mismatch(arg, expected, actual)
        return arg
    url = arg
    shown = public_url(url)
    if url[:5].lower() == "http:" and not allow_insecure_http:
        raise UsageError(
            f"refusing to download {shown} over plain http://: anyone on the way could change "
            "the script",
            hint="Use an https:// URL, or pass --allow-insecure-http (better with --sha256 HEX "
            "to pin the content).",
        )
    cache_root = config.cache_root
    settings = url_settings(config)
    record = read_record(cache_root, url)
    stored = copy_path(cache_root, record.sha256) if record is not None else None
    # A copy whose content no longer has its name's hash (damaged, tampered) is no copy.
    have_copy = (
        record is not None and stored is not None and _hash_of(stored) == record.sha256
    ) and _use(stored)

    if record is not None and stored is not None and have_copy:
        age = time.time() - record.fetched
        fresh = 0 <= age < settings.ttl and not refresh
        if offline or fresh:
            if expected is None or expected == record.sha256:
                return stored
            if offline:
                raise _mismatch(shown, expected, record.sha256, stored_copy=True)
    if offline:
        raise NetworkError(
            f"--offline: {shown} has not been downloaded before, so there is no copy to run",
            hint="Run it once without --offline (the copy is kept in the runner cache), or "
            "download it yourself and run the file.",
        )

    data, etag, last_modified = _download(
        url,
        allow_insecure_http=allow_insecure_http,
        settings=settings,
        validators=(record.etag, record.last_modified) if record and have_copy else None,
    )
    _ensure_dir(config)
    if data is None:  # 304 Not Modified: the stored copy is current
        assert record is not None and stored is not None
        digest = record.sha256
        path = stored
        etag = etag or record.etag
        last_modified = last_modified or record.last_modified
    else:
        digest = sha256_of(data)
    if expected is not None and digest != expected:
        raise _mismatch(shown, expected, digest)
    if data is not None:
        check_remote_metadata(data, shown)
        path = _store_or_fail(cache_root, data, digest)
    # The copy is stored; without a record the next run only downloads again.
    with contextlib.suppress(OSError):
        _write_record(cache_root, Record(shown, digest, time.time(), etag, last_modified))
    return path


def _ensure_dir(config: Config) -> None:
    from runner.cache import Cache

    cache_root = config.cache_root
    Cache(config=config).ensure()
    try:
        os.makedirs(url_dir(cache_root), mode=0o755, exist_ok=True)
    except OSError as exc:
        from runner.errors import CacheError

        raise CacheError(
            f"cannot store downloaded scripts in {url_dir(cache_root)}: {exc.strerror}",
            hint="Check that the runner cache is writable, or choose another with "
            "RUNNER_CACHE_DIR.",
        ) from None


def _store_or_fail(cache_root: str, data: bytes, digest: str) -> str:
    try:
        return _store(cache_root, data, digest)
    except OSError as exc:
        from runner.errors import CacheError

        raise CacheError(
            f"cannot store the downloaded script in {url_dir(cache_root)}: {exc.strerror}",
            hint="Free some space (`runner cache prune`) or check that the cache is writable.",
        ) from None


def _mismatch(
    what: str, expected: str, actual: str, *, stored_copy: bool = False
) -> HashMismatchError:
    where = "the stored copy of " if stored_copy else ""
    return HashMismatchError(
        f"{where}{what} does not match --sha256: expected {expected}, got {actual}; "
        "nothing was run",
        hint="The script changed since the hash was taken. Read the new version before "
        "trusting it, then pass its hash with --sha256"
        + (" (run without --offline to download it again)." if stored_copy else "."),
    )


def check_remote_metadata(
    data: bytes, shown: str, *, what: str = "a script downloaded from a URL"
) -> None:
    """Refuse what cannot work from a URL (or in a stored copy): a relative find-links has
    no directory to be relative to."""
    from runner.metadata import decode_source, parse
    from runner.settings import script_settings

    meta = parse(decode_source(data, shown), shown)
    links = script_settings(meta, shown).find_links
    relative = [link for link in links if "://" not in link and not os.path.isabs(link)]
    if relative:
        raise MetadataError(
            f"{shown}: [tool.runner] find-links {relative[0]!r} is a relative path, which "
            f"means nothing for {what}",
            hint="Give find-links as a URL or an absolute path in the script, or keep the "
            "script beside its wheels and run the local file.",
        )


# --------------------------------------------------------------------------- download


def _download(
    url: str,
    *,
    allow_insecure_http: bool,
    settings: UrlSettings,
    validators: tuple[str, str] | None,
) -> tuple[bytes | None, str, str]:
    """GET `url`: (content, ETag, Last-Modified); content None when the server answers 304.

    Everything is read into memory and checked before anything is written, so a download
    that stops half-way leaves nothing behind.
    """
    import http.client
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    shown = public_url(url)
    parts = urlsplit(url)
    request = urllib.request.Request(shown, headers={"User-Agent": _user_agent()})
    if parts.username is not None or parts.password is not None:
        import base64
        from urllib.parse import unquote

        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        token = base64.b64encode(pair.encode("utf-8")).decode("ascii")
        # Unredirected: the credentials never follow a redirect to another host.
        request.add_unredirected_header("Authorization", f"Basic {token}")
    if validators is not None:
        etag, last_modified = validators
        if etag:
            request.add_header("If-None-Match", etag)
        if last_modified:
            request.add_header("If-Modified-Since", last_modified)
    context = ssl.create_default_context()
    for bundle in settings.cafiles:
        try:
            context.load_verify_locations(cafile=bundle)
        except (OSError, ssl.SSLError) as exc:
            raise NetworkError(
                f"cannot read the certificate bundle {bundle}: {_reason(exc)}",
                hint="Fix or unset REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.",
            ) from None
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context),
        _redirect_handler(allow_insecure_http, request),
    )
    received = 0
    try:
        with opener.open(request, timeout=settings.timeout) as response:
            headers: Message = response.headers
            length_text = headers.get("Content-Length")
            length = int(length_text) if length_text and length_text.isdigit() else None
            if length is not None and length > MAX_BYTES:
                raise _too_large(shown)
            chunks: list[bytes] = []
            deadline = time.monotonic() + max(settings.timeout * 10, 60.0)
            # read1 returns what has arrived, so a stall is seen after the bytes before it.
            read = getattr(response, "read1", response.read)
            while True:
                chunk = read(CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                if received > MAX_BYTES:
                    raise _too_large(shown)
                if time.monotonic() > deadline:
                    raise TimeoutError("the download takes too long")
                chunks.append(chunk)
            if length is not None and received != length:
                raise http.client.IncompleteRead(b"", length - received)
            return b"".join(chunks), headers.get("ETag", ""), headers.get("Last-Modified", "")
    except RunnerError:
        raise
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and validators is not None:
            return None, exc.headers.get("ETag", ""), exc.headers.get("Last-Modified", "")
        raise _http_error(shown, public_url(exc.geturl() or shown), exc.code, exc.reason) from None
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
        if received:
            raise NetworkError(
                f"the download of {shown} stopped after {received} bytes ({_reason(exc)}); "
                "nothing was stored",
                hint="Try again; if it keeps failing, the server or a proxy cuts the "
                "connection (RUNNER_URL_TIMEOUT sets the timeout in seconds).",
            ) from None
        raise _unreachable(shown, exc) from None
    except urllib.error.URLError as exc:
        raise _unreachable(shown, exc.reason) from None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        raise _unreachable(shown, exc) from None


def _redirect_handler(
    allow_insecure_http: bool, original: urllib.request.Request
) -> urllib.request.HTTPRedirectHandler:
    """Follow at most MAX_REDIRECTS redirects, never from https:// down to http://, and
    keep credentials only on the original scheme, host and port."""
    import urllib.request
    from urllib.parse import urlsplit

    origin = urlsplit(original.full_url)[:2]
    auth = original.unredirected_hdrs.get("Authorization")

    class Redirects(urllib.request.HTTPRedirectHandler):
        max_redirections = MAX_REDIRECTS
        max_repeats = MAX_REDIRECTS

        def redirect_request(
            self,
            req: urllib.request.Request,
            fp: object,
            code: int,
            msg: str,
            headers: Message,
            newurl: str,
        ) -> urllib.request.Request | None:
            if newurl[:5].lower() == "http:" and not allow_insecure_http:
                raise UsageError(
                    f"{public_url(original.full_url)} redirects to {public_url(newurl)}, "
                    "a plain http:// URL; refusing to follow it",
                    hint="Use the https:// address if there is one, or pass "
                    "--allow-insecure-http (better with --sha256 HEX).",
                )
            new = super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]
            if new is not None and auth and urlsplit(new.full_url)[:2] == origin:
                new.add_unredirected_header("Authorization", auth)
            return new

    return Redirects()


def _user_agent() -> str:
    from runner import __version__

    return f"runner/{__version__}"


def _reason(exc: object) -> str:
    if isinstance(exc, BaseException) and not str(exc):
        return type(exc).__name__
    from runner.redact import redact_text

    return redact_text(str(exc))


def _too_large(shown: str) -> ScriptError:
    return ScriptError(
        f"{shown} is larger than {MAX_BYTES // (1024 * 1024)} MiB; that is not a script",
        hint="Check the URL: it should name a single Python file.",
    )


def _http_error(shown: str, final: str, code: int, reason: object) -> RunnerError:
    where = shown if final == shown else f"{shown} (redirected to {final})"
    if 300 <= code < 400:
        return NetworkError(
            f"{where} redirects more than {MAX_REDIRECTS} times (or in a loop); giving up",
            hint="Use the final address of the script directly.",
        )
    if code in (404, 410):
        return ScriptError(
            f"script not found: {where} (HTTP {code})",
            hint="Check the URL; for a file in a repository use its raw address.",
        )
    if code in (401, 403):
        return ScriptError(
            f"access to {where} was refused (HTTP {code} {reason})",
            hint="Check that the URL is public, or that your credentials allow reading it.",
        )
    return NetworkError(
        f"{where} answered HTTP {code} {reason}",
        hint="The server has a problem; try again later, or run a stored copy with --offline.",
    )


def _unreachable(shown: str, reason: object) -> NetworkError:
    import ssl

    text = _reason(reason)
    hint = (
        "Check the address and your connection; proxies come from https_proxy/no_proxy. "
        "A copy downloaded before runs with --offline."
    )
    if isinstance(reason, TimeoutError) or "timed out" in text:
        hint = (
            "The server did not answer in time; try again, or allow more seconds per step "
            "with RUNNER_URL_TIMEOUT. A copy downloaded before runs with --offline."
        )
    if isinstance(reason, ssl.SSLError) or "CERTIFICATE" in text.upper():
        hint = (
            "The server's certificate could not be verified. If your network uses its own "
            "certificate authority, point SSL_CERT_FILE (or REQUESTS_CA_BUNDLE) at its bundle."
        )
    return NetworkError(f"cannot download {shown}: {text}", hint=hint)

"""sha256 as hex, without hashlib's OpenSSL import where the builtin module exists (stdlib only)."""


def sha256_hex(data: bytes) -> str:
    # The builtin modules skip hashlib's OpenSSL import, which the warm path cannot afford.
    try:
        from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment,unused-ignore]
    digest: str = sha256(data).hexdigest()
    return digest

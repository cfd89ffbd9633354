"""Hash objects without OpenSSL where CPython has its own: `import hashlib` maps libcrypto (~3.5 MiB of
resident memory), which is a sixth of what the DAG cache's whole answer may cost. Same digests."""

from __future__ import annotations

# typing is only for annotations here: importing it costs the DAG cache's answer ~1.5 MiB (with re)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_BUILTIN = {"md5": ("_md5", "md5"), "sha1": ("_sha1", "sha1"), "sha256": ("_sha256", "sha256")}


def new_hash(name: str, data: bytes = b"") -> Any:
    """A hash object for `name` (md5, sha1, sha256 from CPython's own modules; anything else via hashlib)."""
    spec = _BUILTIN.get(name.lower())
    if spec is not None:
        try:
            module = __import__(spec[0])
            return getattr(module, spec[1])(data)
        except (ImportError, AttributeError):  # a Python built without them (3.12 renamed _sha256)
            pass
        if name.lower() == "sha256":
            try:
                import _sha2  # type: ignore[import-not-found]

                return _sha2.sha256(data)
            except ImportError:
                pass
    import hashlib

    return hashlib.new(name, data)

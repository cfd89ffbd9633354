"""dagstore: spill cold DAG node attributes to disk (LMDB + msgpack) and reload them on access.

Composed by the caller, zict-style: a Codec turns values into bytes, a Store keeps bytes.
Nothing here imports SCons; the adapter supplies node keys and the resolver.

The names below load on first use (PEP 562): the DAG cache's answer imports dagstore.dagcache alone
and must not pay for the store's backends and codec.
"""

from __future__ import annotations

# typing is only for annotations here: importing it costs the DAG cache's answer ~1.5 MiB (with re)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_FROM = {
    **{
        name: "dagstore.backends"
        for name in (
            "SCHEMA_VERSION",
            "LMDBStore",
            "MemoryStore",
            "Store",
            "StoreBusy",
            "StoreDamaged",
            "StoreError",
            "StoreFull",
            "StoreMismatch",
            "open_store",
            "set_aside",
        )
    },
    **{name: "dagstore.codec" for name in ("Codec", "CodecError", "Refused")},
}

__all__ = [
    "Codec",
    "CodecError",
    "Refused",
    "SCHEMA_VERSION",
    "Store",
    "MemoryStore",
    "LMDBStore",
    "open_store",
    "set_aside",
    "StoreError",
    "StoreBusy",
    "StoreDamaged",
    "StoreMismatch",
    "StoreFull",
]


def __getattr__(name: str) -> Any:
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module 'dagstore' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

"""dagstore: spill cold DAG node attributes to disk (LMDB + msgpack) and reload them on access.

Composed by the caller, zict-style: a Codec turns values into bytes, a Store keeps bytes.
Nothing here imports SCons; the adapter supplies node keys and the resolver.
"""
from dagstore.backends import (
                               SCHEMA_VERSION,
                               LMDBStore,
                               MemoryStore,
                               Store,
                               StoreBusy,
                               StoreDamaged,
                               StoreError,
                               StoreFull,
                               StoreMismatch,
                               open_store,
                               set_aside,
)
from dagstore.codec import Codec, CodecError, Refused

__all__ = [
    "Codec", "CodecError", "Refused",
    "SCHEMA_VERSION", "Store", "MemoryStore", "LMDBStore", "open_store", "set_aside",
    "StoreError", "StoreBusy", "StoreDamaged", "StoreMismatch", "StoreFull",
]

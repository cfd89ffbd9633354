"""Where spilled values live: a small `Store` interface, a dict-backed MemoryStore and an LMDBStore.

A store maps bytes keys to bytes values (the codec makes the bytes) and keeps a few named metadata
records (plain msgpack data: the header, the last build's access profile). One `put_many` call is
one transaction: after a crash the store holds every batch that returned, and none of the batch
that did not. Every way the store can fail to open is a distinct exception with a one-line message;
`open_store` turns them into "use a fresh store" or "build without the store" plus a warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol, cast, runtime_checkable

import lmdb
import msgpack

__all__ = [
    "SCHEMA_VERSION",
    "Store",
    "MemoryStore",
    "LMDBStore",
    "StoreError",
    "StoreBusy",
    "StoreDamaged",
    "StoreMismatch",
    "StoreFull",
    "open_store",
    "set_aside",
]

SCHEMA_VERSION = 1
HEADER = "header"  # meta record written once when the store is created
OPEN_MARK = "open_by"  # meta record present while a process has the store open
LOCK_NAME = "lock.dagprof"
MiB = 1 << 20
GiB = 1 << 30


class StoreError(Exception):
    """Base of the store's own failures; str() is one line meant for the user."""


class StoreBusy(StoreError):
    """Another process holds the store; the caller waits or builds without it."""


class StoreDamaged(StoreError):
    """The files are not a readable store (garbage, truncated, left open by a crashed system)."""


class StoreMismatch(StoreError):
    """A sound store written by another schema or another SCons/Python version."""


class StoreFull(StoreError):
    """A batch could not be written (map at its maximum, disk full, I/O error); none of it was."""

    def __init__(self, message: str, written: int = 0) -> None:
        super().__init__(message)
        self.written = written  # items of the failed batch that are in the store: always 0


def _pack_meta(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise TypeError(f"metadata must be plain msgpack data: {e}") from None


def _unpack_meta(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)


@runtime_checkable
class Store(Protocol):
    """What the spill layer needs from a backend: batched bytes in, bytes out, a few meta records."""

    def get(self, key: bytes) -> bytes | None: ...
    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> int: ...
    def delete_many(self, keys: Iterable[bytes]) -> int: ...
    def get_meta(self, name: str) -> Any: ...
    def set_meta(self, name: str, value: Any) -> None: ...
    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...


class MemoryStore:
    """The Store interface over a dict: the baseline for comparisons and a store for tests.

    `limit_bytes` makes put_many raise StoreFull like a full LMDB map, to test that path cheaply.
    """

    backend = "memory"

    def __init__(self, limit_bytes: int | None = None) -> None:
        self._data: dict[bytes, bytes] = {}
        self._meta: dict[str, bytes] = {}
        self._bytes = 0
        self.limit_bytes = limit_bytes
        self._counters = {"puts": 0, "gets": 0, "bytes_written": 0, "bytes_read": 0}

    def get(self, key: bytes) -> bytes | None:
        value = self._data.get(key)
        self._counters["gets"] += 1
        if value is not None:
            self._counters["bytes_read"] += len(value)
        return value

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        batch = _checked_batch(items)
        data = self._data
        grow = sum(len(k) + len(v) - (len(k) + len(data[k]) if k in data else 0) for k, v in batch.items())
        if self.limit_bytes is not None and self._bytes + grow > self.limit_bytes:
            raise StoreFull(f"memory store limit of {self.limit_bytes} bytes reached")
        data.update(batch)
        self._bytes += grow
        written = sum(len(k) + len(v) for k, v in batch.items())
        self._counters["puts"] += len(batch)
        self._counters["bytes_written"] += written
        return written

    def delete_many(self, keys: Iterable[bytes]) -> int:
        n = 0
        for k in keys:
            v = self._data.pop(k, None)
            if v is not None:
                self._bytes -= len(k) + len(v)
                n += 1
        return n

    def get_meta(self, name: str) -> Any:
        blob = self._meta.get(name)
        return None if blob is None else _unpack_meta(blob)

    def set_meta(self, name: str, value: Any) -> None:
        self._meta[name] = _pack_meta(value)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for k in sorted(k for k in self._data if k.startswith(prefix)):
            v = self._data.get(k)
            if v is not None:
                yield k, v

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "path": None,
            "entries": len(self._data),
            "used_bytes": self._bytes,
            "map_size": None,
            "file_bytes": 0,
            **self._counters,
        }

    def close(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def _checked_batch(items: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The batch as a dict (last write of a key wins), refusing non-bytes before anything is written."""
    batch: dict[bytes, bytes] = {}
    for k, v in items:
        if type(k) is not bytes or type(v) is not bytes or not k:
            raise TypeError(
                f"store keys and values must be bytes and keys non-empty, got {type(k).__name__} -> {type(v).__name__}"
            )
        batch[k] = v
    return batch


class _Lock:
    """Exclusive advisory lock on <dir>/lock.dagprof holding our pid, so a second build is told who."""

    def __init__(self, directory: str, timeout: float) -> None:
        self.path = os.path.join(directory, LOCK_NAME)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    os.close(self.fd)
                    who = f"pid {holder}" if holder else "another process"
                    raise StoreBusy(f"store {directory} in use by {who}") from None
                time.sleep(0.05)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> str:
        try:
            return os.pread(self.fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


class LMDBStore:
    """The Store interface over an LMDB environment in a directory, growing its map as it fills.

    sync=False (default): commits are not fsync'ed. A killed process loses nothing that was
    committed (the OS has the pages); a system crash may lose or damage recent commits, which the
    next open detects (the store was marked open under another boot id) and reports as StoreDamaged.
    sync=True: each put_many is durable when it returns (two fsyncs per batch; metasync=False
    makes it one, at the risk of losing the last batch on a system crash but never the integrity).
    """

    backend = "lmdb"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        map_size: int = 64 * MiB,
        max_map_size: int = 16 * GiB,
        readahead: bool = False,
        sync: bool = False,
        metasync: bool = True,
        schema: int = SCHEMA_VERSION,
        expect: dict[str, str] | None = None,
        lock_timeout: float = 0.0,
    ) -> None:
        self.path = os.fspath(path)
        self.max_map_size = max(max_map_size, map_size)
        self.sync = sync
        self._counters = {"puts": 0, "gets": 0, "bytes_written": 0, "bytes_read": 0, "map_grows": 0}
        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            raise StoreDamaged(f"store {self.path} is not a directory")
        os.makedirs(self.path, exist_ok=True)  # OSError (read-only, parent is a file) -> caller bypasses
        self._lock = _Lock(self.path, lock_timeout)
        self.env: lmdb.Environment | None = None
        self._rtxn: lmdb.Transaction | None = None
        self._rlock = threading.Lock()  # reload may come from SCons worker threads
        try:
            self._open(map_size, readahead, sync, metasync, schema, expect or {})
        except BaseException:
            self._close_env()
            self._lock.release()
            raise

    # ---- open and check -------------------------------------------------------------------
    def _open(
        self, map_size: int, readahead: bool, sync: bool, metasync: bool, schema: int, expect: dict[str, str]
    ) -> None:
        data_file = os.path.join(self.path, "data.mdb")
        existed = os.path.exists(data_file)
        if existed and os.path.getsize(data_file) == 0:
            # lmdb.open would initialise it in place: refuse first, so set_aside keeps the file as it was
            raise StoreDamaged(f"store {self.path} is damaged: data.mdb is empty")
        try:
            self.env = lmdb.open(
                self.path,
                subdir=True,
                map_size=map_size,
                max_dbs=4,
                readahead=readahead,
                sync=sync,
                metasync=metasync,
                lock=True,
                create=True,
            )
            self._check_extent(data_file)
            self._values = self.env.open_db(b"values")
            self._meta = self.env.open_db(b"meta")
            header = self._read_meta(HEADER)
            mark = self._read_meta(OPEN_MARK)
        except lmdb.Error as e:
            raise StoreDamaged(f"store {self.path} is damaged: {_lmdb_reason(e)}") from None
        except (ValueError, msgpack.UnpackException) as e:
            raise StoreDamaged(f"store {self.path} has an unreadable metadata record: {e}") from None
        self.max_key_size = self.env.max_key_size()
        if header is None:
            if existed:  # data file without our header: not ours, or a crash before the first commit
                raise StoreDamaged(f"store {self.path} has no header record")
            header = {
                "schema": schema,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "versions": dict(expect),
            }
            self._write_meta({HEADER: header})
        if not isinstance(header, dict) or header.get("schema") != schema:
            found = header.get("schema") if isinstance(header, dict) else header
            raise StoreMismatch(f"store {self.path} has schema {found!r}, this dagstore uses {schema}")
        written_by = header.get("versions") or {}
        for name, want in expect.items():
            have = written_by.get(name)
            if have != want:
                raise StoreMismatch(f"store {self.path} was written with {name} {have}, this is {name} {want}")
        if isinstance(mark, dict) and mark.get("boot_id") != _boot_id() and not self.sync:
            raise StoreDamaged(f"store {self.path} was open (pid {mark.get('pid')}) when the system went down")
        self.header = header
        self._write_meta({OPEN_MARK: {"pid": os.getpid(), "boot_id": _boot_id()}})
        self.env.sync(True)  # the mark is on disk before any value that depends on it

    def _open_env(self) -> lmdb.Environment:
        """The LMDB environment; using a closed store is a StoreError, not an AttributeError on None."""
        if self.env is None:
            raise StoreError(f"store {self.path} is closed")
        return self.env

    def _check_extent(self, data_file: str) -> None:
        """Refuse a data file shorter than its own last page: reading it would crash with SIGBUS."""
        env = self._open_env()
        info, psize = env.info(), env.stat()["psize"]
        need = (info["last_pgno"] + 1) * psize
        size = os.path.getsize(data_file)
        if size and size < need:
            raise StoreDamaged(f"store {self.path} is truncated: data.mdb has {size} bytes, needs {need}")

    def _read_meta(self, name: str) -> Any:
        with self._open_env().begin(db=self._meta) as txn:
            blob = txn.get(name.encode())
        return None if blob is None else _unpack_meta(blob)

    def _write_meta(self, records: dict[str, Any]) -> None:
        blobs = [(name.encode(), _pack_meta(value)) for name, value in records.items()]
        self._write(lambda txn: [txn.put(k, v, db=self._meta) for k, v in blobs], "metadata")

    # ---- the Store interface --------------------------------------------------------------
    def _key(self, key: bytes) -> bytes:
        """LMDB keys are at most max_key_size bytes: longer ones are stored under their SHA-256."""
        if len(key) <= self.max_key_size:
            return key
        return b"\xff\xffsha256:" + hashlib.sha256(key).digest()

    def get(self, key: bytes) -> bytes | None:
        """One value; reads share one read transaction (renewed by every write), 40% cheaper than begin."""
        k = self._key(key)
        try:
            with self._rlock:
                txn = self._rtxn
                if txn is None:
                    txn = self._rtxn = self._open_env().begin(db=self._values)
                value = txn.get(k)
                self._counters["gets"] += 1
                if value is not None:
                    self._counters["bytes_read"] += len(value)
        except lmdb.Error as e:
            raise StoreDamaged(f"store {self.path} is damaged: {_lmdb_reason(e)}") from None
        return cast("bytes | None", value)  # buffers=False (the default): bytes, never a memoryview

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> int:
        batch = [(self._key(k), v) for k, v in _checked_batch(items).items()]
        if not batch:
            return 0
        written = sum(len(k) + len(v) for k, v in batch)
        db = self._values

        def put(txn: lmdb.Transaction) -> None:
            for k, v in batch:
                txn.put(k, v, db=db)

        self._write(put, f"{len(batch)} values ({written} bytes)")
        self._counters["puts"] += len(batch)
        self._counters["bytes_written"] += written
        return written

    def _write(self, fill: Any, what: str) -> None:
        """One write transaction; on a full map grow it (doubling) and retry, else StoreFull."""
        with self._rlock:
            self._end_reads()
            self._write_locked(fill, what)

    def _end_reads(self) -> None:
        """Drop the shared read transaction: later reads see new writes, and the map may be resized."""
        if self._rtxn is not None:
            self._rtxn.abort()
            self._rtxn = None

    def _write_locked(self, fill: Any, what: str) -> None:
        env = self._open_env()
        while True:
            try:
                with env.begin(write=True) as txn:
                    fill(txn)
                return
            except lmdb.MapFullError:
                size = env.info()["map_size"]
                if size >= self.max_map_size:
                    raise StoreFull(
                        f"store {self.path} is full: {what} did not fit in the {self.max_map_size} byte maximum map"
                    ) from None
                env.set_mapsize(min(size * 2, self.max_map_size))
                self._counters["map_grows"] += 1
            except (lmdb.Error, OSError) as e:
                # A full disk reaches us as EIO (LMDB turns a short pwrite into EIO), ENOSPC, EDQUOT or
                # EFBIG; the transaction was aborted either way, so the caller keeps the batch.
                raise StoreFull(
                    f"cannot write {what} to store {self.path}: {_lmdb_reason(e)} ({_free_bytes(self.path)} bytes free)"
                ) from None

    def delete_many(self, keys: Iterable[bytes]) -> int:
        ks = [self._key(k) for k in keys]
        n = 0

        def delete(txn: lmdb.Transaction) -> None:
            nonlocal n
            n = sum(1 for k in ks if txn.delete(k, db=self._values))

        self._write(delete, f"deleting {len(ks)} keys")
        return n

    def get_meta(self, name: str) -> Any:
        return self._read_meta(name)

    def set_meta(self, name: str, value: Any) -> None:
        self._write_meta({name: value})

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Pairs in key order, read in short transactions so writes and map growth may interleave."""
        start, skip_first = prefix, False
        while True:
            chunk: list[tuple[bytes, bytes]] = []
            with self._open_env().begin(db=self._values) as txn:
                cur = txn.cursor()
                if not cur.set_range(start):
                    return
                for k, v in cur:
                    if skip_first and k == start:
                        continue
                    skip_first = False
                    if not k.startswith(prefix):
                        break
                    chunk.append((k, v))
                    if len(chunk) >= 1000:
                        break
            if not chunk:
                return
            yield from chunk
            if len(chunk) < 1000:
                return
            start, skip_first = chunk[-1][0], True

    def stats(self) -> dict[str, Any]:
        env = self._open_env()
        info = env.info()
        with env.begin(db=self._values) as txn:
            st = txn.stat(self._values)
        data_file = os.path.join(self.path, "data.mdb")
        return {
            "backend": self.backend,
            "path": self.path,
            "entries": st["entries"],
            "map_size": info["map_size"],
            "used_bytes": (info["last_pgno"] + 1) * st["psize"],
            "file_bytes": os.path.getsize(data_file) if os.path.exists(data_file) else 0,
            **self._counters,
        }

    def __len__(self) -> int:
        with self._open_env().begin(db=self._values) as txn:
            return txn.stat(self._values)["entries"]

    def close(self) -> None:
        """Flush, clear the open mark (a clean close) and release the lock; idempotent."""
        if self.env is not None:
            try:
                with self._rlock:
                    self._end_reads()
                self.env.sync(True)
                with self.env.begin(write=True, db=self._meta) as txn:
                    txn.delete(OPEN_MARK.encode())
                self.env.sync(True)
            except lmdb.Error:
                pass  # the mark stays; harmless on the same boot
        self._close_env()
        self._lock.release()

    def _close_env(self) -> None:
        if self.env is not None:
            with self._rlock:
                self._end_reads()
            self.env.close()
            self.env = None

    def release_pages(self) -> int:
        """Drop this store's mapped data pages from the process's RSS (madvise MADV_DONTNEED); returns bytes advised.

        LMDB reads through a read-only shared map of data.mdb: every page a lookup touches stays in the
        process's (file-backed) RSS until unmapped. Dropping them is safe at any time: the next access
        faults the page back in from the page cache. Linux only; elsewhere (or on any failure) a no-op.
        """
        data = os.path.realpath(os.path.join(self.path, "data.mdb"))
        done = 0
        try:
            with self._rlock:
                ranges = []
                with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
                    for line in f:
                        if line.rstrip("\n").endswith(data):
                            lo, _, hi = line.split(None, 1)[0].partition("-")
                            ranges.append((int(lo, 16), int(hi, 16)))
                if not ranges:
                    return 0
                madvise = _madvise()
                for start, end in ranges:
                    if madvise is not None and madvise(start, end - start, 4) == 0:  # MADV_DONTNEED
                        done += end - start
        except (OSError, ValueError):
            return 0
        return done

    def __enter__(self) -> LMDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MADVISE: list = []


def _madvise():
    """madvise(addr, length, advice) -> 0 on success: the C extension's, else libc's through ctypes; or None."""
    if not _MADVISE:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                if os.environ.get("DAGPROF_NO_C", "") not in ("", "0"):
                    raise ImportError("DAGPROF_NO_C is set")
                from ._fastguard import madvise as fn
            except ImportError:
                fn = _ctypes_madvise()
        _MADVISE.append(fn)
    return _MADVISE[0]


def _ctypes_madvise():
    try:
        import ctypes

        try:  # the process's own symbols include libc's: no search (find_library runs ldconfig)
            fn = ctypes.CDLL(None, use_errno=True).madvise
        except (OSError, AttributeError):
            import ctypes.util

            fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).madvise
        fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


def _free_bytes(path: str) -> int:
    try:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize
    except OSError:
        return -1


def _lmdb_reason(e: BaseException) -> str:
    text = str(e).split(": ", 1)[-1]
    return text.splitlines()[0] if text else type(e).__name__


def set_aside(path: str | os.PathLike) -> str:
    """Rename a bad store to <path>.bad-<timestamp> (never delete: it may be evidence) and return that."""
    path = os.fspath(path).rstrip("/")
    base = f"{path}.bad-{time.strftime('%Y%m%d-%H%M%S')}"
    new, n = base, 0
    while os.path.lexists(new):
        n += 1
        new = f"{base}-{n}"
    os.rename(path, new)
    return new


def open_store(
    kind: str, path: str | os.PathLike | None = None, expect: dict[str, str] | None = None, **options: Any
) -> tuple[Store | None, str | None]:
    """The store to build with, and a one-line warning; (None, warning) means build without a store.

    kind: "lmdb", "memory" or "none". A damaged or mismatched LMDB store is set aside and a fresh
    one is created; a busy one (after `lock_timeout` seconds) or one that cannot be created is
    bypassed. Never raises StoreError.
    """
    if kind == "none":
        return None, None
    if kind == "memory":
        return MemoryStore(), None
    if kind != "lmdb":
        raise ValueError(f"unknown store kind {kind!r} (expected lmdb, memory or none)")
    if path is None:
        raise ValueError("an lmdb store needs a path")
    path = os.fspath(path)
    try:
        return LMDBStore(path, expect=expect, **options), None
    except StoreBusy as e:
        return None, f"dagstore: {e}; building without the store"
    except (StoreDamaged, StoreMismatch) as e:
        problem = str(e)
    except (StoreFull, OSError, lmdb.Error) as e:  # no room for even the header: build without the store
        return None, f"dagstore: cannot use store {path}: {_os_reason(e)}; building without the store"
    try:
        moved = set_aside(path)
    except OSError as e:
        return None, f"dagstore: {problem}; cannot set it aside ({_os_reason(e)}); building without the store"
    try:
        return (
            LMDBStore(path, expect=expect, **options),
            f"dagstore: {problem}; set aside as {moved}, starting a fresh store",
        )
    except (StoreError, OSError, lmdb.Error) as e:
        return None, (
            f"dagstore: {problem}; set aside as {moved}; a fresh store failed too ({e}); building without the store"
        )


def _os_reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__

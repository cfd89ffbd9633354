"""The DAG cache: the last successful build's graph and every input that produced it, in one LMDB file.

An up-to-date build is answered from here without the build tool building its graph: the snapshot
is streamed with a cursor (one record decoded at a time, stopping at the first change), so memory
does not grow with the DAG. Nothing here knows SCons: the caller supplies the invocation, the
read-phase input records (`dagstore.inputs`), one record per file/directory node, the structure
digest of the graph, and the bytes a null build printed.

Layout (keys of the environment `<store>/dag`, values msgpack):
    b"H"               header: format, state ("valid" | "building"), invocation, inputs key, counts,
                       hash name, recorded_at_ns, answerable + reason, the output to replay
    b"i" + u32         read-phase input records, in recording order
    b"n" + u32         node records [path, kind, size, mtime_ns, ino, ctime_ns, sig], sorted by path
    b"T" + inputs key  trust: a build with these inputs and this invocation was confirmed up to date
                       by the build tool itself: {"dag": digest, "output": [[fd, bytes], ...]}
    b"X"               the cache is off for this project: {"reason": ..., "target": ...}

The rules (docs/dagstore.md, "DAG cache"): a snapshot is written only by a build that exited 0; a
starting build marks it "building" first, so a killed build never leaves one that answers; a
snapshot answers only while its inputs key is trusted and its graph digest is the trusted one; two
recordings with the same inputs and different graphs turn the cache off until reset.
"""
from __future__ import annotations

import hashlib
import os
import stat as _stat
import struct
import time
from typing import Any, Iterable, Iterator

import lmdb
import msgpack

from . import inputs as _inputs

FORMAT = 1
RACY_NS = 2_000_000_000  # a stamp this close to the recording is re-hashed (git's racily-clean rule)
DIR_NAME = "dag"
_SEQ = struct.Struct(">I")
_MAP_SIZE = 1 << 30  # a sparse file: only written pages take disk space

# node record kinds
FILE, MISSING, DIR, OTHER = "f", "m", "d", "o"


class SnapshotDamaged(Exception):
    """The snapshot cannot be read as one (garbage, wrong format): set it aside and build."""


class Answer:
    """What checking the snapshot found: `up_to_date` with the output to replay, or why not."""

    __slots__ = ("up_to_date", "reason", "output", "inputs_checked", "nodes_checked", "seconds")

    def __init__(self, up_to_date: bool, reason: str) -> None:
        self.up_to_date = up_to_date
        self.reason = reason
        self.output: list[tuple[int, bytes]] = []
        self.inputs_checked = 0
        self.nodes_checked = 0
        self.seconds = 0.0


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, unicode_errors="surrogateescape")


def _unpack(blob: bytes) -> Any:
    try:
        return msgpack.unpackb(blob, raw=False, strict_map_key=False, unicode_errors="surrogateescape")
    except Exception as e:  # msgpack raises several types for garbage; all mean "damaged"
        raise SnapshotDamaged(f"undecodable record ({type(e).__name__})") from None


def dag_path(store_path: str) -> str:
    """Where the snapshot of a store lives (its own environment: the answer never takes the store's lock)."""
    return os.path.join(store_path, DIR_NAME)


def _open_env(path: str, readonly: bool) -> lmdb.Environment | None:
    if readonly and not os.path.exists(os.path.join(path, "data.mdb")):
        return None
    if not readonly:
        os.makedirs(path, exist_ok=True)
    return lmdb.open(path, map_size=_MAP_SIZE, subdir=True, readonly=readonly, max_dbs=0,
                     metasync=True, sync=True, readahead=False, create=not readonly)


def inputs_key(invocation: dict, records: Iterable[list]) -> bytes:
    """Digest of what the read phase saw: same key, same SConscript result (once confirmed)."""
    h = hashlib.sha256(_pack(invocation))
    for r in sorted(_pack(_identity(r)) for r in records):
        h.update(r)
    return h.digest()


def _identity(record: list) -> list:
    """An input record without its stamp: a touched SConstruct is the same input."""
    if record and record[0] in ("f", "o") and len(record) >= 3 and isinstance(record[2], list) and record[2]:
        return [record[0], record[1], record[2][0], record[2][5] if len(record[2]) > 5 else None]
    return list(record)


# ---- node records --------------------------------------------------------------------------------

def node_record(path: str, sig: str | None) -> list:
    """A node's state now: kind, stamp, and the content signature the build tool recorded (or None)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return [path, MISSING, 0, 0, 0, 0, None]
    except OSError:
        return [path, OTHER, 0, 0, 0, 0, None]
    if _stat.S_ISREG(st.st_mode):
        return [path, FILE, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, sig]
    if _stat.S_ISDIR(st.st_mode):
        return [path, DIR, 0, 0, 0, 0, sig]
    return [path, OTHER, 0, 0, 0, 0, None]


def listing_digest(path: str) -> str | None:
    """Digest of a directory's sorted entry names (None: cannot be listed)."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return None
    return hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def file_digest(path: str, hash_name: str) -> str | None:
    """The build tool's content signature of a file, computed the way it computes it."""
    try:
        h = hashlib.new(hash_name)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                h.update(block)
        return h.hexdigest()
    except (OSError, ValueError):
        return None


def check_node(rec: list, hash_name: str, recorded_at_ns: int, rehash: bool = True) -> str | None:
    """None when the node is as recorded; else a one-line reason."""
    path, kind = rec[0], rec[1]
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None if kind == MISSING else f"{path} is gone"
    except OSError as e:
        return f"{path}: {e.strerror}"
    if kind == FILE:
        if not _stat.S_ISREG(st.st_mode):
            return f"{path} is no longer a file"
        if (st.st_size == rec[2] and st.st_mtime_ns == rec[3] and st.st_ino == rec[4]
                and st.st_ctime_ns == rec[5] and rec[3] < recorded_at_ns - RACY_NS):
            return None
        sig = rec[6]
        if sig is None or not rehash:
            return f"{path} changed"
        if st.st_size != rec[2]:
            return f"{path} changed"  # a content signature never matches another length... cheaply said
        return None if file_digest(path, hash_name) == sig else f"{path} changed"
    if kind == DIR:
        if not _stat.S_ISDIR(st.st_mode):
            return f"{path} is no longer a directory"
        if rec[6] is not None and listing_digest(path) != rec[6]:
            return f"directory {path} changed"
        return None
    if kind == MISSING:
        return f"{path} appeared"
    return f"{path} changed"


# ---- writing -------------------------------------------------------------------------------------

class DagCache:
    """The snapshot of one store: invalidate at build start, record at a successful end, answer."""

    def __init__(self, store_path: str) -> None:
        self.path = dag_path(store_path)

    # -- start of a build
    def invalidate(self) -> None:
        """A build is starting: the snapshot must not answer until this build records a new one."""
        try:
            env = _open_env(self.path, readonly=True)
        except lmdb.Error:
            env = None
        if env is None:
            return
        env.close()
        env = _open_env(self.path, readonly=False)
        try:
            with env.begin(write=True) as txn:
                blob = txn.get(b"H")
                if blob is None:
                    return
                try:
                    header = _unpack(blob)
                except SnapshotDamaged:
                    header = {}
                if not isinstance(header, dict):
                    header = {}
                header["state"] = "building"
                txn.put(b"H", _pack(header))
        finally:
            env.close()

    def reset(self) -> None:
        """Forget everything (the user turns the cache back on after it turned itself off)."""
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)

    def set_aside(self, why: str) -> str | None:
        """A damaged snapshot is moved beside the store, never trusted and never deleted."""
        if not os.path.exists(self.path):
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dest = f"{self.path}.damaged-{stamp}-{os.getpid()}"
        os.rename(self.path, dest)
        with open(os.path.join(dest, "WHY"), "w", encoding="utf-8") as f:
            f.write(why + "\n")
        return dest

    def disabled(self) -> dict | None:
        """Why the cache turned itself off for this project, or None."""
        try:
            env = _open_env(self.path, readonly=True)
        except lmdb.Error:
            return None
        if env is None:
            return None
        try:
            with env.begin() as txn:
                blob = txn.get(b"X")
            return _unpack(blob) if blob is not None else None
        except SnapshotDamaged:
            return None
        finally:
            env.close()

    def record(self, invocation: dict, input_records: list[list], nodes: list[list], *, hash_name: str,
               recorded_at_ns: int, dag_digest: str, dag_targets: dict[str, str], built_nothing: bool,
               answerable: bool, reason: str, output: list[tuple[int, bytes]] | None,
               rehash: bool = True) -> dict:
        """Write the snapshot of a build that exited 0, in one transaction; returns the new header.

        built_nothing: the build tool found everything up to date (it confirms these inputs);
        rehash: a changed stamp may be settled by the content signature (False for timestamp Deciders);
        dag_targets: target path -> structure/action digest, to name a target when two recordings disagree.
        """
        key = inputs_key(invocation, input_records)
        nodes = sorted(nodes, key=lambda r: r[0])
        env = _open_env(self.path, readonly=False)
        try:
            with env.begin(write=True) as txn:
                old = self._header(txn)
                disabled = txn.get(b"X")
                trust_blob = txn.get(b"T" + key)
                trust = _unpack(trust_blob) if trust_blob is not None else None
                newly_off = None
                if disabled is None and old and old.get("inputs_key") == key and old.get("dag") not in (None, dag_digest):
                    target = self._differing_target(txn, old, dag_targets)
                    newly_off = {"reason": "two builds with the same SConscript inputs gave different "
                                           "build graphs or commands", "target": target}
                    txn.put(b"X", _pack(newly_off))
                    disabled = b"x"
                if trust is not None and trust.get("dag") != dag_digest and disabled is None:
                    target = self._differing_target(txn, old, dag_targets) if old else None
                    newly_off = {"reason": "a build confirmed up to date and this one read the same "
                                           "inputs but made a different build graph", "target": target}
                    txn.put(b"X", _pack(newly_off))
                    disabled = b"x"
                if built_nothing and answerable and output is not None and disabled is None:
                    trust = {"dag": dag_digest, "output": [[fd, bytes(b)] for fd, b in output],
                             "confirmed_ns": time.time_ns()}
                    txn.put(b"T" + key, _pack(trust))
                if disabled is not None:
                    answerable, reason = False, "the DAG cache is off for this project"
                elif answerable and trust is None:
                    answerable, reason = False, "not yet confirmed up to date by SCons with these inputs"
                # the records: old ones out, new ones in
                with txn.cursor() as cur:
                    for prefix in (b"i", b"n", b"t"):
                        if cur.set_range(prefix):
                            while cur.key()[:1] == prefix:
                                if not cur.delete():
                                    break
                for i, r in enumerate(input_records):
                    txn.put(b"i" + _SEQ.pack(i), _pack(r), append=False)
                for i, r in enumerate(nodes):
                    txn.put(b"n" + _SEQ.pack(i), _pack(r), append=False)
                for i, (t, d) in enumerate(sorted(dag_targets.items())):
                    txn.put(b"t" + _SEQ.pack(i), _pack([t, d]), append=False)
                header = {
                    "format": FORMAT, "state": "valid", "invocation": invocation, "inputs_key": key,
                    "dag": dag_digest, "hash": hash_name, "recorded_at_ns": recorded_at_ns,
                    "inputs": len(input_records), "nodes": len(nodes), "targets": len(dag_targets),
                    "answerable": bool(answerable), "reason": reason, "rehash": bool(rehash),
                    "output": trust["output"] if (answerable and trust) else None,
                }
                txn.put(b"H", _pack(header))
            if newly_off is not None:
                header["off"] = newly_off
            return header
        finally:
            env.close()

    @staticmethod
    def _header(txn: lmdb.Transaction) -> dict | None:
        blob = txn.get(b"H")
        if blob is None:
            return None
        try:
            h = _unpack(blob)
        except SnapshotDamaged:
            return None
        return h if isinstance(h, dict) and h.get("format") == FORMAT else None

    @staticmethod
    def _differing_target(txn: lmdb.Transaction, old: dict | None, new: dict[str, str]) -> str | None:
        """A target whose structure or command differs between the recorded snapshot and `new`."""
        with txn.cursor() as cur:
            if cur.set_range(b"t"):
                while cur.key()[:1] == b"t":
                    try:
                        t, d = _unpack(cur.value())
                    except (SnapshotDamaged, ValueError, TypeError):
                        return None
                    if new.get(t, d) != d:
                        return t
                    if not cur.next():
                        break
        return None

    # -- answering
    def answer(self, invocation: dict, rehash: bool = True) -> Answer:
        """Is the build described by `invocation` up to date? Streams the snapshot; stops at the first change.

        Raises SnapshotDamaged for a snapshot that cannot be read (the caller sets it aside).
        """
        t0 = time.perf_counter()
        try:
            env = _open_env(self.path, readonly=True)
        except lmdb.Error as e:
            raise SnapshotDamaged(f"unreadable DAG snapshot ({e})") from None
        if env is None:
            return Answer(False, "no DAG snapshot yet")
        ans = Answer(False, "")
        try:
            with env.begin(buffers=True) as txn:
                ans.reason = self._check(txn, invocation, rehash, ans) or ""
                ans.up_to_date = not ans.reason
        except lmdb.Error as e:
            raise SnapshotDamaged(f"unreadable DAG snapshot ({e})") from None
        finally:
            env.close()
        ans.seconds = time.perf_counter() - t0
        return ans

    def _check(self, txn: lmdb.Transaction, invocation: dict, rehash: bool, ans: Answer) -> str | None:
        blob = txn.get(b"H")
        if blob is None:
            return "no DAG snapshot yet"
        header = _unpack(bytes(blob))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise SnapshotDamaged("DAG snapshot of an unknown format")
        x = txn.get(b"X")
        if x is not None:
            off = _unpack(bytes(x))
            return f"the DAG cache is off for this project ({off.get('reason')}, e.g. {off.get('target')})"
        if header.get("state") != "valid":
            return "the last build did not finish"
        if header.get("invocation") != invocation:
            return "another invocation (arguments, SCONSFLAGS, directory, versions or terminal)"
        if not header.get("answerable"):
            return header.get("reason") or "not answerable"
        hash_name = header.get("hash") or "md5"
        recorded_at = int(header.get("recorded_at_ns") or 0)
        for rec in self._stream(txn, b"i"):
            ans.inputs_checked += 1
            why = _inputs.check(rec, hash_name)
            if why:
                return why
        rehash = rehash and bool(header.get("rehash"))  # once, not per node
        for rec in self._stream(txn, b"n"):
            ans.nodes_checked += 1
            if not isinstance(rec, list) or len(rec) != 7:
                raise SnapshotDamaged("malformed node record")
            why = check_node(rec, hash_name, recorded_at, rehash)
            if why:
                return why
        if ans.inputs_checked != header.get("inputs") or ans.nodes_checked != header.get("nodes"):
            raise SnapshotDamaged("DAG snapshot is missing records")
        ans.output = [(int(fd), bytes(b)) for fd, b in header.get("output") or ()]
        return None

    @staticmethod
    def _stream(txn: lmdb.Transaction, prefix: bytes) -> Iterator[Any]:
        # one record at a time, decoded straight from LMDB's buffer (no copy, no slice per record): the
        # fast path streams every node; `_unpack`'s decoding and error translation, inlined
        first = prefix[0]
        unpackb = msgpack.unpackb
        with txn.cursor() as cur:
            if not cur.set_range(prefix):
                return
            for k, v in cur:
                if k[0] != first:
                    return
                try:
                    rec = unpackb(v, raw=False, strict_map_key=False, unicode_errors="surrogateescape")
                except Exception as e:  # as _unpack: every msgpack error means "damaged"
                    raise SnapshotDamaged(f"undecodable record ({type(e).__name__})") from None
                yield rec

    def header(self) -> dict | None:
        """The snapshot's header (for reports and tests)."""
        try:
            env = _open_env(self.path, readonly=True)
        except lmdb.Error:
            return None
        if env is None:
            return None
        try:
            with env.begin() as txn:
                return self._header(txn)
        finally:
            env.close()

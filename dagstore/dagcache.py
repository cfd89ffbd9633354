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
    b"n" + u32         node records [path, kind, size, mtime_ns, ino, ctime_ns, sig], in walk order
    b"T" + inputs key  trust: a build with these inputs and this invocation was confirmed up to date
                       by the build tool itself: {"dag": digest, "output": [[fd, bytes], ...]}
    b"X"               the cache is off for this project: {"reason": ..., "target": ...}

The rules (docs/dagstore.md, "DAG cache"): a snapshot is written only by a build that exited 0; a
starting build marks it "building" first, so a killed build never leaves one that answers; a
snapshot answers only while its inputs key is trusted and its graph digest is the trusted one; two
recordings with the same inputs and different graphs turn the cache off until reset.
"""

from __future__ import annotations

import os
import stat as _stat
import struct
import time
from itertools import islice

import lmdb
import msgpack

from . import inputs as _inputs
from .hashes import new_hash

# typing is only for annotations here: importing it costs the DAG cache's answer ~1.5 MiB (with re)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

FORMAT = 1
# an input record tag for a file the *build* (not the SConscripts) read without it being a node (a
# custom scanner's list, a Decider's file): checked as "f", left out of the inputs key, which says
# what the SConscripts saw
BUILD_FILE = "F"
RACY_NS = 2_000_000_000  # a stamp this close to the recording is re-hashed (git's racily-clean rule)
DIR_NAME = "dag"
_SEQ = struct.Struct(">I")
_MAP_SIZE = 1 << 30  # a sparse file: only written pages take disk space

# node record kinds; STATE: a file whose content matters, never its stamp (SCons' .sconsign);
# KIND: a file whose existence is all that matters (the build never looked at its content)
FILE, MISSING, DIR, OTHER, STATE, KIND = "f", "m", "d", "o", "s", "k"


_DAMAGE = (
    lmdb.CorruptedError,
    lmdb.InvalidError,
    lmdb.VersionMismatchError,
    lmdb.PageNotFoundError,
    lmdb.BadValsizeError,
    lmdb.BadTxnError,
    lmdb.DiskError,
)


class _Moved(Exception):
    """Another build committed a new snapshot while this one was being checked."""


class _Reader:
    """Streams a snapshot in chunks: the environment is reopened every CHUNK bytes, so the LMDB pages
    already checked leave the process (mapped pages count as resident: the check's peak RSS stays flat
    whatever the size of the DAG). Each reopening verifies the header is unchanged."""

    CHUNK = 2 << 20

    def __init__(self, path: str) -> None:
        self.path = path
        self.env: lmdb.Environment | None = None
        self.txn: lmdb.Transaction | None = None
        self.header_blob: bytes | None = None

    def open(self) -> bool:
        self.env = _open_env(self.path, readonly=True)
        if self.env is None:
            return False
        self.txn = self.env.begin(buffers=True)
        blob = self.txn.get(b"H")
        self.header_blob = bytes(blob) if blob is not None else None
        return True

    def get(self, key: bytes) -> bytes | None:
        assert self.txn is not None
        v = self.txn.get(key)
        return bytes(v) if v is not None else None

    def _reopen(self) -> None:
        self.close()
        self.env = _open_env(self.path, readonly=True)
        if self.env is None:
            raise _Moved()
        self.txn = self.env.begin(buffers=True)
        blob = self.txn.get(b"H")
        if blob is None or bytes(blob) != self.header_blob:
            raise _Moved()

    def stream(self, prefix: bytes) -> Iterator[Any]:
        """Decoded records under `prefix`, in key order, each decoded straight from LMDB's buffer."""
        assert self.txn is not None
        first = prefix[0]
        unpackb = msgpack.unpackb
        start = prefix
        while True:
            read = 0
            last = None
            with self.txn.cursor() as cur:
                if not cur.set_range(start):
                    return
                if start != prefix and bytes(cur.key()) == start and not cur.next():
                    return  # `start` was the last record checked before reopening
                for k, v in cur:
                    if k[0] != first:
                        return
                    try:
                        rec = unpackb(v, raw=False, strict_map_key=False, unicode_errors="surrogateescape")
                    except Exception as e:  # as _unpack: every msgpack error means "damaged"
                        raise SnapshotDamaged(f"undecodable record ({type(e).__name__})") from None
                    yield rec
                    read += len(v) + 8
                    if read >= self.CHUNK:
                        last = bytes(k)
                        break
                else:
                    return
            start = last
            self._reopen()

    def close(self) -> None:
        if self.txn is not None:
            self.txn.abort()
            self.txn = None
        if self.env is not None:
            self.env.close()
            self.env = None


class SnapshotDamaged(Exception):
    """The snapshot cannot be read as one (garbage, wrong format): set it aside and build."""


class Answer:
    """What checking the snapshot found: `up_to_date` with the output to replay, or why not."""

    __slots__ = ("inputs_checked", "nodes_checked", "output", "reason", "seconds", "up_to_date")

    def __init__(self, up_to_date: bool, reason: str) -> None:
        self.up_to_date = up_to_date
        self.reason = reason
        self.output: list[tuple[int, bytes]] = []
        self.inputs_checked = 0
        self.nodes_checked = 0
        self.seconds = 0.0


_PACK_OPTIONS: dict[str, Any] = {"use_bin_type": True, "unicode_errors": "surrogateescape"}


def record_packer() -> Callable[[list], bytes]:
    """Packs records as stored, for callers that pack node records as they make them (bytes cost less than
    lists): one Packer, its options parsed once (the same bytes as _pack)."""
    return msgpack.Packer(**_PACK_OPTIONS).pack


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, **_PACK_OPTIONS)


def _unpack(blob: bytes | memoryview) -> Any:
    try:
        return msgpack.unpackb(blob, raw=False, strict_map_key=False, unicode_errors="surrogateescape")
    except Exception as e:  # msgpack raises several types for garbage; all mean "damaged"
        raise SnapshotDamaged(f"undecodable record ({type(e).__name__})") from None


def dag_path(store_path: str) -> str:
    """Where the snapshot of a store lives (its own environment: the answer never takes the store's lock)."""
    return os.path.join(store_path, DIR_NAME)


WRITE_CHUNK = 2048  # records per write transaction: ~256 KiB of dirty pages for node records
HOT_NODES = 32  # source files with the newest mtimes at recording, checked first (see DagCache.answer)


def _open_env(path: str, readonly: bool) -> lmdb.Environment | None:
    if readonly and not os.path.exists(os.path.join(path, "data.mdb")):
        return None
    if not readonly:
        os.makedirs(path, exist_ok=True)
    return lmdb.open(
        path,
        map_size=_MAP_SIZE,
        subdir=True,
        readonly=readonly,
        max_dbs=0,
        # one fsync per commit: a machine crash may undo the last transaction (never tear one), which leaves
        # the previous snapshot or one marked "building" (docs/dagstore.md, "Failures")
        metasync=False,
        sync=True,
        readahead=False,
        create=not readonly,
    )


def inputs_key(invocation: dict, records: Iterable[list]) -> bytes:
    """Digest of what the read phase saw: same key, same SConscript result (once confirmed)."""
    h = new_hash("sha256", _pack(invocation))
    for r in sorted(_pack(_identity(r)) for r in records if r[0] != BUILD_FILE):
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
    return new_hash("sha256", "\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def file_digest(path: str, hash_name: str) -> str | None:
    """The build tool's content signature of a file, computed the way it computes it."""
    try:
        h = new_hash(hash_name)
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
    if kind == KIND:
        return None if _stat.S_ISREG(st.st_mode) else f"{path} is no longer a file"
    if kind in (FILE, STATE):
        if not _stat.S_ISREG(st.st_mode):
            return f"{path} is no longer a file"
        same_stamp = (
            st.st_size == rec[2] and st.st_mtime_ns == rec[3] and st.st_ino == rec[4] and st.st_ctime_ns == rec[5]
        )
        if same_stamp and kind == FILE and rec[3] < recorded_at_ns - RACY_NS:
            return None
        # a racily clean stamp proves nothing: compare contents. A differing stamp is settled by
        # content only where the Decider looks at content (a state file: always)
        if not same_stamp and kind == FILE and not rehash:
            return f"{path} changed"
        sig = rec[6]
        if sig is None or st.st_size != rec[2]:
            return f"{path} changed"
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


class StoredStates:
    """path -> file state, held compactly while a recording runs at the end of a build (near its peak RSS):
    the key is the path's hash and the value the packed state, ~170 bytes a file instead of ~540 for the
    path and the decoded list. Two paths sharing a hash can only cost a re-read: a state is reused only when
    the file's size, mtime, inode and ctime all match it."""

    def __init__(self) -> None:
        self._packed: dict[int, bytes] = {}

    def put(self, path: str, state: list) -> None:
        self._packed[hash(path)] = _pack(state)

    def get(self, path: str, default: list | None = None) -> list | None:
        blob = self._packed.get(hash(path))
        if blob is None:
            return default
        try:
            state = _unpack(blob)
        except SnapshotDamaged:
            return default
        return state if isinstance(state, list) else default

    def __len__(self) -> int:
        return len(self._packed)


class DagCache:
    """The snapshot of one store: invalidate at build start, record at a successful end, answer."""

    def __init__(self, store_path: str) -> None:
        self.path = dag_path(store_path)

    # -- start of a build
    def invalidate(self) -> None:
        """A build is starting: the snapshot must not answer until this build records a new one."""
        if not os.path.exists(os.path.join(self.path, "data.mdb")):
            return  # no snapshot: nothing to invalidate (and no environment to create)
        try:
            env = _open_env(self.path, readonly=False)
        except (OSError, lmdb.Error):
            return  # cannot write here: this build cannot record either; the node checks still see its changes
        if env is None:
            return
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
        try:
            os.rename(self.path, dest)
        except OSError:
            return None  # cannot move it (read-only directory): the build runs SCons, which cannot record either
        try:
            with open(os.path.join(dest, "WHY"), "w", encoding="utf-8") as f:
                f.write(why + "\n")
        except OSError:
            pass
        return dest

    def _read(self, read: Any) -> Any:
        """`read(txn)` in a read-only transaction; None when there is no snapshot or it cannot be read."""
        try:
            env = _open_env(self.path, readonly=True)
        except lmdb.Error:
            return None
        if env is None:
            return None
        try:
            with env.begin() as txn:
                return read(txn)
        except SnapshotDamaged:
            return None
        finally:
            env.close()

    def disabled(self) -> dict | None:
        """Why the cache turned itself off for this project, or None."""

        def read(txn: lmdb.Transaction) -> dict | None:
            blob = txn.get(b"X")
            return _unpack(blob) if blob is not None else None

        return self._read(read)

    def record(
        self,
        invocation: dict,
        input_records: list[list],
        nodes: list[bytes | list],
        *,
        hash_name: str,
        recorded_at_ns: int,
        dag_digest: str,
        dag_targets: dict[str, bytes],
        built_nothing: bool,
        answerable: bool,
        reason: str,
        output: list[tuple[int, bytes]] | None,
        rehash: bool = True,
        root: str = "",
        hot: list[list] | None = None,
    ) -> dict:
        """Write the snapshot of a build that exited 0, in one transaction; returns the new header.

        built_nothing: the build tool found everything up to date (it confirms these inputs);
        rehash: a changed stamp may be settled by the content signature (False for timestamp Deciders);
        root: node paths not starting with "/" are relative to it (ends with "/"; a third of the bytes);
        dag_targets: target path -> structure/action digest, to name a target when two recordings disagree;
        hot: up to HOT_NODES node records (also among `nodes`) that answer() checks first.
        """
        key = inputs_key(invocation, input_records)
        env = _open_env(self.path, readonly=False)  # OSError / lmdb.Error: the caller records nothing
        if env is None:  # (a writable open creates the environment: never None)
            raise lmdb.Error(f"{self.path}: no environment")
        try:
            # 1. decide, and mark the snapshot "building" (a build that starts already did; a crash
            #    from here on leaves a snapshot that never answers)
            with env.begin(write=True) as txn:
                old = self._header(txn)
                disabled = txn.get(b"X")
                trust_blob = txn.get(b"T" + key)
                trust = _unpack(trust_blob) if trust_blob is not None else None
                newly_off = None
                off_reason = None
                if disabled is None:  # the same inputs, another graph: something untracked decides
                    if old and old.get("inputs_key") == key and old.get("dag") not in (None, dag_digest):
                        off_reason = (
                            "two builds with the same SConscript inputs gave different build graphs or commands"
                        )
                    elif trust is not None and trust.get("dag") != dag_digest:
                        off_reason = (
                            "a build confirmed up to date and this one read the same inputs but made a "
                            "different build graph"
                        )
                if off_reason is not None:
                    target = self._differing_target(txn, old, dag_targets) if old else None
                    newly_off = {"reason": off_reason, "target": target}
                    txn.put(b"X", _pack(newly_off))
                    disabled = b"x"
                if old is not None and old.get("state") != "building":
                    txn.put(b"H", _pack({**old, "state": "building"}))
            # 2. the records: written over the old ones in place (cheaper than deleting them first), then the
            #    old ones beyond the new count deleted; in transactions of WRITE_CHUNK records, so LMDB's
            #    dirty pages (process memory until commit) stay small at the build's peak
            for prefix, blobs in (
                (b"i", (_pack(r) for r in input_records)),
                (b"n", (n if isinstance(n, bytes) else _pack(n) for n in nodes)),
                (b"t", (_pack([t, d]) for t, d in sorted(dag_targets.items()))),
            ):
                count = self._put_chunked(env, prefix, blobs)
                while self._delete_some(env, prefix, count):
                    pass
            # 3. trust and the header last: the snapshot answers only once all of it is written
            with env.begin(write=True) as txn:
                if built_nothing and answerable and output is not None and disabled is None:
                    trust = {
                        "dag": dag_digest,
                        "output": [[fd, bytes(b)] for fd, b in output],
                        "confirmed_ns": time.time_ns(),
                    }
                    txn.put(b"T" + key, _pack(trust))
                if disabled is not None:
                    answerable, reason = False, "the DAG cache is off for this project"
                elif answerable and trust is None:
                    answerable, reason = False, "not yet confirmed up to date by SCons with these inputs"
                header = {
                    "format": FORMAT,
                    "state": "valid",
                    "invocation": invocation,
                    "inputs_key": key,
                    "dag": dag_digest,
                    "hash": hash_name,
                    "recorded_at_ns": recorded_at_ns,
                    "inputs": len(input_records),
                    "nodes": len(nodes),
                    "targets": len(dag_targets),
                    "answerable": bool(answerable),
                    "reason": reason,
                    "rehash": bool(rehash),
                    "root": root,
                    "output": trust["output"] if (answerable and trust) else None,
                    "hot": list(hot or ())[:HOT_NODES],
                }
                txn.put(b"H", _pack(header))
            if newly_off is not None:
                header["off"] = newly_off
            return header
        finally:
            env.close()

    @staticmethod
    def _delete_some(env: lmdb.Environment, prefix: bytes, start: int = 0) -> bool:
        """Delete up to WRITE_CHUNK records prefix+seq, seq >= start, in one transaction; True if any were left."""
        with env.begin(write=True) as txn, txn.cursor() as cur:
            if not cur.set_range(prefix + _SEQ.pack(start)) or cur.key()[:1] != prefix:
                return False
            for _ in range(WRITE_CHUNK):
                if not cur.delete() or cur.key()[:1] != prefix:
                    return False
            return True

    @staticmethod
    def _put_chunked(env: lmdb.Environment, prefix: bytes, blobs: Iterable[bytes]) -> int:
        """Write records prefix+0, prefix+1, ... (over any stored there) in transactions of WRITE_CHUNK; the count."""
        it = iter(blobs)
        pack, i = _SEQ.pack, 0
        while True:
            chunk = [(prefix + pack(i + k), blob) for k, blob in enumerate(islice(it, WRITE_CHUNK))]
            if chunk:
                with env.begin(write=True) as txn, txn.cursor() as cur:
                    cur.putmulti(chunk)
                i += len(chunk)
            if len(chunk) < WRITE_CHUNK:
                return i

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
    def _differing_target(txn: lmdb.Transaction, old: dict | None, new: dict[str, bytes]) -> str | None:
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
        reader = _Reader(self.path)
        ans = Answer(False, "")
        try:
            if not reader.open():
                return Answer(False, "no DAG snapshot yet")
            ans.reason = self._check(reader, invocation, rehash, ans) or ""
            ans.up_to_date = not ans.reason
        except _DAMAGE as e:
            raise SnapshotDamaged(f"unreadable DAG snapshot ({type(e).__name__})") from None
        except lmdb.Error as e:  # permissions, a lock held by a crashed system...: not damage, just no answer
            return Answer(False, f"DAG snapshot not readable now ({type(e).__name__})")
        except _Moved:
            return Answer(False, "the snapshot changed while it was checked")
        finally:
            reader.close()
        ans.seconds = time.perf_counter() - t0
        return ans

    def _check(self, reader: _Reader, invocation: dict, rehash: bool, ans: Answer) -> str | None:
        blob = reader.header_blob
        if blob is None:
            return "no DAG snapshot yet"
        header = _unpack(blob)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise SnapshotDamaged("DAG snapshot of an unknown format")
        x = reader.get(b"X")
        if x is not None:
            off = _unpack(x)
            example = f", e.g. {off['target']}" if off.get("target") else ""
            return f"the DAG cache is off for this project ({off.get('reason')}{example})"
        if header.get("state") != "valid":
            return "the last build did not finish"
        if header.get("invocation") != invocation:
            return "another invocation (arguments, SCONSFLAGS, directory, versions or terminal)"
        if not header.get("answerable"):
            return header.get("reason") or "not answerable"
        hash_name = header.get("hash") or "md5"
        recorded_at = int(header.get("recorded_at_ns") or 0)
        root = header.get("root") or ""
        node_rehash = rehash and bool(header.get("rehash"))

        def node_change(rec: Any) -> str | None:
            if not isinstance(rec, list) or len(rec) != 7 or not isinstance(rec[0], str):
                raise SnapshotDamaged("malformed node record")
            if root and not rec[0].startswith("/"):
                rec[0] = root + rec[0]
            return check_node(rec, hash_name, recorded_at, node_rehash)

        # the files edited last are the likeliest to be edited again: a miss found at once, not after half
        # the nodes. Only ever an earlier "changed": every node is checked again below
        hot = header.get("hot") or []
        if not isinstance(hot, list):
            raise SnapshotDamaged("malformed hot node list")
        for rec in hot:
            why = node_change(rec)
            if why:
                return why
        for rec in reader.stream(b"i"):
            ans.inputs_checked += 1
            if rec[0] == BUILD_FILE:
                rec[0] = "f"
            why = _inputs.check(rec, hash_name)
            if why:
                return why
        for rec in reader.stream(b"n"):
            ans.nodes_checked += 1
            why = node_change(rec)
            if why:
                return why
        if ans.inputs_checked != header.get("inputs") or ans.nodes_checked != header.get("nodes"):
            raise SnapshotDamaged("DAG snapshot is missing records")
        ans.output = [(int(fd), bytes(b)) for fd, b in header.get("output") or ()]
        return None

    def header(self) -> dict | None:
        """The snapshot's header (for reports and tests)."""
        return self._read(self._header)

    def file_states(self, hash_name: str) -> StoredStates:
        """The stored snapshot's read-phase file input states, for a recording to reuse the digests of files
        whose stat is unchanged (inputs.file_state's `known`); empty when there are none to trust."""
        states = StoredStates()
        reader = _Reader(self.path)
        try:
            if not reader.open():
                return states
            assert reader.txn is not None
            header = self._header(reader.txn)
            if not header or header.get("hash") != hash_name:
                return states
            for rec in reader.stream(b"i"):
                if isinstance(rec, list) and len(rec) == 3 and rec[0] in ("f", "o", BUILD_FILE):
                    if isinstance(rec[1], str) and isinstance(rec[2], list):
                        states.put(rec[1], rec[2])
        except (SnapshotDamaged, _Moved, lmdb.Error):  # nothing to reuse: every file is read again
            return StoredStates()
        finally:
            reader.close()
        return states

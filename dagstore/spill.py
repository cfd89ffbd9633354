"""Spill descriptors: cold attribute values leave memory at safe points and come back on first read.

A guarded attribute's slot holds either its value or a shared `Marker`:
  - EMPTY_LIST / EMPTY_SET / EMPTY_DICT: an empty container collapsed in place (no I/O at all);
    a read puts a fresh empty container back.
  - SPILLED: the value is in the store (or still in the pending batch); a read decodes it back.
Values reused from the previous build come in through the guard's `on_none` hook: an attribute that
reads as None (not computed yet) is looked up under a stable key and used only when its stamp matches.

Nothing here knows SCons: the caller supplies the classes, the safe points, and (for reuse) a stable
key and a stamp per object. The guard itself is C (`_fastguard.c`) with an identical Python twin.
"""

from __future__ import annotations

import struct
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .codec import Codec, Refused
from .policy import robust_total
from .units import fmt_bytes

try:  # DAGPROF_NO_C=1: behave as if the extension were not built (CI runs the tests both ways)
    import os as _os

    if _os.environ.get("DAGPROF_NO_C", "") not in ("", "0"):
        raise ImportError("DAGPROF_NO_C is set")
    from ._fastguard import Guard as _CGuard
    from ._fastguard import collapse as _c_collapse
except ImportError:  # pragma: no cover - used when the extension is not built
    _CGuard = None
    _c_collapse = None


class Marker:
    """What a guarded slot holds instead of its value: a shared instance per kind, or one per spilled value.

    A spilled value's marker carries its sequence number: keys are handed out in increasing order, so
    LMDB only ever appends (few pages touched, little file-backed RSS) and nothing else is kept per value.
    """

    __slots__ = ("kind", "seq")

    def __init__(self, kind: str, seq: int = -1) -> None:
        self.kind = kind
        self.seq = seq

    def __repr__(self) -> str:
        return f"<dagstore {self.kind}>"

    def __reduce__(self):  # markers must never be pickled into .sconsign; fail loudly if they are
        raise TypeError(f"{self!r} leaked out of its slot")


SPILLED = Marker("spilled")  # kind of every per-value marker; this instance means "under the reuse key"
EMPTY_LIST = Marker("empty list")
EMPTY_SET = Marker("empty set")
EMPTY_DICT = Marker("empty dict")
_EMPTY_OF: dict[type, Marker] = {list: EMPTY_LIST, set: EMPTY_SET, dict: EMPTY_DICT}
_FRESH: dict[Marker, type] = {EMPTY_LIST: list, EMPTY_SET: set, EMPTY_DICT: dict}


class GuardLike(Protocol):
    """What the Spiller uses of a guard beyond the descriptor protocol: the C Guard and _PyGuard both have it."""

    def raw(self, obj: object) -> Any:
        """The slot's content as stored (value, Marker or None), without reload or reuse."""
        ...

    def store(self, obj: object, value: object) -> None:
        """Put `value` (a value or a Marker) in the slot, as stored."""
        ...


class _PyGuard:
    """Pure-Python twin of the C Guard."""

    __slots__ = ("wrapped", "owner", "name", "_marker_type", "_reload", "on_none", "_get", "_set")

    def __init__(self, wrapped, owner, name, marker_type, reload, on_none=None) -> None:
        tp = type(wrapped)
        if not (hasattr(tp, "__get__") and hasattr(tp, "__set__")):
            raise TypeError("Guard wraps data descriptors only")
        self.wrapped, self.owner, self.name = wrapped, owner, name
        self._marker_type, self._reload, self.on_none = marker_type, reload, on_none
        self._get, self._set = tp.__get__, tp.__set__

    def __get__(self, obj, cls=None):
        v = self._get(self.wrapped, obj, cls)
        if obj is None:
            return v
        if type(v) is self._marker_type:
            return self._reload(obj, self.name, v)
        if v is None and self.on_none is not None:
            return self.on_none(obj, self.name)
        return v

    def __set__(self, obj, value) -> None:
        self._set(self.wrapped, obj, value)

    def __delete__(self, obj) -> None:
        self.wrapped.__delete__(obj)

    def raw(self, obj):
        return self._get(self.wrapped, obj, type(obj))

    def store(self, obj, value) -> None:
        self._set(self.wrapped, obj, value)


GUARD_TYPES: tuple[type, ...] = (_PyGuard,) + ((_CGuard,) if _CGuard else ())


class SpillLost(RuntimeError):
    """A spilled value could not be read back: the build must stop rather than continue wrongly."""


SAMPLES = 4096  # per-lookup and per-scan times kept for their medians (32 KiB each)


@dataclass
class SpillStats:
    """Accounting for the report: what left memory, what came back, what was refused, at what cost."""

    spilled_attrs: int = 0
    spilled_bytes: int = 0
    collapsed: int = 0
    reloads: int = 0
    collapsed_reloads: int = 0
    reuse_hits: int = 0
    reuse_misses: int = 0
    reuse_stale: int = 0
    recorded: int = 0  # values written under their reuse key for the next build, kept in memory (not spills)
    refused: int = 0
    small: int = 0  # values left in memory at a safe point: encoded smaller than min_bytes
    spill_time_s: float = 0.0
    record_time_s: float = 0.0
    reload_time_s: float = 0.0
    reuse_time_s: float = 0.0  # every reuse lookup (hits, misses, stale), to weigh against the scans they save
    reuse_sampled: int = 0  # lookups left to a scan on purpose, to time the scan (scan_sample_every)
    scans: int = 0  # scans the adapter timed (the work a reuse hit replaces) ...
    scan_time_s: float = 0.0  # ... and their time
    # each lookup's and scan's own time (the first SAMPLES of each): their medians, unlike the totals, do
    # not count a garbage collection that happened to run inside one of them (policy.robust_total)
    reuse_timed: int = 0
    lookup_samples: array = field(default_factory=lambda: array("d"))
    scan_samples: array = field(default_factory=lambda: array("d"))
    flushes: int = 0
    # the build's wall time and peak RSS (the caller's, at the end): what a spill's cost is weighed against
    build_wall_s: float = 0.0
    build_peak_rss: int = 0
    stopped: str | None = None
    errors: dict[str, int] = field(default_factory=dict)  # store errors that cost a reuse or advice, by kind
    per_attr: dict[str, dict[str, int]] = field(default_factory=dict)

    def timed_lookup(self, dt: float) -> None:
        """One reuse lookup took dt seconds."""
        self.reuse_time_s += dt
        self.reuse_timed += 1
        if len(self.lookup_samples) < SAMPLES:
            self.lookup_samples.append(dt)

    def timed_scan(self, dt: float) -> None:
        """One scan the adapter timed (the work a reuse hit replaces) took dt seconds."""
        self.scan_time_s += dt
        self.scans += 1
        if len(self.scan_samples) < SAMPLES:
            self.scan_samples.append(dt)

    def reuse_times(self) -> tuple[float, float]:
        """(lookups' time, scans' time) as the reuse verdict weighs them (policy.robust_total)."""
        return (
            robust_total(self.lookup_samples, self.reuse_timed, self.reuse_time_s),
            robust_total(self.scan_samples, self.scans, self.scan_time_s),
        )

    def attr(self, key: str) -> dict[str, int]:
        d = self.per_attr.get(key)
        if d is None:
            d = self.per_attr[key] = {
                "spilled": 0,
                "bytes": 0,
                "reloads": 0,
                "collapsed": 0,
                "refused": 0,
                "reuse_hits": 0,
                "small": 0,
                "recorded": 0,
            }
        return d


_ID = struct.Struct(">Q")
# after this many values of one attribute in a row encode under min_bytes, its further values this build
# are counted as too small without being encoded (per_attr "small_assumed"); one spilled value resets it
SMALL_STREAK = 256


class Spiller:
    """Guards chosen (class, attribute) pairs and moves their values between memory and a Store."""

    def __init__(
        self,
        store: Any,
        codec: Codec,
        batch: int = 4096,
        stable_key: Callable[[object], str | None] | None = None,
        stamp: Callable[[object], bytes | None] | None = None,
        use_c: bool = True,
        scratch: Any = None,
        min_bytes: int = 0,
    ) -> None:
        self.store = store
        self.scratch = scratch  # per-build values (may be the same store); None: use `store`
        self.min_bytes = min_bytes  # smaller encodings stay: the marker would cost as much as the value
        self._seq = 0
        self.codec = codec
        self.batch = batch
        self.stable_key = stable_key
        self.stamp = stamp
        self.stats = SpillStats()
        self._guard_type = _CGuard if (use_c and _CGuard is not None) else _PyGuard
        self._c_loop = self._guard_type is _CGuard and _c_collapse is not None
        self._collapse_cache: dict[tuple[type, tuple[str, ...] | None], tuple[GuardLike, ...]] = {}
        self._guards: dict[type, dict[str, GuardLike]] = {}
        self._saved: list[tuple[type, str, object]] = []
        self._spill: dict[type, tuple[str, ...]] = {}
        self._collapse: dict[type, tuple[str, ...]] = {}
        self._reuse: set[str] = set()
        self._pending: dict[bytes, bytes] = {}  # per-build values not yet written (scratch)
        self._pending_reuse: dict[bytes, bytes] = {}  # reusable values not yet written (store)
        # reuse bookkeeping by id(): forgotten at each object's safe point, and never more than
        # `reuse_memory` entries (objects that never reach one, e.g. scanned sources, would grow it)
        self.reuse_memory = 4096
        self._tried_reuse: set[int] = set()
        self._reused_value: dict[int, object] = {}  # ... and that value, until it is spilled again
        self._refused_streak: dict[str, int] = {}
        self._small_streak: dict[str, int] = {}  # consecutive values under min_bytes, per attribute
        self._reuse_reads = 0
        self._lock = threading.RLock()
        self.active = True
        self.reuse_enabled = True  # False: no lookups, nothing recorded (the plan found reuse costs more than it saves)
        # every Nth lookup is left to a scan, so the scan a hit saves keeps being timed (policy.reuse_verdict)
        # even when everything could be reused; 0: never
        self.scan_sample_every = 64
        self._lookups = 0

    # ---- set-up ---------------------------------------------------------------------------------
    def guard(
        self, cls: type, spill: Iterable[str] = (), collapse: Iterable[str] = (), reuse: Iterable[str] = ()
    ) -> None:
        """Guard `cls`: spill these attributes, collapse these when empty, reuse these across builds."""
        spill, collapse, reuse = tuple(spill), tuple(collapse), tuple(reuse)
        names = list(dict.fromkeys(spill + collapse + reuse))
        guards = self._guards.setdefault(cls, {})
        for name in names:
            if name in guards:
                continue
            current = cls.__dict__.get(name, _MISSING)
            target = _MISSING
            for klass in cls.__mro__:
                if name in klass.__dict__:
                    target = klass.__dict__[name]
                    break
            if target is _MISSING or not hasattr(type(target), "__set__"):
                raise ValueError(f"{cls.__name__}.{name} is not a slot or data descriptor; it cannot be spilled")
            g = self._guard_type(target, cls, name, Marker, self._reload, self._reuse_value if name in reuse else None)
            self._saved.append((cls, name, current))
            setattr(cls, name, g)
            guards[name] = g
        self._collapse_cache.clear()
        # reuse alone spills nothing: the values are recorded for the next build and stay (record())
        self._spill[cls] = tuple(dict.fromkeys(self._spill.get(cls, ()) + spill))
        self._collapse[cls] = tuple(dict.fromkeys(self._collapse.get(cls, ()) + collapse))
        self._reuse.update(reuse)

    def begin(self) -> None:
        """Start of a build: values spilled by an earlier process are meaningless now; drop them."""
        if self.scratch is None:
            stale = [k for k, _ in self.store.items(b"s")]
            if stale:
                self.store.delete_many(stale)

    @property
    def _scratch(self) -> Any:
        return self.scratch if self.scratch is not None else self.store

    # ---- keys -----------------------------------------------------------------------------------
    @staticmethod
    def _key(seq: int) -> bytes:
        return b"s" + _ID.pack(seq)

    def _reuse_key(self, obj: object, name: str) -> bytes | None:
        if self.stable_key is None:
            return None
        k = self.stable_key(obj)
        return None if k is None else b"r" + k.encode() + b"\0" + name.encode()

    # ---- safe point -----------------------------------------------------------------------------
    def _collapse_tuple(self, cls: type, names: tuple[str, ...] | None = None) -> tuple[GuardLike, ...]:
        """The guards to collapse on `cls` (all, or those in `names`), cached as a tuple for the C loop."""
        key = (cls, names)
        t = self._collapse_cache.get(key)
        if t is None:
            guards = self._guards.get(cls) or {}
            t = tuple(guards[n] for n in self._collapse.get(cls, ()) if names is None or n in names)
            self._collapse_cache[key] = t
        return t

    def _collapse_obj(self, obj: object, guards: tuple[GuardLike, ...]) -> int:
        if not guards:
            return 0
        if self._c_loop:
            n = _c_collapse(obj, guards, EMPTY_LIST, EMPTY_SET, EMPTY_DICT)
        else:
            n = 0
            for g in guards:
                try:
                    v = g.raw(obj)
                except AttributeError:
                    continue
                if type(v) in _EMPTY_OF and not v:
                    g.store(obj, _EMPTY_OF[type(v)])
                    n += 1
        self.stats.collapsed += n
        return n

    def collapse_now(self, obj: object, names: tuple[str, ...] | None = None) -> None:
        """Collapse one object's empty containers right after it is constructed (freed blocks are reused at once)."""
        self._collapse_obj(obj, self._collapse_tuple(type(obj), names))

    def _guarded(self, objs: Iterable[object]) -> Iterator[tuple[object, type, dict[str, GuardLike]]]:
        """The objects whose class is guarded, with the class and its guards (the safe points' common loop)."""
        for obj in objs:
            cls = type(obj)
            guards = self._guards.get(cls)
            if guards:
                yield obj, cls, guards

    def spill(self, objs: Iterable[object], only: tuple[str, ...] | None = None) -> int:
        """At a safe point: collapse empty containers and spill cold values of these objects (or just `only`)."""
        if not self.active:
            return 0
        t0 = time.perf_counter()
        n = 0
        with self._lock:
            for obj, cls, guards in self._guarded(objs):
                if only is None:
                    n += self._collapse_obj(obj, self._collapse_tuple(cls))
                for name in self._spill.get(cls, ()):
                    if only is None or name in only:
                        n += self._spill_one(obj, cls, guards[name], name)
                if only is None:  # the object is done: forget the reuse bookkeeping about it
                    oid = id(obj)
                    self._tried_reuse.discard(oid)
                    self._reused_value.pop(oid, None)
            if len(self._pending) + len(self._pending_reuse) >= self.batch:
                self._flush_locked()
        self.stats.spill_time_s += time.perf_counter() - t0
        return n

    def _spill_one(self, obj: object, cls: type, g: GuardLike, name: str) -> int:
        try:
            v = g.raw(obj)
        except AttributeError:
            return 0
        if v is None or type(v) is Marker:
            return 0
        label = f"{cls.__name__}.{name}"
        if type(v) in _EMPTY_OF and not v:
            g.store(obj, _EMPTY_OF[type(v)])
            self.stats.collapsed += 1
            self.stats.attr(label)["collapsed"] += 1
            return 1
        if name in self._reuse and self._reused_value.pop(id(obj), None) is v:
            # reused from the store and not replaced since: the stored copy is current, nothing to write
            g.store(obj, SPILLED)
            self.stats.attr(label)["spilled"] += 1
            self.stats.spilled_attrs += 1
            return 1
        small = self._small_streak.get(label, 0)
        if small >= SMALL_STREAK:  # its last values all encoded under min_bytes: stop paying for encoding them
            self.stats.small += 1
            st = self.stats.attr(label)
            st["small"] += 1
            st["small_assumed"] = st.get("small_assumed", 0) + 1
            return 0
        streak = self._refused_streak.get(label, 0)
        if streak >= 256:
            self.stats.refused += 1
            self.stats.attr(label)["refused"] += 1
            return 0  # this attribute's values cannot be encoded: stop paying for trying
        try:
            blob = self.codec.encode(v)
        except Refused:
            self.stats.refused += 1
            self.stats.attr(label)["refused"] += 1
            self._refused_streak[label] = streak + 1
            return 0
        self._refused_streak[label] = 0
        marker = None
        if name in self._reuse:  # under the stable key: the shared marker costs nothing, so size does not matter
            key = self._reuse_key(obj, name)
            stamp = self.stamp(obj) if (self.stamp is not None and key is not None) else None
            if key is not None and stamp is not None:
                self._pending_reuse[key] = _pack_reuse(stamp, blob)
                marker = SPILLED
        if marker is None:
            if len(blob) < self.min_bytes:
                self.stats.small += 1
                self.stats.attr(label)["small"] += 1
                self._small_streak[label] = small + 1
                return 0
            self._small_streak[label] = 0
            self._seq += 1
            marker = Marker("spilled", self._seq)
            self._pending[self._key(self._seq)] = blob
        g.store(obj, marker)
        st = self.stats.attr(label)
        st["spilled"] += 1
        st["bytes"] += len(blob)
        self.stats.spilled_attrs += 1
        self.stats.spilled_bytes += len(blob)
        return 1

    def record(self, objs: Iterable[object], names: tuple[str, ...]) -> int:
        """Write these reusable attributes' values under their stable keys for the next build; keep them here.

        Not a spill: the slot keeps its value (a value read again in this build costs no reload). A value
        reused from the store is not rewritten; nor is one without a key or a stamp (no reuse for it).
        If the plan also spills the attribute, its next safe point stores the shared marker (no rewrite).
        """
        if not self.active or not self.reuse_enabled:
            return 0
        t0 = time.perf_counter()
        n = 0
        with self._lock:
            for obj, cls, guards in self._guarded(objs):
                for name in names:
                    g = guards.get(name)
                    if g is None or name not in self._reuse:
                        continue
                    try:
                        v = g.raw(obj)
                    except AttributeError:
                        continue
                    oid = id(obj)
                    self._tried_reuse.discard(oid)  # it holds a value now: no lookup to guard against
                    if v is None or type(v) is Marker:
                        continue
                    if self._reused_value.get(oid) is v:  # reused, not rescanned: the stored copy is current
                        if name not in self._spill.get(cls, ()):
                            del self._reused_value[oid]  # only a later spill of it needs to know
                        continue
                    key = self._reuse_key(obj, name)
                    stamp = self.stamp(obj) if (self.stamp is not None and key is not None) else None
                    if key is None or stamp is None:
                        continue
                    try:
                        blob = self.codec.encode(v)
                    except Refused:
                        self.stats.refused += 1
                        self.stats.attr(f"{cls.__name__}.{name}")["refused"] += 1
                        continue
                    self._pending_reuse[key] = _pack_reuse(stamp, blob)
                    if name in self._spill.get(cls, ()):
                        if len(self._reused_value) >= self.reuse_memory:
                            self._reused_value.clear()
                        self._reused_value[id(obj)] = v  # the stored copy is current: spilling it writes nothing
                    self.stats.recorded += 1
                    self.stats.attr(f"{cls.__name__}.{name}")["recorded"] += 1
                    n += 1
            if len(self._pending) + len(self._pending_reuse) >= self.batch:
                self._flush_locked()
        self.stats.record_time_s += time.perf_counter() - t0
        return n

    def flush(self) -> None:
        """Write the pending batch in one transaction (called at phase ends and when the batch is full)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending and not self._pending_reuse:
            return
        try:
            if self._pending:
                self._scratch.put_many(list(self._pending.items()))  # keys ascend: an append
                self._pending = {}
            if self._pending_reuse:
                self.store.put_many(sorted(self._pending_reuse.items()))
                self._pending_reuse = {}
        except _STORE_ERRORS as e:  # map full, disk full, I/O error, lock: keep the values in memory, stop spilling
            if self.stats.stopped is None:
                self.stats.stopped = f"{type(e).__name__}: {e}"
            self.active = False
            return
        self.stats.flushes += 1
        self.release_pages()

    def release_pages(self) -> None:
        """Mapped store pages leave the process's RSS (LMDB: madvise; the page cache keeps them)."""
        for st in {id(s): s for s in (self.store, self.scratch) if s is not None}.values():
            rel = getattr(st, "release_pages", None)
            if rel is not None:
                rel()

    def raw_value(self, obj: object, name: str) -> Any:
        """The slot's content without reload or reuse (a Marker, the value, or None); None when unguarded."""
        g = (self._guards.get(type(obj)) or {}).get(name)
        if g is None:
            return None
        try:
            return g.raw(obj)
        except AttributeError:
            return None

    # ---- reload ---------------------------------------------------------------------------------
    def _reload(self, obj: object, name: str, marker: Marker) -> Any:
        fresh = _FRESH.get(marker)
        guard = self._guards[type(obj)][name] if type(obj) in self._guards else None
        if guard is None:  # class changed after spilling (SCons Entry -> File): find any guard for name
            guard = next(g[name] for g in self._guards.values() if name in g)
        if fresh is not None:
            value = fresh()
            guard.store(obj, value)
            self.stats.collapsed_reloads += 1
            return value
        t0 = time.perf_counter()
        with self._lock:
            if marker is SPILLED:  # stored under the stable reuse key
                rkey = self._reuse_key(obj, name)
                entry = self._reuse_entry(rkey) if rkey is not None else None
                blob = None if entry is None else _unpack_reuse(entry)[1]
            else:
                key = self._key(marker.seq)
                blob = self._pending.get(key)
                if blob is None:
                    blob = self._scratch.get(key)
            if blob is None:
                raise SpillLost(f"dagstore: spilled value of {type(obj).__name__}.{name} is missing from the store")
            value = self.codec.decode(blob)
            guard.store(obj, value)
            self.stats.reloads += 1
            self.stats.attr(f"{type(obj).__name__}.{name}")["reloads"] += 1
        self.stats.reload_time_s += time.perf_counter() - t0
        return value

    def _reuse_entry(self, key: bytes) -> bytes | None:
        """The stored (stamp, value) entry under a reuse key: the pending batch first, then the store."""
        with self._lock:
            entry = self._pending_reuse.get(key)
            return entry if entry is not None else self.store.get(key)

    def _reuse_value(self, obj: object, name: str) -> Any:
        """An attribute reads as None: offer the previous build's value if its stamp still matches."""
        if not self.reuse_enabled:
            return None
        oid = id(obj)
        if oid in self._tried_reuse:
            return None
        self._lookups += 1
        if self.scan_sample_every and self._lookups % self.scan_sample_every == 0:
            self._tried_reuse.add(oid)  # this one is scanned (and timed) as without the store
            self.stats.reuse_sampled += 1
            return None
        t0 = time.perf_counter()
        try:
            return self._reuse_lookup(obj, name, oid)
        finally:
            self.stats.timed_lookup(time.perf_counter() - t0)

    def _reuse_lookup(self, obj: object, name: str, oid: int) -> Any:
        if len(self._tried_reuse) >= self.reuse_memory:  # objects that never reach a safe point (sources)
            self._tried_reuse.clear()  # costs at most one more lookup per object; a stamp vets every value
        self._tried_reuse.add(oid)
        key = self._reuse_key(obj, name)
        if key is None or self.stamp is None or self.store is None:  # no store (busy, unusable): no reuse
            return None
        now = self.stamp(obj)
        if now is None:  # the caller cannot vouch for the value now: compute it afresh
            return None
        try:
            entry = self._reuse_entry(key)
        except _STORE_ERRORS:  # an unreadable store only costs the reuse (SCons rescans); counted, reported
            self.stats.errors["reuse_read"] = self.stats.errors.get("reuse_read", 0) + 1
            return None
        if entry is None:
            self.stats.reuse_misses += 1
            return None
        stamp, blob = _unpack_reuse(entry)
        if stamp != now:
            self.stats.reuse_stale += 1  # the file changed: never use a stale value
            return None
        value = self.codec.decode(blob)
        self._guards[type(obj)][name].store(obj, value)
        self._reuse_reads += 1
        if self._reuse_reads % 256 == 0:  # the pages those reads mapped leave the process (warm <= fresh RSS)
            self.release_pages()
        if len(self._reused_value) >= self.reuse_memory:
            self._reused_value.clear()  # costs one rewrite of an unchanged value at its safe point
        self._reused_value[oid] = value
        self.stats.reuse_hits += 1
        self.stats.attr(f"{type(obj).__name__}.{name}")["reuse_hits"] += 1
        return value

    # ---- end ------------------------------------------------------------------------------------
    def reload_all(self, objs: Iterable[object]) -> None:
        """Bring every spilled value of these objects back into memory (before restore())."""
        for obj in objs:
            guards = self._guards.get(type(obj))
            if not guards:
                continue
            for name, g in guards.items():
                try:
                    v = g.raw(obj)
                except AttributeError:
                    continue
                if type(v) is Marker:
                    self._reload(obj, name, v)

    def forget_node_refs(self) -> None:
        """After reload_all() over every live object: no spilled value refers to a node any more."""
        refs = getattr(self.codec, "node_refs", None)
        if refs is not None:
            refs.clear()

    def depth(self) -> int:
        """How many guards are installed: restore(since=depth()) later removes only those installed after now."""
        return len(self._saved)

    def restore(self, since: int = 0) -> None:
        """Take the guards off the classes, newest first (call reload_all() on live objects first).

        since: remove only the guards installed after depth() returned this (so that whatever another
        tool installed on top of the older ones can be undone in between, newest first).
        """
        for cls, name, previous in reversed(self._saved[since:]):
            if previous is _MISSING:
                try:
                    delattr(cls, name)
                except AttributeError:
                    pass
            else:
                setattr(cls, name, previous)
            g = self._guards.get(cls)
            if g is not None:
                g.pop(name, None)
                if not g:
                    del self._guards[cls]
        del self._saved[since:]
        self._collapse_cache.clear()

    def own_memory(self) -> dict[str, int]:
        """The spiller's own bookkeeping, counted: entries and an estimate of their bytes (sys.getsizeof
        of the containers, the keys and blobs they own; the objects they point to are the build's).

        Bounded: the reuse sets hold objects between their first read and their safe point (spill()
        forgets them), at most `reuse_memory` entries each; pending blobs at most `batch` entries; the codec's node
        references (`node_refs`, if the codec keeps them) at most one entry per node a spilled value refers to.
        """
        import sys

        gs = sys.getsizeof
        pend = (
            gs(self._pending)
            + gs(self._pending_reuse)
            + sum(gs(k) + gs(v) for d in (self._pending, self._pending_reuse) for k, v in list(d.items()))
        )
        reuse = gs(self._tried_reuse) + gs(self._reused_value) + 32 * (len(self._tried_reuse) + len(self._reused_value))
        refs = getattr(self.codec, "node_refs", None)
        ref_bytes = (gs(refs) + sum(gs(k) for k in list(refs))) if refs is not None else 0
        stats = gs(self.stats.per_attr) + sum(gs(k) + gs(v) for k, v in list(self.stats.per_attr.items()))
        caches = gs(self._collapse_cache) + gs(self._refused_streak)
        return {
            "bytes": pend + reuse + ref_bytes + stats + caches,
            "pending_entries": len(self._pending) + len(self._pending_reuse),
            "pending_bytes": pend,
            "tried_reuse": len(self._tried_reuse),
            "reused_values": len(self._reused_value),
            "reuse_bytes": reuse,
            "node_refs": len(refs) if refs is not None else 0,
            "node_refs_bytes": ref_bytes,
            "stats_bytes": stats,
            "cache_bytes": caches,
        }

    def section(self, backend: str, path: str | None) -> dict[str, Any]:
        """The profile's "store" section."""
        from .policy import latency

        s = self.stats
        return {
            "own_memory": self.own_memory(),
            "backend": backend,
            "path": path,
            "spilled_attrs": s.spilled_attrs,
            "spilled_bytes": s.spilled_bytes,
            "collapsed": s.collapsed,
            "reloads": s.reloads,
            "collapsed_reloads": s.collapsed_reloads,
            "reuse_hits": s.reuse_hits,
            "reuse_misses": s.reuse_misses,
            "reuse_stale": s.reuse_stale,
            "recorded": s.recorded,
            "refused": s.refused,
            "small": s.small,
            "spill_time_s": round(s.spill_time_s, 4),
            "reload_time_s": round(s.reload_time_s, 4),
            # per value, unrounded: the figures the store records for the next `--spill auto` (meta
            # "store_latency"), so the report's advice weighs exactly what the store will weigh
            **latency(s.spill_time_s, s.spilled_attrs, s.reload_time_s, s.reloads, s.build_wall_s, s.build_peak_rss),
            "record_time_s": round(s.record_time_s, 4),
            "reuse_time_s": round(s.reuse_time_s, 4),
            "reuse_sampled": s.reuse_sampled,
            "scans": s.scans,
            "scan_time_s": round(s.scan_time_s, 4),
            "reuse_enabled": self.reuse_enabled,
            "flushes": s.flushes,
            "stopped": s.stopped,
            "pending_in_memory": len(self._pending) + len(self._pending_reuse),
            "per_attr": s.per_attr,
            "errors": dict(s.errors),
        }


_MISSING = object()


def _store_error_types() -> tuple[type[BaseException], ...]:
    """The store's own failures (full map, full disk, I/O, lock): they stop spilling; anything else is a bug."""
    from .backends import StoreError

    types: list[type[BaseException]] = [StoreError, OSError]
    try:
        import lmdb

        types.append(lmdb.Error)
    except ImportError:  # pragma: no cover - lmdb is optional for the memory store
        pass
    return tuple(types)


_STORE_ERRORS = _store_error_types()


def summary_line(sec: dict[str, Any]) -> str:
    """The one-line account of a store section (see section()): what left memory, what came back, what failed."""
    errors = sec.get("errors") or {}
    extra = "".join(f"; {n} {what} errors" for what, n in sorted(errors.items()) if n)
    if sec.get("stopped"):
        extra += f"; stopped: {sec['stopped']}"
    return (
        f"dagstore: {sec['backend']} store at {sec['path']}: spilled {sec['spilled_attrs']} values "
        f"({fmt_bytes(sec['spilled_bytes'])}), "
        f"collapsed {sec['collapsed']} empty containers, {sec['reloads']} reloads, "
        f"{sec['reuse_hits']} reused from the previous build, {sec['refused']} refused{extra}"
    )


def has_problem(sec: dict[str, Any]) -> bool:
    """A section that reports a real problem (spilling stopped, counted errors): worth a line even in a pipe."""
    return bool(sec.get("stopped") or any((sec.get("errors") or {}).values()))


def _pack_reuse(stamp: bytes, blob: bytes) -> bytes:
    return struct.pack(">H", len(stamp)) + stamp + blob


def _unpack_reuse(entry: bytes) -> tuple[bytes, bytes]:
    (n,) = struct.unpack_from(">H", entry)
    return bytes(entry[2 : 2 + n]), bytes(entry[2 + n :])

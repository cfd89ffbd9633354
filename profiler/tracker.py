"""Instance counts and lifetimes per class without keeping any instance alive, plus a background monitor.

Why not SCons' `--debug=count`: it keeps a strong reference to every node, so nothing it counts can
ever be freed. Here:

* creation is seen by wrapping `cls.__init__` (the wrapper records, then calls the original);
* death is seen through a weakref callback for classes that support weak references, and, for classes
  that do not (SCons nodes have no `__weakref__` slot), through a `__del__` installed on the class that
  chains to any existing `__del__`;
* records are keyed by `id()` and hold no reference; `restore()` puts back exactly what the classes
  had before (an own `__init__`/`__del__` is set back, an inherited one is deleted again).

Attribution: an instance is counted under the name of its class at creation (`type(obj).__name__`
when the first hooked `__init__` ran) until a morph is seen: SCons Entry nodes become File or Dir by
assigning `__class__`. A morph is seen when the instance dies (its `__del__` hook runs under the new
class) and, for the instances alive at the end, by `reconcile()` (the introspector calls it with the
gc scan). Then the record moves: the old class counts it in `morphed_out`, the new one in `created`
and `morphed_in`, so per class `created - morphed_out - freed == alive`, and `alive` at the end is the
gc scan's count of instances of that class (minus instances created before `install()`). During the
run (the monitor's samples) a morphed instance still counts under its creation class. Instances created
before `install()`, or by a subclass `__init__` that never calls the tracked one, are not counted (a gc scan in
`snapshot()` still sees them).
"""

from __future__ import annotations

import os
import random
import sys
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from .classpatch import ClassPatches
from .gcscan import instances_of
from .rss import Sampler, read_rss

try:  # birth records in C (16 bytes an instance); a dict of them where not built (DAGPROF_NO_C=1)
    if os.environ.get("DAGPROF_NO_C", "") not in ("", "0"):
        raise ImportError("DAGPROF_NO_C is set")
    from ._fastbirths import BirthMap as _BirthMap
except ImportError:
    _BirthMap = None

__all__ = ["Tracker", "Monitor"]

_RESERVOIR = 10_001  # lifetime samples kept per class for the median


class _Ref(weakref.ref):
    """A weak reference that remembers whom it watched, so the callback needs no lookup table."""

    __slots__ = ("oid", "cls")
    oid: int
    cls: str


class _ClassCounts:
    __slots__ = (
        "created",
        "freed",
        "alive",
        "peak",
        "life_sum",
        "life_max",
        "sample",
        "rng",
        "morphed_in",
        "morphed_out",
    )

    def __init__(self) -> None:
        self.created = 0
        self.morphed_in = 0
        self.morphed_out = 0
        self.freed = 0
        self.alive = 0
        self.peak = 0
        self.life_sum = 0.0
        self.life_max = 0.0
        self.sample: list[float] = []
        self.rng = random.Random(0)

    def died(self, life: float) -> None:
        self.freed += 1
        self.alive -= 1
        self.life_sum += life
        if life > self.life_max:
            self.life_max = life
        if len(self.sample) < _RESERVOIR:
            self.sample.append(life)
        else:  # reservoir sampling keeps the median honest with bounded memory
            j = self.rng.randrange(self.freed)
            if j < _RESERVOIR:
                self.sample[j] = life


def _next_in_mro(obj: Any, after: type, name: str) -> Any:
    """The `name` function the class after `after` in obj's MRO provides (what super() would find)."""
    mro = type(obj).__mro__
    try:
        start = mro.index(after) + 1
    except ValueError:
        start = 0
    for k in mro[start:]:
        f = k.__dict__.get(name)
        if f is not None:
            return f
    return None


class Tracker:
    """Counts creations and deaths per class through class hooks; holds no instance."""

    def __init__(
        self, classes: Iterable[type], clock: Callable[[], float] = time.perf_counter, use_c: bool | None = None
    ) -> None:
        self.classes = list(dict.fromkeys(classes))
        for c in self.classes:
            if not isinstance(c, type):
                raise TypeError(f"tracker: {c!r} is not a class")
        self.clock = clock
        if use_c is None:
            use_c = _BirthMap is not None
        # {id: birth time} per creation class name: a dict, or the same mapping in C (_fastbirths)
        self._new_births: Callable[[], Any] = _BirthMap if use_c else dict
        self._born: dict[str, Any] = {}
        self._refs: dict[int, _Ref] = {}  # id -> weak reference, for classes that support them
        self._stats: dict[str, _ClassCounts] = {}
        self._patches = ClassPatches()
        self.unhookable: list[type] = []
        self.installed = False

    # ---- hooks ---------------------------------------------------------------------------------
    def install(self) -> None:
        """Wrap __init__ (and add __del__ where weakrefs are impossible) on every tracked class."""
        if self.installed:
            return
        for cls in self.classes:
            try:
                self._hook_init(cls)
                if not cls.__weakrefoffset__:
                    self._hook_del(cls)
            except (TypeError, AttributeError):  # builtin/extension types cannot take attributes
                self.unhookable.append(cls)
        self.installed = True

    def restore(self) -> None:
        """Undo every hook exactly, newest first, so stacked wrappers unwind cleanly."""
        self._patches.undo()
        self.installed = False

    def _hook_init(self, cls: type) -> None:
        own = cls.__dict__.get("__init__")
        born = self._on_born

        if own is not None:

            def __init__(obj: Any, *args: Any, **kw: Any) -> None:
                born(obj)
                own(obj, *args, **kw)
        else:

            def __init__(obj: Any, *args: Any, **kw: Any) -> None:
                born(obj)
                nxt = _next_in_mro(obj, cls, "__init__")
                if nxt is None or nxt is object.__init__:
                    object.__init__(obj)  # object.__init__ would reject args now that tp_init is ours
                else:
                    nxt(obj, *args, **kw)

        __init__.__wrapped__ = own  # type: ignore[attr-defined]
        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        self._patches.set(cls, "__init__", __init__)

    def _hook_del(self, cls: type) -> None:
        own = cls.__dict__.get("__del__")
        died = self._on_del

        def __del__(obj: Any) -> None:
            died(obj)
            nxt = own if own is not None else _next_in_mro(obj, cls, "__del__")
            if nxt is not None:
                nxt(obj)

        __del__.__qualname__ = f"{cls.__qualname__}.__del__"
        self._patches.set(cls, "__del__", __del__)

    # ---- events (may run in any thread, from the garbage collector) -----------------------------
    def _on_born(self, obj: Any) -> None:
        t = type(obj)
        name = t.__name__
        oid = id(obj)
        born = self._born.get(name)
        if born is None:
            born = self._born[name] = self._new_births()
            if name not in self._stats:  # a class first seen now (records released: counts kept)
                self._stats[name] = _ClassCounts()
        if oid in born:  # an outer wrapper (subclass) already recorded it, or __init__ called twice
            return
        born[oid] = self.clock()
        st = self._stats[name]
        st.created += 1
        st.alive += 1
        if st.alive > st.peak:
            st.peak = st.alive
        if t.__weakrefoffset__:
            try:
                r = _Ref(obj, self._on_ref_dead)
            except TypeError:
                return
            r.oid = oid
            r.cls = name
            self._refs[oid] = r

    def _on_del(self, obj: Any) -> None:
        try:
            self._freed(id(obj), type(obj).__name__)
        except Exception:  # a finalizer must never raise into the program
            pass

    def _on_ref_dead(self, ref: _Ref) -> None:
        self._refs.pop(ref.oid, None)
        self._freed(ref.oid, ref.cls)

    def _freed(self, oid: int, name: str) -> None:
        born = self._born.get(name)
        t0 = born.pop(oid, None) if born is not None else None
        if t0 is None:  # morphed since creation (Entry -> File): count the morph, then the death
            if self._morphed(oid, name) is None:
                return
            t0 = self._born[name].pop(oid)
        self._refs.pop(oid, None)
        self._stats[name].died(self.clock() - t0)

    def _morphed(self, oid: int, name: str) -> str | None:
        """Move the record of `oid` to class `name` if another class holds it; the old class or None."""
        for cname, b in list(self._born.items()):
            if cname == name or oid not in b:
                continue
            t0 = b.pop(oid)
            old = self._stats[cname]
            old.alive -= 1
            old.morphed_out += 1
            if name not in self._born:
                self._born[name] = self._new_births()
            if name not in self._stats:
                self._stats[name] = _ClassCounts()
            self._born[name][oid] = t0
            st = self._stats[name]
            st.created += 1
            st.morphed_in += 1
            st.alive += 1
            if st.alive > st.peak:
                st.peak = st.alive
            return cname
        return None

    def creation_order(self, objects: Iterable[Any]) -> list[Any]:
        """The objects sorted by creation time; those the hooks never saw last, in the order given."""
        born = self._born
        never = float("inf")

        def key(o: Any) -> float:
            b = born.get(type(o).__name__)
            oid = id(o)
            return b[oid] if b is not None and oid in b else never

        return sorted(objects, key=key)

    def reconcile(self, objects: Iterable[Any]) -> int:
        """Count the morphs of these live instances (their class changed since creation); how many."""
        n = 0
        for o in objects:
            name = type(o).__name__
            born = self._born.get(name)
            if born is not None and id(o) in born:
                continue
            if self._morphed(id(o), name) is not None:
                n += 1
        return n

    def release(self) -> None:
        """Forget the birth records and weak references (an entry per live instance, ~0.8 MiB at 5k files)
        once what is read from them (lifetimes, counts, self_bytes) has been, so that what runs next (the
        sizing) reuses their memory instead of adding to the peak. Counts are kept; instances that die
        afterwards are no longer counted, and lifetimes() then has no ages of live instances."""
        self._born = {}
        self._refs = {}

    # ---- queries -------------------------------------------------------------------------------
    def alive_counts(self) -> dict[str, int]:
        """Instances alive now per creation class (the monitor samples this)."""
        return {name: st.alive for name, st in list(self._stats.items())}

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            name: {
                "created": st.created,
                "freed": st.freed,
                "alive": st.alive,
                "peak": st.peak,
                "morphed_in": st.morphed_in,
                "morphed_out": st.morphed_out,
            }
            for name, st in list(self._stats.items())
        }

    def lifetimes(self) -> dict[str, dict[str, Any]]:
        """The "lifetimes" section: lifetimes of freed instances, and the ages of those still alive now
        (in a build that frees nothing, the second is all there is to learn)."""
        out = {}
        now = self.clock()
        for name, st in list(self._stats.items()):
            ages = sorted(now - t0 for t0 in list((self._born.get(name) or {}).values()))
            sample = sorted(st.sample)
            out[name] = {
                "created": st.created,
                "morphed_in": st.morphed_in,
                "morphed_out": st.morphed_out,
                "freed": st.freed,
                "alive": st.alive,
                "mean_s": st.life_sum / st.freed if st.freed else 0.0,
                "p50_s": sample[len(sample) // 2] if sample else 0.0,
                "max_s": st.life_max,
                "alive_mean_s": sum(ages) / len(ages) if ages else 0.0,
                "alive_p50_s": ages[len(ages) // 2] if ages else 0.0,
                "alive_max_s": ages[-1] if ages else 0.0,
            }
        return out

    def all_types(self) -> set[type]:
        """Tracked classes and all their subclasses (what a gc scan should pick up)."""
        out: set[type] = set()
        todo = list(self.classes)
        while todo:
            c = todo.pop()
            if c in out:
                continue
            out.add(c)
            try:
                todo.extend(type.__subclasses__(c))
            except TypeError:
                pass
        return out

    def live_objects(self) -> list[Any]:
        """Every live instance of the tracked classes, found by a gc scan (we hold no references)."""
        found = instances_of(self.all_types())
        seen = set(map(id, found))
        for r in list(self._refs.values()):  # instances the collector does not track
            o = r()
            if o is not None and id(o) not in seen:
                found.append(o)
        return found

    def scan_counts(self) -> dict[str, int]:
        """Live instances per current class name by gc scan; sees objects no hook saw (e.g. morphed)."""
        out: dict[str, int] = {}
        for t, n in Counter(map(type, instances_of(self.all_types()))).items():
            out[t.__name__] = out.get(t.__name__, 0) + n
        return out

    def self_bytes(self) -> int:
        """Memory of the tracker's own tables, so the profiler's footprint is visible."""
        n = sys.getsizeof(self._born) + sys.getsizeof(self._refs) + sys.getsizeof(self._stats)
        for b in list(self._born.values()):
            # a dict: its table plus an int (the id) and a float per entry; a BirthMap: its table
            n += sys.getsizeof(b) + (56 * len(b) if type(b) is dict else 0)
        n += sum(map(sys.getsizeof, list(self._refs.values())))
        for st in list(self._stats.values()):
            n += sys.getsizeof(st.sample) + 24 * len(st.sample)
        return n


# ---- the monitor ---------------------------------------------------------------------------------


def _own_rss() -> dict[str, int]:
    """The monitor's reading: this process's rss/anon/file (-1 where the OS does not say)."""
    rss, anon, file_ = read_rss()
    return {"rss": rss, "anon": anon, "file": file_}


class Monitor:
    """RSS and tracked counts sampled at an interval (rss.Sampler's thread), with phase marks and its own cost."""

    def __init__(self, interval_s: float = 0.1, extra: Callable[[], dict[str, int]] | None = None) -> None:
        if not interval_s > 0:
            raise ValueError(f"monitor: interval must be > 0 seconds, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.extra = extra
        self.t0 = time.time()
        self._p0 = time.perf_counter()
        self.samples: list[list[Any]] = []
        self.marks: list[list[Any]] = []
        self.cpu_s = 0.0
        self.errors = 0
        self._sampler = Sampler(self.interval_s, read=_own_rss, on_sample=self._record, name="dagprof-monitor")

    def now(self) -> float:
        """Seconds since the monitor started; the time axis of samples, marks and snapshots."""
        return time.perf_counter() - self._p0

    def start(self) -> Monitor:
        self.t0 = time.time()
        self._p0 = time.perf_counter()
        self._sampler.start()
        return self

    def sample(self) -> list[Any]:
        """Take one sample now (also used for an exact first and last point)."""
        self._sampler.sample()
        return self.samples[-1]

    def _record(self, r: dict[str, int]) -> None:
        counts: dict[str, int] = {}
        if self.extra is not None:
            try:
                counts = dict(self.extra())
            except Exception:
                self.errors += 1
        self.samples.append([self.now(), r["rss"], r["anon"], r["file"], counts])

    def mark(self, phase: str) -> None:
        """Record that a build phase starts now."""
        self.marks.append([self.now(), str(phase)])

    def stop(self) -> None:
        """Stop and join the thread; the cost figures are final afterwards."""
        self._sampler.stop()
        self.cpu_s = self._sampler.cpu_s

    @property
    def running(self) -> bool:
        return self._sampler.running

    def self_bytes(self) -> int:
        """Memory held by the sample buffers."""
        n = sys.getsizeof(self.samples) + sys.getsizeof(self.marks)
        for s in list(self.samples):
            n += sys.getsizeof(s) + sum(map(sys.getsizeof, s[:4])) + sys.getsizeof(s[4])
        for m in list(self.marks):
            n += sys.getsizeof(m) + sys.getsizeof(m[1])
        return n

    def section(self) -> dict[str, Any]:
        """The "monitor" section (see docs/profile-format.md)."""
        return {
            "interval_s": self.interval_s,
            "t0": self.t0,
            "samples": [list(s) for s in self.samples],
            "marks": [list(m) for m in self.marks],
            "cost": {"cpu_s": self.cpu_s, "samples": len(self.samples), "self_bytes": self.self_bytes()},
        }

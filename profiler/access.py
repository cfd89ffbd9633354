"""Attribute access frequency: counting descriptors per (class, attribute), split by named phase.

`AccessRecorder.instrument(cls, attrs)` puts a counting data descriptor in `cls.__dict__` for each
attribute. It wraps whatever the class resolved before (a `__slots__` member descriptor, a property,
any data descriptor, inherited or not), or, for attributes kept in the instance `__dict__`, reads and
writes that dict itself. Reads, writes and deletes are counted per phase; optionally the distinct
instances that read. `restore()` puts every class dict back exactly as it was.

The hot path (wrapped data descriptors, i.e. every SCons Node slot) is the C type in
`_fastcount.c`; `_PyCounter` is the identical pure-Python fallback used when the extension is not built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from .classpatch import ClassPatches
from .profile import AccessRow

try:  # the C fast path; pure Python keeps working without a compiler (DAGPROF_NO_C=1 forces that)
    import os as _os

    if _os.environ.get("DAGPROF_NO_C", "") not in ("", "0"):
        raise ImportError("DAGPROF_NO_C is set")
    from ._fastcount import Counter as _CCounter
except ImportError:  # pragma: no cover - exercised when the extension is missing
    _CCounter = None

_MISSING = object()


class _PyCounter:
    """Pure-Python twin of the C Counter: counts, then delegates to the wrapped data descriptor."""

    __slots__ = ("wrapped", "owner", "name", "reads", "writes", "deletes", "_readers", "_get", "_set", "_del")

    def __init__(self, wrapped: object, owner: type, name: str) -> None:
        tp = type(wrapped)
        if not (hasattr(tp, "__get__") and (hasattr(tp, "__set__") or hasattr(tp, "__delete__"))):
            raise TypeError("Counter wraps data descriptors only")
        self.wrapped, self.owner, self.name = wrapped, owner, name
        self.reads = self.writes = self.deletes = 0
        self._readers: set | None = None
        self._get = tp.__get__
        self._set: Callable[[object, object, object], None] = getattr(tp, "__set__", None)  # type: ignore[assignment]
        self._del: Callable[[object, object], None] = getattr(tp, "__delete__", None)  # type: ignore[assignment]

    def __get__(self, obj, cls=None):
        if obj is None:
            return self._get(self.wrapped, obj, cls)
        self.reads += 1
        if self._readers is not None:
            self._readers.add(id(obj))
        return self._get(self.wrapped, obj, cls)

    def __set__(self, obj, value) -> None:
        self.writes += 1
        self._set(self.wrapped, obj, value)

    def __delete__(self, obj) -> None:
        self.deletes += 1
        self._del(self.wrapped, obj)

    def take(self) -> tuple[int, int, int, set | None]:
        readers = self._readers
        if readers is not None:
            self._readers = set()
        out = (self.reads, self.writes, self.deletes, readers)
        self.reads = self.writes = self.deletes = 0
        return out

    def track_readers(self, on: bool) -> None:
        if on and self._readers is None:
            self._readers = set()
        elif not on:
            self._readers = None


class _DictCounter:
    """Counts an attribute kept in the instance `__dict__`, falling back to the class value it shadows."""

    __slots__ = ("wrapped", "owner", "name", "reads", "writes", "deletes", "_readers", "_fallback")

    def __init__(self, fallback: object, owner: type, name: str) -> None:
        self.wrapped = None
        self.owner, self.name = owner, name
        self._fallback = fallback  # class attribute or non-data descriptor that was shadowed, or _MISSING
        self.reads = self.writes = self.deletes = 0
        self._readers: set | None = None

    def __get__(self, obj, cls=None):
        fb = self._fallback
        if obj is None:
            if fb is _MISSING:
                raise AttributeError(f"type object '{cls.__name__}' has no attribute '{self.name}'")
            get = getattr(type(fb), "__get__", None)
            return get(fb, None, cls) if get is not None else fb
        self.reads += 1
        if self._readers is not None:
            self._readers.add(id(obj))
        try:
            return obj.__dict__[self.name]
        except KeyError:
            pass
        if fb is _MISSING:
            raise AttributeError(f"'{type(obj).__name__}' object has no attribute '{self.name}'")
        get = getattr(type(fb), "__get__", None)
        return get(fb, obj, cls) if get is not None else fb

    def __set__(self, obj, value) -> None:
        self.writes += 1
        obj.__dict__[self.name] = value

    def __delete__(self, obj) -> None:
        self.deletes += 1
        try:
            del obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    take = _PyCounter.take
    track_readers = _PyCounter.track_readers


def is_counter(obj: object) -> bool:
    """True for the descriptors this module installs, so others (sizing, spill) can see through them."""
    return isinstance(obj, _COUNTER_TYPES)


_COUNTER_TYPES: tuple[type, ...] = (_PyCounter, _DictCounter) + ((_CCounter,) if _CCounter else ())


def _resolve(cls: type, name: str) -> tuple[object, type | None]:
    """The descriptor or value `name` resolves to on `cls` (seeing through our own counters)."""
    for klass in cls.__mro__:
        d = klass.__dict__
        if name in d:
            value = d[name]
            while is_counter(value):
                value = value.wrapped if value.wrapped is not None else value._fallback
            return value, klass
    return _MISSING, None


def _is_data_descriptor(value: object) -> bool:
    tp = type(value)
    return hasattr(tp, "__get__") and (hasattr(tp, "__set__") or hasattr(tp, "__delete__"))


def slot_names(cls: type) -> list[str]:
    """All `__slots__` names along the MRO, the attributes a slotted class can ever hold."""
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for s in slots:
            if s in ("__weakref__", "__dict__"):
                continue
            if s.startswith("__") and not s.endswith("__"):
                s = f"_{klass.__name__.lstrip('_')}{s}"  # name mangling of private slots
            if s not in names:
                names.append(s)
    return names


class AccessRecorder:
    """Installs counters, keeps per-phase totals, and undoes everything on restore()."""

    def __init__(self, readers: bool = False, phase: str = "startup", use_c: bool = True) -> None:
        self.readers = readers
        self.phase = phase
        self.phases: list[str] = [phase]
        self._use_c = use_c and _CCounter is not None
        self._counters: list = []
        self._patches = ClassPatches()
        self._totals: dict[tuple[str, str, str], list] = {}
        self._lock = threading.Lock()

    @property
    def fast(self) -> bool:
        """Whether the C counters are in use (reported in profile metadata)."""
        return self._use_c

    def instrument(self, cls: type, attrs: Iterable[str] | None = None) -> list[str]:
        """Count accesses to `attrs` of `cls` (default: every slot); returns the attributes instrumented."""
        names = list(attrs) if attrs is not None else slot_names(cls)
        done = []
        for name in names:
            if name in ("__dict__", "__weakref__", "__class__"):
                continue
            current = cls.__dict__.get(name, _MISSING)
            if is_counter(current):
                done.append(name)
                continue  # already instrumented by this or another recorder
            target, _ = _resolve(cls, name)
            if target is not _MISSING and _is_data_descriptor(target):
                if self._use_c and hasattr(type(target), "__set__"):
                    counter = _CCounter(target, cls, name)
                else:
                    counter = _PyCounter(target, cls, name)
            else:
                if not getattr(cls, "__dictoffset__", 0) and target is _MISSING:
                    raise ValueError(f"{cls.__name__} has no attribute slot or __dict__ for {name!r}")
                counter = _DictCounter(target, cls, name)
            counter.track_readers(self.readers)
            self._patches.set(cls, name, counter)
            self._counters.append(counter)
            done.append(name)
        return done

    def set_phase(self, name: str) -> None:
        """Close the current phase and count everything from now on under `name`."""
        with self._lock:
            self._harvest()
            self.phase = name
            if name not in self.phases:
                self.phases.append(name)

    def _harvest(self) -> None:
        phase = self.phase
        for c in self._counters:
            r, w, d, readers = c.take()
            if not (r or w or d or readers):
                continue
            key = (c.owner.__name__, c.name, phase)
            t = self._totals.get(key)
            if t is None:
                t = self._totals[key] = [0, 0, 0, set() if readers is not None else None]
            t[0] += r
            t[1] += w
            t[2] += d
            if readers is not None and t[3] is not None:
                t[3] |= readers

    def rows(self) -> list[AccessRow]:
        """The access table so far, one row per (class, attribute, phase) touched, plus untouched attributes."""
        with self._lock:
            self._harvest()
            rows = [
                AccessRow(cls, attr, phase, t[0], t[1], t[2], len(t[3]) if t[3] is not None else -1)
                for (cls, attr, phase), t in self._totals.items()
            ]
            seen = {(r.cls, r.attr) for r in rows}
            for c in self._counters:  # never-touched attributes are reported too: they are the coldest
                key = (c.owner.__name__, c.name)
                if key not in seen:
                    seen.add(key)
                    rows.append(AccessRow(key[0], key[1], self.phases[0], 0, 0, 0, 0 if self.readers else -1))
        return rows

    def count(self, cls: type | str, attr: str, phase: str | None = None) -> tuple[int, int, int]:
        """(reads, writes, deletes) of one attribute, in one phase or all of them; for tests and tools."""
        name = cls if isinstance(cls, str) else cls.__name__
        r = w = d = 0
        for row in self.rows():
            if row.cls == name and row.attr == attr and (phase is None or row.phase == phase):
                r, w, d = r + row.reads, w + row.writes, d + row.deletes
        return r, w, d

    def restore(self) -> None:
        """Put every instrumented class back exactly as it was (counts are kept for rows())."""
        with self._lock:
            self._harvest()
        self._patches.undo()
        self._counters.clear()

    def __enter__(self) -> AccessRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


_default: AccessRecorder | None = None


def instrument(cls: type, attrs: Iterable[str] | None = None, readers: bool = False) -> AccessRecorder:
    """Module-level convenience over one process-wide recorder."""
    global _default
    if _default is None:
        _default = AccessRecorder(readers=readers)
    _default.instrument(cls, attrs)
    return _default


def restore() -> None:
    """Undo every `instrument()` call made through the module-level recorder."""
    global _default
    if _default is not None:
        _default.restore()
        _default = None


__all__ = ["AccessRecorder", "instrument", "restore", "slot_names", "is_counter"]

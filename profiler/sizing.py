"""Exclusive bytes per (class, attribute) of a set of tracked objects, without running user code.

Why not plain `pympler.asizeof`: it follows references into the whole object graph (for SCons, from
one node to the entire DAG) and calls `hasattr`, which runs lazy `__getattr__` hooks such as the
ones behind SCons' Executor substitution lists. Here:

* owners' slots are read through the member descriptors found in the type's MRO (or the original
  descriptor that a counting/spill descriptor exposes as `.wrapped`), and `__dict__` through
  `object.__getattribute__`, so no user `__getattr__`, property or access counter runs;
* everything below an attribute value is reached with `gc.get_referents` (the C traversal,
  never user code);
* traversal stops at every tracked object (a reference to another owner costs 0 bytes) and at
  instances of the caller's boundary types; types, modules, functions and code are shared program
  text and are never counted;
* a shared object is counted once, for the first (owner, attribute) that reaches it, in the order the
  owners are given;
* leaf sizes are `sys.getsizeof`, except for types whose `__sizeof__` is written in Python, which
  get the C-level `object.__sizeof__` plus the GC header instead.

Caveat: on CPython 3.11/3.12 reading `__dict__` of an instance whose attributes the interpreter kept
inline creates the dict object (one small allocation per such instance). Slotted classes, such as
SCons nodes, are unaffected.
"""

from __future__ import annotations

import gc
import operator
import os
import platform
import struct
import sys
import time
import types
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterable
from functools import partial
from itertools import compress
from typing import Any

try:  # the C walk; the pure-Python one below gives the same numbers (DAGPROF_NO_C=1 forces it)
    if os.environ.get("DAGPROF_NO_C", "") not in ("", "0"):
        raise ImportError("DAGPROF_NO_C is set")
    from ._fastsize import KeySet as _KeySet
    from ._fastsize import SlotAcc as _SlotAcc
    from ._fastsize import Walker as _Walker
except ImportError:
    _KeySet = _SlotAcc = _Walker = None

__all__ = ["Sizer", "size_sections", "size_of", "safe_sizeof", "slot_readers", "read_attrs", "value_key"]

_MISSING = object()
_GC_HEADER = sys.getsizeof([]) - [].__sizeof__()
_HAVE_GC = 1 << 14
# Shared, never-freed objects that no attribute owns: None, booleans, small ints, 1-char strings...
_IMMORTAL_IDS: frozenset[int] = frozenset(
    id(o)
    for o in list[object]([None, True, False, Ellipsis, NotImplemented, (), "", b"", frozenset()])
    + list(range(-5, 257))
    + [chr(i) for i in range(256)]
)
# Counted as nothing and never followed: program text shared by everything.
_SHARED_TYPES = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MemberDescriptorType,
    types.GetSetDescriptorType,
    types.ClassMethodDescriptorType,
    property,
)
_EMPTY_CONTAINER_TYPES = frozenset({list, tuple, dict, set, frozenset, bytearray, deque, OrderedDict, defaultdict})
_SCALARS = frozenset({str, bytes, int, float, bool, complex, type(None)})

# kinds cached per type: not counted (shared or boundary), counted leaf, counted and followed;
# the *_PY variants have a __sizeof__ written in Python, which must not run. The C traversal
# of a dict whose keys are all str visits only the values (CPython 3.11+), so keys are added by hand (_FOLLOW_DICT).
_SKIP, _STOP, _LEAF, _FOLLOW, _LEAF_PY, _FOLLOW_PY, _FOLLOW_DICT = 0, 1, 2, 3, 4, 5, 6


def _own_sizeof_is_c(t: type) -> bool:
    """True when the `__sizeof__` the type would use is C code, so sys.getsizeof runs no user code."""
    for k in t.__mro__:
        d = k.__dict__
        if "__sizeof__" in d:
            return isinstance(
                d["__sizeof__"], (types.MethodDescriptorType, types.WrapperDescriptorType, types.BuiltinFunctionType)
            )
    return True


def safe_sizeof(obj: Any) -> int:
    """sys.getsizeof, unless the type overrides __sizeof__ in Python (then the C-level base size)."""
    t = type(obj)
    if t in _SCALARS or _own_sizeof_is_c(t):
        return sys.getsizeof(obj)
    size = object.__sizeof__(obj)
    if t.__flags__ & _HAVE_GC:
        size += _GC_HEADER
    return size


def slot_readers(t: type) -> list[tuple[str, Any]]:
    """(label, member descriptor) for every slot of `t`, read-through-able without user code.

    A slot name that a subclass redeclares shadows the base's storage; the shadowed one is still
    memory, so it is listed too, as "name@BaseClass" (it is almost always unset).
    """
    return [(label, member) for label, member, _k, _i in _slot_table(t)]


def _slot_table(t: type) -> list[tuple[str, Any, type, int]]:
    """(label, member, defining class, position among that class's own slots), in C traversal order.

    Members are found through every class dict of the MRO, unwrapping counting/spill descriptors
    (which may sit in a subclass dict while the slot belongs to a base), and each member is listed
    once. Order: most derived defining class first, each class's members in its dict order; that
    is the order CPython lays them out and traverses them.
    """
    found: list[Any] = []
    ids: set[int] = set()
    for k in t.__mro__:
        for name, d in list(k.__dict__.items()):
            if name in ("__dict__", "__weakref__"):
                continue
            member = d if type(d) is types.MemberDescriptorType else _wrapped_member(d)
            if member is not None and id(member) not in ids:
                ids.add(id(member))
                found.append(member)
    mro = t.__mro__
    positions: dict[type, dict[int, int]] = {}
    rows = []
    for member in found:
        owner = member.__objclass__
        if owner not in positions:
            own = []
            for name, d in list(owner.__dict__.items()):
                if name in ("__dict__", "__weakref__"):
                    continue
                m = d if type(d) is types.MemberDescriptorType else _wrapped_member(d)
                if m is not None and m.__objclass__ is owner:
                    own.append(id(m))
            positions[owner] = {mid: i for i, mid in enumerate(own)}
        pos = positions[owner].get(id(member), -1)
        level = mro.index(owner) if owner in mro else len(mro)
        rows.append((level, pos, member, owner))
    rows.sort(key=lambda r: (r[0], r[1]))
    out: list[tuple[str, Any, type, int]] = []
    names: set[str] = set()
    for _level, pos, member, owner in rows:
        name = member.__name__
        label = name if name not in names else f"{name}@{owner.__name__}"
        names.add(name)
        out.append((label, member, owner, pos))
    return out


def _wrapped_member(d: Any) -> Any:
    """The original slot descriptor behind a counting/spill descriptor (exposed as `.wrapped`)."""
    if isinstance(d, _SHARED_TYPES) or type(d) in _SCALARS:
        return None
    seen = 0
    while seen < 4:  # a spill descriptor may wrap a counting descriptor that wraps the slot
        try:
            inner = object.__getattribute__(d, "wrapped")
        except Exception:
            return None
        if type(inner) is types.MemberDescriptorType:
            return inner
        d = inner
        seen += 1
    return None


def _has_dict(t: type) -> bool:
    return t.__dictoffset__ != 0


def read_attrs(obj: Any, readers: list[tuple[str, Any]] | None = None) -> list[tuple[str, Any]]:
    """(attribute, value) for every set slot and `__dict__` entry, without running user code."""
    t = type(obj)
    if readers is None:
        readers = slot_readers(t)
    out = []
    for label, member in readers:
        try:
            out.append((label, member.__get__(obj, t)))
        except AttributeError:
            pass
    if _has_dict(t):
        d = _instance_dict(obj)
        if d is not None:
            out.extend(d.items())
    return out


def _instance_dict(obj: Any) -> dict | None:
    try:
        d = object.__getattribute__(obj, "__dict__")
    except Exception:
        return None
    return d if type(d) is dict else None


_PTR = struct.calcsize("P")


class _FastSlots:
    """Reads which slots are set from the object's memory instead of raising AttributeError per unset slot.

    Why: an unset slot read through its descriptor raises, and on a SCons File (70 slots, ~20
    unset) those exceptions were most of the sizing time. CPython lays a class's own slots out
    consecutively after its base's basicsize, in the order their descriptors appear in the class
    dict; values come from gc.get_referents (no pointer is ever turned into an object). The layout
    is verified against the descriptors on the first instance of each type; any mismatch (or a
    non-CPython interpreter) falls back to descriptor reads. ctypes is imported only here, when a type
    needs it (the C walk reads slots itself): importing it costs ~0.4 MiB in the profiled process.
    """

    __slots__ = ("words", "index", "size", "unpack", "pick", "labels", "string_at")

    def __init__(self, words: Any, index: list[tuple[str, int]]) -> None:
        import ctypes

        self.words = words
        self.index = index
        self.string_at = ctypes.string_at
        nwords = ctypes.sizeof(words) // _PTR
        self.size = nwords * _PTR
        self.unpack = struct.Struct(f"{nwords}{'Q' if _PTR == 8 else 'I'}").unpack
        idxs = [i for _label, i in index]
        self.pick = operator.itemgetter(*idxs) if len(idxs) > 1 else (lambda w, _i=idxs[0]: (w[_i],))
        self.labels = [label for label, _i in index]

    @classmethod
    def build(cls, t: type, table: list[tuple[str, Any, type, int]], probe: Any) -> _FastSlots | None:
        if platform.python_implementation() != "CPython" or not table:
            return None
        index = []
        for label, member, k, pos in table:
            base = k.__base__
            if base is None or pos < 0 or member.__objclass__ is not k:
                return None
            off = base.__basicsize__ + pos * _PTR
            if off + _PTR > k.__basicsize__ or off % _PTR:
                return None
            index.append((label, off // _PTR))
        import ctypes

        fast = cls(ctypes.c_void_p * (t.__basicsize__ // _PTR), index)
        return fast if fast._verify(t, table, probe) else None

    def _verify(self, t: type, table: list[tuple[str, Any, type, int]], probe: Any) -> bool:
        words = self.words.from_address(id(probe))
        refs = {id(r): r for r in gc.get_referents(probe)}
        for (_label, idx), (_l, member, _k, _p) in zip(self.index, table):
            try:
                value = member.__get__(probe, t)
            except AttributeError:
                value = _MISSING
            addr = words[idx]
            if value is _MISSING:
                if addr:
                    return False
            elif addr != id(value) or refs.get(addr) is not value:
                return False
        return True

    def read(self, obj: Any, t: type, table: list[tuple[str, Any, type, int]], out: list) -> None:
        """Append (label, value) of every set slot; values are the object's own referents."""
        addrs = self.pick(self.unpack(self.string_at(id(obj), self.size)))
        present = list(compress(addrs, addrs))
        refs = gc.get_referents(obj)  # set slots first, in the same order as self.index (C traversal order)
        if list(map(id, refs[: len(present)])) == present:
            out.extend(zip(compress(self.labels, addrs), refs))
            return
        byid = {id(r): r for r in refs}  # order differs (or changed under us): match by identity
        for label, addr in zip(self.labels, addrs):
            if addr and addr in byid:
                out.append((label, byid[addr]))


class _Marker:
    """Tags structural keys so a list never compares equal to a tuple of the same items."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_LIST, _SET, _DICT, _BYTEARRAY = _Marker("list"), _Marker("set"), _Marker("dict"), _Marker("bytearray")
_UNKEYABLE = object()
_KEY_MAX_ITEMS = 16


def value_key(v: Any, depth: int = 3) -> Any:
    """An equality key for builtin values (small containers included), or _UNKEYABLE.

    Only builtin scalars are hashed/compared, so no user `__eq__`/`__hash__` runs.
    """
    t = type(v)
    if t in _SCALARS:
        return v
    if depth <= 0:
        return _UNKEYABLE
    if t is tuple or t is list or t is set or t is frozenset:
        if len(v) > _KEY_MAX_ITEMS:
            return _UNKEYABLE
        if _SCALARS.issuperset(map(type, v)):  # the common case, decided at C speed
            if t is tuple or t is frozenset:
                return v
            return (_LIST, tuple(v)) if t is list else (_SET, frozenset(v))
        items = []
        for x in v:
            k = value_key(x, depth - 1)
            if k is _UNKEYABLE:
                return _UNKEYABLE
            items.append(k)
        if t is tuple:
            return tuple(items)
        if t is list:
            return (_LIST, tuple(items))
        try:
            fs = frozenset(items)
        except TypeError:
            return _UNKEYABLE
        return fs if t is frozenset else (_SET, fs)
    if t is dict:
        if len(v) > _KEY_MAX_ITEMS:
            return _UNKEYABLE
        if _SCALARS.issuperset(map(type, v)) and _SCALARS.issuperset(map(type, v.values())):
            return (_DICT, frozenset(v.items()))
        items = []
        for a, b in v.items():
            ka = value_key(a, depth - 1)
            kb = value_key(b, depth - 1)
            if ka is _UNKEYABLE or kb is _UNKEYABLE:
                return _UNKEYABLE
            items.append((ka, kb))
        try:
            return (_DICT, frozenset(items))
        except TypeError:
            return _UNKEYABLE
    if t is bytearray:
        return (_BYTEARRAY, bytes(v)) if len(v) <= 256 else _UNKEYABLE
    return _UNKEYABLE


class _AttrStats:
    __slots__ = ("bytes", "set", "empty", "empty_bytes", "keys", "unkeyable", "dup_bytes")

    def __init__(self, keys: Any = None) -> None:
        self.bytes = 0
        self.set = 0
        self.empty = 0
        self.empty_bytes = 0
        self.keys: Any = set() if keys is None else keys  # a set, or the C path's KeySet (add, in, len)
        self.unkeyable = 0
        self.dup_bytes = 0

    def as_dict(self) -> dict[str, int]:
        distinct = len(self.keys) + self.unkeyable if self.keys else -1
        return {
            "bytes": self.bytes,
            "set": self.set,
            "empty": self.empty,
            "empty_bytes": self.empty_bytes,
            "distinct": distinct,
            "dup_bytes": self.dup_bytes,
        }


class _ClassStats:
    __slots__ = ("count", "shallow", "attrs")

    def __init__(self) -> None:
        self.count = 0
        self.shallow = 0
        self.attrs: dict[str, _AttrStats] = {}


def _single_ref_count() -> int:
    """What getrefcount reads, in the walk's own loop shape, for an object held by one container only.

    3 on CPython 3.11 (the container, the loop variable, the argument). An interpreter that borrows
    references may read less; the walk then forgets nothing (0), since the rule below would be unsound.
    """
    holder = [object()]
    stack = gc.get_referents(holder)
    pop = stack.pop
    refcount = sys.getrefcount
    n = 0
    while stack:
        o = pop()
        n = refcount(o)
    del holder
    return 3 if n == 3 else 0


_SINGLE_REF = _single_ref_count()


def _single_slot_ref_count() -> int:
    """The same for an owner's attribute value in size_owner's loop: the slot, the (label, value) pair,
    the loop variable and the argument read 4 on CPython 3.11; 0 (rule off) where it reads otherwise."""
    holder = _Marker("".join(["cali", "bration"]))  # a fresh string: one reference, the slot
    pairs = [("name", holder.name)]
    refcount = sys.getrefcount
    n = 0
    for _label, v in pairs:
        n = refcount(v)
    del holder, pairs
    return 4 if n == 4 else 0


_SINGLE_SLOT_REF = _single_slot_ref_count()


def _pysize(o: Any, t: type) -> int:
    """Size of an object whose __sizeof__ is user code: the C-level one plus the GC header."""
    return object.__sizeof__(o) + (_GC_HEADER if t.__flags__ & _HAVE_GC else 0)


def _classify(boundary: tuple[type, ...], kinds: dict[type, int], t: type) -> int:
    """How objects of type t are treated (a kind); decided once per type and cached in `kinds`."""
    k = kinds.get(t)
    if k is None:
        if issubclass(t, _SHARED_TYPES):
            k = _SKIP
        elif boundary and issubclass(t, boundary):
            k = _STOP
        else:
            k = _FOLLOW if t.__flags__ & _HAVE_GC else _LEAF
            if not (t in _SCALARS or _own_sizeof_is_c(t)):
                k += 2
            elif k == _FOLLOW and issubclass(t, dict):
                k = _FOLLOW_DICT
        kinds[t] = k
    return k


# One reference from a container plus the C walk's own (its stack holds a strong reference): the C
# twin of _SINGLE_REF/_SINGLE_SLOT_REF, off (0: remember every object) where those are off.
_C_SINGLE = 2 if _SINGLE_REF and _SINGLE_SLOT_REF else 0
_EMPTY_TYPES_ORDERED = tuple(sorted(_EMPTY_CONTAINER_TYPES, key=lambda t: t.__name__))
_INT_BYTES = sys.getsizeof(1 << 40)  # one id in a Python set of ids (the int object; the table is extra)


class Sizer:
    """Walks owners once, charging each reachable object to the first (owner, attribute) that reaches it.

    `seen` is a set of ids, or with the C extension a `_fastsize.Walker` (a bitmap over addresses
    with the same add/in/update/copy/len): the C path walks, reads slots and keeps the statistics
    in C, the Python path below does the same in Python; both give the same numbers.
    """

    def __init__(self, boundary: tuple[type, ...] = (), *, dup_stats: bool = True, use_c: bool | None = None) -> None:
        self.boundary = tuple(boundary)
        self.dup_stats = dup_stats
        self._kinds: dict[type, int] = {}
        self._readers: dict[type, tuple[list[tuple[str, Any, type, int]], _FastSlots | None]] = {}
        # per owner type, the C path's slot statistics: (accumulator, labels, class stats) or None
        self._accs: dict[type, tuple[Any, list[str], _ClassStats] | None] = {}
        if use_c is None:
            use_c = _Walker is not None
        if use_c and _Walker is None:
            raise RuntimeError("sizing: the C extension dagprof._fastsize is not available")
        self.seen: Any
        self._new_keys: Any
        if use_c:
            # partial, not a bound method: the walker must not hold the sizer (a cycle would keep
            # the bitmap alive until the next collection)
            self.seen = _Walker(
                partial(_classify, self.boundary, self._kinds),
                object.__sizeof__,
                _EMPTY_TYPES_ORDERED,
                _GC_HEADER,
                _C_SINGLE,
            )
            self.seen.update(_IMMORTAL_IDS)
            self._new_keys = _KeySet
        else:
            self.seen = set(_IMMORTAL_IDS)
            self._new_keys = set

    def _kind(self, t: type) -> int:
        """How objects of type t are treated; decided once per type."""
        return _classify(self.boundary, self._kinds, t)

    def _size(self, o: Any, t: type) -> int:
        return _pysize(o, t) if self._kind(t) in (_LEAF_PY, _FOLLOW_PY) else sys.getsizeof(o)

    # ---- the walk ------------------------------------------------------------------------------
    def exclusive(self, value: Any, remember: bool = True) -> int:
        """Bytes reachable from `value` that nothing walked before has claimed.

        remember=False: the caller knows nothing else references `value`, so its id is not kept.
        """
        seen = self.seen
        if type(seen) is not set:
            return seen.exclusive(value, remember)
        i = id(value)
        if i in seen:
            return 0
        kinds = self._kinds
        t = type(value)
        k = kinds.get(t)
        if k is None:
            k = self._kind(t)
        if k <= _STOP:
            return 0
        if remember:
            seen.add(i)
        getsizeof = sys.getsizeof
        if k == _LEAF:
            return getsizeof(value)
        if k == _LEAF_PY:
            return _pysize(value, t)
        total = _pysize(value, t) if k == _FOLLOW_PY else getsizeof(value)
        get_referents = gc.get_referents
        stack = get_referents(value)
        if k == _FOLLOW_DICT:
            stack.extend(dict.keys(value))
        pop = stack.pop
        extend = stack.extend
        add = seen.add
        refcount = sys.getrefcount
        single = _SINGLE_REF
        while stack:
            o = pop()
            i = id(o)
            if i in seen:
                continue
            t = type(o)
            k = kinds.get(t)
            if k is None:
                k = self._kind(t)
            if k <= _STOP:
                continue
            # An object whose only reference is the one it was reached through (3 = that one + `o` +
            # getrefcount's argument) cannot be reached again, since what holds it is walked once: no
            # need to remember it. Same bytes; `seen` (a set of ints, 8 MiB and more on a 2k-file
            # build) stays much smaller, since most objects below a build's nodes are unshared.
            if refcount(o) > single:
                add(i)
            if k == _LEAF:
                total += getsizeof(o)
            elif k == _FOLLOW:
                total += getsizeof(o)
                extend(get_referents(o))
            elif k == _FOLLOW_DICT:
                total += getsizeof(o)
                extend(get_referents(o))
                extend(dict.keys(o))
            else:
                total += _pysize(o, t)
                if k == _FOLLOW_PY:
                    extend(get_referents(o))
        return total

    def claim(self, objects: Iterable[Any]) -> None:
        """Mark objects (the tracked owners) so that a reference to one costs nothing elsewhere."""
        self.seen.update(map(id, objects))

    def _pairs(self, obj: Any, t: type) -> list[tuple[str, Any]]:
        reader = self._readers.get(t)
        if reader is None:
            table = _slot_table(t)
            reader = self._readers[t] = (table, _FastSlots.build(t, table, obj))
        table, fast = reader
        pairs: list[tuple[str, Any]] = []
        if fast is not None:
            fast.read(obj, t, table, pairs)
        else:
            for label, member, _k, _p in table:
                try:
                    pairs.append((label, member.__get__(obj, t)))
                except AttributeError:
                    pass
        return pairs

    def size_owner(self, obj: Any, classes: dict[str, _ClassStats]) -> None:
        """Charge obj's shallow size and each of its attributes' exclusive bytes to its class."""
        t = type(obj)
        d = None
        cs = classes.get(t.__name__)
        if cs is None:
            cs = classes[t.__name__] = _ClassStats()
        cs.count += 1
        seen = self.seen
        seen.add(id(obj))
        cs.shallow += self._size(obj, t)
        attrs = cs.attrs
        acc = self._acc(obj, t, cs) if type(seen) is not set else None
        pairs = self._pairs(obj, t) if acc is None else []
        if t.__dictoffset__:
            d = _instance_dict(obj)
            if d is not None:
                b = 0
                if id(d) not in seen:
                    seen.add(id(d))
                    b = sys.getsizeof(d)
                st = attrs.get("__dict__")
                if st is None:
                    st = attrs["__dict__"] = _AttrStats(self._new_keys())
                st.bytes += b
                st.set += 1
                if acc is None:
                    pairs.extend((k, v) for k, v in d.items() if type(k) is str)
        if acc is not None:  # the slots in C, in the same order and with the same rules as the loop below
            seen.size_slots(obj, acc[0], value_key, _UNKEYABLE)
            if t.__dictoffset__ and d is not None:
                pairs = [(k, v) for k, v in d.items() if type(k) is str]
        exclusive = self.exclusive
        getsizeof = sys.getsizeof
        dup = self.dup_stats
        scalars = _SCALARS
        empties = _EMPTY_CONTAINER_TYPES
        refcount = sys.getrefcount
        single = _SINGLE_SLOT_REF  # a value held only by this attribute can never be met again
        for label, v in pairs:
            st = attrs.get(label)
            if st is None:
                st = attrs[label] = _AttrStats(self._new_keys())
            st.set += 1
            tv = type(v)
            i = id(v)
            if i in seen:
                b = 0
            elif tv in scalars or (tv in empties and not len(v)):  # no referents: skip the walk
                if refcount(v) > single:
                    seen.add(i)
                b = getsizeof(v)
            else:
                remember = refcount(v) > single  # before the call: its arguments on the stack add references
                b = exclusive(v, remember)
            st.bytes += b
            if tv in empties and not len(v):
                st.empty += 1
                st.empty_bytes += b
            if dup:
                key = v if tv in scalars else value_key(v)
                if key is _UNKEYABLE:
                    st.unkeyable += 1
                else:
                    keys = st.keys
                    try:
                        if key in keys:
                            st.dup_bytes += b
                        else:
                            keys.add(key)
                    except TypeError:
                        st.unkeyable += 1

    def _acc(self, obj: Any, t: type, cs: _ClassStats) -> tuple[Any, list[str], _ClassStats] | None:
        """The C slot accumulator of type t (None: its slots are read in Python)."""
        try:
            return self._accs[t]
        except KeyError:
            pass
        table = _slot_table(t)
        acc = None
        if table:
            labels = [label for label, _m, _k, _p in table]
            keysets = None
            if self.dup_stats:  # one KeySet per (class, attribute), shared with the Python loop
                keysets = []
                for label in labels:
                    st = cs.attrs.get(label)
                    if st is None:
                        st = cs.attrs[label] = _AttrStats(self._new_keys())
                    keysets.append(st.keys)
            try:
                acc = (_SlotAcc(tuple(m for _l, m, _k, _p in table), keysets), labels, cs)
            except TypeError:  # not all plain object slots: the Python reader handles this type
                acc = None
        self._accs[t] = acc
        return acc

    def merge_slot_stats(self) -> None:
        """Add what the C accumulators counted into the classes' attribute statistics (once, at the end)."""
        for entry in self._accs.values():
            if entry is None:
                continue
            acc, labels, cs = entry
            for label, (nset, nbytes, empty, empty_bytes, unkeyable, dup_bytes) in zip(labels, acc.rows()):
                if not nset:
                    continue
                st = cs.attrs.get(label)
                if st is None:
                    st = cs.attrs[label] = _AttrStats(self._new_keys())
                st.set += nset
                st.bytes += nbytes
                st.empty += empty
                st.empty_bytes += empty_bytes
                st.unkeyable += unkeyable
                st.dup_bytes += dup_bytes
        self._accs = {t: None for t in self._accs}

    def working_bytes(self, classes: dict[str, _ClassStats]) -> int:
        """Approximate memory of the sizer's own tables, so the profiler's footprint is visible."""
        seen = self.seen
        if type(seen) is set:  # the hash table plus one int object per id
            n = sys.getsizeof(seen) + _INT_BYTES * len(seen)
        else:
            n = seen.nbytes + sum(e[0].nbytes for e in self._accs.values() if e is not None)
        n += sys.getsizeof(self._kinds) + sys.getsizeof(self._readers) + sys.getsizeof(self._accs)
        for cs in classes.values():
            for st in cs.attrs.values():
                n += sys.getsizeof(st.keys)
        return n


def size_sections(
    objects: Iterable[Any], boundary: tuple[type, ...] = (), *, dup_stats: bool = True, use_c: bool | None = None
) -> dict[str, Any]:
    """The "sizes" profile section for `objects` (the tracked owners); see docs/profile-format.md.

    use_c: None = the C walk when built; True/False force it (tests compare the two).
    """
    t0 = time.perf_counter()
    owners = objects if type(objects) is list else list(objects)  # a list is read, never changed: no copy
    sizer = Sizer(boundary, dup_stats=dup_stats, use_c=use_c)
    sizer.claim(owners)
    classes: dict[str, _ClassStats] = {}
    # The walk allocates many small keys but no cycles; automatic collections over a big heap would
    # otherwise dominate the run (measured: 4x slower on 20k SCons nodes).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for obj in owners:
            sizer.size_owner(obj, classes)
    finally:
        if was_enabled:
            gc.enable()
    self_bytes = sizer.working_bytes(classes) + sys.getsizeof(owners)
    sizer.merge_slot_stats()
    out_classes: dict[str, Any] = {}
    for name, cs in classes.items():
        # largest first, ties by name (the C path creates a class's slot entries all at once, the Python
        # one as each is first met: an order that depends on neither); never-set entries are left out
        attrs = {a: st.as_dict() for a, st in sorted(cs.attrs.items(), key=lambda kv: (-kv[1].bytes, kv[0])) if st.set}
        total = cs.shallow + sum(a["bytes"] for a in attrs.values())
        out_classes[name] = {"count": cs.count, "total": total, "shallow": cs.shallow, "attrs": attrs}
    n = len(owners)
    del owners, sizer, classes
    return {
        "elapsed_s": time.perf_counter() - t0,
        "objects": n,
        "boundary": [b.__name__ for b in boundary],
        "self_bytes": self_bytes,
        "classes": out_classes,
    }


def size_of(obj: Any, boundary: tuple[type, ...] = (), stop: Iterable[Any] = ()) -> int:
    """Bytes of one object and all it reaches, stopping at boundary types and at the `stop` objects."""
    sizer = Sizer(boundary, dup_stats=False)
    sizer.claim(stop)
    if id(obj) in _IMMORTAL_IDS:
        return 0
    sizer.seen.add(id(obj))
    t = type(obj)
    total = sizer._size(obj, t)  # asked for explicitly: counted even when its type is a boundary
    for r in gc.get_referents(obj):
        total += sizer.exclusive(r)
    return total

"""Issue 6 item 6, the parts tests/test_codec.py's properties leave out: node references and registered
objects inside generated values (identity kept), real SCons NodeInfo/BuildInfo with generated fields, and
unsupported values in every position (top level, dict key, set member, registered object's state) and
look-alike subclasses of supported types: refused, never mis-encoded."""

from __future__ import annotations

import collections
import decimal
import enum
import fractions
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagstore.codec import Codec, Refused


def same(a: object, b: object) -> bool:
    """Equal and of the same types all the way down; nodes must be the very same objects."""
    if isinstance(a, Node):
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(any(same(k, k2) and same(a[k], b[k2]) for k2 in b) for k in a)
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, Info):
        return same(a.__getstate__(), b.__getstate__())
    return a == b


class Node:
    """A DAG node stand-in: only identity matters."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


NODES = {k: Node(k) for k in ("src/a.c", "src/a.h", "build/a.o", "/usr/include/stdio.h", "dir/\udcff.c")}


class Info:
    """A NodeInfo-like registered class with slots and get/setstate."""

    __slots__ = ("csig", "deps", "extra")

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ if hasattr(self, k)}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def make_codec() -> Codec:
    codec = Codec(resolve_node=NODES.__getitem__, node_key=lambda o: o.key if type(o) is Node else None)
    codec.register(Info, "test-info")
    return codec


nodes = st.sampled_from(sorted(NODES)).map(NODES.__getitem__)
hashable = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), st.binary(), nodes),
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)),
    max_leaves=8,
)


def _info(fields: dict) -> Info:
    obj = Info()
    for k, v in fields.items():
        setattr(obj, k, v)
    return obj


values = st.recursive(
    st.one_of(hashable, st.floats(allow_nan=True), st.integers(min_value=-(2**200), max_value=2**200)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.sets(hashable, max_size=4),
        st.frozensets(hashable, max_size=4),
        st.dictionaries(hashable, inner, max_size=4),
        st.fixed_dictionaries({}, optional={"csig": inner, "deps": st.lists(nodes, max_size=3), "extra": inner}).map(
            _info
        ),
    ),
    max_leaves=25,
)


def _nodes_in(v: object, out: list) -> list:
    if isinstance(v, Node):
        out.append(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            _nodes_in(k, out)
            _nodes_in(x, out)
    elif isinstance(v, (list, tuple, set, frozenset)):
        for x in v:
            _nodes_in(x, out)
    elif isinstance(v, Info):
        _nodes_in(v.__getstate__(), out)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_values_with_nodes_and_registered_objects_round_trip_exactly(value):
    codec = make_codec()
    blob = codec.encode(value)
    back = codec.decode(blob)
    assert same(back, value)
    assert {id(n) for n in _nodes_in(back, [])} <= {id(n) for n in NODES.values()}  # the same node objects
    assert make_codec().encode(back) == blob  # a fresh codec (another build) encodes it identically


class Color(enum.IntEnum):
    RED = 1


class MyStr(str):
    pass


class MyBytes(bytes):
    pass


class MyDict(dict):
    pass


class MyFloat(float):
    pass


Point = collections.namedtuple("Point", "x y")


class SubInfo(Info):
    __slots__ = ()


LOOKALIKES = [
    Color.RED,
    MyStr("a"),
    MyBytes(b"a"),
    MyDict(a=1),
    MyFloat(1.5),
    Point(1, 2),
    True.__class__,
    collections.defaultdict(list),
    collections.Counter("ab"),
    fractions.Fraction(1, 3),
    decimal.Decimal("1.5"),
    bytearray(b"x"),
    memoryview(b"x"),
    1j,
    range(3),
    object(),
    SubInfo(),
    type,
    len,
    iter([1]),
    slice(1, 2),
]
bad = st.sampled_from(LOOKALIKES)


def _plant(draw, bad_value: object) -> object:
    """`bad_value` at a drawn position: top level, list item, tuple item, dict key or value, set member,
    registered object's state, deep inside."""
    where = draw(st.sampled_from(["top", "list", "tuple", "key", "value", "set", "frozenset", "info", "deep"]))
    v = draw(values)
    try:
        hash(bad_value)
        hashable_bad = True
    except TypeError:
        hashable_bad = False
    if where in ("key", "set", "frozenset") and not hashable_bad:
        where = "value"
    if where == "top":
        return bad_value
    if where == "list":
        return [v, bad_value]
    if where == "tuple":
        return (bad_value, v)
    if where == "key":
        return {bad_value: v}
    if where == "value":
        return {"k": bad_value, "v": v}
    if where == "set":
        return {bad_value}
    if where == "frozenset":
        return frozenset({"a member unequal to any planted value", bad_value})
    if where == "info":
        return _info({"csig": v, "extra": [bad_value]})
    return [{"a": (v, [{"b": bad_value}])}]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_unsupported_values_are_refused_wherever_they_are(data):
    bad_value = data.draw(bad)
    value = _plant(data.draw, bad_value)
    codec = make_codec()
    try:
        blob = codec.encode(value)
    except Refused:
        return
    pytest.fail(f"{type(bad_value).__name__} encoded as {codec.decode(blob)!r} instead of being refused")


@pytest.mark.parametrize("bad_value", LOOKALIKES, ids=lambda v: type(v).__name__)
def test_each_lookalike_is_refused_alone(bad_value):
    with pytest.raises(Refused):
        make_codec().encode(bad_value)


def test_scons_nodeinfo_and_buildinfo_with_generated_fields_round_trip():
    """Real SCons FileNodeInfo/FileBuildInfo, fields drawn by hypothesis, through the adapter's codec."""
    import SCons.Node.FS as FS

    from dagprof.builds.scons import make_codec as scons_codec

    @settings(max_examples=100, deadline=None)
    @given(
        csig=st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)),
        size=st.integers(-1, 2**40),
        ts=st.one_of(st.integers(0, 2**40), st.floats(0, 2e9)),
        sigs=st.lists(st.text(max_size=40), max_size=5),
        action=st.text(max_size=60),
    )
    def check(csig, size, ts, sigs, action):
        codec = scons_codec()
        ni = FS.FileNodeInfo()
        if csig is not None:
            ni.csig = csig
        ni.size, ni.timestamp = size, ts
        bi = FS.FileBuildInfo()
        bi.bsourcesigs = [FS.FileNodeInfo() for _ in sigs]
        for n, s in zip(bi.bsourcesigs, sigs):
            n.csig = s
        bi.bact, bi.bactsig = action, csig or ""
        back_ni, back_bi = codec.decode(codec.encode([ni, bi]))
        assert type(back_ni) is FS.FileNodeInfo and type(back_bi) is FS.FileBuildInfo
        assert back_ni.__getstate__() == ni.__getstate__()
        assert back_bi.bact == action and [s.csig for s in back_bi.bsourcesigs] == sigs

    check()

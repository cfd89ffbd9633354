"""The codec round-trips node attribute values exactly (types included) and refuses the rest."""

from __future__ import annotations

import collections
import enum
import io
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagstore.codec import Codec, CodecError, Refused

ROOT = Path(__file__).resolve().parents[1]


def same(a: object, b: object) -> bool:
    """Equal AND of the same types all the way down (1 == 1.0 == True, (1,) != [1] for us)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        bk = list(b)
        return all(any(same(k, k2) and same(a[k], b[k2]) for k2 in bk) for k in a)
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return a == b


class Node:
    """Stands in for a DAG node: identity matters, no state to encode."""

    def __init__(self, path: str) -> None:
        self.path = path


@pytest.fixture
def nodes() -> dict[str, Node]:
    return {p: Node(p) for p in ("src/a.c", "src/a.h", "build/a.o", "/usr/include/stdio.h")}


@pytest.fixture
def codec(nodes: dict[str, Node]) -> Codec:
    return Codec(resolve_node=nodes.__getitem__, node_key=lambda o: o.path if type(o) is Node else None)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        2**200,
        -(2**200),
        0.0,
        -0.0,
        1.5,
        float("inf"),
        "",
        "str",
        "é\u1234",
        "\udcff",
        b"",
        b"bytes",
        b"\x00\xff",
        [],
        (),
        set(),
        frozenset(),
        {},
        (1,),
        [(1, 2), [3]],
        ((),),
        {"a": (1, [2, {3}])},
        {(1, "a"): "tuple key", frozenset({1}): b"frozenset key", 2**70: "big key", b"k": "bytes key"},
        {1, "a", (2, 3), frozenset({4})},
        frozenset({(1, 2), "x"}),
        [b"x", "x"],
        {"x": b"x", b"x": "x"},
    ],
)
def test_round_trip_keeps_types(codec: Codec, value: object) -> None:
    assert same(codec.decode(codec.encode(value)), value)


def test_tuple_list_bytes_str_stay_distinct(codec: Codec) -> None:
    blobs = {codec.encode(v) for v in [(1, 2), [1, 2], b"x", "x", {1}, frozenset({1}), 1, True, 1.0]}
    assert len(blobs) == 9


def test_equal_sets_encode_identically(codec: Codec) -> None:
    a = {f"file{i}.h" for i in range(200)}
    b = set(sorted(a, reverse=True))
    assert codec.encode(a) == codec.encode(b)
    mixed1 = {1, "a", (2, "b"), frozenset({3}), b"z", 2**80}
    mixed2 = set(reversed(list(mixed1)))
    assert codec.encode(mixed1) == codec.encode(mixed2)
    assert codec.encode(frozenset(mixed1)) == codec.encode(frozenset(mixed2))


def test_node_references_resolve_to_the_same_objects(codec: Codec, nodes: dict[str, Node]) -> None:
    a, h, o = nodes["src/a.c"], nodes["src/a.h"], nodes["build/a.o"]
    value = {"sources": [a, h], "by_name": {"a.o": o}, "pair": (a, o), o: "node as key", "set": {h}}
    back = codec.decode(codec.encode(value))
    assert back["sources"][0] is a and back["sources"][1] is h
    assert back["by_name"]["a.o"] is o
    assert back["pair"][0] is a and back["pair"][1] is o
    assert back[o] == "node as key"
    assert next(iter(back["set"])) is h


def test_node_without_key_or_resolver(nodes: dict[str, Node]) -> None:
    with pytest.raises(Refused, match="Node"):
        Codec().encode([nodes["src/a.c"]])
    blob = Codec(node_key=lambda o: o.path if type(o) is Node else None).encode(nodes["src/a.c"])
    with pytest.raises(CodecError, match="no resolve_node"):
        Codec().decode(blob)
    with pytest.raises(CodecError, match="cannot resolve node 'src/a.c'"):
        Codec(resolve_node={}.__getitem__).decode(blob)


def test_node_key_returning_none_is_refused(nodes: dict[str, Node]) -> None:
    codec = Codec(resolve_node=nodes.__getitem__, node_key=lambda o: None)
    with pytest.raises(Refused, match="Node"):
        codec.encode({"x": nodes["src/a.c"]})


class Slotted:
    """A NodeInfo-like class: __slots__ plus __getstate__/__setstate__ over them."""

    __slots__ = ("csig", "size", "deps")

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ if hasattr(self, k)}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def test_registered_class_round_trips_with_nested_nodes(codec: Codec, nodes: dict[str, Node]) -> None:
    assert codec.register(Slotted) == f"{__name__}.Slotted"
    obj = Slotted()
    obj.csig, obj.size, obj.deps = "abc", 10, [nodes["src/a.h"], ("x", {1})]
    back = codec.decode(codec.encode([obj, {"k": obj}]))
    assert type(back[0]) is Slotted and back[0].csig == "abc" and back[0].size == 10
    assert back[0].deps[0] is nodes["src/a.h"]
    assert same(back[0].deps[1], ("x", {1}))
    assert type(back[1]["k"]) is Slotted and back[1]["k"].csig == "abc"  # a second, equal object


def test_register_with_to_state_from_state(codec: Codec) -> None:
    Point = collections.namedtuple("Point", "x y")
    codec.register(Point, lambda p: [p.x, p.y], lambda s: Point(*s))
    assert codec.decode(codec.encode({"p": Point(1, (2,))})) == {"p": Point(1, (2,))}
    assert type(codec.decode(codec.encode(Point(1, 2)))) is Point
    codec.register(complex, "cx", lambda c: [c.real, c.imag], lambda s: complex(*s))
    assert codec.decode(codec.encode([1 + 2j])) == [1 + 2j]


def test_register_rejects_bad_use(codec: Codec) -> None:
    class NoSetState:
        __slots__ = ("a",)

    with pytest.raises(TypeError, match="__setstate__"):
        codec.register(NoSetState)
    codec.register(Slotted, "same-tag")
    with pytest.raises(ValueError, match="already registered"):
        codec.register(NoSetState, "same-tag", lambda o: 1, lambda s: NoSetState())
    with pytest.raises(ValueError, match="natively"):
        codec.register(tuple, "t", list, tuple)


def test_subclass_of_registered_class_is_refused(codec: Codec) -> None:
    class Sub(Slotted):
        __slots__ = ()

    codec.register(Slotted)
    with pytest.raises(Refused, match="Sub"):
        codec.encode(Sub())


def test_unknown_tag_raises_codec_error() -> None:
    writer = Codec()
    writer.register(Slotted, "only-in-writer")
    obj = Slotted()
    obj.csig = "x"
    blob = writer.encode(obj)
    with pytest.raises(CodecError, match="unknown class tag 'only-in-writer'"):
        Codec().decode(blob)


def test_registry_is_stable_across_processes(tmp_path) -> None:
    """A blob written by one interpreter decodes in another that registered the same class."""
    import SCons.Node.FS as FS

    codec = Codec()
    codec.register(FS.FileNodeInfo)
    ni = FS.FileNodeInfo()
    ni.csig, ni.timestamp, ni.size = "d41d8cd98f00b204e9800998ecf8427e", 1700000000, 42
    (tmp_path / "blob").write_bytes(codec.encode({"ninfo": ni, "t": (1, frozenset({"a"}))}))
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        import SCons.Node.FS as FS
        from dagstore.codec import Codec
        c = Codec(); c.register(FS.FileNodeInfo)
        v = c.decode(open({str(tmp_path / "blob")!r}, 'rb').read())
        n = v['ninfo']
        assert type(n) is FS.FileNodeInfo
        assert (n.csig, n.timestamp, n.size) == ('d41d8cd98f00b204e9800998ecf8427e', 1700000000, 42)
        assert v['t'] == (1, frozenset({{'a'}})) and type(v['t'][1]) is frozenset
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_real_scons_nodeinfo_and_buildinfo(codec: Codec) -> None:
    import SCons.Node.FS as FS

    codec.register(FS.FileNodeInfo)
    codec.register(FS.FileBuildInfo)
    ni_src = FS.FileNodeInfo()
    ni_src.csig, ni_src.timestamp, ni_src.size = "0cc175b9c0f1b6a831c399e269772661", 1700000001, 120
    ni_hdr = FS.FileNodeInfo()
    ni_hdr.csig, ni_hdr.timestamp, ni_hdr.size = "92eb5ffee6ae2fec3ad71c777531578f", 1700000002, 33
    bi = FS.FileBuildInfo()
    bi.bsources, bi.bsourcesigs = ["src/a.c"], [ni_src]
    bi.bdepends, bi.bdependsigs = [], []
    bi.bimplicit, bi.bimplicitsigs = ["src/a.h"], [ni_hdr]
    bi.bact, bi.bactsig = "gcc -o build/a.o -c src/a.c", "4a8a08f09d37b73795649038408b5f33"
    back = codec.decode(codec.encode(bi))
    assert type(back) is FS.FileBuildInfo
    want, got = bi.__getstate__(), back.__getstate__()
    assert got.keys() == want.keys()
    for k in want:
        if k.endswith("sigs"):
            assert [type(x) for x in got[k]] == [FS.FileNodeInfo] * len(want[k])
            assert got[k] == want[k]  # FileNodeInfo.__eq__ compares csig, timestamp, size
        else:
            assert got[k] == want[k], k
    assert codec.decode(codec.encode(ni_src)) == ni_src


@pytest.mark.parametrize(
    "bad",
    [
        lambda: None,
        io.BytesIO(b""),
        object(),
        1 + 2j,
        bytearray(b"x"),
        memoryview(b"x"),
        msgpack.ExtType(1, b"\x90"),
        collections.OrderedDict(a=1),
        collections.defaultdict(list),
        enum.IntEnum("E", "A").A,
        type("S", (str,), {})("sub"),
        range(3),
        Exception("x"),
    ],
)
def test_unsupported_values_are_refused_alone_and_nested(codec: Codec, bad: object) -> None:
    for value in (bad, [bad], {"k": [1, (2, bad)]}, ({"k": bad},), [{1: [[bad]]}]):
        with pytest.raises(Refused, match=r"cannot encode"):
            codec.encode(value)


def test_refused_names_the_type(codec: Codec) -> None:
    with pytest.raises(Refused, match="cannot encode function"):
        codec.encode([lambda: 1])
    with open(__file__) as f, pytest.raises(Refused, match="_io.TextIOWrapper"):
        codec.encode({"f": f})


def test_cycles_are_refused_not_looped(codec: Codec) -> None:
    a: list = []
    a.append(a)
    b: list = []
    b.append((b,))
    d: dict = {}
    d["self"] = [d]
    for v in (a, b, d):
        with pytest.raises(Refused):
            codec.encode(v)
    shared = [1, 2]
    assert codec.decode(codec.encode([shared, shared])) == [[1, 2], [1, 2]]


def test_codec_stays_usable_after_a_refusal(codec: Codec) -> None:
    with pytest.raises(Refused):
        codec.encode([(1, {2, (3, object())})])
    assert same(codec.decode(codec.encode([(1, {2, (3, 4)})])), [(1, {2, (3, 4)})])


@pytest.mark.parametrize(
    "blob", [b"", b"\xc1", b"\x92\x01", b"\x01\x02", b"\xc7\x01\x09x", b"\xc7\x03\x05\x92\xa1x", b"\xd4\x01\x01"]
)
def test_damaged_blobs_raise_codec_error(codec: Codec, blob: bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode(blob)


def test_codec_is_usable_from_threads(codec: Codec) -> None:
    import concurrent.futures

    values = [(i, {f"s{i}", (i, b"x")}, [frozenset({i})]) for i in range(2000)]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        back = list(ex.map(lambda v: codec.decode(codec.encode(v)), values))
    assert all(same(a, b) for a, b in zip(back, values))


# ---- property tests (issue 6 item 6) -----------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(st.characters(codec=None)),
    st.binary(),
)
hashables = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), st.binary()),
    lambda inner: st.one_of(
        st.tuples(inner, inner), st.lists(inner, max_size=4).map(tuple), st.frozensets(inner, max_size=4)
    ),
    max_leaves=12,
)
values = st.recursive(
    st.one_of(scalars, hashables),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.sets(hashables, max_size=5),
        st.frozensets(hashables, max_size=5),
        st.dictionaries(hashables, inner, max_size=5),
    ),
    max_leaves=30,
)
unsupported = st.sampled_from(
    [
        object(),
        lambda: 0,
        1j,
        bytearray(b"ab"),
        memoryview(b"m"),
        msgpack.ExtType(2, b"\x90"),
        collections.OrderedDict(),
        range(2),
        type("U", (int,), {})(3),
        type("L", (list,), {})(),
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_property_any_supported_value_round_trips_exactly(value: object) -> None:
    codec = Codec()
    blob = codec.encode(value)
    assert same(codec.decode(blob), value)
    assert codec.encode(codec.decode(blob)) == blob  # stable: re-encoding gives the same bytes


def _plant(draw, value: object, bad: object) -> object:
    """Put `bad` somewhere inside a container built around `value`."""
    wrap = draw(st.sampled_from(["list", "tuple", "dict_value", "nested"]))
    if wrap == "list":
        items = [value, bad]
        return items[::-1] if draw(st.booleans()) else items
    if wrap == "tuple":
        return (value, bad)
    if wrap == "dict_value":
        return {"k": value, "bad": bad}
    return [{"a": (value, [bad])}]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_property_unsupported_inside_containers_is_refused(data) -> None:
    value = data.draw(values)
    bad = data.draw(unsupported)
    with pytest.raises(Refused):
        Codec().encode(_plant(data.draw, value, bad))


def test_check_native_false_still_round_trips_and_refuses_the_rest(nodes: dict[str, Node]) -> None:
    codec = Codec(
        resolve_node=nodes.__getitem__, node_key=lambda o: o.path if type(o) is Node else None, check_native=False
    )
    value = {"a": [(1, {"x"}), nodes["src/a.c"]], (1, 2): frozenset({b"b"})}
    back = codec.decode(codec.encode(value))
    assert same(back, value) and back["a"][1] is nodes["src/a.c"]
    for bad in ([object()], {"k": (1, lambda: 0)}):
        with pytest.raises(Refused):
            codec.encode(bad)
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(Refused):
        codec.encode(cyclic)

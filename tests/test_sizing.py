"""Sizing: exact exclusive bytes, shared objects once, boundaries, and no user code run while sizing."""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest

from dagprof import sizing
from dagprof.sizing import size_of, size_sections, value_key

gs = sys.getsizeof


@pytest.fixture(autouse=True, params=["C walk", "Python walk"])
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both walks: the C one (dagprof._fastsize) and its pure-Python twin."""
    if request.param == "C walk":
        if sizing._Walker is None:
            pytest.skip("C walk not built (or DAGPROF_NO_C set)")
    else:
        monkeypatch.setattr(sizing, "_Walker", None)
    return request.param


class Leaf:
    __slots__ = ("a", "b", "c", "unset")


class Owner:
    __slots__ = ("items", "meta", "peer", "env", "name")


class Env:
    """A boundary type (like an SCons Environment)."""

    def __init__(self) -> None:
        self.big = [str(i) * 1000 for i in range(10)]  # distinct strings (a folded constant would be one)


def test_exact_bytes_per_attribute() -> None:
    o = Leaf()
    s1, s2 = "alpha" * 10, "beta" * 20
    o.a = [s1, s2]
    o.b = {"key-one": (1000, 2000.5)}
    o.c = None
    sec = size_sections([o])
    cls = sec["classes"]["Leaf"]
    attrs = cls["attrs"]
    assert cls["count"] == 1
    assert cls["shallow"] == gs(o)
    assert attrs["a"]["bytes"] == gs(o.a) + gs(s1) + gs(s2)
    tup = o.b["key-one"]
    assert attrs["b"]["bytes"] == gs(o.b) + gs("key-one") + gs(tup) + gs(tup[0]) + gs(tup[1])
    assert attrs["c"]["bytes"] == 0 and attrs["c"]["set"] == 1  # None is shared by everyone
    assert "unset" not in attrs
    assert cls["total"] == cls["shallow"] + attrs["a"]["bytes"] + attrs["b"]["bytes"]


def test_shared_object_counted_once_and_dups() -> None:
    shared = ["s" * 100]
    x, y = Leaf(), Leaf()
    x.a = shared
    y.a = shared
    x.b = "".join(["equal", "-value"])  # two distinct but equal strings
    y.b = "".join(["equal", "-value"])
    assert x.b is not y.b
    attrs = size_sections([x, y])["classes"]["Leaf"]["attrs"]
    assert attrs["a"]["bytes"] == gs(shared) + gs(shared[0])
    assert attrs["a"]["set"] == 2 and attrs["a"]["distinct"] == 1 and attrs["a"]["dup_bytes"] == 0
    assert attrs["b"]["bytes"] == 2 * gs(x.b)
    assert attrs["b"]["distinct"] == 1 and attrs["b"]["dup_bytes"] == gs(y.b)


def test_single_reference_objects_and_deep_sharing_counted_once() -> None:
    """The walk forgets objects with one reference (they cannot be met again); shared ones still count once."""
    x, y = Leaf(), Leaf()
    deep = "".join(["deep", "-shared"] * 10)  # two references below two different containers, no local
    twice = "".join(["twice"] * 10)  # held twice by one list
    x.a = [(deep, 1.5), [twice, twice, "".join(["lone"] * 10)]]  # the last: one reference only
    y.a = {"k": [deep]}
    x.b = ["".join(["slot"] * 10)]  # held by two owners' slots only: counted once, under x
    y.b = x.b
    x.c = "".join(["scalar"] * 10)  # a scalar held by two slots only
    y.c = x.c
    del deep, twice
    refs = sys.getrefcount(x.a[0][0])
    assert refs == 3  # the tuple, the list below y.a, the argument
    inner_t, inner_l = x.a
    expected = (
        gs(x.a)
        + gs(inner_t)
        + gs(inner_t[0])
        + gs(inner_t[1])
        + gs(inner_l)
        + gs(inner_l[0])
        + gs(inner_l[2])
        + gs(y.a)
        + gs("k")
        + gs(y.a["k"])
    )
    del inner_t, inner_l
    attrs = size_sections([x, y], dup_stats=False)["classes"]["Leaf"]["attrs"]
    assert attrs["a"]["bytes"] == expected
    assert attrs["b"]["bytes"] == gs(x.b) + gs(x.b[0])
    assert attrs["c"]["bytes"] == gs(x.c)
    assert sizing._SINGLE_REF in (0, 3) and sizing._SINGLE_SLOT_REF in (0, 4)


def test_empty_containers_counted() -> None:
    objs = []
    for _ in range(3):
        o = Leaf()
        o.a, o.b, o.c = set(), [], {"k": 1}
        objs.append(o)
    attrs = size_sections(objs)["classes"]["Leaf"]["attrs"]
    assert attrs["a"]["empty"] == 3 and attrs["a"]["empty_bytes"] == 3 * gs(set())
    assert attrs["a"]["distinct"] == 1 and attrs["a"]["dup_bytes"] == 2 * gs(set())
    assert attrs["b"]["empty"] == 3
    assert attrs["c"]["empty"] == 0 and attrs["c"]["distinct"] == 1


def test_boundary_and_tracked_objects_stop_the_walk() -> None:
    env = Env()
    a, b = Owner(), Owner()
    a.peer, b.peer = b, a
    a.env = b.env = env
    a.items = [b, env, "z" * 50]
    sec = size_sections([a, b], boundary=(Env,))
    attrs = sec["classes"]["Owner"]["attrs"]
    assert sec["boundary"] == ["Env"]
    assert attrs["peer"]["bytes"] == 0 and attrs["peer"]["set"] == 2
    assert attrs["env"]["bytes"] == 0
    assert attrs["items"]["bytes"] == gs(a.items) + gs(a.items[2])
    # without the boundary, the environment is charged once, to the first owner reaching it
    attrs = size_sections([a, b])["classes"]["Owner"]["attrs"]
    assert attrs["env"]["bytes"] >= sum(map(gs, env.big))


def test_redeclared_slot_is_listed_separately() -> None:
    class Base:
        __slots__ = ("x",)

    class Child(Base):
        __slots__ = ("x",)

    c = Child()
    c.x = "child value"
    Base.__dict__["x"].__set__(c, "shadowed base value")
    attrs = size_sections([c])["classes"]["Child"]["attrs"]
    assert attrs["x"]["bytes"] == gs(c.x)
    assert attrs["x@Base"]["bytes"] == gs("shadowed base value")


class Spy:
    """Records every call of user code that sizing must never trigger."""

    calls: list[str] = []

    def __init__(self) -> None:
        self.__dict__["payload"] = ["p" * 40]

    def __getattr__(self, name: str):
        Spy.calls.append(f"__getattr__ {name}")
        raise AttributeError(name)

    @property
    def prop(self):
        Spy.calls.append("prop")
        return 1

    def __eq__(self, other):
        Spy.calls.append("__eq__")
        return False

    def __hash__(self) -> int:
        Spy.calls.append("__hash__")
        return 1

    def __sizeof__(self) -> int:
        Spy.calls.append("__sizeof__")
        return 10**9

    def __len__(self) -> int:
        Spy.calls.append("__len__")
        return 0

    def __iter__(self):
        Spy.calls.append("__iter__")
        return iter(())


class Counting:
    """Shaped like profiler/access.py and dagstore spill descriptors: wraps the slot, exposes `.wrapped`."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        self.reads = 0

    def __get__(self, obj, owner=None):
        self.reads += 1
        return self.wrapped.__get__(obj, owner)

    def __set__(self, obj, value) -> None:
        self.wrapped.__set__(obj, value)


def test_no_user_code_runs_while_sizing() -> None:
    Spy.calls.clear()
    spy = Spy()
    owner = Leaf()
    owner.a = spy
    owner.b = [spy, {"k": spy}]
    spy2 = Spy()
    sec = size_sections([owner, spy2])
    assert Spy.calls == []
    attrs = sec["classes"]["Leaf"]["attrs"]
    assert attrs["a"]["bytes"] > 0 and attrs["a"]["bytes"] < 10**6  # the Python __sizeof__ was not used
    assert "payload" in sec["classes"]["Spy"]["attrs"]
    assert size_of(owner) > 0 and Spy.calls == []


def test_wrapped_slot_descriptor_is_read_underneath() -> None:
    class Node:
        __slots__ = ("value", "other")

    n = Node()
    n.value = ["v" * 30]
    n.other = None
    original = Node.__dict__["value"]
    counting = Counting(original)
    Node.value = counting
    try:
        attrs = size_sections([n])["classes"]["Node"]["attrs"]
        assert counting.reads == 0
        assert attrs["value"]["bytes"] == gs(n.__class__.__dict__["value"].wrapped.__get__(n)) + gs("v" * 30)
    finally:
        Node.value = original


def test_fast_slot_reader_agrees_with_descriptor_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    objs = []
    for i in range(50):
        o = Owner()
        o.items = [f"item{i}"] * (i % 3)
        if i % 2:
            o.meta = {"i": f"m{i}"}
        if i % 5:
            o.name = None if i % 7 == 0 else f"name{i}"
        objs.append(o)
    fast = size_sections(objs)
    monkeypatch.setattr(sizing._FastSlots, "build", classmethod(lambda cls, *a: None))
    slow = size_sections(objs)
    assert fast["classes"] == slow["classes"]


def test_value_key_runs_no_user_code() -> None:
    Spy.calls.clear()
    assert value_key((1, "a", (2.0, None))) == (1, "a", (2.0, None))
    assert value_key([Spy()]) is sizing._UNKEYABLE
    assert value_key({"a": [1]}) == value_key({"a": [1]})
    assert value_key([1]) != value_key((1,))
    assert Spy.calls == []


def test_real_scons_executor_is_not_triggered(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import SCons.Builder
    import SCons.Environment
    import SCons.Executor
    from pympler import asizeof

    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    for cls in (SCons.Executor.TSList, SCons.Executor.TSObject):
        orig = cls.__getattr__

        def spy(self, attr, _orig=orig):
            calls.append(attr)
            return _orig(self, attr)

        monkeypatch.setattr(cls, "__getattr__", spy)
    cat = SCons.Builder.Builder(action="cat $SOURCES > $TARGET")
    env = SCons.Environment.Environment(tools=[], BUILDERS={"Cat": cat})
    target = env.Cat("out.txt", ["a.txt", "b.txt"])[0]
    executor = target.get_executor()
    executor.get_lvars()  # creates the lazy TSList/TSObject substitution helpers
    nodes = [target] + list(target.sources)
    sec = size_sections(nodes + [executor])  # no boundary: the walk goes through the executor
    assert calls == []
    assert sec["classes"]["Executor"]["attrs"]["lvars"]["bytes"] > 0
    assert size_of(executor) > 0 and calls == []
    # the point of all this: pympler's asizeof does run that code
    asizeof.asizeof(executor)
    assert calls, "asizeof no longer triggers TSList.__getattr__; the test above proves less than it claims"


class Work:
    __slots__ = ("name", "parts", "index", "flags")


def test_accuracy_against_tracemalloc() -> None:
    """Per-class totals agree with what the allocator saw for the same workload (within 10%)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        objs = [None] * 2000
        for i in range(2000):
            w = Work()
            w.name = f"/some/dir/file_{i:06d}.c"
            w.parts = [f"part{i}-{j}" for j in range(4)]
            w.index = {f"k{i}-{j}": (i * 1000 + j, float(j) + 0.5) for j in range(3)}
            w.flags = set() if i % 2 else {f"flag{i}"}
            objs[i] = w
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    seen_by_allocator = after - before - sys.getsizeof(objs)
    sec = size_sections(objs)
    ours = sec["classes"]["Work"]["total"]
    assert abs(ours - seen_by_allocator) <= 0.10 * seen_by_allocator, (ours, seen_by_allocator)


def _scons_fs(tmp_path, n: int):
    import SCons.Node.FS

    fs = SCons.Node.FS.FS(str(tmp_path))
    files = [fs.File(f"d{i // 50}/f{i}.c") for i in range(n)]
    for f in files[:10]:
        f.get_abspath()  # fills _memo / path caches on a few
    return fs, files


def test_real_scons_nodes(tmp_path) -> None:
    import SCons.Environment
    import SCons.Executor
    import SCons.Node.FS

    fs, files = _scons_fs(tmp_path, 300)
    dirs = list({id(f.dir): f.dir for f in files}.values())
    sec = size_sections(files + dirs, boundary=(SCons.Environment.Base, SCons.Executor.Executor, SCons.Node.FS.FS))
    file_cls = sec["classes"]["File"]
    assert file_cls["count"] == 300
    for attr in ("_memo", "waiting_parents", "waiting_s_e", "name", "dir"):
        assert attr in file_cls["attrs"], attr
    wp = file_cls["attrs"]["waiting_parents"]
    assert wp["empty"] == 300 and wp["empty_bytes"] == 300 * gs(set())
    assert file_cls["attrs"]["dir"]["bytes"] == 0  # a reference to another node
    assert file_cls["total"] > file_cls["shallow"] > 0
    assert sec["objects"] == len(files) + len(dirs)


def test_size_of_single_object() -> None:
    v = ["a" * 10, ["b" * 20]]
    assert size_of(v) == gs(v) + gs(v[0]) + gs(v[1]) + gs(v[1][0])
    env = Env()
    assert size_of([env], boundary=(Env,)) == gs([env])
    assert size_of(env, boundary=(Env,)) > 10 * 1000  # asked explicitly: sized even though a boundary type


@pytest.mark.parametrize("use_c", [True, False], ids=["C counter", "Python counter"])
def test_sizing_sees_through_the_access_counters_without_counting(use_c: bool) -> None:
    """dagprof.access may put its counter in a subclass dict over a base's slot; sizing reads underneath
    (with the C counter, and with the pure-Python one the README promises without a compiler)."""
    from dagprof import access
    from dagprof.access import AccessRecorder

    if use_c and access._CCounter is None:
        pytest.skip("C counter not built (or DAGPROF_NO_C set)")

    class Base:
        __slots__ = ("name", "deps")

    class Child(Base):
        __slots__ = ("extra",)

    objs = []
    for i in range(5):
        c = Child()
        c.name, c.deps, c.extra = f"n{i}", [f"d{i}"], None
        objs.append(c)
    plain = size_sections(objs)
    rec = AccessRecorder(use_c=use_c)
    rec.instrument(Child, ["name", "deps", "extra"])
    try:
        assert rec.fast is use_c
        counted = size_sections(objs)
        rows = [r for r in rec.rows() if r.reads or r.writes or r.deletes]
    finally:
        rec.restore()
    assert counted["classes"] == plain["classes"]
    assert set(counted["classes"]["Child"]["attrs"]) == {"name", "deps", "extra"}
    assert rows == []


class Named:
    __slots__ = ("a", "b", "__dict__")


def _same_name_twin() -> type:
    class Named:  # noqa: F811 - a second class with the same __name__: both count under "Named"
        __slots__ = ("b", "c")

    return Named


class PySized(list):
    def __sizeof__(self) -> int:  # user code: never run, the C-level size is used
        raise AssertionError("ran")


def _mixed_graph() -> list:
    """Owners whose values exercise every rule of the walk: sharing, single references, dict keys that
    are not all str, split instance dicts, Python __sizeof__, empty containers, boundaries, dups."""
    twin = _same_name_twin()
    env = Env()
    shared = ["shared" * 5, (1, 2.5, "x" * 30)]
    owners: list = []
    for i in range(60):
        o = Named()
        o.a = [shared, {i: "int-key", (i, "t"): [f"v{i}"]}, PySized([f"p{i}"])] if i % 3 else shared
        if i % 2:
            o.b = set() if i % 4 == 1 else frozenset({f"f{i % 5}"})
        o.__dict__["extra"] = {"k": env, "n": [None, f"e{i % 7}"]}
        if i % 5 == 0:
            o.__dict__["a"] = "a dict key named like a slot"
        t = twin()
        t.b = f"twin{i % 4}"
        t.c = o if i % 2 else [o, "".join(["lone"] * 5)]
        owners += [o, t]
    return owners


@pytest.mark.parametrize("dup", [True, False], ids=["dup stats", "no dup stats"])
def test_c_and_python_walks_give_the_same_sections(walk: str, dup: bool) -> None:
    """The C walk and the Python one: the same numbers, attribute by attribute."""
    if walk != "C walk":
        pytest.skip("compares both walks: runs once, under the C one")
    owners = _mixed_graph()
    c = size_sections(owners, boundary=(Env,), dup_stats=dup, use_c=True)
    py = size_sections(owners, boundary=(Env,), dup_stats=dup, use_c=False)
    for sec in (c, py):
        sec.pop("elapsed_s")
        sec.pop("self_bytes")
    assert c == py
    assert list(c["classes"]["Named"]["attrs"]) == list(py["classes"]["Named"]["attrs"])  # same order too
    assert c["classes"]["Named"]["count"] == 120


def test_c_and_python_walks_agree_on_real_scons_nodes(walk: str, tmp_path) -> None:
    import SCons.Environment
    import SCons.Executor
    import SCons.Node.FS

    if walk != "C walk":
        pytest.skip("compares both walks: runs once, under the C one")
    fs, files = _scons_fs(tmp_path, 300)
    dirs = list({id(f.dir): f.dir for f in files}.values())
    boundary = (SCons.Environment.Base, SCons.Executor.Executor, SCons.Node.FS.FS)
    c = size_sections(files + dirs, boundary=boundary, use_c=True)
    py = size_sections(files + dirs, boundary=boundary, use_c=False)
    assert c["classes"] == py["classes"]


def test_c_walk_memory_is_a_bitmap(walk: str) -> None:
    """The C walk's seen set costs 8 KiB per MiB of address space touched, not ~60 bytes an object."""
    if walk != "C walk":
        pytest.skip("the C walk's own table")
    objs = [[f"{i}-{j}" for j in range(3)] for i in range(20000)]
    sizer = sizing.Sizer(use_c=True)
    sizer.claim(objs)
    for o in objs:
        sizer.seen.add(id(o[0]))
    assert id(objs[5]) in sizer.seen and id(objs[5][0]) in sizer.seen and id(objs[5][1]) not in sizer.seen
    walker = sizer.seen
    assert len(walker) == 40000 + len(sizing._IMMORTAL_IDS)
    assert walker.nbytes <= walker.regions * 8192 + 64 * 1024
    copy = walker.copy()
    copy.add(id(objs[5][1]))
    assert id(objs[5][1]) in copy and id(objs[5][1]) not in walker and len(copy) == len(walker) + 1


def test_referents_already_claimed_are_not_stacked_and_the_numbers_stay(walk: str) -> None:
    """A table of every owner (as SCons' lookup dict on its root Dir): the owners are claimed, so the C walk
    never puts them on its stack (only the keys); both walks give the same bytes as counted by hand."""
    owners = [Owner() for _ in range(5000)]
    table = {f"/src/file{i}.c": o for i, o in enumerate(owners)}
    for i, o in enumerate(owners):
        o.name = f"n{i}"
    owners[0].items = table
    sec = size_sections(owners)
    attrs = sec["classes"]["Owner"]["attrs"]
    assert attrs["items"]["bytes"] == gs(table) + sum(map(gs, table))  # the dict and its keys, no owner
    assert sec["classes"]["Owner"]["total"] == 5000 * gs(owners[0]) + attrs["items"]["bytes"] + attrs["name"]["bytes"]
    if walk == "C walk":
        sizer = sizing.Sizer(use_c=True)
        sizer.claim(owners)
        assert sizer.exclusive(table) == attrs["items"]["bytes"]
        assert 5000 <= sizer.seen.stack_peak < 5100  # the keys: not the 10000 entries the dict's traversal lists


def test_c_keyset_has_set_membership(walk: str) -> None:
    """The C path's KeySet: the membership of a Python set (hash, then identity or ==), TypeError when unhashable."""
    if walk != "C walk":
        pytest.skip("the C walk's own table")
    ks, ref = sizing._KeySet(), set()
    values = [1, 1.0, True, "a", "".join(["a"]), (1, "a"), frozenset({2}), None, 2**70, -0.0, 0, b"x", (1.0, "a")]
    values += [f"v{i}" for i in range(300)] + [(i, f"t{i}") for i in range(300)]
    for v in values:
        assert (v in ks) == (v in ref), v
        ks.add(v)
        ref.add(v)
    assert len(ks) == len(ref) and all(v in ks for v in ref) and ("absent" in ks) is False
    with pytest.raises(TypeError):
        ks.add([1])
    with pytest.raises(TypeError):
        [1] in ks  # noqa: B015
    assert sys.getsizeof(ks) < sys.getsizeof(ref)


def test_c_slot_sizing_refuses_an_object_of_another_type(walk: str) -> None:
    """Slots are read at fixed offsets: the C accumulator refuses an object that is not of the members' types."""
    if walk != "C walk":
        pytest.skip("the C accumulator itself")

    class Slotted:
        __slots__ = ("a", "b")

    class Other:
        __slots__ = ("x",)

    acc = sizing._SlotAcc((Slotted.__dict__["a"], Slotted.__dict__["b"]), None)
    walker = sizing.Sizer(use_c=True).seen
    ok = Slotted()
    ok.a, ok.b = [1, 2], "x"
    walker.size_slots(ok, acc, repr, object())
    assert acc.rows()[0][0] == 1 and acc.rows()[1][0] == 1
    with pytest.raises(TypeError):
        walker.size_slots(Other(), acc, repr, object())

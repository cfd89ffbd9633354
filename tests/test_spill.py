"""Spill guards on small classes, with real stores: values leave memory and come back equal."""

import os

import pytest

from dagstore import spill as spill_mod
from dagstore.backends import LMDBStore, MemoryStore
from dagstore.codec import Codec
from dagstore.policy import Candidates, PolicyError, choose, parse_spill
from dagstore.spill import EMPTY_LIST, EMPTY_SET, SPILLED, Marker, Spiller


class Node:
    __slots__ = ("name", "kids", "parents", "info", "includes", "handle", "__weakref__")

    def __init__(self, name):
        self.name = name
        self.kids = []
        self.parents = set()
        self.info = None
        self.includes = None
        self.handle = None


class Other(Node):
    __slots__ = ()


@pytest.fixture(params=["memory", "lmdb", "lmdb-python-guard"])
def store(request, tmp_path):
    if request.param == "memory":
        s = MemoryStore()
    else:
        s = LMDBStore(str(tmp_path / "store"))
    request.node.use_c = request.param != "lmdb-python-guard"
    s.test_use_c = request.node.use_c  # make_spiller(store) honours the parameter in every test
    yield s
    s.close()


def make_spiller(store, use_c=None, **kw):
    if use_c is None:
        use_c = getattr(store, "test_use_c", True)
    registry = {}

    def key(o):
        if isinstance(o, Node):
            registry[o.name] = o
            return o.name
        return None

    codec = Codec(resolve_node=registry.__getitem__, node_key=key)
    sp = Spiller(store, codec, use_c=use_c, **kw)
    return sp, registry


def raw(cls, obj, name):
    return cls.__dict__[name].raw(obj)


def test_spill_and_reload_roundtrip(store, request):
    sp, reg = make_spiller(store, use_c=request.node.use_c)
    try:
        sp.guard(Node, spill=("info", "kids"), collapse=("parents",))
        a, b, c = Node("a"), Node("b"), Node("c")
        a.kids = [b, c]
        a.info = {"sig": "abc", "sizes": (1, 2), "tags": frozenset({"x"})}
        for n in (a, b, c):
            reg[n.name] = n
        assert sp.spill([a, b, c]) > 0
        assert type(raw(Node, a, "info")) is Marker and raw(Node, a, "kids").kind == "spilled"
        assert raw(Node, a, "parents") is EMPTY_SET and raw(Node, b, "kids") is EMPTY_LIST
        sp.flush()
        kids = a.kids
        assert kids[0] is b and kids[1] is c  # node references resolve to the same objects
        assert a.info == {"sig": "abc", "sizes": (1, 2), "tags": frozenset({"x"})}
        assert type(a.info["sizes"]) is tuple
        assert raw(Node, a, "info") is not SPILLED  # reloaded values stay resident
        assert b.parents == set() and isinstance(b.parents, set)
        b.parents.add(a)  # a reloaded container is the live one
        assert raw(Node, b, "parents") == {a}
        assert sp.stats.reloads == 2 and sp.stats.spilled_attrs == 2
        assert sp.stats.collapsed >= 3
    finally:
        sp.restore()


def test_reload_before_flush_uses_pending(store):
    sp, reg = make_spiller(store)
    try:
        sp.guard(Node, spill=("info",))
        a = Node("a")
        a.info = [1, 2, 3]
        sp.spill([a])
        assert len(store) == 0 if hasattr(store, "__len__") else True
        assert a.info == [1, 2, 3]
    finally:
        sp.restore()


def test_refused_values_stay_in_memory(store):
    sp, reg = make_spiller(store)
    try:
        sp.guard(Node, spill=("handle",))
        a = Node("a")
        fh = open(os.devnull)
        a.handle = fh
        sp.spill([a])
        assert raw(Node, a, "handle") is fh
        assert sp.stats.refused == 1 and sp.stats.spilled_attrs == 0
        fh.close()
    finally:
        sp.restore()


def test_write_after_spill_replaces_value(store):
    sp, reg = make_spiller(store)
    try:
        sp.guard(Node, spill=("info",))
        a = Node("a")
        a.info = "old"
        sp.spill([a])
        sp.flush()
        a.info = "new"
        assert a.info == "new" and sp.stats.reloads == 0
    finally:
        sp.restore()


def test_subclass_and_unset_slot_behaviour(store):
    sp, reg = make_spiller(store)
    try:
        sp.guard(Other, spill=("info",))
        o = Other("o")
        o.info = (1, "x")
        sp.spill([o])
        assert o.info == (1, "x")
        del o.info
        with pytest.raises(AttributeError):
            o.info
        assert not hasattr(o, "info")
    finally:
        sp.restore()


def test_restore_is_exact(store):
    before = dict(Node.__dict__)
    sp, reg = make_spiller(store)
    sp.guard(Node, spill=("info",), collapse=("parents",))
    a = Node("a")
    a.info = [1]
    sp.spill([a])
    sp.reload_all([a])
    sp.restore()
    assert dict(Node.__dict__) == before
    assert a.info == [1] and a.parents == set()


def test_reuse_across_builds_with_stamps(tmp_path):
    path = str(tmp_path / "store")
    stamps = {"a": b"1", "b": b"1"}

    def run(expect_hits):
        store = LMDBStore(path)
        sp, reg = make_spiller(store, stable_key=lambda o: o.name, stamp=lambda o: stamps[o.name])
        try:
            sp.guard(Node, reuse=("includes",))
            a, b = Node("a"), Node("b")
            got = (a.includes, b.includes)  # None, unless reused
            if got[0] is None:
                a.includes = ["x.h", "y.h"]
            if got[1] is None:
                b.includes = ["z.h"]
            sp.record([a, b], ("includes",))  # reuse writes the values for the next build, keeps them
            assert (a.includes, b.includes) == (["x.h", "y.h"], ["z.h"])
            sp.spill([a, b])
            sp.flush()
            return got, sp.stats
        finally:
            sp.restore()
            store.close()

    got, st = run(0)
    assert got == (None, None) and st.reuse_hits == 0
    got, st = run(2)
    assert got == (["x.h", "y.h"], ["z.h"]) and st.reuse_hits == 2
    stamps["a"] = b"2"  # "a" was edited: never reuse its old value
    got, st = run(1)
    assert got == (None, ["z.h"]) and st.reuse_hits == 1 and st.reuse_stale == 1


def test_store_failure_keeps_values_in_memory(tmp_path):
    class Broken(MemoryStore):
        def put_many(self, items):
            raise OSError(28, "No space left on device")

    sp, reg = make_spiller(Broken())
    try:
        sp.guard(Node, spill=("info",))
        nodes = [Node(f"n{i}") for i in range(10)]
        for i, n in enumerate(nodes):
            n.info = {"i": i}
        sp.spill(nodes)
        sp.flush()
        assert sp.stats.stopped and "No space" in sp.stats.stopped
        assert [n.info for n in nodes] == [{"i": i} for i in range(10)]  # nothing lost
        assert sp.spill(nodes) == 0  # spilling stopped
    finally:
        sp.restore()


def test_marker_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(SPILLED)
    assert isinstance(SPILLED, Marker)


def _guard_trace(use_c: bool) -> list:
    """The same operations on one guard kind; everything observable, in order."""
    out: list = []

    def note(label, fn):
        try:
            v = fn()
            out.append((label, "ok", type(v).__name__, v if not isinstance(v, Marker) else "Marker"))
        except Exception as e:  # the exception type and message are behaviour too
            out.append((label, type(e).__name__, str(e)))

    sp, _reg = make_spiller(MemoryStore(), use_c=use_c, stable_key=lambda o: o.name, stamp=lambda o: b"1")
    try:
        sp.guard(Node, spill=("info", "handle"), collapse=("kids", "parents"), reuse=("includes",))
        a, b, c = Node("a"), Node("b"), Other("c")
        a.info, b.info, c.info = [1, (2, 3)], {"k": {4}}, None
        a.handle = b  # a node reference
        out.append(
            (
                "guard kind",
                type(Node.__dict__["info"]).__name__.replace("_CGuard", "G").replace("Guard", "G").replace("_Py", ""),
            )
        )
        note("spill", lambda: sp.spill([a, b, c]))
        note("raw a.info after spill", lambda: type(raw(Node, a, "info")).__name__)
        note("raw a.kids (collapsed)", lambda: raw(Node, a, "kids") is EMPTY_LIST)
        note("raw a.parents (collapsed)", lambda: raw(Node, a, "parents") is EMPTY_SET)
        note("flush", lambda: sp.flush())
        note("a.info", lambda: a.info)
        note("a.handle is b", lambda: a.handle is b)
        note("b.info", lambda: b.info)
        note("c.info", lambda: c.info)
        note("a.kids", lambda: a.kids)
        note("a.kids append", lambda: a.kids.append(1))
        note("a.kids again", lambda: a.kids)
        note("a.parents", lambda: a.parents)
        note("set after spill", lambda: setattr(b, "info", "new"))
        note("b.info new", lambda: b.info)
        note("del a.info", lambda: delattr(a, "info"))
        note("a.info deleted", lambda: a.info)
        note("del a.info twice", lambda: delattr(a, "info"))
        note("a.includes (reuse miss)", lambda: a.includes)
        note("spill again", lambda: sp.spill([a, b, c]))
        note("b.info after second spill", lambda: b.info)
        note("class attr is guard", lambda: Node.info is Node.__dict__["info"])
        st = sp.stats
        out.append(
            ("stats", st.spilled_attrs, st.reloads, st.collapsed, st.collapsed_reloads, st.reuse_misses, st.refused)
        )
        sp.reload_all([a, b, c])
    finally:
        sp.restore()
    out.append(("restored", "info" in Node.__dict__, a.__class__.__dict__.get("kids") is not None))
    return out


def test_python_guard_matches_c_guard():
    """The C guard and its Python twin, on the same operations: identical observable behaviour."""
    if spill_mod._CGuard is None:
        pytest.skip("C guard not built (or DAGPROF_NO_C set)")
    c_trace, py_trace = _guard_trace(True), _guard_trace(False)
    assert c_trace[0] == ("guard kind", "G") and py_trace[0] == ("guard kind", "G")
    assert len(c_trace) > 20
    for c_step, py_step in zip(c_trace, py_trace):
        assert c_step == py_step
    assert len(c_trace) == len(py_trace)


CANDS = Candidates(
    spill={"File": ("includes", "binfo")},
    collapse={"File": ("waiting_parents",)},
    reuse={"File": ("includes",)},
    default_cold={"File": ("includes",)},
    all_attrs={"File": ("includes", "binfo", "waiting_parents", "ninfo")},
    late_phases=("build",),
)


def test_policy_parse_and_choose():
    assert parse_spill("File.includes,File.binfo", CANDS) == {"File": ("includes", "binfo")}
    for bad, msg in (
        ("Filex.includes", "unknown class"),
        ("File.nope", "no attribute"),
        ("File", "Class.attribute"),
        (",", "empty list"),
        ("File.ninfo", "not safe to spill"),
    ):
        with pytest.raises(PolicyError, match=msg):
            parse_spill(bad, CANDS)
    p = choose("auto", CANDS, None)
    assert p.spill == {"File": ("includes",)} and p.reuse == {"File": ("includes",)}
    from dagprof.profile import AccessRow

    rows = [
        AccessRow("File", "includes", "build", 10, 10, 0),
        AccessRow("File", "binfo", "build", 500, 10, 0),
        AccessRow("File", "binfo", "read", 0, 0, 0),
    ]
    p = choose("auto", CANDS, rows)
    assert p.spill == {"File": ("includes",)}  # binfo is read 50x per write: hot
    assert choose("none", CANDS).spill == {}
    assert choose("File.binfo", CANDS).spill_spec() == "File.binfo"


def test_policy_learns_from_reload_rates():
    from dagprof.profile import AccessRow

    cands = Candidates(
        spill={"File": ("includes", "binfo", "implicit")},
        collapse={},
        reuse={},
        default_cold={},
        all_attrs={"File": ("includes", "binfo", "implicit")},
        late_phases=("build",),
    )
    rows = [AccessRow("File", "includes", "build", 10, 10, 0), AccessRow("File", "implicit", "build", 90, 10, 0)]
    assert choose("auto", cands, rows).spill == {"File": ("includes",)}
    # last build: implicit was spilled 100 times and never reloaded -> cold; includes reloaded 90% -> hot
    p = choose("auto", cands, rows, {"File.implicit": [100, 0], "File.includes": [100, 90]})
    assert p.spill == {"File": ("implicit",)}
    assert "reload rates" in p.source


def test_a_bug_in_the_store_is_not_reported_as_stopped_spilling():
    """Only the store's own errors stop spilling; any other exception surfaces, and the values stay readable."""

    class Buggy(MemoryStore):
        def put_many(self, items):
            raise TypeError("a bug, not a full disk")

    sp, reg = make_spiller(Buggy())
    try:
        sp.guard(Node, spill=("info",))
        nodes = [Node(f"n{i}") for i in range(4)]
        for i, n in enumerate(nodes):
            n.info = {"i": i}
        sp.spill(nodes)
        with pytest.raises(TypeError):
            sp.flush()
        assert sp.stats.stopped is None and sp.active
        assert [n.info for n in nodes] == [{"i": i} for i in range(4)]  # still pending: nothing lost
    finally:
        sp.restore()


def test_reuse_read_errors_are_counted_and_reported():
    from dagstore.backends import StoreDamaged
    from dagstore.spill import has_problem, summary_line

    class Unreadable(MemoryStore):
        def get(self, key):
            raise StoreDamaged("page checksum")

    sp, reg = make_spiller(Unreadable(), stable_key=lambda o: o.name, stamp=lambda o: b"1")
    try:
        sp.guard(Node, reuse=("includes",))
        a = Node("a")
        assert a.includes is None  # the value is recomputed, as without a store
        sec = sp.section("memory", "/x")
        assert sec["errors"] == {"reuse_read": 1} and has_problem(sec)
        assert "1 reuse_read errors" in summary_line(sec)
    finally:
        sp.restore()


def test_reuse_bookkeeping_is_bounded_and_forgotten_at_safe_points(tmp_path):
    """_tried_reuse/_reused_value (keyed by id) were never pruned: one entry per object ever read."""
    store = LMDBStore(str(tmp_path / "store"))
    sp, _reg = make_spiller(store, stable_key=lambda o: o.name, stamp=lambda o: b"1")
    try:
        sp.guard(Node, reuse=("includes",))
        sp.reuse_memory = 8
        done = [Node(f"d{i}") for i in range(20)]
        for n in done:
            assert n.includes is None
            n.includes = [n.name + ".h"]
        assert sp.record(done, ("includes",)) == 20
        sp.spill(done)
        assert sp.stats.spilled_attrs == 0  # recorded, not spilled
        sp.flush()
        own = sp.own_memory()
        assert own["tried_reuse"] == 0 and own["reused_values"] == 0  # safe point reached: forgotten
        sources = [Node(f"d{i}") for i in range(20)]  # read, reused, never spilled
        assert [n.includes for n in sources] == [[f"d{i}.h"] for i in range(20)]
        own = sp.own_memory()
        assert own["tried_reuse"] <= 8 and own["reused_values"] <= 8
        assert own["bytes"] > 0 and sp.section("lmdb", None)["own_memory"]["tried_reuse"] <= 8
        sp.spill(sources)
        assert sp.stats.reuse_hits == 20
    finally:
        sp.reload_all(done + sources)
        sp.restore()
        store.close()


def test_summary_line_words_bytes_as_every_dagprof_figure():
    """The store's one line uses the one byte formatter (binary units, as the reports), not decimal MB."""
    from dagstore.spill import summary_line

    sec = {
        "backend": "lmdb",
        "path": "/p",
        "spilled_attrs": 3,
        "spilled_bytes": 3 * 2**20 // 2,
        "collapsed": 0,
        "reloads": 1,
        "reuse_hits": 0,
        "refused": 0,
    }
    assert summary_line(sec) == (
        "dagstore: lmdb store at /p: spilled 3 values (1.5 MiB), collapsed 0 empty "
        "containers, 1 reloads, 0 reused from the previous build, 0 refused"
    )

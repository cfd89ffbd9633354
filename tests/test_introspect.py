"""The facade the adapter calls: every section, plain data, own cost visible, hooks undone, nothing kept alive."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest

from dagprof import introspect
from dagprof.introspect import Introspector, counts_section
from dagprof.profile import Profile

SECTIONS = {"sizes", "counts", "lifetimes", "monitor", "snapshots", "cycles", "detail"}


class Env:
    def __init__(self) -> None:
        self.vars = {f"V{i}": str(i) * 50 for i in range(50)}


class Item:
    __slots__ = ("name", "deps", "waiting", "env", "cache", "__weakref__")

    def __init__(self, i: int, env: Env) -> None:
        self.name = f"item{i}"
        self.deps = []
        self.waiting = set()
        self.env = env
        self.cache = {"k": f"v{i}"}


class Temp:
    __slots__ = ("x",)

    def __init__(self) -> None:
        self.x = [0] * 10


def test_sections_shapes_and_round_trip() -> None:
    env = Env()
    insp = Introspector([Item, Temp], boundary=(Env,), detail=["Item"], detail_n=3, interval_s=0.01)
    before = {k: Item.__dict__.get(k) for k in ("__init__", "__del__")}
    insp.start()
    try:
        insp.mark("read SConscripts")
        items = [Item(i, env) for i in range(200)]
        temps = [Temp() for _ in range(50)]  # no __weakref__: death is seen by the __del__ hook
        del temps
        gc.collect()
        insp.mark("evaluate/build")
        sec = insp.finish()
    finally:
        insp.restore()
    assert {k: Item.__dict__.get(k) for k in ("__init__", "__del__")} == before
    assert "__del__" not in Temp.__dict__ and "__init__" in Temp.__dict__
    assert SECTIONS <= set(sec)
    assert Profile.loads(Profile(sections=sec).dumps()).sections == sec  # msgpack-able plain data

    item = sec["sizes"]["classes"]["Item"]
    assert item["count"] == 200 and sec["sizes"]["boundary"] == ["Env"]
    assert item["attrs"]["env"]["bytes"] == 0
    assert item["attrs"]["waiting"]["empty"] == 200
    assert sec["sizes"]["self_bytes"] > 0

    assert sec["counts"]["Item"] == {
        "now": 200,
        "peak": 200,
        "created": 200,
        "morphed_in": 0,
        "morphed_out": 0,
        "avg_bytes": item["total"] // 200,
        "total_bytes": item["total"],
    }
    assert sec["counts"]["Temp"]["created"] == 50 and sec["counts"]["Temp"]["now"] == 0
    assert sec["lifetimes"]["Temp"]["freed"] == 50

    mon = sec["monitor"]
    assert [m[1] for m in mon["marks"]] == ["read SConscripts", "evaluate/build"]
    assert mon["cost"]["samples"] == len(mon["samples"]) > 0
    assert mon["cost"]["self_bytes"] == mon["cost"]["monitor_bytes"] + mon["cost"]["tracker_bytes"] > 0
    assert [s["label"] for s in sec["snapshots"]] == ["read SConscripts", "evaluate/build", "finish"]
    assert sec["snapshots"][1]["counts"]["Item"] == 200 and sec["snapshots"][1]["rss"] > 0

    rows = sec["detail"]["Item"]
    assert len(rows) == 3
    assert rows[0]["attrs"]["name"]["repr"].startswith("'item") and rows[0]["attrs"]["env"]["repr"] == "<Env>"
    assert rows[0]["attrs"]["waiting"] == {"type": "set", "bytes": sys.getsizeof(set()), "repr": "set()"}
    del items


def test_no_instance_kept_alive() -> None:
    insp = Introspector([Item], interval_s=0.01)
    insp.start()
    try:
        env = Env()
        it = Item(1, env)
        ref = weakref.ref(it)
        insp.mark("build")
        del it
        gc.collect()
        assert ref() is None
        sec = insp.finish()
    finally:
        insp.restore()
    assert sec["counts"]["Item"]["now"] == 0 and sec["lifetimes"]["Item"]["freed"] == 1


def test_finish_over_given_objects_and_counts_helper() -> None:
    insp = Introspector([Item], interval_s=0.05)
    insp.start()
    try:
        env = Env()
        items = [Item(i, env) for i in range(10)]
        sec = insp.finish(objects=items[:4])
    finally:
        insp.restore()
    assert sec["sizes"]["objects"] == 4
    assert sec["counts"]["Item"]["now"] == 4 and sec["counts"]["Item"]["created"] == 10
    assert counts_section({}, {}, {"classes": {}}) == {}


def test_finish_reads_the_tracker_then_releases_its_records_before_sizing(monkeypatch) -> None:
    """The tracker's part of the profile (counts, lifetimes, its own bytes) is read before the sizing, then its
    per-instance records are released, so the sizing reuses their memory instead of adding to the peak."""
    insp = Introspector([Item], interval_s=0.05)
    seen = {}
    real = introspect.size_sections

    def sizing(*a, **kw):
        seen["born"] = dict(insp.tracker._born)
        return real(*a, **kw)

    monkeypatch.setattr(introspect, "size_sections", sizing)
    insp.start()
    try:
        env = Env()
        items = [Item(i, env) for i in range(50)]
        sec = insp.finish()
    finally:
        insp.restore()
    assert seen == {"born": {}} and insp.tracker._born == {}
    assert sec["counts"]["Item"]["now"] == 50 and sec["counts"]["Item"]["created"] == 50
    lt = sec["lifetimes"]["Item"]
    assert lt["alive"] == 50 and lt["alive_max_s"] > 0  # the ages were taken before the release
    assert sec["monitor"]["cost"]["tracker_bytes"] > 0 and sec["sizes"]["classes"]["Item"]["count"] == 50
    del items


def test_bad_class_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="is not a class"):
        Introspector(["File"])  # type: ignore[list-item]


def test_real_scons_fs_nodes(tmp_path) -> None:
    import SCons.Environment
    import SCons.Executor
    import SCons.Node.FS

    classes = [SCons.Node.FS.Entry, SCons.Node.FS.File, SCons.Node.FS.Dir]
    before = {c: {k: c.__dict__.get(k) for k in ("__init__", "__del__")} for c in classes}
    insp = Introspector(
        classes,
        boundary=(SCons.Environment.Base, SCons.Executor.Executor, SCons.Node.FS.FS),
        detail=["File"],
        detail_n=2,
        interval_s=0.01,
    )
    insp.start()
    try:
        fs = SCons.Node.FS.FS(str(tmp_path))
        insp.mark("read SConscripts")
        files = [fs.File(f"sub{i // 40}/f{i}.c") for i in range(300)]
        entries = [fs.Entry(f"e{i}") for i in range(5)]
        entries[0].disambiguate()  # morph Entry -> File/Dir, as SCons does
        insp.mark("evaluate/build")
        sec = insp.finish()
    finally:
        insp.restore()
    assert {c: {k: c.__dict__.get(k) for k in ("__init__", "__del__")} for c in classes} == before
    f = sec["sizes"]["classes"]["File"]
    assert f["count"] >= 300
    assert {"_memo", "waiting_parents", "waiting_s_e"} <= set(f["attrs"])
    assert sec["counts"]["File"]["created"] >= 300 and sec["counts"]["Entry"]["created"] == 5
    assert sec["detail"]["File"][0]["attrs"]["dir"]["repr"] == "<Dir>"
    Profile.loads(Profile(sections=sec).dumps())
    del files, entries


class Holder:
    __slots__ = ("early", "late")

    def __init__(self, shared: list, first: bool) -> None:
        if first:
            self.early = shared
        else:
            self.late = shared


def _sizes_after(collect_between: bool) -> dict:
    """Two owners sharing one list, created first/second; a collection in between puts the first in an
    older generation, so the gc lists name the second first."""
    was = gc.isenabled()
    gc.disable()
    insp = Introspector([Holder], tracker=True, cycles=False, monitor=False, sizes=True)
    insp.start()
    try:
        shared = [f"shared-{i}" for i in range(20)]
        first = Holder(shared, True)
        if collect_between:
            gc.collect()
        second = Holder(shared, False)
        del shared
        gc_order = [o for o in gc.get_objects() if type(o) is Holder]
        sizes = insp.finish()["sizes"]
    finally:
        insp.restore()
        if was:
            gc.enable()
    assert {id(first), id(second)} == set(map(id, gc_order))
    return {"sizes": sizes["classes"], "gc_first": gc_order[0] is first}


def test_shared_bytes_go_to_the_first_created_owner_whatever_the_gc_order() -> None:
    """Sizes do not depend on when automatic collections ran (the gc lists' order): owners are sized in
    creation order, so the shared list is charged to the first Holder (its `early`) either way."""
    a, b = _sizes_after(False), _sizes_after(True)
    assert a["gc_first"] != b["gc_first"]  # the two runs really list the owners in different orders
    assert a["sizes"] == b["sizes"]
    attrs = a["sizes"]["Holder"]["attrs"]
    assert attrs["early"]["bytes"] > 0 and attrs["late"]["bytes"] == 0

"""Tracker and monitor: counts without keeping instances alive, exact restore, monitor stops."""

from __future__ import annotations

import gc
import random
import threading
import time

import pytest

from dagprof import tracker
from dagprof.rss import read_rss
from dagprof.tracker import Monitor, Tracker


@pytest.fixture(autouse=True, params=["C births", "Python births"])
def births(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the birth records in C (dagprof._fastbirths) and in a dict."""
    if request.param == "C births":
        if tracker._BirthMap is None:
            pytest.skip("C birth records not built (or DAGPROF_NO_C set)")
    else:
        monkeypatch.setattr(tracker, "_BirthMap", None)
    return request.param


class Slotted:
    """No __weakref__ slot, like SCons nodes: death is seen through an installed __del__."""

    __slots__ = ("v",)

    def __init__(self, v: int = 0) -> None:
        self.v = v


class Weak:
    def __init__(self) -> None:
        self.data = [1, 2, 3]


class NoInit:
    __slots__ = ("x",)


class WithDel:
    __slots__ = ("log",)
    deleted: list[int] = []

    def __init__(self) -> None:
        self.log = 1

    def __del__(self) -> None:
        WithDel.deleted.append(1)


class Morph:
    __slots__ = ("a",)

    def __init__(self) -> None:
        self.a = 1


class Morphed(Morph):
    __slots__ = ()


def _own(cls: type) -> dict:
    return {k: cls.__dict__.get(k, "absent") for k in ("__init__", "__del__")}


def test_instances_are_freed_and_counted() -> None:
    tr = Tracker([Slotted, Weak])
    tr.install()
    try:
        probe = Weak()
        import weakref

        ref = weakref.ref(probe)
        objs = [Slotted(i) for i in range(20)] + [Weak() for _ in range(5)]
        assert tr.counts()["Slotted"] == {
            "created": 20,
            "freed": 0,
            "alive": 20,
            "peak": 20,
            "morphed_in": 0,
            "morphed_out": 0,
        }
        del objs, probe
        gc.collect()
        assert ref() is None, "the tracker kept an instance alive"
        c = tr.counts()
        assert c["Slotted"] == {"created": 20, "freed": 20, "alive": 0, "peak": 20, "morphed_in": 0, "morphed_out": 0}
        assert c["Weak"] == {"created": 6, "freed": 6, "alive": 0, "peak": 6, "morphed_in": 0, "morphed_out": 0}
        life = tr.lifetimes()["Slotted"]
        assert life["freed"] == 20 and 0 < life["mean_s"] <= life["max_s"] and life["p50_s"] > 0
        assert tr.live_objects() == []
    finally:
        tr.restore()


def test_slotted_instance_is_not_kept_alive_by_gc_scan() -> None:
    tr = Tracker([Slotted])
    tr.install()
    try:
        s = Slotted(1)
        assert tr.live_objects() == [s]
        sid = id(s)
        del s
        gc.collect()
        assert all(id(o) != sid for o in tr.live_objects())
        assert tr.counts()["Slotted"]["freed"] == 1
    finally:
        tr.restore()


def test_hooks_restored_exactly() -> None:
    classes = [Slotted, Weak, NoInit, WithDel, Morph, Morphed]
    before = {c: _own(c) for c in classes}
    tr = Tracker(classes)
    tr.install()
    assert Slotted.__dict__["__init__"] is not before[Slotted]["__init__"]
    assert "__del__" in Slotted.__dict__ and "__del__" not in Weak.__dict__  # weakrefs suffice there
    tr.restore()
    assert {c: _own(c) for c in classes} == before
    n = NoInit()  # plain construction still works after restore
    assert type(n) is NoInit


def test_existing_del_is_chained_and_init_args_pass_through() -> None:
    WithDel.deleted.clear()
    tr = Tracker([WithDel, NoInit, Slotted])
    tr.install()
    try:
        w = WithDel()
        del w
        gc.collect()
        assert WithDel.deleted == [1]
        assert tr.counts()["WithDel"]["freed"] == 1
        n = NoInit()  # class without its own __init__: object.__init__ still accepts the call
        assert tr.counts()["NoInit"]["created"] == 1
        s = Slotted(v=7)
        assert s.v == 7
        del n, s
    finally:
        tr.restore()


def test_a_morph_moves_the_instance_to_its_new_class() -> None:
    """Entry -> File: the new class counts it as created (morphed_in), the old one as morphed_out."""
    tr = Tracker([Morph, Morphed])
    tr.install()
    try:
        m = Morph()
        m.__class__ = Morphed  # what SCons does to Entry nodes
        assert tr.scan_counts() == {"Morphed": 1}
        assert tr.counts()["Morph"]["alive"] == 1  # during the run: still under its creation class
        k = Morph()
        k.__class__ = Morphed
        assert tr.reconcile([m, k]) == 2 and tr.reconcile([m, k]) == 0  # seen at the end, once
        del m
        gc.collect()
        c = tr.counts()
        assert c["Morph"] == {"created": 2, "freed": 0, "alive": 0, "peak": 2, "morphed_in": 0, "morphed_out": 2}
        assert c["Morphed"] == {"created": 2, "freed": 1, "alive": 1, "peak": 2, "morphed_in": 2, "morphed_out": 0}
        del k
        gc.collect()
        assert tr.counts()["Morphed"]["freed"] == 2
        j = Morph()
        j.__class__ = Morphed
        del j  # a morph seen only at death
        gc.collect()
        c = tr.counts()
        assert c["Morph"]["morphed_out"] == 3 and c["Morphed"]["freed"] == 3 and c["Morphed"]["alive"] == 0
        for cls in ("Morph", "Morphed"):
            lt = tr.lifetimes()[cls]
            assert lt["created"] - lt["morphed_out"] - lt["freed"] == lt["alive"]
    finally:
        tr.restore()


def test_monitor_samples_marks_and_stops() -> None:
    calls = []

    def extra() -> dict:
        calls.append(1)
        return {"Slotted": 3}

    m = Monitor(0.01, extra=extra).start()
    time.sleep(0.15)
    m.mark("build")
    m.stop()
    assert not m.running
    assert not any(t.name == "dagprof-monitor" for t in threading.enumerate())
    sec = m.section()
    n = len(sec["samples"])
    assert n > 0 and sec["cost"]["samples"] == n
    t_rel, rss, anon, file_, counts = sec["samples"][0]
    assert rss > 0 and counts == {"Slotted": 3}
    assert sec["marks"][0][1] == "build"
    assert sec["cost"]["cpu_s"] > 0 and sec["cost"]["self_bytes"] > 0
    time.sleep(0.05)
    assert len(m.samples) == n  # really stopped


def test_read_rss_anon_and_file() -> None:
    rss, anon, file_ = read_rss()
    assert rss > 0
    if anon >= 0:
        assert 0 < anon <= rss and file_ >= 0


def test_lifetimes_show_the_age_of_instances_still_alive() -> None:
    clock = [100.0]
    tr = Tracker([Slotted], clock=lambda: clock[0])
    tr.install()
    try:
        old = [Slotted(i) for i in range(3)]
        clock[0] = 110.0
        young = Slotted(9)
        gone = Slotted(8)
        clock[0] = 112.0
        del gone
        gc.collect()
        clock[0] = 120.0
        lt = tr.lifetimes()["Slotted"]
        assert lt["alive"] == 4 and lt["freed"] == 1 and lt["max_s"] == 2.0
        assert lt["alive_max_s"] == 20.0 and lt["alive_p50_s"] == 20.0
        assert lt["alive_mean_s"] == (3 * 20.0 + 10.0) / 4
        assert old and young
    finally:
        tr.restore()


def test_release_forgets_the_birth_records_but_keeps_the_counts() -> None:
    """release() (the introspector calls it once it has read the tracker, before sizing) frees the per-instance
    records; the counts stay, a death afterwards is ignored, and a new birth starts new records."""
    tr = Tracker([Slotted, Weak])
    tr.install()
    try:
        objs = [Slotted(i) for i in range(30)]
        weak = [Weak() for _ in range(3)]
        before = tr.counts()
        assert tr.self_bytes() > 0 and len(tr._born["Slotted"]) == 30 and len(tr._refs) == 3
        tr.release()
        assert tr._born == {} and tr._refs == {} and tr.counts() == before
        assert tr.lifetimes()["Slotted"]["alive_max_s"] == 0.0  # no ages of live instances any more
        del objs[:10], weak
        gc.collect()
        assert tr.counts() == before  # deaths after the release are not counted (nor an error)
        late = Slotted(99)
        c = tr.counts()["Slotted"]
        assert c["created"] == 31 and c["alive"] == 31 and len(tr._born["Slotted"]) == 1
        assert late and objs
    finally:
        tr.restore()


def test_instances_of_lists_what_a_full_gc_scan_lists_in_the_same_order() -> None:
    """gcscan.instances_of (gc.get_referrers of the classes) == filtering gc.get_objects(), order included."""
    import gc

    from dagprof.gcscan import instances_of, subclasses

    class Base:
        __slots__ = ("x",)

    class Derived(Base):
        __slots__ = ()

    class WithDict:
        pass

    objs = [Base(), Derived(), WithDict(), Base(), {"not": Base}]
    objs[0].x = [Derived]  # refers to the class without being an instance
    wanted = subclasses(Base) | {WithDict}
    assert wanted == {Base, Derived, WithDict}
    expected = [o for o in gc.get_objects() if type(o) in wanted]
    got = instances_of(wanted)
    assert [id(o) for o in got] == [id(o) for o in expected] and len(got) == 4
    # not Python classes: their instances need not refer to them, so the full scan is used
    assert [id(o) for o in instances_of({dict})] == [id(o) for o in gc.get_objects() if type(o) is dict]


def test_c_birth_map_behaves_as_a_dict(births: str) -> None:
    """BirthMap against a dict under random inserts, lookups and deletions (deletion shifts entries back)."""
    if births != "C births":
        pytest.skip("the C table itself")
    m, ref = tracker._BirthMap(), {}
    rng = random.Random(1)
    objs = [object() for _ in range(3000)]
    for step in range(20000):
        oid = id(rng.choice(objs))
        op = rng.random()
        if op < 0.5:
            m[oid] = ref[oid] = float(step)
        elif op < 0.8:
            assert m.pop(oid, None) == ref.pop(oid, None)
        else:
            assert (oid in m) == (oid in ref)
            if oid in ref:
                assert m[oid] == ref[oid]
        assert len(m) == len(ref)
    assert sorted(m.values()) == sorted(ref.values())
    for oid in list(ref):
        del m[oid]
    assert len(m) == 0 and m.values() == [] and 12345 not in m
    with pytest.raises(KeyError):
        m.pop(id(objs[0]))


def test_c_birth_map_converts_the_value_before_it_looks_the_key_up(births: str) -> None:
    """A value whose __float__ changes the map (it grows and moves every entry) still lands where it belongs."""
    if births != "C births":
        pytest.skip("the C table itself")
    m = tracker._BirthMap()
    objs = [object() for _ in range(64)]
    m[id(objs[0])] = 1.0

    class Sneaky:
        def __float__(self) -> float:
            for k, o in enumerate(objs[1:], start=2):  # enough inserts to grow the table
                m[id(o)] = float(k)
            return 99.0

    m[id(objs[0])] = Sneaky()
    assert m[id(objs[0])] == 99.0 and len(m) == 64
    assert sorted(m.values()) == sorted([99.0] + [float(k) for k in range(2, 65)])

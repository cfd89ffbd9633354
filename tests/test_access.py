"""Exact access counts, inheritance, phases, restore, and unchanged behaviour of instrumented classes."""

import pickle

import pytest

from dagprof import access
from dagprof.access import AccessRecorder


@pytest.fixture(params=["c", "python"])
def rec(request):
    if request.param == "c" and access._CCounter is None:
        pytest.skip("C extension not built")
    r = AccessRecorder(use_c=request.param == "c")
    yield r
    r.restore()


class Slotted:
    __slots__ = ("a", "b", "c")

    def __init__(self):
        self.a = 1
        self.b = [1, 2]


class SlottedChild(Slotted):
    __slots__ = ("d",)


class Plain:
    cls_default = 7

    def __init__(self):
        self.x = 1

    @property
    def prop(self):
        return self.x * 2

    @prop.setter
    def prop(self, v):
        self.x = v // 2


class WithGetattr:
    def __getattr__(self, name):
        return f"lazy-{name}"


def test_exact_counts_slotted(rec):
    rec.instrument(Slotted)
    o = Slotted()  # writes a, b
    for _ in range(5):
        o.a
    o.b.append(3)  # one read of b
    o.c = 3
    del o.c
    assert rec.count(Slotted, "a") == (5, 1, 0)
    assert rec.count(Slotted, "b") == (1, 1, 0)
    assert rec.count(Slotted, "c") == (0, 1, 1)


def test_unset_slot_still_attribute_error(rec):
    rec.instrument(Slotted)
    o = Slotted()
    with pytest.raises(AttributeError):
        o.c
    assert not hasattr(o, "c")
    assert getattr(o, "c", "dflt") == "dflt"
    with pytest.raises(AttributeError):
        del o.c
    assert rec.count(Slotted, "c")[0] == 3


def test_dict_attributes_and_class_default(rec):
    rec.instrument(Plain, ["x", "cls_default", "missing"])
    o = Plain()
    assert o.x == 1 and o.x == 1
    assert o.cls_default == 7  # falls back to the shadowed class value
    o.cls_default = 8
    assert o.cls_default == 8 and Plain.cls_default == 7
    del o.cls_default
    assert o.cls_default == 7
    assert not hasattr(o, "missing")
    assert rec.count(Plain, "x") == (2, 1, 0)
    assert rec.count(Plain, "cls_default") == (3, 1, 1)
    assert rec.count(Plain, "missing") == (1, 0, 0)


def test_property_wrapped(rec):
    rec.instrument(Plain, ["prop"])
    o = Plain()
    o.prop = 10
    assert o.prop == 10 and o.x == 5
    assert rec.count(Plain, "prop") == (1, 1, 0)


def test_getattr_fallback_unchanged(rec):
    rec.instrument(WithGetattr, ["foo"])
    o = WithGetattr()
    assert o.foo == "lazy-foo"
    assert rec.count(WithGetattr, "foo") == (1, 0, 0)


def test_inheritance_attributed_to_concrete_class(rec):
    rec.instrument(Slotted)
    rec.instrument(SlottedChild)
    p, c = Slotted(), SlottedChild()
    c.a
    c.a
    c.d = 1
    p.a
    assert rec.count(SlottedChild, "a") == (2, 1, 0)
    assert rec.count(Slotted, "a") == (1, 1, 0)
    assert rec.count(SlottedChild, "d") == (0, 1, 0)


def test_phases(rec):
    rec.instrument(Slotted, ["a"])
    o = Slotted()
    rec.set_phase("one")
    o.a
    rec.set_phase("two")
    o.a
    o.a
    assert rec.count(Slotted, "a", "startup") == (0, 1, 0)
    assert rec.count(Slotted, "a", "one") == (1, 0, 0)
    assert rec.count(Slotted, "a", "two") == (2, 0, 0)
    assert rec.phases == ["startup", "one", "two"]


def test_distinct_readers():
    r = AccessRecorder(readers=True)
    try:
        r.instrument(Slotted, ["a"])
        objs = [Slotted() for _ in range(4)]
        for o in objs[:3]:
            o.a
            o.a
        row = [x for x in r.rows() if x.attr == "a" and x.reads][0]
        assert row.reads == 6 and row.instances == 3
    finally:
        r.restore()


def test_restore_is_exact(rec):
    before_s = dict(Slotted.__dict__)
    before_c = dict(SlottedChild.__dict__)
    before_p = dict(Plain.__dict__)
    rec.instrument(Slotted)
    rec.instrument(SlottedChild)
    rec.instrument(Plain, ["x", "cls_default", "prop"])
    assert access.is_counter(Slotted.__dict__["a"])
    rec.restore()
    assert dict(Slotted.__dict__) == before_s
    assert dict(SlottedChild.__dict__) == before_c
    assert dict(Plain.__dict__) == before_p
    o = SlottedChild()
    o.a  # no counting after restore
    assert rec.count(SlottedChild, "a") == (0, 0, 0)


def test_never_read_attributes_reported(rec):
    rec.instrument(Slotted)
    Slotted()
    rows = {(r.cls, r.attr): r for r in rec.rows()}
    assert ("Slotted", "c") in rows and rows[("Slotted", "c")].reads == 0


def test_scons_nodeinfo_pickles_under_instrumentation(rec):
    import SCons.Node.FS as FS

    rec.instrument(FS.FileNodeInfo)
    rec.instrument(FS.FileBuildInfo)
    ni = FS.FileNodeInfo()
    ni.csig, ni.timestamp, ni.size = "abc", 12, 34
    bi = FS.FileBuildInfo()
    bi.bsources = ["a.c"]
    ni2 = pickle.loads(pickle.dumps(ni))
    bi2 = pickle.loads(pickle.dumps(bi))
    assert (ni2.csig, ni2.timestamp, ni2.size) == ("abc", 12, 34)
    assert bi2.bsources == ["a.c"]
    assert rec.count(FS.FileNodeInfo, "csig")[0] >= 1


def test_entry_morph_and_slots_on_scons_nodes(rec):
    import SCons.Node.FS as FS

    for cls in (FS.Base, FS.File, FS.Dir, FS.Entry):
        rec.instrument(cls)
    fs = FS.FS()
    e = fs.Entry("foo.c")
    assert type(e) is FS.Entry
    f = fs.File("foo.c")  # morphs the Entry into a File
    assert f is e and type(f) is FS.File
    f.get_abspath()
    r0 = rec.count(FS.File, "dir")[0]
    f.get_abspath()
    assert rec.count(FS.File, "dir")[0] == r0 + 1 and rec.count(FS.File, "name")[0] >= 2
    assert rec.count(FS.Dir, "entries")[0] > 0


def test_dagprof_no_c_turns_both_fast_paths_off():
    """DAGPROF_NO_C=1 (CI runs a subset with it): the C counter and the C guard are both left unused."""
    import subprocess
    import sys

    from conftest import _env

    code = (
        "import dagstore.spill as s, dagprof.access as a\n"
        "from dagprof.access import AccessRecorder\n"
        "print(s._CGuard is None, s._c_collapse is None, a._CCounter is None, AccessRecorder().fast)\n"
    )
    for value, expect in (("1", "True True True False"), ("", None)):
        env = dict(_env(), DAGPROF_NO_C=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        if expect:
            assert out.stdout.split() == expect.split()

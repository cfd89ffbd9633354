"""Cycle finder: a deliberate cycle of tracked objects is found with its classes and a chain; nothing leaks."""

from __future__ import annotations

import gc
import weakref

from dagprof.cycles import CycleWatch, find_cycles


class Node:
    __slots__ = ("links", "__weakref__")


class Holder:
    pass


def _make_cycle():
    a, b = Node(), Node()
    a.links = {"peer": [b]}
    b.links = {"peer": [a]}
    h = Holder()
    h.me = [h]
    return weakref.ref(a), weakref.ref(h)


def test_deliberate_cycle_is_found_and_freed() -> None:
    was = gc.isenabled()
    gc.disable()  # keep the automatic collector from freeing the cycle before we look
    try:
        flags = gc.get_debug()
        ra, rh = _make_cycle()
        assert ra() is not None
        found = find_cycles([Node, Holder])
    finally:
        if was:
            gc.enable()
    assert found["by_class"] == {"Node": 2, "Holder": 1}
    assert found["unreachable_cycles"] >= 2
    chains = {e["cls"]: e["chain"] for e in found["examples"]}
    assert chains["Node"] == ["Node", "dict", "list", "Node", "dict", "list", "Node"]
    assert chains["Holder"][0] == chains["Holder"][-1] == "Holder" and "list" in chains["Holder"]
    assert found["garbage"] >= 7
    # restored and released
    assert gc.get_debug() == flags
    assert gc.garbage == []
    assert ra() is None and rh() is None


def test_watch_counts_collections_and_restores_callbacks() -> None:
    w = CycleWatch()
    n_callbacks = len(gc.callbacks)
    w.install()
    try:
        for _ in range(3):
            _make_cycle()
            gc.collect(0)
        sec = w.section([Node])
    finally:
        w.restore()
    assert len(gc.callbacks) == n_callbacks
    assert sec["collections"] >= 3 and sec["collected"] >= 3 * 7
    assert sec["by_generation"][0][0] >= 3
    assert sec["checkpoints"] == 1 and sec["by_class"] == {}  # already freed by the collections above
    assert gc.garbage == []


def test_existing_garbage_is_preserved() -> None:
    sentinel = object()
    gc.garbage.append(sentinel)
    try:
        find_cycles([])
        assert gc.garbage == [sentinel]
    finally:
        gc.garbage.remove(sentinel)


class Lone:
    pass


def test_unfreed_check_leaves_the_cycles_to_the_next_collection() -> None:
    """free=False (the end-of-run check): found as with free=True, no reference kept, and the next full
    collection frees them (they are not parked anywhere)."""
    was = gc.isenabled()
    gc.disable()
    try:
        a = Lone()
        a.me = [a]
        r = weakref.ref(a)
        del a
        found = find_cycles([Lone], free=False)
        assert found["by_class"] == {"Lone": 1} and found["garbage"] >= 2
        assert gc.garbage == [] and r() is None  # weak references cleared by the check's collection
        assert sum(type(o) is Lone for o in gc.get_objects()) == 1  # unreachable, not yet freed
        gc.collect()
        assert sum(type(o) is Lone for o in gc.get_objects()) == 0
    finally:
        if was:
            gc.enable()


def test_c_and_python_garbage_index_agree() -> None:
    """The C index of the parked garbage and its Python twin: the same groups, by_class and chains."""
    import pytest

    from dagprof import cycles

    if cycles._GarbageIndex is None:
        pytest.skip("C index not built (or DAGPROF_NO_C set)")
    outside = ["not parked"]
    garbage: list = []
    for k in range(30):  # 30 structures of varied shape, some touching objects outside the garbage
        nodes = [Node() for _ in range(1 + k % 4)]
        for i, n in enumerate(nodes):
            n.links = {"peer": [nodes[(i + 1) % len(nodes)], outside], "self": n if k % 3 == 0 else None}
            garbage += [n, n.links, n.links["peer"]]
        h = Holder()
        h.me = [h, nodes[0]] if k % 2 else [h]
        garbage += [h, h.__dict__, h.me]
    c = cycles._analyse(garbage, {"Node", "Holder"}, 5, 12, use_c=True)
    py = cycles._analyse(garbage, {"Node", "Holder"}, 5, 12, use_c=False)
    assert c == py
    assert c["unreachable_cycles"] == 30 + 15  # a Holder without a Node is a structure of its own
    assert c["by_class"] == {"Node": sum(1 + k % 4 for k in range(30)), "Holder": 30}


def test_c_garbage_index_keeps_its_own_copy_of_the_list() -> None:
    """The C index reads objects by index later: shrinking the caller's list must not make it read past it."""
    import pytest

    from dagprof import cycles

    if cycles._GarbageIndex is None:
        pytest.skip("C index not built (or DAGPROF_NO_C set)")
    a, b = Node(), Node()
    a.links, b.links = {"peer": b}, {"peer": a}
    objs = [a, a.links, b, b.links]
    index = cycles._GarbageIndex(objs)
    expect = [index.edges(i) for i in range(4)]
    objs.clear()
    assert [index.edges(i) for i in range(4)] == expect and expect[0]

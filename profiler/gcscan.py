"""The live instances of given classes, found through the garbage collector without listing the heap."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Any

__all__ = ["instances_of", "subclasses"]

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement (or type())


def instances_of(types: Iterable[type]) -> list[Any]:
    """Every gc-tracked object whose exact type is one of `types`, in gc.get_objects() order.

    Why not filter gc.get_objects(): that lists every tracked object first (3.2 MB for the 410k objects
    of a 5k-file SCons build, allocated at the build's peak). An instance of a Python class refers to
    its class (the collector's traversal visits it), so gc.get_referrers(*types) walks the same
    generation lists in the same order and returns only what refers to them: the instances, plus a few
    others (subclass tuples, class dicts) that the type filter drops. Types that are not Python classes
    need not be referred to by their instances: then the full scan, as before.
    """
    wanted = set(types)
    if not wanted:
        return []
    if all(t.__flags__ & _HEAPTYPE for t in wanted):
        return [o for o in gc.get_referrers(*wanted) if type(o) in wanted]
    return [o for o in gc.get_objects() if type(o) in wanted]


def subclasses(cls: type) -> set[type]:
    """cls and every class derived from it now (instances keep their class alive, so none is missed)."""
    out: set[type] = set()
    todo = [cls]
    while todo:
        c = todo.pop()
        if c not in out:
            out.add(c)
            todo.extend(type.__subclasses__(c))
    return out

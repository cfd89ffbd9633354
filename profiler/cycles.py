"""What the garbage collector does during the run, and which tracked classes sit in reference cycles.

Why: objects in reference cycles outlive their last use until a (possibly gen-2, whole-heap)
collection runs, so cyclic node structures inflate peak RSS and cost collection time. The counts come
from `gc.callbacks`; the cycles themselves from one collection with `gc.DEBUG_SAVEALL`, which parks
the unreachable objects in `gc.garbage` so they can be attributed and traced, after which the flags
are restored and the garbage is released: freed by a second collection, or (the end-of-run check)
left unreferenced for the next full collection, as it was before the check.
"""

from __future__ import annotations

import gc
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

try:  # the C index of the parked garbage; the pure-Python one below gives the same figures (DAGPROF_NO_C=1)
    if os.environ.get("DAGPROF_NO_C", "") not in ("", "0"):
        raise ImportError("DAGPROF_NO_C is set")
    from ._fastcycles import GarbageIndex as _GarbageIndex
except ImportError:
    _GarbageIndex = None

__all__ = ["CycleWatch", "find_cycles"]


class CycleWatch:
    """Counts collections and collected objects per generation while installed."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.collected = [0, 0, 0]
        self.uncollectable = 0
        self.pause_s = 0.0
        self._t = 0.0
        self._ignore = False
        self.installed = False
        self.checkpoints = 0
        self.check_s = 0.0
        self.found_cycles = 0
        self.found_garbage = 0
        self.found_by_class: dict[str, int] = {}
        self.found_examples: list[dict[str, Any]] = []

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if self._ignore:
            return
        if phase == "start":
            self._t = time.perf_counter()
            return
        g = info.get("generation", 2)
        if 0 <= g < 3:
            self.collections[g] += 1
            self.collected[g] += info.get("collected", 0)
        self.uncollectable += info.get("uncollectable", 0)
        if self._t:
            self.pause_s += time.perf_counter() - self._t
            self._t = 0.0

    def install(self) -> None:
        if not self.installed:
            gc.callbacks.append(self._callback)
            self.installed = True

    def restore(self) -> None:
        if self.installed:
            try:
                gc.callbacks.remove(self._callback)
            except ValueError:
                pass
            self.installed = False

    def checkpoint(self, classes: Iterable[type] = (), examples: int = 5, free: bool = True) -> dict[str, Any]:
        """One DEBUG_SAVEALL collection now; its findings add up over checkpoints (e.g. at phase marks)."""
        self._ignore = True
        t0 = time.perf_counter()
        try:
            found = find_cycles(classes, examples=examples, free=free)
        finally:
            self._ignore = False
            self.check_s += time.perf_counter() - t0
        self.checkpoints += 1
        self.found_cycles += found["unreachable_cycles"]
        self.found_garbage += found["garbage"]
        for name, n in found["by_class"].items():
            self.found_by_class[name] = self.found_by_class.get(name, 0) + n
        have = {e["cls"] for e in self.found_examples}
        for e in found["examples"]:
            if e["cls"] not in have and len(self.found_examples) < examples:
                self.found_examples.append(e)
        return found

    def section(self, classes: Iterable[type] = (), examples: int = 5, free: bool = True) -> dict[str, Any]:
        """The "cycles" section: collector counts plus the findings of all checkpoints (a final one now).

        Cycles that automatic collections free between checkpoints show only in the counts. free: see
        find_cycles (the introspector's end-of-run check passes False).
        """
        self.checkpoint(classes, examples, free=free)
        return {
            "collections": sum(self.collections),
            "collected": sum(self.collected),
            "unreachable_cycles": self.found_cycles,
            "by_class": dict(self.found_by_class),
            "examples": list(self.found_examples),
            "garbage": self.found_garbage,
            "by_generation": [[c, n] for c, n in zip(self.collections, self.collected)],
            "uncollectable": self.uncollectable,
            "pause_s": self.pause_s,
            "check_s": self.check_s,
            "checkpoints": self.checkpoints,
        }


def find_cycles(
    classes: Iterable[type] = (), examples: int = 5, max_chain: int = 12, free: bool = True
) -> dict[str, Any]:
    """Collect once with DEBUG_SAVEALL; count garbage, cyclic groups, tracked classes in them, chains.

    Must not leak: gc flags are restored, gc.garbage is cleared and no reference to the garbage
    survives this function. free=True: a second full collection frees the parked cycles now.
    free=False: they are left unreferenced in the oldest generation, as unreachable as they were
    before the check (finalizers run, weak references cleared), and the next full collection frees
    them: what would have happened without the check, for one full collection less (0.2-0.45 s on a
    5k-file SCons build; the introspector's end-of-run check, after which the build ends).
    """
    wanted = {c.__name__ for c in classes}
    old_flags = gc.get_debug()
    old_garbage = list(gc.garbage)
    del gc.garbage[:]
    gc.set_debug(old_flags | gc.DEBUG_SAVEALL)
    try:
        gc.collect()
    finally:
        gc.set_debug(old_flags)
    garbage = list(gc.garbage)
    del gc.garbage[:]
    gc.garbage.extend(old_garbage)
    del old_garbage
    try:
        result = _analyse(garbage, wanted, examples, max_chain)
    finally:
        n = len(garbage)
        del garbage
        if n and free:  # the parked cycles are unreachable again: free them now (nothing parked: nothing to free)
            gc.collect()
    result["garbage"] = n
    return result


def _analyse(
    garbage: list[Any], wanted: set[str], examples: int, max_chain: int, use_c: bool | None = None
) -> dict[str, Any]:
    # The reference edges inside the garbage are read from gc.get_referents when needed, not stored:
    # a list per parked object was the check's largest allocation (28k objects after a 5k-file build).
    # With the C extension the id -> index map is a sorted address array (24 instead of ~100 bytes an
    # object, allocated at the build's peak); both give the same groups and chains.
    if use_c is None:
        use_c = _GarbageIndex is not None
    edges: Callable[[int], list[int]]
    if use_c:
        gi = _GarbageIndex(garbage)
        groups = gi.groups()
        edges = gi.edges
    else:
        groups, edges = _python_index(garbage)
    by_class: dict[str, int] = {}
    firsts: dict[str, int] = {}
    for i, o in enumerate(garbage):
        name = type(o).__name__
        if name in wanted:
            by_class[name] = by_class.get(name, 0) + 1
            firsts.setdefault(name, i)
    chains = []
    for name, start in list(firsts.items())[:examples]:
        path = _cycle_through(start, edges, max_chain)
        if path:
            chains.append({"cls": name, "chain": [type(garbage[i]).__name__ for i in path]})
    return {"unreachable_cycles": groups, "by_class": by_class, "examples": chains}


def _python_index(garbage: list[Any]) -> tuple[int, Callable[[int], list[int]]]:
    """Weakly connected groups of the garbage (distinct unreachable structures) and its edges by index."""
    index = {id(o): i for i, o in enumerate(garbage)}
    parent = list(range(len(garbage)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    get = index.get
    for a, o in enumerate(garbage):
        for r in gc.get_referents(o):
            b = get(id(r))
            if b is not None:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb
    groups = len({find(i) for i in range(len(garbage))})

    def edges(i: int) -> list[int]:
        return [index[id(r)] for r in gc.get_referents(garbage[i]) if id(r) in index]

    return groups, edges


def _cycle_through(start: int, edges: Callable[[int], list[int]], max_chain: int) -> list[int] | None:
    """Shortest reference path start -> ... -> start within the garbage (BFS), or None."""
    prev: dict[int, int] = {}
    q = deque([(start, 0)])
    while q:
        node, depth = q.popleft()
        if depth >= max_chain:
            continue
        for nxt in edges(node):
            if nxt == start:
                path = [start]
                cur = node
                back = []
                while cur != start:
                    back.append(cur)
                    cur = prev[cur]
                path.extend(reversed(back))
                path.append(start)
                return path
            if nxt not in prev:
                prev[nxt] = node
                q.append((nxt, depth + 1))
    return None

"""The one facade a build adapter calls to record memory introspection sections for a Profile.

    insp = Introspector([File, Dir, Entry], boundary=(Environment, Executor), detail=["File"])
    insp.start()
    insp.mark("read SConscripts"); ...; insp.mark("evaluate/build")
    sections = insp.finish()      # sizes, counts, lifetimes, monitor, snapshots, cycles, detail
    insp.restore()                # every class hook undone

Nothing here knows SCons; the adapter passes the classes and the boundary types.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from .cycles import CycleWatch
from .detail import detail_section
from .rss import read_rss
from .sizing import size_sections
from .tracker import Monitor, Tracker

__all__ = ["Introspector", "counts_section"]


def counts_section(tracked: dict[str, dict[str, int]], now: dict[str, int], sizes: dict[str, Any]) -> dict[str, Any]:
    """The size-annotated counts table: instances now/peak/created per class with average and total bytes.

    Everything is by class at the end: `now` is the gc scan at finish, `created` the instances that
    became this class (new ones plus morphs into it, `morphed_in`; the tracker after `reconcile`),
    `morphed_out` those that left it (Entry -> File), bytes from the sizing; see docs/profile-format.md.
    """
    classes = sizes.get("classes", {})
    out: dict[str, Any] = {}
    for name in sorted(set(tracked) | set(now) | set(classes)):
        t = tracked.get(name, {})
        c = classes.get(name, {})
        count = c.get("count", 0)
        total = c.get("total", 0)
        n_now = now.get(name, t.get("alive", count))
        out[name] = {
            "now": n_now,
            "peak": max(t.get("peak", 0), n_now),
            "created": t.get("created", 0),
            "morphed_in": t.get("morphed_in", 0),
            "morphed_out": t.get("morphed_out", 0),
            "avg_bytes": total // count if count else 0,
            "total_bytes": total,
        }
    return out


class Introspector:
    """Tracker + monitor + gc watch + sizing + detail behind start/mark/finish/restore."""

    def __init__(
        self,
        classes: Iterable[type],
        boundary: tuple[type, ...] = (),
        detail: Iterable[str] = (),
        detail_n: int = 5,
        interval_s: float = 0.1,
        cycle_checkpoints: bool = False,
        dup_stats: bool = True,
        tracker: bool = True,
        cycles: bool = True,
        monitor: bool = True,
        sizes: bool = True,
    ) -> None:
        self.classes = list(classes)
        for c in self.classes:
            if not isinstance(c, type):
                raise TypeError(f"introspect: {c!r} is not a class")
        self.boundary = tuple(boundary)
        self.detail = list(detail)
        self.detail_n = int(detail_n)
        self.cycle_checkpoints = cycle_checkpoints
        self.dup_stats = dup_stats  # False: distinct/dup_bytes are -1/0, sizing ~1.6x faster
        # Components that can be switched off one by one (bench/overhead.py --breakdown measures each):
        # tracker = class hooks + the gc-scan snapshots at phase marks, cycles = the gc callback,
        # monitor = the sampling thread, sizes = the sizing walk at the end (dup_stats is part of it).
        self.track = tracker
        self.watch_cycles = cycles
        self.sample = monitor
        self.size = sizes
        self.tracker = Tracker(self.classes)
        self.monitor = Monitor(interval_s, extra=self.tracker.alive_counts)
        self.cycles = CycleWatch()
        self.snapshots: list[dict[str, Any]] = []
        self.started = False
        self.finished: dict[str, Any] | None = None

    def __enter__(self) -> Introspector:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.restore()

    def start(self) -> None:
        """Hook the classes, watch the collector and start sampling."""
        if self.started:
            return
        if self.track:
            self.tracker.install()
        if self.watch_cycles:
            self.cycles.install()
        if self.sample:
            self.monitor.start()
        self.started = True

    def snapshot(self, label: str, scan: bool = True) -> dict[str, Any]:
        """Counts now: per creation class from the hooks, and (scan=True) per current class by gc scan."""
        snap: dict[str, Any] = {
            "label": str(label),
            "t": self.monitor.now(),
            "rss": read_rss()[0],
            "counts": self.tracker.alive_counts(),
        }
        if scan and self.track:
            snap["scan"] = self.tracker.scan_counts()
        self.snapshots.append(snap)
        return snap

    def mark(self, phase: str) -> None:
        """A build phase starts: mark the monitor timeline and take a snapshot."""
        self.monitor.mark(phase)
        self.snapshot(phase)
        if self.cycle_checkpoints:
            self.cycles.checkpoint(self.classes)

    def finish(self, objects: Iterable[object] | None = None) -> dict[str, Any]:
        """Stop sampling and compute every section; sizes cover `objects` or all live tracked instances."""
        if self.finished is not None:
            return self.finished
        t0 = time.perf_counter()
        if self.monitor.running:
            self.monitor.sample()  # an exact last point
        self.monitor.stop()
        self.snapshot("finish")
        owners = list(objects) if objects is not None else self.tracker.live_objects()
        self.tracker.reconcile(owners)  # Entry -> File morphs of the live instances: counts agree with `now`
        if self.track:
            # A shared object is charged to the first owner that reaches it: in creation order that
            # owner is the same in every run. The order the gc lists give depends on when automatic
            # collections ran, i.e. on every allocation before (even an import of dagprof's own).
            owners = self.tracker.creation_order(owners)
        # the tracker's part is read before the sizing, then its per-instance records are released: the
        # sizing's own tables reuse that memory instead of adding to the process's peak (ages of the live
        # instances are therefore taken at the end of the build, not after dagprof's sizing)
        counts = self.tracker.counts()
        lifetimes = self.tracker.lifetimes()
        tracker_bytes = self.tracker.self_bytes()
        self.tracker.release()
        sizes = size_sections(owners, self.boundary, dup_stats=self.dup_stats) if self.size else {}
        detail = detail_section(owners, self.detail, self.detail_n, self.boundary, stop=owners)
        now: dict[str, int] = {}
        for o in owners:
            name = type(o).__name__
            now[name] = now.get(name, 0) + 1
        del owners  # before the cycle collection, so nothing here keeps garbage reachable
        # off: no final collection; on: one (the parked cycles are left for the next full collection)
        cycles = self.cycles.section(self.classes, free=False) if self.watch_cycles else {}
        self.cycles.restore()
        monitor = self.monitor.section()
        monitor["cost"]["monitor_bytes"] = monitor["cost"]["self_bytes"]
        monitor["cost"]["tracker_bytes"] = tracker_bytes
        monitor["cost"]["self_bytes"] += tracker_bytes
        monitor["cost"]["finish_s"] = time.perf_counter() - t0
        self.finished = {
            "sizes": sizes,
            "counts": counts_section(counts, now, sizes),
            "lifetimes": lifetimes,
            "monitor": monitor,
            "snapshots": list(self.snapshots),
            "cycles": cycles,
            "detail": detail,
        }
        return self.finished

    def restore(self) -> None:
        """Undo every class hook and stop every watcher; safe to call more than once."""
        self.monitor.stop()
        self.cycles.restore()
        self.tracker.restore()

"""Cost of the memory introspection: the per-(class, attribute) size breakdown (target, issue 4: 100k
nodes in <= 10 s), the tracker's class hooks, and the background monitor.

    /work/venv/bin/python bench/sizing.py [--nodes 100000] [--no-scons] [--repeat 3]

Sizing runs on synthetic objects shaped like SCons nodes (slotted, many small lists/sets/dicts/strs,
references to each other and to a shared environment) and on a real SCons FS tree of File nodes built
in-process. Times are medians; CPU time is printed next to wall time because this VM is shared.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import fmt_bytes, fmt_ratio, median, print_header, print_table  # noqa: E402

from dagprof.sizing import size_sections  # noqa: E402
from dagprof.tracker import Monitor, Tracker  # noqa: E402


class Env:
    """Stands in for a boundary object (an SCons Environment) shared by all nodes."""

    def __init__(self) -> None:
        self.vars = {f"VAR{i}": f"value {i}" for i in range(200)}


class FakeNode:
    """Slotted like SCons.Node.FS.File: many small containers, strings and references to other nodes."""

    __slots__ = (
        "name",
        "abspath",
        "dir",
        "env",
        "sources",
        "depends",
        "implicit",
        "waiting_parents",
        "waiting_s_e",
        "side_effects",
        "_memo",
        "ninfo",
        "state",
        "ref_count",
        "includes",
        "builder",
        "executor",
        "_tags",
        "cached",
        "precious",
    )

    def __init__(self, i: int, parent: FakeNode | None, env: Env) -> None:
        self.name = f"file{i}.c"
        self.abspath = f"/src/dir{i // 100}/file{i}.c"
        self.dir = parent
        self.env = env
        self.sources = [parent] if parent is not None else []
        self.depends = []
        self.implicit = [f"/usr/include/h{i % 50}.h", f"inc{i % 7}.h"]
        self.waiting_parents = set()
        self.waiting_s_e = set()
        self.side_effects = []
        self._memo = {"get_path": self.abspath, "exists": True, "stat": (0o644, i, 1, 1000, 1000)}
        self.ninfo = {"csig": f"{i:032x}", "timestamp": 1700000000 + i, "size": i * 3}
        self.state = 0
        self.ref_count = i % 3
        self.includes = None
        self.builder = None
        self.executor = None
        self._tags = {}
        self.cached = 0
        self.precious = None


def synthetic(n: int) -> list[FakeNode]:
    env = Env()
    nodes: list[FakeNode] = []
    parent = None
    for i in range(n):
        node = FakeNode(i, parent, env)
        nodes.append(node)
        if i % 100 == 0:
            parent = node
    return nodes


def scons_tree(n: int, root: str) -> tuple[list, tuple]:
    """n File nodes (100 per directory) plus their Dir nodes, and the SCons boundary types."""
    import SCons.Environment
    import SCons.Executor
    import SCons.Node.FS

    fs = SCons.Node.FS.FS(root)
    nodes = [fs.File(f"d{i // 100}/f{i}.c") for i in range(n)]
    for node in nodes:
        node.get_abspath()  # fill the path caches a build would
    boundary = (SCons.Environment.Base, SCons.Executor.Executor, SCons.Node.FS.FS)
    all_nodes = nodes + list({id(x.dir): x.dir for x in nodes}.values())
    return all_nodes, boundary


def time_sizing(objects: list, boundary: tuple, repeat: int, dup: bool = True) -> tuple[float, float, dict]:
    walls, cpus = [], []
    section: dict = {}
    for _ in range(repeat):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        section = size_sections(objects, boundary, dup_stats=dup)
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)
    return median(walls), median(cpus), section


def bench_sizing(n: int, repeat: int, scons: bool) -> None:
    rows = []
    nodes = synthetic(n)
    base_wall = None
    for dup in (False, True):
        wall, cpu, sec = time_sizing(nodes, (Env,), repeat, dup)
        base_wall = base_wall or wall
        total = sum(c["total"] for c in sec["classes"].values())
        rows.append(
            [
                f"synthetic{' +dup' if dup else ''}",
                len(nodes),
                wall,
                fmt_ratio(wall, base_wall),
                cpu,
                int(len(nodes) / wall),
                fmt_bytes(total),
                fmt_bytes(sec["self_bytes"]),
            ]
        )
    del nodes
    if scons:
        with tempfile.TemporaryDirectory() as tmp:
            objs, boundary = scons_tree(n, tmp)
            for dup in (False, True):
                wall, cpu, sec = time_sizing(objs, boundary, repeat, dup)
                total = sum(c["total"] for c in sec["classes"].values())
                rows.append(
                    [
                        f"SCons File+Dir{' +dup' if dup else ''}",
                        len(objs),
                        wall,
                        fmt_ratio(wall, base_wall),
                        cpu,
                        int(len(objs) / wall),
                        fmt_bytes(total),
                        fmt_bytes(sec["self_bytes"]),
                    ]
                )
            del objs
    print_table(rows, ["variant", "objects", "wall_s", "ratio", "cpu_s", "nodes/s", "sized", "self_bytes"])
    print(
        f"median of {repeat}; '+dup' adds the distinct/dup_bytes statistics (equality keys per value); "
        "target: 100k nodes <= 10 s"
    )


def bench_tracker(n: int, repeat: int) -> None:
    """Creating and dropping n SCons File nodes, with and without the tracker's __init__/__del__ hooks."""
    import SCons.Node.FS

    classes = [SCons.Node.FS.File, SCons.Node.FS.Dir, SCons.Node.FS.Entry]

    def workload() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            gc.collect()
            t = time.perf_counter()
            fs = SCons.Node.FS.FS(tmp)
            nodes = [fs.File(f"d{i // 100}/f{i}.c") for i in range(n)]
            del nodes, fs
            # SCons keeps the last FS (and so every node) alive through these class attributes
            SCons.Node.FS.DirNodeInfo.fs = SCons.Node.FS.FileNodeInfo.fs = None
            gc.collect()
            return time.perf_counter() - t

    plain, hooked, self_bytes = [], [], 0
    for _ in range(repeat):
        plain.append(workload())
        tr = Tracker(classes)
        tr.install()
        try:
            hooked.append(workload())
            self_bytes = max(self_bytes, tr.self_bytes())
            freed = tr.counts()["File"]["freed"]
        finally:
            tr.restore()
    p, h = median(plain), median(hooked)
    print_table(
        [["plain", n, p, fmt_ratio(p, p), "-"], ["tracked", n, h, fmt_ratio(h, p), freed]],
        ["variant", "File nodes", "wall_s", "ratio", "freed seen"],
    )
    print(f"create {n} File nodes in-process, drop them, gc.collect(); median of {repeat} alternated runs")


def bench_monitor(seconds: float) -> None:
    """The monitor thread's own CPU per sample and buffer bytes, at several intervals, while the main thread works."""
    rows = []
    for interval in (0.01, 0.1, 1.0):
        tr_counts = {f"Class{i}": i for i in range(8)}
        m = Monitor(interval, extra=lambda counts=tr_counts: counts).start()  # bound now: stopped in this iteration
        t = time.perf_counter()
        x = 0
        while time.perf_counter() - t < seconds:  # keep the GIL busy like a build would
            x += sum(range(1000))
        m.stop()
        sec = m.section()
        cost = sec["cost"]
        rows.append(
            [
                interval,
                cost["samples"],
                cost["cpu_s"],
                cost["cpu_s"] / max(cost["samples"], 1) * 1e6,
                f"{100 * cost['cpu_s'] / seconds:.2f}%",
                fmt_bytes(cost["self_bytes"]),
                int(cost["self_bytes"] / max(cost["samples"], 1)),
            ]
        )
    print_table(rows, ["interval_s", "samples", "cpu_s", "us/sample", "cpu share", "self_bytes", "bytes/sample"])
    print(
        f"{seconds:.0f} s of busy main thread per interval; "
        "a sample = /proc/self/status RSS + a counts dict of 8 classes"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-scons", action="store_true")
    ap.add_argument("--monitor-seconds", type=float, default=5.0)
    a = ap.parse_args()
    if a.nodes <= 0 or a.repeat <= 0:
        ap.error("--nodes and --repeat must be positive")
    cmd = [sys.executable, "bench/sizing.py"] + sys.argv[1:]
    print_header(f"introspection cost: sizing {a.nodes} nodes, tracker hooks, monitor", cmd)
    print()
    bench_sizing(a.nodes, a.repeat, not a.no_scons)
    print()
    if not a.no_scons:
        bench_tracker(a.nodes, a.repeat)
        print()
    bench_monitor(a.monitor_seconds)


if __name__ == "__main__":
    main()

"""How fast the per-(class, attribute) size breakdown runs, on synthetic SCons-shaped objects and on a
real in-process SCons FS tree. Target (issue 4): 100k nodes in <= 10 s.

    /work/venv/bin/python bench/sizing.py [--nodes 100000] [--no-scons]
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from profiler.sizing import size_sections  # noqa: E402


class Env:
    """Stands in for a boundary object (an SCons Environment) shared by all nodes."""

    def __init__(self) -> None:
        self.vars = {f"VAR{i}": f"value {i}" for i in range(200)}


class FakeNode:
    """Slotted like SCons.Node.FS.File: many small containers, strings and references to other nodes."""

    __slots__ = ("name", "abspath", "dir", "env", "sources", "depends", "implicit", "waiting_parents",
                 "waiting_s_e", "side_effects", "_memo", "ninfo", "state", "ref_count", "includes",
                 "builder", "executor", "_tags", "cached", "precious")

    def __init__(self, i: int, parent: "FakeNode | None", env: Env) -> None:
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
    import SCons.Environment
    import SCons.Executor
    import SCons.Node.FS

    fs = SCons.Node.FS.FS(root)
    nodes = [fs.File(f"d{i // 100}/f{i}.c") for i in range(n)]
    boundary = (SCons.Environment.Base, SCons.Executor.Executor, SCons.Node.FS.FS)
    all_nodes = nodes + list({id(x.dir): x.dir for x in nodes}.values())
    return all_nodes, boundary


def run(label: str, objects: list, boundary: tuple) -> float:
    gc.collect()
    t = time.perf_counter()
    section = size_sections(objects, boundary)
    dt = time.perf_counter() - t
    total = sum(c["total"] for c in section["classes"].values())
    print(f"{label:<28} objects={len(objects):>7}  seconds={dt:6.2f}  nodes/s={len(objects) / dt:>9.0f}  "
          f"bytes={total / 1e6:7.1f} MB  self_bytes={section['self_bytes'] / 1e6:5.1f} MB")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--no-scons", action="store_true")
    a = ap.parse_args()
    print(f"# {' '.join(sys.argv)}")
    print(f"# python {platform.python_version()} on {platform.machine()} {platform.node()}, cpus={os.cpu_count()}")
    nodes = synthetic(a.nodes)
    d1 = run("synthetic FakeNode", nodes, (Env,))
    del nodes
    if not a.no_scons:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            objs, boundary = scons_tree(a.nodes, tmp)
            d2 = run("SCons FS File+Dir", objs, boundary)
        print(f"# SCons/synthetic time ratio: {d2 / d1:.2f}")
    print("# target: 100k nodes <= 10 s")


if __name__ == "__main__":
    main()

"""Cost of access profiling: plain SCons vs `dagprof profile` on the same null build, run alternately.

Why: the counters sit on every node slot read (millions per build); this says what that costs.
Usage: python bench/overhead.py [--files 5000] [--runs 5] [--dir DIR] [--introspect]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import (IMPORT_PATH, alternate, fmt_bytes, median, print_header, print_table, run_measured,
                     scons_command)

from dagprof.synthetic import generate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", help="project directory (default: a temporary one)")
    ap.add_argument("--introspect", action="store_true", help="also size/monitor (default: access counts only)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs for the initial full build")
    a = ap.parse_args()

    root = a.dir or tempfile.mkdtemp(prefix="dagprof-overhead-")
    env = dict(os.environ, PYTHONPATH=IMPORT_PATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if not os.path.exists(os.path.join(root, "SConstruct")):  # an existing project is reused as it is
        generate(root, files=a.files)
    full = run_measured(scons_command("-Q", f"-j{a.jobs}"), cwd=root, env=env)
    if full["exit_code"] != 0:
        print(f"full build failed (exit {full['exit_code']})", file=sys.stderr)
        return 1
    prof_out = os.path.join(root, "overhead.dagprof")
    dagprof = [sys.executable, "-m", "dagprof", "profile", "-o", prof_out]
    if not a.introspect:
        dagprof.append("--no-introspect")
    cmds = {"plain": scons_command("-Q"), "dagprof": [*dagprof, "--", "-Q"]}
    print_header(f"access-profiling overhead, {a.files}-file synthetic project, "
                 f"null build, {a.runs} alternating runs", " | ".join(" ".join(c) for c in cmds.values()))
    results = alternate(a.runs, {k: (lambda c=c: run_measured(c, cwd=root, env=env)) for k, c in cmds.items()})
    for name, runs in results.items():
        bad = [r for r in runs if r["exit_code"] != 0]
        if bad:
            print(f"{name}: exit {bad[0]['exit_code']}", file=sys.stderr)
            return 1
    wall = {k: median(r["wall_s"] for r in v) for k, v in results.items()}
    rss = {k: median(r["peak_rss"] for r in v) for k, v in results.items()}
    rows = [[k, wall[k], fmt_bytes(rss[k]), " ".join(f"{r['wall_s']:.2f}" for r in results[k])] for k in cmds]
    print_table(rows, ["variant", "median wall s", "median peak RSS", "runs (wall s)"])
    print(f"wall ratio dagprof/plain: {wall['dagprof'] / wall['plain']:.3f}")
    print(f"peak RSS ratio dagprof/plain: {rss['dagprof'] / rss['plain']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

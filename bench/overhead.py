"""Cost of access profiling: plain SCons vs `dagprof profile` on the same null build, run alternately.

Why: the counters sit on every node slot read (millions per build); this says what that costs.
Usage: python bench/overhead.py [--files 5000] [--runs 5] [--dir DIR] [--introspect | --breakdown]

--breakdown: plain SCons, the access counters alone (--no-introspect), then the counters plus one
introspection component at a time (tracker hooks, cycle watch, monitor, sizing without and with
duplicate statistics), then the default `dagprof profile`; all alternating, each as a ratio to plain.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import (
    IMPORT_PATH,
    alternate,
    fmt_bytes,
    fmt_ratio,
    median,
    print_header,
    print_table,
    run_measured,
    scons_command,
)

from dagprof.synthetic import generate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", help="project directory (default: a temporary one)")
    ap.add_argument("--introspect", action="store_true", help="also size/monitor (default: access counts only)")
    ap.add_argument("--breakdown", action="store_true", help="one variant per introspection component")
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
    if a.breakdown:
        base = [sys.executable, "-m", "dagprof", "profile", "-o", prof_out]
        off = ["--no-tracker", "--no-cycles", "--no-monitor", "--no-sizes", "--no-dup-stats"]

        def only(*keep: str) -> list[str]:
            return [*base, *[o for o in off if o not in keep], "--", "-Q"]
        cmds = {"plain": scons_command("-Q"),
                "counters": [*base, "--no-introspect", "--", "-Q"],
                "+tracker": only("--no-tracker"),
                "+cycles": only("--no-cycles"),
                "+monitor": only("--no-monitor"),
                "+sizes": only("--no-sizes"),
                "+sizes+dup": only("--no-sizes", "--no-dup-stats"),
                "default": [*base, "--", "-Q"]}
    else:
        cmds = {"plain": scons_command("-Q"), "dagprof": [*dagprof, "--", "-Q"]}
    print_header(f"access-profiling overhead, {a.files}-file synthetic project, "
                 f"null build, {a.runs} alternating runs", " | ".join(" ".join(c) for c in cmds.values()))
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = alternate(a.runs, {k: (lambda c=c: run_measured(c, cwd=root, env=env)) for k, c in cmds.items()})
    for name, runs in results.items():
        bad = [r for r in runs if r["exit_code"] != 0]
        if bad:
            print(f"{name}: exit {bad[0]['exit_code']}", file=sys.stderr)
            return 1
    wall = {k: median(r["wall_s"] for r in v) for k, v in results.items()}
    rss = {k: median(r["peak_rss"] for r in v) for k, v in results.items()}
    cpu = {k: median(r["user_s"] + r["sys_s"] for r in v) for k, v in results.items()}
    rows = [[k, wall[k], fmt_ratio(wall[k], wall["plain"]), fmt_ratio(cpu[k], cpu["plain"]), fmt_bytes(rss[k]),
             fmt_bytes(rss[k] - rss["plain"]), " ".join(f"{r['wall_s']:.2f}" for r in results[k])] for k in cmds]
    print_table(rows, ["variant", "median wall s", "wall/plain", "cpu/plain", "median peak RSS", "RSS - plain",
                       "runs (wall s)"])
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    last = list(cmds)[-1]
    print(f"wall ratio {last}/plain: {wall[last] / wall['plain']:.3f}")
    print(f"peak RSS ratio {last}/plain: {rss[last] / rss['plain']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

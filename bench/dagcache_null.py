"""Null build answered from the DAG cache vs GNU Make, in an already built and confirmed project.

Why: bench/scaling.py measures this once per size inside a 30-minute run; this re-measures just the two
null builds (and optionally the cache with compiled byte code) with more alternated runs, for the
issue 9 ratios. The project must have been built by make and confirmed by `dagprof build` (e.g. one
kept by `bench/scaling.py --keep --dir DIR`); every dagprof run is checked to be answered from the cache.

Usage: python bench/dagcache_null.py DIR/p20000 [--runs 7] [--pycache-prefix DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

from _common import alternate, bench_env, fmt_bytes, median, print_header, print_table, run_measured
from scaling import _expect_cached, _peak, commands


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument(
        "--pycache-prefix",
        help="also measure the cache with byte code compiled into this directory "
        "(PYTHONPYCACHEPREFIX; the checkout has no __pycache__ when "
        "PYTHONDONTWRITEBYTECODE is set, as on this machine)",
    )
    a = ap.parse_args(argv)
    env = bench_env(from_source=True)  # the checkout as it is; --pycache-prefix adds the installed form
    cmds = commands(1)
    variants = {
        "make": lambda: run_measured(cmds["make"], cwd=a.project, env=env, capture=True),
        "dagcache": lambda: run_measured(cmds["dagcache"], cwd=a.project, env=env, capture=True),
    }
    if a.pycache_prefix:
        env_pyc = bench_env(cache_dir=a.pycache_prefix)
        _expect_cached(run_measured(cmds["dagcache"], cwd=a.project, env=env_pyc, capture=True), "byte-code warm-up")
        variants["dagcache (byte code)"] = lambda: run_measured(
            cmds["dagcache"], cwd=a.project, env=env_pyc, capture=True
        )
    print_header(
        f"null build: make vs dagprof build answered from the DAG cache, median of {a.runs} alternated runs",
        " | ".join(" ".join(cmds[k]) for k in ("make", "dagcache")) + f"    (cwd: {a.project})",
    )
    res = alternate(a.runs, variants)
    for name, rs in res.items():
        for r in rs:
            if name.startswith("dagcache"):
                _expect_cached(r, name)
            elif r["exit_code"] != 0 or "Nothing to be done" not in r["output"] and "is up to date" not in r["output"]:
                raise SystemExit(f"dagcache_null: make did work or failed: {r['output'][:200]!r}")
    mk_rss, mk_wall = median(_peak(r) for r in res["make"]), median(r["wall_s"] for r in res["make"])
    rows = []
    for name, rs in res.items():
        rss, wall = median(_peak(r) for r in rs), median(r["wall_s"] for r in rs)
        walls = sorted(r["wall_s"] for r in rs)
        rows.append(
            [
                name,
                fmt_bytes(rss),
                f"{rss / mk_rss:.2f}x",
                round(wall, 3),
                f"{wall / mk_wall:.2f}x",
                f"{walls[0]:.3f}-{walls[-1]:.3f}",
            ]
        )
    print_table(rows, ["variant", "peak RSS", "vs make", "wall s", "vs make", "wall min-max"])
    print(f"load at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak RSS and wall time of null builds as projects grow: GNU Make vs plain SCons vs SCons with the store.

Why: the project's yardstick (issue 5). SCons needs far more memory than Make for the same DAG;
this measures by how much, per node, and whether the node store closes the gap.

For each size N: generate the synthetic project (a library per directory, one program; stand-in
compiler that only writes outputs), full build with Make (non-recursive, -MMD -MP dependency files)
and then with SCons (so each tool's own state exists: .d files, .sconsign), one warm-up store build,
then null builds measured alternately: `make`, `python -m SCons -Q`, `dagprof build --store lmdb`
with the store removed before the run (the store's first build) and with the store kept (second).

Peak RSS: for SCons runs, wait4 ru_maxrss of the build process (bench/_common.run_measured); for make
GNU time's %M (make's own ru_maxrss; the measuring wrapper's ~10 MiB floor is about make's size), or
make's sampled VmHWM when /usr/bin/time is missing.

Usage: python bench/scaling.py [--sizes 1000,2000,5000,10000,20000] [--runs 1] [--dir DIR]
                               [--plot scaling.png] [--json out.json] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from _common import (IMPORT_PATH, alternate, fmt_bytes, machine_description, median, print_header, print_table,
                     run_measured, scons_command)

from dagprof.builds.synthetic import generate

SYSTEMS = ("make", "scons", "scons+store (1st)", "scons+store (2nd)")


TIME = "/usr/bin/time"  # GNU time: make's exact ru_maxrss, spawned by a ~2 MiB process (no floor to speak of)
TIME_TAG = "dagprof-maxrss-kib="


def _peak(r: dict) -> int:
    """make: GNU time's %M (else own sampled VmHWM); SCons: wait4 ru_maxrss (far above the wrapper's floor)."""
    for line in (r.get("output") or "").splitlines():
        if line.startswith(TIME_TAG):
            return int(line[len(TIME_TAG):]) * 1024
    own = r.get("self_peak_rss") or 0
    return own if r["peak_rss"] <= r["floor_rss"] else max(r["peak_rss"], own)


def _check(r: dict, what: str) -> None:
    if r["exit_code"] != 0:
        tail = (r.get("output") or "").strip().splitlines()[-3:]
        raise SystemExit(f"scaling: {what} failed (exit {r['exit_code']}): {' | '.join(tail)}")


def commands(jobs: int) -> dict[str, list[str]]:
    """The measured command lines, printed with the table."""
    dagprof = [sys.executable, "-m", "dagprof", "build", "--store", "lmdb", "--quiet-store", "--", "-Q"]
    return {"make_full": ["make", f"-j{jobs}"], "scons_full": scons_command("-Q", f"-j{jobs}"),
            "make": ([TIME, "-f", TIME_TAG + "%M", "make"] if os.access(TIME, os.X_OK) else ["make"]),
            "scons": scons_command("-Q"), "store": dagprof}


def measure_size(n: int, root: str, runs: int, jobs: int, env: dict, log=print) -> dict:
    """Generate, full-build and measure the null builds of one project size."""
    t0 = time.perf_counter()
    proj = generate(root, files=n)
    gen_s = time.perf_counter() - t0
    cmds = commands(jobs)
    full_make = run_measured(cmds["make_full"], cwd=root, env=env, capture=True)
    _check(full_make, f"make full build at {n}")
    full_scons = run_measured(cmds["scons_full"], cwd=root, env=env, capture=True)
    _check(full_scons, f"SCons full build at {n}")
    q = run_measured(["make", "-q"], cwd=root, env=env)
    if q["exit_code"] != 0:
        raise SystemExit(f"scaling: make -q says the tree is not up to date at {n} after both full builds")
    _check(run_measured(cmds["store"], cwd=root, env=env, capture=True), f"warm-up store build at {n}")
    log(f"  {n} files: generated in {gen_s:.1f} s, full builds make {full_make['wall_s']:.1f} s, "
        f"scons {full_scons['wall_s']:.1f} s (stand-in compiler)", file=sys.stderr)

    def store_first() -> dict:
        shutil.rmtree(os.path.join(root, ".dagstore"), ignore_errors=True)
        return run_measured(cmds["store"], cwd=root, env=env, capture=True)

    variants = {
        "make": lambda: run_measured(cmds["make"], cwd=root, env=env, capture=True),
        "scons": lambda: run_measured(cmds["scons"], cwd=root, env=env, capture=True),
        "scons+store (1st)": store_first,
        "scons+store (2nd)": lambda: run_measured(cmds["store"], cwd=root, env=env, capture=True),
    }
    results = alternate(runs, variants)
    out = {"files": n, "nodes": proj.nodes_estimate, "full_build_s": {"make": full_make["wall_s"],
                                                                       "scons": full_scons["wall_s"]},
           "systems": {}}
    for name, rs in results.items():
        for r in rs:
            _check(r, f"{name} null build at {n}")
        if name == "make" and any("Nothing to be done" not in r["output"] and "is up to date" not in r["output"]
                                  for r in rs):
            raise SystemExit(f"scaling: make's null build at {n} did work: {rs[0]['output'][:200]}")
        out["systems"][name] = {"peak_rss": median(_peak(r) for r in rs), "wall_s": median(r["wall_s"] for r in rs),
                                "runs_peak_rss": [_peak(r) for r in rs], "runs_wall_s": [r["wall_s"] for r in rs]}
    return out


def rows_of(results: list[dict]) -> list[list]:
    """Table rows: one per (size, system), with the ratio to Make and bytes per node."""
    rows = []
    for res in results:
        make = res["systems"]["make"]["peak_rss"]
        for name in SYSTEMS:
            s = res["systems"][name]
            rows.append([res["files"], res["nodes"], name, fmt_bytes(s["peak_rss"]), f"{s['peak_rss'] / make:.2f}x",
                         int(s["peak_rss"] / res["nodes"]), round(s["wall_s"], 2)])
    return rows


HEADERS = ["files", "nodes", "system", "peak RSS", "vs make", "peak B/node", "wall s"]


def markdown(rows: list[list]) -> str:
    """The same table as Markdown, for docs/scaling.md."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---:" if i != 2 else "---" for i in range(len(HEADERS))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |")
    return "\n".join(lines)


def plot(results: list[dict], path: str, title: str) -> None:
    """Peak RSS vs project size, one line per system (PNG; needs the optional matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    xs = [r["files"] for r in results]
    for name, style in zip(SYSTEMS, ("o-", "s-", "^--", "v-")):
        ax.plot(xs, [r["systems"][name]["peak_rss"] / 2**20 for r in results], style, label=name)
    ax.set_xlabel("C files (synthetic project, one library per 50 files)")
    ax.set_ylabel("peak RSS of the null build (MiB)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,2000,5000,10000,20000", help="comma-separated file counts")
    ap.add_argument("--runs", type=int, default=1, help="alternated null-build runs per system (median)")
    ap.add_argument("--dir", help="where the projects go (default: a temporary directory, removed)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="jobs for the full builds")
    ap.add_argument("--plot", help="write a PNG plot of peak RSS vs size here")
    ap.add_argument("--json", help="write all figures as JSON here")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    ap.add_argument("--keep", action="store_true", help="keep the generated projects")
    a = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sizes must be comma-separated integers, not {a.sizes!r}")
    if not sizes or min(sizes) < 1 or a.runs < 1:
        ap.error("--sizes needs positive integers and --runs must be >= 1")
    if shutil.which("make") is None:
        ap.error("GNU make is not on PATH")

    base = a.dir or tempfile.mkdtemp(prefix="dagprof-scaling-")
    os.makedirs(base, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=IMPORT_PATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SCONSFLAGS", None)
    env.pop("MAKEFLAGS", None)
    cmds = commands(a.jobs)
    print_header(f"null-build peak RSS vs project size, median of {a.runs} alternated run(s); "
                 "compiler: stand-in (tools/stubcc writes outputs, compiles nothing)",
                 " | ".join(" ".join(cmds[k]) for k in ("make", "scons", "store")))
    results = []
    try:
        for n in sizes:
            root = os.path.join(base, f"p{n}")
            if os.path.exists(root):
                shutil.rmtree(root)
            results.append(measure_size(n, root, a.runs, a.jobs, env))
            if not a.keep:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if not a.dir and not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    rows = rows_of(results)
    print_table(rows, HEADERS)
    print("full builds (before measuring): " + ", ".join(
        f"{r['files']}: make {r['full_build_s']['make']:.1f} s, scons {r['full_build_s']['scons']:.1f} s" for r in results))
    print("scons+store (1st): the store removed before the run; (2nd): the store kept from the previous store build")
    print("peak B/node: peak RSS / SCons node count (nodes_estimate; the same DAG for all three systems)")
    if a.markdown:
        print()
        print(markdown(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine_description(), "date": time.strftime("%Y-%m-%d"), "runs": a.runs,
                       "commands": {k: " ".join(v) for k, v in cmds.items()}, "results": results}, f, indent=2)
    if a.plot:
        m = machine_description().split(" | ")
        try:
            plot(results, a.plot, f"null build after a full build, stand-in compiler\n{' | '.join(m[:2] + m[4:6])}")
        except ImportError:
            print("no plot: matplotlib is not installed (pip install '.[bench]')", file=sys.stderr)
        else:
            print(f"plot written to {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

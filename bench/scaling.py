"""Peak RSS and wall time of null builds as projects grow: GNU Make vs plain SCons vs SCons with the store.

Why: the project's yardstick (issue 5). SCons needs far more memory than Make for the same DAG;
this measures by how much, per node, and whether the node store closes the gap.

For each size N: generate the synthetic project (a library per directory, one program; stand-in
compiler that only writes outputs), full build with Make (non-recursive, -MMD -MP dependency files)
and then with SCons (so each tool's own state exists: .d files, .sconsign), one warm-up store build,
then null builds measured alternately: `make`, `python -m SCons -Q`, `dagprof build --store lmdb
--dag-cache off` with the store removed before the run (the store's first build) and with the store kept
(second), and `dagprof build` answered from the DAG cache (scons+dagcache; its snapshot is recorded and
confirmed by one dagprof build, which SCons answers itself, before measuring; every measured run must
print "up to date from the DAG cache", else the bench stops). The attribute-store variants use their own
store directory (`.dagstore-attr`), so they never touch the DAG cache's snapshot in `.dagstore`.

Then the one-file edit (a cache miss): one .c file gets a comment line appended and the build is
measured with plain SCons and with `dagprof build` (cache on: it checks the snapshot, finds the change,
runs SCons with the store and records a new snapshot); alternated, the file restored and the tree
rebuilt with dagprof (and the cache checked to answer again) after each, so both start from the same state.
Twice: the same file every run (an edit-compile loop; the snapshot's hot list names the file, so the
miss is found at once), and another file every run, never edited before (found by streaming the nodes).

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

from _common import (
    alternate,
    bench_env,
    bytecode_note,
    fmt_bytes,
    machine_description,
    median,
    print_header,
    print_table,
    run_measured,
    scons_command,
)

from dagprof.synthetic import generate

SYSTEMS = ("make", "scons", "scons+store (1st)", "scons+store (2nd)", "scons+dagcache")
EDITS = ("scons", "dagprof build")
CACHE_LINE = "dagprof: up to date from the DAG cache:"
STORE_LINE = "dagstore: lmdb store at "
ATTR_STORE = ".dagstore-attr"  # the attribute-store variants' own store (and their, disabled, snapshot)
EDIT_MARK = "/* dagprof bench: one-file edit */\n"


TIME = "/usr/bin/time"  # GNU time: make's exact ru_maxrss, spawned by a ~2 MiB process (no floor to speak of)
TIME_TAG = "dagprof-maxrss-kib="


def _peak(r: dict) -> int:
    """make: GNU time's %M (else own sampled VmHWM); SCons: wait4 ru_maxrss (far above the wrapper's floor)."""
    for line in (r.get("output") or "").splitlines():
        if line.startswith(TIME_TAG):
            return int(line[len(TIME_TAG) :]) * 1024
    own = r.get("self_peak_rss") or 0
    return own if r["peak_rss"] <= r["floor_rss"] else max(r["peak_rss"], own)


def _check(r: dict, what: str) -> None:
    if r["exit_code"] != 0:
        tail = (r.get("output") or "").strip().splitlines()[-3:]
        raise SystemExit(f"scaling: {what} failed (exit {r['exit_code']}): {' | '.join(tail)}")


def commands(jobs: int) -> dict[str, list[str]]:
    """The measured command lines, printed with the table."""
    dagprof = [sys.executable, "-m", "dagprof", "build"]
    return {
        "make_full": ["make", f"-j{jobs}"],
        "scons_full": scons_command("-Q", f"-j{jobs}"),
        "make": ([TIME, "-f", TIME_TAG + "%M", "make"] if os.access(TIME, os.X_OK) else ["make"]),
        "scons": scons_command("-Q"),
        "store": dagprof
        + ["--store", "lmdb", "--store-path", ATTR_STORE, "--dag-cache", "off", "--summary", "--", "-Q"],
        "dagcache": dagprof + ["--store", "lmdb", "--summary", "--", "-Q"],
    }


def _answered(r: dict) -> bool:
    return CACHE_LINE in (r.get("output") or "")


def _expect_store(r: dict, what: str) -> None:
    """An attribute-store run: SCons ran with the store (its summary line), never answered by the cache."""
    _check(r, what)
    if _answered(r) or STORE_LINE not in r["output"]:
        raise SystemExit(f"scaling: {what} did not run SCons with the attribute store: {r['output'][-300:]!r}")


def _expect_cached(r: dict, what: str) -> None:
    _check(r, what)
    if not _answered(r):
        raise SystemExit(f"scaling: {what} was not answered from the DAG cache: {r['output'][-400:]!r}")


def _restore(root: str, cmds: dict, env: dict, what: str) -> None:
    """Rebuild with dagprof (SCons runs: the tree changed) and check the cache answers again."""
    r = run_measured(cmds["dagcache"], cwd=root, env=env, capture=True)
    _check(r, f"restoring build after {what}")
    if _answered(r):
        raise SystemExit(f"scaling: the DAG cache answered the build right after {what} (it must rebuild)")
    for _ in range(2):
        r = run_measured(cmds["dagcache"], cwd=root, env=env, capture=True)
        _check(r, f"checking build after {what}")
        if _answered(r):
            return
    raise SystemExit(f"scaling: after {what} and a rebuild, the DAG cache does not answer: {r['output'][-400:]!r}")


def measure_size(n: int, root: str, runs: int, jobs: int, env: dict, log=print, edit: bool = True) -> dict:
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
    _expect_store(run_measured(cmds["store"], cwd=root, env=env, capture=True), f"warm-up store build at {n}")
    # the DAG cache: this build records the snapshot and, SCons finding nothing to do, confirms it
    confirm = run_measured(cmds["dagcache"], cwd=root, env=env, capture=True)
    _check(confirm, f"confirming dagprof build at {n}")
    if _answered(confirm):
        raise SystemExit(f"scaling: the first dagprof build at {n} was answered from a cache that should not exist")
    _expect_cached(run_measured(cmds["dagcache"], cwd=root, env=env, capture=True), f"first cached build at {n}")
    log(
        f"  {n} files: generated in {gen_s:.1f} s, full builds make {full_make['wall_s']:.1f} s, "
        f"scons {full_scons['wall_s']:.1f} s (stand-in compiler)",
        file=sys.stderr,
    )

    def store_first() -> dict:
        shutil.rmtree(os.path.join(root, ATTR_STORE), ignore_errors=True)
        return run_measured(cmds["store"], cwd=root, env=env, capture=True)

    variants = {
        "make": lambda: run_measured(cmds["make"], cwd=root, env=env, capture=True),
        "scons": lambda: run_measured(cmds["scons"], cwd=root, env=env, capture=True),
        "scons+store (1st)": store_first,
        "scons+store (2nd)": lambda: run_measured(cmds["store"], cwd=root, env=env, capture=True),
        "scons+dagcache": lambda: run_measured(cmds["dagcache"], cwd=root, env=env, capture=True),
    }
    results = alternate(runs, variants)
    out = {
        "files": n,
        "nodes": proj.nodes_estimate,
        "full_build_s": {"make": full_make["wall_s"], "scons": full_scons["wall_s"]},
        "full_build_cached_s": {"confirm": confirm["wall_s"]},
        "systems": {},
        "edit": {},
    }
    for name, rs in results.items():
        for r in rs:
            if name.startswith("scons+store"):
                _expect_store(r, f"{name} null build at {n}")
            elif name == "scons+dagcache":
                _expect_cached(r, f"{name} null build at {n}")
            else:
                _check(r, f"{name} null build at {n}")
        if name == "make" and any(
            "Nothing to be done" not in r["output"] and "is up to date" not in r["output"] for r in rs
        ):
            raise SystemExit(f"scaling: make's null build at {n} did work: {rs[0]['output'][:200]}")
        out["systems"][name] = {
            "peak_rss": median(_peak(r) for r in rs),
            "wall_s": median(r["wall_s"] for r in rs),
            "runs_peak_rss": [_peak(r) for r in rs],
            "runs_wall_s": [r["wall_s"] for r in rs],
        }
    if edit:
        out["edit"] = measure_edit(proj, root, runs, cmds, env)
        out["edit_file"] = proj.files[len(proj.files) // 2]
        out["edit_fresh"] = measure_edit(proj, root, runs, cmds, env, fresh=True)
    return out


def measure_edit(proj, root: str, runs: int, cmds: dict, env: dict, fresh: bool = False) -> dict:
    """One .c file edited (a comment line appended), then plain SCons vs `dagprof build` (cache on, a miss).

    fresh=False: the same file every run (an edit-compile loop: the snapshot's hot list names it);
    fresh=True: every run another file of the same directory, none edited before (the miss is found by
    streaming the node records)."""
    middle = len(proj.files) // 2
    fresh_files = iter(proj.files[middle + 1 :])

    def edited(name: str) -> dict:
        path = os.path.join(root, next(fresh_files) if fresh else proj.files[middle])
        with open(path, "rb") as f:
            original = f.read()
        with open(path, "ab") as f:
            f.write(EDIT_MARK.encode())
        try:
            r = run_measured(cmds["scons"] if name == "scons" else cmds["dagcache"], cwd=root, env=env, capture=True)
        finally:
            with open(path, "wb") as f:
                f.write(original)
        _check(r, f"{name} one-file-edit build")
        if _answered(r):
            raise SystemExit(f"scaling: the DAG cache answered the edit build ({r['output'][-300:]!r})")
        if "stubcc" not in r["output"] and ".o" not in r["output"]:
            raise SystemExit(f"scaling: the {name} edit build rebuilt nothing: {r['output'][-300:]!r}")
        _restore(root, cmds, env, f"the {name} edit build")
        return r

    results = alternate(runs, {name: (lambda name=name: edited(name)) for name in EDITS})
    return {
        name: {
            "peak_rss": median(_peak(r) for r in rs),
            "wall_s": median(r["wall_s"] for r in rs),
            "runs_peak_rss": [_peak(r) for r in rs],
            "runs_wall_s": [r["wall_s"] for r in rs],
        }
        for name, rs in results.items()
    }


def rows_of(results: list[dict]) -> list[list]:
    """Table rows: one per (size, system), with the ratio to Make and bytes per node."""
    rows = []
    for res in results:
        make = res["systems"]["make"]["peak_rss"]
        for name in SYSTEMS:
            s = res["systems"][name]
            rows.append(
                [
                    res["files"],
                    res["nodes"],
                    name,
                    fmt_bytes(s["peak_rss"]),
                    f"{s['peak_rss'] / make:.2f}x",
                    int(s["peak_rss"] / res["nodes"]),
                    round(s["wall_s"], 2),
                ]
            )
    return rows


HEADERS = ["files", "nodes", "system", "peak RSS", "vs make", "peak B/node", "wall s"]
HEADERS_CACHE = ["files", "dagcache peak RSS", "vs make", "wall s", "vs make", "vs scons"]
HEADERS_EDIT = ["files", "variant", "peak RSS", "vs scons", "wall s", "vs scons"]


def cache_rows(results: list[dict]) -> list[list]:
    """The DAG-cache null build against make (and plain SCons): the issue's ratios."""
    rows = []
    for res in results:
        s, mk, sc = (res["systems"][k] for k in ("scons+dagcache", "make", "scons"))
        rows.append(
            [
                res["files"],
                fmt_bytes(s["peak_rss"]),
                f"{s['peak_rss'] / mk['peak_rss']:.2f}x",
                round(s["wall_s"], 3),
                f"{s['wall_s'] / mk['wall_s']:.2f}x",
                f"{s['wall_s'] / sc['wall_s']:.3f}x",
            ]
        )
    return rows


def edit_rows(results: list[dict]) -> list[list]:
    """One-file-edit builds: plain SCons vs dagprof build (a DAG-cache miss), the same file and fresh files."""
    rows = []
    for res in results:
        for key, what in (("edit", "same file"), ("edit_fresh", "another file")):
            if not res.get(key):
                continue
            base = res[key]["scons"]
            for name in EDITS:
                e = res[key][name]
                rows.append(
                    [
                        res["files"],
                        f"{name} ({what})",
                        fmt_bytes(e["peak_rss"]),
                        f"{e['peak_rss'] / base['peak_rss']:.3f}x",
                        round(e["wall_s"], 2),
                        f"{e['wall_s'] / base['wall_s']:.3f}x",
                    ]
                )
    return rows


def markdown(rows: list[list], headers: list[str] = HEADERS, text_cols: tuple[int, ...] = (2,)) -> str:
    """The same table as Markdown, for docs/scaling.md."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i in text_cols else "---:" for i in range(len(headers))) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |")
    return "\n".join(lines)


def plot(results: list[dict], path: str, title: str) -> None:
    """Peak RSS vs project size, one line per system (PNG; needs the optional matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, aw) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    xs = [r["files"] for r in results]
    for name, style in zip(SYSTEMS, ("o-", "s-", "^--", "v-", "D-")):
        ax.plot(xs, [r["systems"][name]["peak_rss"] / 2**20 for r in results], style, label=name)
        aw.plot(xs, [r["systems"][name]["wall_s"] for r in results], style, label=name)
    for a, what in ((ax, "peak RSS of the null build (MiB)"), (aw, "wall time of the null build (s, log)")):
        a.set_xlabel("C files (synthetic project, one library per 50 files)")
        a.set_ylabel(what)
        a.grid(True, alpha=0.3)
    aw.set_yscale("log")
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
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
    ap.add_argument("--no-edit", action="store_true", help="skip the one-file-edit builds")
    ap.add_argument("--from-source", action="store_true", help="no cached byte code (see _common.bench_env)")
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
    env = bench_env(from_source=a.from_source)
    cmds = commands(a.jobs)
    print_header(
        f"null-build peak RSS vs project size, median of {a.runs} alternated run(s); "
        "compiler: stand-in (tools/stubcc writes outputs, compiles nothing)",
        " | ".join(" ".join(cmds[k]) for k in ("make", "scons", "store", "dagcache")),
    )
    print(bytecode_note(env))
    results = []
    try:
        for n in sizes:
            root = os.path.join(base, f"p{n}")
            if os.path.exists(root):
                shutil.rmtree(root)
            results.append(measure_size(n, root, a.runs, a.jobs, env, edit=not a.no_edit))
            print(f"  {n} files done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
            if not a.keep:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if not a.dir and not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    rows = rows_of(results)
    print_table(rows, HEADERS)
    print(
        "full builds (before measuring): "
        + ", ".join(
            f"{r['files']}: make {r['full_build_s']['make']:.1f} s, scons {r['full_build_s']['scons']:.1f} s"
            for r in results
        )
    )
    print("scons+store (1st): the store removed before the run; (2nd): the store kept from the previous store build")
    print("scons+dagcache: dagprof build answered from the confirmed DAG snapshot (every run checked for the line)")
    print("peak B/node: peak RSS / SCons node count (nodes_estimate; the same DAG for all systems)")
    print()
    print("# DAG-cache null build (targets: 20k peak <= 0.6x make, wall <= 0.5x make; 5k peak <= 1.3x, wall <= 1.0x)")
    print_table(cache_rows(results), HEADERS_CACHE)
    erows = edit_rows(results)
    if erows:
        print()
        print("# one-file edit (comment appended to one .c file; target dagprof build <= 1.05x plain SCons)")
        print(" | ".join(" ".join(cmds[k]) for k in ("scons", "dagcache")))
        print_table(erows, HEADERS_EDIT)
    print(f"load at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if a.markdown:
        print()
        print(markdown(rows))
        print()
        print(markdown(cache_rows(results), HEADERS_CACHE, ()))
        if erows:
            print()
            print(markdown(erows, HEADERS_EDIT, (1,)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "machine": machine_description(),
                    "date": time.strftime("%Y-%m-%d"),
                    "runs": a.runs,
                    "commands": {k: " ".join(v) for k, v in cmds.items()},
                    "results": results,
                },
                f,
                indent=2,
            )
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

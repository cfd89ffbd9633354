"""`dagprof demo`: the whole story on an embedded synthetic project, in about a minute.

Why: a newcomer should see with one command and no project of their own what dagprof shows and what
it saves. The demo generates a C project (with an equivalent Makefile), builds it with GNU Make and
with SCons, then tells three things, in the terminal and in one HTML page:
  1. where the memory goes: node data by class and the top findings of a profile of the null build;
  2. what the attribute store saves: plain SCons vs `dagprof build --store lmdb --dag-cache off`;
  3. a null build answered from the DAG cache, side by side with plain SCons and GNU Make (peak RSS,
     wall time, ratios), all measured alternately by `dagprof compare`'s machinery.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable

# Sized so that the whole demo takes about a minute and the figures differ clearly: 68 s for 2000 files
# on a 2-core AMD EPYC VM at load 3 (store peak RSS 0.89x, DAG cache 19x faster than plain SCons).
DEFAULT_FILES = 2000
DEFAULT_RUNS = 1
REPORT = "demo-report.html"
PROFILE_REPORT = "demo-profile.html"
TOP_FINDINGS = 5
STORE_KEYS = ("peak_rss", "peak_rss_anon", "node_bytes", "nodes", "bytes_per_node", "wall_s", "spilled_attrs",
              "spilled_bytes", "reloads")
NULL_KEYS = ("peak_rss", "peak_rss_anon", "peak_rss_file", "wall_s")


def register(add: Callable) -> None:
    """The `demo` subparser."""
    p = add("demo", "generate a synthetic project, profile it, and compare plain SCons, the store, the DAG cache and Make")
    p.add_argument("--files", type=int, default=DEFAULT_FILES, help="C files to generate (default: %(default)s)")
    p.add_argument("--dir", metavar="DIR", help="where to generate it (new or empty; default: a temporary directory)")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed runs per variant (default: %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel jobs for the full build (default: %(default)s)")
    p.add_argument("--no-sizes", action="store_true", help="skip the untimed sizing passes (faster)")


def _project_dir(arg: str | None) -> str:
    from .cli import UsageError

    if arg is None:
        return tempfile.mkdtemp(prefix="dagprof-demo-")
    path = os.path.abspath(arg)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UsageError(f"--dir {arg!r} exists and is not an empty directory")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise UsageError(f"--dir {arg!r}: directory {parent!r} does not exist")
    return path


def cmd_demo(args: Any, scons_args: list[str]) -> int:
    """Generate, build, profile, compare, report; exit 0 when every build succeeded."""
    from . import exitcodes
    from .builds.synthetic import generate
    from .cli import UsageError, _console
    from .compare import CompareError, CompareSpec, plain_command, run_measured, default_env, with_progress

    if scons_args:
        raise UsageError("demo takes no SCons arguments after --")
    if args.files < 1:
        raise UsageError(f"--files must be >= 1, not {args.files}")
    if args.runs < 1:
        raise UsageError(f"--runs must be >= 1, not {args.runs}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, not {args.jobs}")
    root = _project_dir(args.dir)
    console = _console()
    err = _console_stderr()
    env = default_env()
    t0 = time.perf_counter()
    with err.status(f"generating a {args.files}-file synthetic C project in {root}"):
        info = generate(root, files=args.files)
    console.print(f"project: {root}: {len(info.files)} C files in {len(info.dirs)} libraries, "
                  f"{len(info.headers)} headers, about {info.nodes_estimate:,} SCons nodes, and an equivalent "
                  "Makefile; compiler: a stand-in that writes outputs (tools/stubcc), so the figures are the "
                  "build tools' own")
    make = shutil.which("make") is not None
    fulls = []
    if make:  # first, so its -MMD dependency files exist and its null build checks headers too
        with err.status(f"full build with GNU Make (-j{args.jobs})"):
            full = run_measured(["make", f"-j{args.jobs}"], cwd=root, env=env)
        if full["exit_code"] != 0:
            print(f"dagprof: the make build failed (exit {full['exit_code']}) in {root}", file=sys.stderr)
            return exitcodes.BUILD_FAILED
        fulls.append(f"GNU Make {full['wall_s']:.1f} s")
    with err.status(f"full build with plain SCons (-j{args.jobs})"):
        full = run_measured(plain_command(["-Q", f"-j{args.jobs}"]), cwd=root, env=env)
    if full["exit_code"] != 0:
        print(f"dagprof: the full build failed (exit {full['exit_code']}) in {root}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    fulls.append(f"plain SCons {full['wall_s']:.1f} s")
    console.print("full build (from clean): " + ", ".join(fulls))

    profile_path = os.path.join(tempfile.mkdtemp(prefix="dagprof-demo-profile-"), "null.dagprof")
    with err.status("1/3 profiling the null build (dagprof profile)"):
        prof = run_measured([sys.executable, "-m", "dagprof", "profile", "-o", profile_path, "--", "-Q"],
                            cwd=root, env=env)
    if prof["exit_code"] != 0:
        print(f"dagprof: profiling the null build failed (exit {prof['exit_code']}) in {root}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    from .profile import load

    profile = load(profile_path)
    shutil.rmtree(os.path.dirname(profile_path), ignore_errors=True)
    memory = memory_story(profile)
    try:
        result = with_progress(CompareSpec(scons_args=["-Q"], runs=args.runs, cwd=root, state="null",
                                           sizes=not args.no_sizes, dagcache=True, make=make),
                               "2-3/3 null builds, alternately")
    except CompareError as e:
        print(f"dagprof: {e}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    total = time.perf_counter() - t0
    show_story(console, memory, result)
    write_demo_html(os.path.join(root, REPORT), info, fulls, memory, result, total, args)
    from .report.html import write_html

    write_html(profile, os.path.join(root, PROFILE_REPORT))
    console.print(f"HTML report: {os.path.join(root, REPORT)} (the whole profile: {PROFILE_REPORT})")
    console.print(f"demo took {total:.0f} s; remove {root} when done")
    return exitcodes.OK


def memory_story(profile: Any) -> dict[str, Any]:
    """Part 1 from a profile: node data by class, the top findings, the process's peak."""
    from .analyze import findings_of
    from .report import tables

    classes = tables.class_sizes(profile)
    return {"classes": classes[:4], "node_bytes": sum(c["total"] for c in classes),
            "nodes": sum(c["count"] for c in classes), "findings": findings_of(profile)[:TOP_FINDINGS],
            "findings_total": len(findings_of(profile))}


def _x(ratio: float | None) -> str:
    """A ratio as 'N x less/faster' prose: 0.25 -> '4.0x less'."""
    if not ratio:
        return "?"
    return f"{1 / ratio:.1f}x less" if ratio < 1 else f"{ratio:.2f}x more"


def headlines(result: dict[str, Any]) -> dict[str, str]:
    """One sentence per comparison part, from the medians (the tables hold the details)."""
    from .report.tables import fmt_bytes

    v = {n: d.get("median") or {} for n, d in result["variants"].items()}
    r = result.get("ratios_by_variant") or {}
    out = {}
    st, pl = v["store"], v["plain"]
    if st.get("node_bytes") and pl.get("node_bytes"):
        store = (f"node data left in memory: {fmt_bytes(pl['node_bytes'])} -> {fmt_bytes(st['node_bytes'])} "
                 f"({_x(r['store'].get('node_bytes'))}); ")
    else:
        store = ""
    out["store"] = store + (f"peak RSS {fmt_bytes(pl['peak_rss'])} -> {fmt_bytes(st['peak_rss'])} "
                            f"({r['store']['peak_rss']:.2f}x), wall {pl['wall_s']:.2f} s -> {st['wall_s']:.2f} s "
                            f"({r['store']['wall_s']:.2f}x)")
    parts = [f"plain SCons {pl['wall_s']:.2f} s, {fmt_bytes(pl['peak_rss'])}"]
    if "dagcache" in v:
        d, rd = v["dagcache"], r["dagcache"]
        answered = result["variants"]["dagcache"].get("answered") or []
        parts.append(f"DAG cache {d['wall_s']:.2f} s, {fmt_bytes(d['peak_rss'])} "
                     f"({1 / rd['wall_s']:.0f}x faster, {rd['peak_rss']:.2f}x the RSS; "
                     f"answered without SCons in {sum(answered)} of {len(answered)} runs)")
    if "make" in v:
        m = v["make"]
        own = (m.get("peak_rss_anon") or 0) + (m.get("peak_rss_file") or 0)
        parts.append(f"GNU Make {m['wall_s']:.2f} s, {fmt_bytes(own)} sampled RSS")
    out["null"] = "; ".join(parts)
    return out


def show_story(console: Any, memory: dict[str, Any], result: dict[str, Any]) -> None:
    """The three parts in the terminal."""
    from rich.table import Table

    from .report.compare import render_compare, subset
    from .report.tables import fmt_bytes, fmt_int

    console.print()
    console.print("[bold]1. where the memory goes[/bold] (profile of the null build, dagprof profile)")
    console.print(f"node data: {fmt_bytes(memory['node_bytes'])} in {fmt_int(memory['nodes'])} objects; "
                  "by class: " + ", ".join(f"{c['cls']} {fmt_bytes(c['total'])}" for c in memory["classes"]))
    t = Table(box=None, header_style="bold cyan", title=f"top {len(memory['findings'])} of "
              f"{memory['findings_total']} findings (estimated bytes saved)", title_justify="left")
    for col in ("saves", "kind", "where", "advice"):
        t.add_column(col, justify="right" if col == "saves" else "left", no_wrap=col != "advice")
    for f in memory["findings"]:
        where = "all candidates" if f["cls"] == "*" else f["cls"] + (f".{f['attr']}" if f.get("attr") else "")
        t.add_row(fmt_bytes(f["bytes"]), f["kind"], where, f["message"])
    console.print(t)
    lines = headlines(result)
    console.print()
    console.print("[bold]2. what the attribute store saves[/bold] (null build, store's first build: "
                  "dagprof build --store lmdb --dag-cache off)")
    render_compare(subset(result, ["plain", "store"]), console, keys=STORE_KEYS, footer=False)
    console.print(lines["store"], soft_wrap=True)
    console.print()
    names = [n for n in ("plain", "dagcache", "make") if n in result["variants"]]
    console.print("[bold]3. null build: the DAG cache vs plain SCons vs GNU Make[/bold] "
                  "(dagprof build, answered from the snapshot a previous build confirmed)")
    render_compare(subset(result, names), console, keys=NULL_KEYS)
    console.print(lines["null"], soft_wrap=True)
    for note in result.get("notes") or []:
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    console.print()


def write_demo_html(path: str, info: Any, fulls: list[str], memory: dict[str, Any], result: dict[str, Any],
                    total: float, args: Any) -> None:
    """One self-contained page with the same three parts."""
    from .report.compare import html_context, subset
    from .report.html import environment, json_script, write_atomic

    names = [n for n in ("plain", "dagcache", "make") if n in result["variants"]]
    store = html_context(subset(result, ["plain", "store"]), STORE_KEYS)
    null = html_context(subset(result, names), NULL_KEYS)
    html = environment().get_template("demo.html.j2").render(
        title=f"dagprof demo: {len(info.files)} C files", result=result, memory=memory, store=store, null=null,
        lines=headlines(result), fulls=fulls, total=total, files=len(info.files), libs=len(info.dirs),
        nodes=info.nodes_estimate, root=str(info.root), runs=args.runs,
        data=json_script({"store": store["rows"], "null": null["rows"], "findings": memory["findings"]}),
    )
    write_atomic(path, html)


def _console_stderr():
    from rich.console import Console

    return Console(stderr=True)

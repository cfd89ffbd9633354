"""`dagprof demo`: the whole story on an embedded synthetic project, in about a minute.

Why: a newcomer should see what the store saves with one command and no project of their own:
generate a project, build it, compare plain SCons with the store on the null build (the store's
first build) and on the next one (the store kept), print the tables and write an HTML report.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any, Callable

# Sized so that the whole demo (generation, full build, both comparisons) takes about a minute:
# 47 s for 1000 files on a 2-core AMD EPYC VM at load 1.5 (27 s for 600 files at load 3).
DEFAULT_FILES = 1000
DEFAULT_RUNS = 1
REPORT = "demo-report.html"
REPORT_SECOND = "demo-report-second.html"


def register(add: Callable) -> None:
    """The `demo` subparser."""
    p = add("demo", "generate a synthetic project, build it, and compare plain SCons with the store")
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
    """Generate, build, compare twice, report; exit 0 when every build succeeded."""
    from . import exitcodes
    from .builds.synthetic import generate
    from .cli import UsageError, _console
    from .compare import CompareError, CompareSpec, plain_command, run_measured, default_env, show, with_progress
    from .report.compare import write_compare_html

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
    t0 = time.perf_counter()
    with err.status(f"generating a {args.files}-file synthetic C project in {root}"):
        info = generate(root, files=args.files)
    console.print(f"project: {root}: {len(info.files)} C files in {len(info.dirs)} libraries, "
                  f"{len(info.headers)} headers, about {info.nodes_estimate:,} SCons nodes; "
                  "compiler: a stand-in that writes outputs (tools/stubcc), so the figures are SCons' own")
    with err.status(f"full build with plain SCons (-j{args.jobs})"):
        full = run_measured(plain_command(["-Q", f"-j{args.jobs}"]), cwd=root, env=default_env())
    if full["exit_code"] != 0:
        print(f"dagprof: the full build failed (exit {full['exit_code']}) in {root}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    console.print(f"full build: {full['wall_s']:.1f} s")
    scons = ["-Q"]
    try:
        first = with_progress(CompareSpec(scons_args=scons, runs=args.runs, cwd=root, state="null",
                                          sizes=not args.no_sizes), "null build, store's first build")
        second = with_progress(CompareSpec(scons_args=scons, runs=args.runs, cwd=root, state="second",
                                           sizes=not args.no_sizes, baseline=first["variants"]["plain"],
                                           notes=["plain SCons figures are the same runs as in the first table"]),
                               "null build, store kept from a previous build")
    except CompareError as e:
        print(f"dagprof: {e}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    show(first, console, "1. null build: plain SCons vs its first build with the store")
    show(second, console, "2. null build again: plain SCons vs the store kept from the previous build")
    write_compare_html(first, os.path.join(root, REPORT))
    write_compare_html(second, os.path.join(root, REPORT_SECOND))
    r1, r2 = first["ratios"].get("peak_rss"), second["ratios"].get("peak_rss")
    if r1 and r2:
        console.print(f"peak RSS store/plain: {r1:.2f}x (first store build), {r2:.2f}x (second)")
    console.print(f"HTML report: {os.path.join(root, REPORT)} (second build: {REPORT_SECOND})")
    console.print(f"demo took {time.perf_counter() - t0:.0f} s; remove {root} when done")
    return exitcodes.OK


def _console_stderr():
    from rich.console import Console

    return Console(stderr=True)

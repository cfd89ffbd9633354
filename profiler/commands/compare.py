"""`dagprof compare`: plain SCons vs the node store (vs the DAG cache, vs GNU Make), alternately.

The command line only: options in, one plain CompareSpec to the engine (profiler/compare.py, which
knows no argparse and raises CompareError), the result out as a table, JSON or HTML.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import textwrap
from typing import Any

from .. import exitcodes
from ..cmdline import UsageError, add_command, console, out_path

NAME = "compare"
EXAMPLE = "example:  dagprof compare --runs 3 --make -- -Q"
SCONS_ARGS = True  # everything after `--` goes to SCons
# the choices of --state and --store, here rather than in ..compare: every dagprof command builds this parser,
# and importing ..compare (statistics, decimal, fractions) would cost `dagprof profile`'s build ~0.9 MiB
STATES = ("null", "second", "full")
STORES = ("lmdb", "memory")


def register(subparsers: Any) -> None:
    """The `compare` subparser; its handler is run()."""
    p = add_command(
        subparsers,
        NAME,
        "run the build as plain SCons, with the node store and from the DAG cache, alternately, and compare",
        EXAMPLE,
    )
    p.description = textwrap.fill(
        "Runs plain SCons (`python -m SCons ARGS`, no dagprof code in the process), `dagprof build "
        "--store KIND --dag-cache off` (the attribute store) and, for null builds with the lmdb store, "
        "`dagprof build` answered from the DAG cache, on the same build state, each in its own process, "
        "alternately (with --make, GNU Make too); prints medians and ratios to plain SCons. "
        "Exit 0; 70 when a build failed; 64 on a bad command line.",
        78,
    )
    p.add_argument("--store", choices=STORES, default="lmdb", help="store backend (default: %(default)s)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per variant, alternated (default: %(default)s)")
    p.add_argument(
        "--spill",
        default="auto",
        metavar="ATTRS",
        help="'auto', 'none' or Class.attr,... passed to the store runs (default: %(default)s)",
    )
    p.add_argument(
        "--no-sizes",
        action="store_true",
        help="skip the untimed sizing passes (node data at the end is then not shown)",
    )
    p.add_argument(
        "--state",
        choices=STATES,
        default="null",
        help="null: null build after a full build, store's first build; second: the store kept "
        "from a previous store build; full: a full build from clean (default: %(default)s)",
    )
    p.add_argument(
        "--dag-cache",
        choices=("on", "off"),
        default="on",
        help="on: also measure null builds answered from the DAG cache (variant 'dagcache', after a "
        "confirming build; lmdb store, null/second states only); off: skip it (default: %(default)s)",
    )
    p.add_argument(
        "--make",
        action="store_true",
        help="also measure GNU Make's build of the same tree (variant 'make'; needs a Makefile)",
    )
    p.add_argument("--make-args", default="", metavar="ARGS", help="arguments for make, one string (default: none)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON instead of a table")
    p.add_argument("--html", metavar="OUT", help="also write a self-contained HTML report")
    p.set_defaults(handler=run)


def validate(args: Any, scons_args: list[str]) -> None:
    """Bad option values end as one line and exit exitcodes.USAGE, before any build runs."""
    from ..compare import check_project, check_spill, find_makefile

    if args.runs < 1:
        raise UsageError(f"--runs must be >= 1, not {args.runs}")
    if args.state == "second" and args.store == "memory":
        raise UsageError("--state second needs a store that outlives the process (--store lmdb)")
    if args.html:
        out_path(args.html, "--html")
    if args.make:
        if not find_makefile("."):
            raise UsageError(f"--make: no Makefile in {os.path.abspath('.')}")
        if not shutil.which("make"):
            raise UsageError("--make: no make program on PATH")
    err = check_spill(args.spill) or check_project(".", scons_args)
    if err:
        raise UsageError(err)


def show(result: dict[str, Any], con: Any, title: str | None = None) -> None:
    """The side-by-side table plus the notes (what was measured how)."""
    from ..report.compare import render_compare

    if title:
        con.print(f"[bold]{title}[/bold]")
    render_compare(result, con)
    for note in result.get("notes") or []:
        con.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)


def run(args: Any, scons_args: list[str]) -> int:
    """`dagprof compare`: one table (or JSON/HTML) of plain vs store on the same build state."""
    from ..compare import CompareError, CompareSpec, with_progress

    validate(args, scons_args)
    # the DAG cache answers null builds from an lmdb store's snapshot: not a full build, not the memory store
    dagcache = args.dag_cache == "on" and args.store == "lmdb" and args.state != "full"
    spec = CompareSpec(
        scons_args=scons_args,
        store=args.store,
        runs=args.runs,
        spill=args.spill,
        state=args.state,
        sizes=not args.no_sizes,
        dagcache=dagcache,
        make=args.make,
        make_args=shlex.split(args.make_args),
    )
    try:
        result = with_progress(spec, f"compare ({args.state} build)")
    except CompareError as e:
        print(f"dagprof: {e}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    if args.html:
        from ..report.compare import write_compare_html

        write_compare_html(result, args.html)
    if args.json:
        from ..report.compare import compare_to_json

        sys.stdout.write(compare_to_json(result))
    else:
        c = console()
        show(result, c)
        if args.html:
            c.print(f"HTML report written to {args.html}")
    return exitcodes.OK

"""`dagprof diff OLD NEW`: two profiles compared, and the memory-regression gate (also `profile --baseline`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import exitcodes
from ..cmdline import UsageError, add_command, console, out_path

NAME = "diff"
EXAMPLE = "example:  dagprof diff base.dagprof new.dagprof --max-growth 5% --html diff.html"
SCONS_ARGS = False


def growth_arg(text: str) -> float:
    """argparse type of --max-growth: '5%' -> 0.05, a one-line usage error otherwise."""
    from ..diff import parse_growth

    try:
        return parse_growth(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix(f"--max-growth {text!r}: ")) from None


def add_gate_options(p: argparse.ArgumentParser, baseline: bool) -> None:
    """--max-growth and --rss-floor (and --baseline for `profile`): the memory-regression gate."""
    from ..diff import RSS_FLOOR

    if baseline:
        p.add_argument("--baseline", metavar="OLD", help="a profile to gate against (exit 68 on a regression)")
    p.add_argument(
        "--max-growth",
        type=growth_arg,
        metavar="PCT",
        help="exit 68 when peak RSS, node bytes per node or a class's bytes per instance grew by more "
        "than this, e.g. 5%%" + (" (default with --baseline: 5%%)" if baseline else ""),
    )
    p.add_argument(
        "--rss-floor",
        type=int,
        default=RSS_FLOOR,
        metavar="BYTES",
        help="peak-RSS growth always tolerated, for noise (default: %(default)s = 4 MiB)",
    )


def register(subparsers: Any) -> None:
    """The `diff` subparser; its handler is run()."""
    p = add_command(
        subparsers,
        NAME,
        "compare two profiles: bytes, instances, reads/writes, peak RSS, wall; optionally gate on growth",
        EXAMPLE,
    )
    p.add_argument("old", metavar="OLD", help="the baseline profile")
    p.add_argument("new", metavar="NEW", help="the profile to compare with it")
    p.add_argument("--json", action="store_true", help="print the diff as JSON instead of tables")
    p.add_argument("--html", metavar="OUT", help="also write a self-contained HTML page (OLD vs NEW charts)")
    p.add_argument("--top", type=int, default=20, help="changed attributes shown (default: %(default)s)")
    add_gate_options(p, baseline=False)
    p.set_defaults(handler=run)


def gate_against_baseline(baseline: Any, profile: Any, args: Any) -> int:
    """`dagprof profile --baseline OLD`: the verdict on stderr (stdout holds the report), exit 68 on a regression."""
    from ..diff import diff_profiles, gate
    from ..report.diff import gate_lines

    d = diff_profiles(baseline, profile, args.baseline, args.output)
    g = gate(d, args.max_growth, args.rss_floor)
    for note in d["notes"]:
        print(f"dagprof: note: {note}", file=sys.stderr)
    for line in gate_lines(g):
        print(f"dagprof: {line}", file=sys.stderr)
    return exitcodes.REGRESSION if g["failed"] else exitcodes.OK


def run(args: Any, scons_args: list[str]) -> int:
    """`dagprof diff`: exit 0, or exitcodes.REGRESSION when --max-growth is exceeded."""
    from ..diff import diff_profiles, gate
    from ..profile import load
    from ..report import diff as render

    if scons_args:
        raise UsageError("diff takes no SCons arguments after --")
    if args.rss_floor < 0:
        raise UsageError("--rss-floor must be >= 0 bytes")
    if args.html:
        out_path(args.html, "--html")
    old, new = load(args.old), load(args.new)
    d = diff_profiles(old, new, args.old, args.new)
    g = gate(d, args.max_growth, args.rss_floor) if args.max_growth is not None else None
    if args.html:
        render.write_html(d, old, new, args.html, g)
    if args.json:
        sys.stdout.write(render.to_json(d, g))
    else:
        c = console()
        render.render_text(d, c, g, top=args.top)
        if args.html:
            c.print(f"HTML diff written to {args.html}")
    return exitcodes.REGRESSION if g is not None and g["failed"] else exitcodes.OK

"""`dagprof profile`: run an SCons build in-process and record where its memory goes."""

from __future__ import annotations

import sys
from typing import Any

from ..cmdline import UsageError, add_command, make_introspector, out_path
from .diff import add_gate_options, gate_against_baseline
from .report import show

NAME = "profile"
EXAMPLE = "example:  dagprof profile -o build.dagprof -- -Q -j2"
SCONS_ARGS = True  # everything after `--` goes to SCons
RAN_SCONS = False  # set once SCons ran in this process: entry.main may then end it without teardown


def register(subparsers: Any) -> None:
    """The `profile` subparser; its handler is run()."""
    pr = add_command(subparsers, NAME, "run an SCons build in-process and record where its memory goes", EXAMPLE)
    pr.add_argument("-o", "--output", default="profile.dagprof", help="profile file to write (default: %(default)s)")
    pr.add_argument("--readers", action="store_true", help="also count distinct instances reading each attribute")
    pr.add_argument("--no-introspect", action="store_true", help="access counts only: no sizing, monitor or cycles")
    for comp, what in (
        ("tracker", "instance counts and lifetimes (class hooks, gc scans at phase marks)"),
        ("cycles", "the garbage-collector watch"),
        ("monitor", "the RSS sampling thread"),
        ("sizes", "sizing at the end"),
        ("dup-stats", "duplicate-value statistics of the sizing"),
    ):
        pr.add_argument(f"--no-{comp}", action="store_true", help=f"leave out {what} (to measure its cost)")
    pr.add_argument("--interval", type=float, default=0.1, help="monitor sampling interval in seconds")
    pr.add_argument("--detail", default="", help="classes for the per-instance detail log, e.g. File,Dir")
    pr.add_argument("--html", metavar="OUT", help="also write a self-contained HTML report")
    pr.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    pr.add_argument("--top", type=int, default=8, help="hottest/coldest attributes shown per class")
    pr.add_argument("--budget", type=int, metavar="BYTES", help="exit 66 when findings estimate more savings than this")
    add_gate_options(pr, baseline=True)
    pr.set_defaults(handler=run)


def run(args: Any, scons_args: list[str]) -> int:
    """`dagprof profile`: SCons' own exit code, else exitcodes.REGRESSION or BUDGET, else 0."""
    from ..builds import scons as adapter

    out = out_path(args.output, "--output")
    if args.html:
        out_path(args.html, "--html")
    baseline = None
    if args.baseline is None and args.max_growth is not None:
        raise UsageError("--max-growth needs --baseline OLD (or use: dagprof diff OLD NEW --max-growth ...)")
    if args.baseline is not None:  # read it before spending a whole build on it
        from ..profile import load

        if args.rss_floor < 0:
            raise UsageError("--rss-floor must be >= 0 bytes")
        baseline = load(args.baseline)
        if args.max_growth is None:
            args.max_growth = 0.05
    introspector = None
    if not args.no_introspect:
        detail = [d.strip() for d in args.detail.split(",") if d.strip()]
        introspector = make_introspector(
            adapter,
            detail=detail,
            interval_s=args.interval,
            tracker=not args.no_tracker,
            cycles=not args.no_cycles,
            monitor=not args.no_monitor,
            sizes=not args.no_sizes,
            dup_stats=not args.no_dup_stats,
        )
    profile = adapter.profile_build(scons_args, readers=args.readers, introspector=introspector)
    global RAN_SCONS
    RAN_SCONS = True
    code = int(profile.meta.get("exit_code", 0) or 0)
    if code and adapter.PHASE_READ not in profile.phase_names():
        # SCons stopped before reading any SConscript (no SConstruct, a bad option): it said why on stderr;
        # there is no build to report on, as `dagprof build` prints nothing of its own then
        print(
            f"dagprof: SCons stopped before reading an SConstruct (exit {code}); nothing profiled, no profile written",
            file=sys.stderr,
        )
        return code
    profile.save(out)
    status = show(profile, args)
    if not args.json:
        print(f"profile written to {out}")
    if code:
        return code
    if baseline is not None:
        verdict = gate_against_baseline(baseline, profile, args)
        if verdict:
            return verdict
    return status

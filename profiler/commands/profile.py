"""`dagprof profile`: run an SCons build in-process and record where its memory goes.

The report is rendered by a fresh interpreter (`dagprof report FILE`) once the profile file is written:
the profiled process is still at the build's peak then (its node graph is alive), and importing rich, the
renderers and the analyzer there raised its peak RSS (1.2-2.6 MiB at 5k files, docs/benchmarks.md): the
profiler must not change what it measures.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .. import exitcodes
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
    environ = dict(os.environ)  # the report child's: an SConstruct may set PYTHONHOME, PYTHONPATH... in-process
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
    status = report_in_child(out, args, environ)
    if status is None:
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


REPORT_CODES = (exitcodes.OK, exitcodes.BUDGET)  # what `dagprof report` returns when it rendered the report


def report_in_child(path: str, args: Any, environ: dict[str, str] | None = None) -> int | None:
    """`dagprof report PATH` with this command's report options, in a fresh interpreter on this process's
    stdin/stdout/stderr and environment, so the report is printed as it would be here (terminal and width
    come from the same descriptors) without raising this process's peak RSS. Returns its exit code, or None
    when it must be rendered here: stdout or stderr is not a file descriptor (an in-process caller
    capturing them), the interpreter cannot be started, or the child failed (said on stderr)."""
    import subprocess

    try:
        fds = (sys.stdout.fileno(), sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return None
    if not sys.executable:
        return None
    top = __package__.partition(".")[0]
    # -P: no current directory on the child's sys.path (a console script has none either), so a module beside
    # the SConstruct (a json.py, an html.py) cannot shadow one the renderer imports
    argv = [sys.executable, "-P", "-m", top, "report", os.path.abspath(path), f"--top={args.top}"]
    if args.json:
        argv.append("--json")
    if args.html:
        argv.append(f"--html={args.html}")
    if args.budget is not None:
        argv.append(f"--budget={args.budget}")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        code = subprocess.call(argv, stdout=fds[0], stderr=fds[1], env=_child_env(top, environ))
    except OSError:
        return None
    if code in REPORT_CODES:
        return code
    how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
    print(f"dagprof: warning: the report process ended ({how}); rendering the report here", file=sys.stderr)
    return None


def _child_env(top: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with the folder that holds this very `dagprof` first on PYTHONPATH when a
    fresh interpreter would not find it there by itself (a checkout put on sys.path by the caller, as the
    tests do), so the child renders with the same code. An installed package (site-packages, or pip's
    editable finder, whose folder is not named `dagprof`) is found as it is."""
    import site

    env = dict(os.environ if environ is None else environ)
    package = os.path.dirname(os.path.abspath(sys.modules[top].__file__ or ""))
    if os.path.basename(package) != top:
        return env
    root = os.path.realpath(os.path.dirname(package))
    known = [*env.get("PYTHONPATH", "").split(os.pathsep), *site.getsitepackages(), site.getusersitepackages()]
    if root not in {os.path.realpath(p) for p in known if p}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env

"""The `dagprof` command: profile, report, build, compare, demo, check.

Exit codes: `profile` and `build` end with the build's own (SCons') exit code; dagprof's own codes are
in exitcodes.py, apart from SCons' (docs/usage.md). Every error is one line "dagprof: ...", never a
traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from . import __version__, exitcodes

EXAMPLES = {
    "profile": "example:  dagprof profile -o build.dagprof -- -Q -j2",
    "report": "example:  dagprof report build.dagprof --json > build.json",
    "build": "example:  dagprof build --store lmdb --spill auto -- -Q",
    "compare": "example:  dagprof compare --runs 3 --make -- -Q",
    "demo": "example:  dagprof demo --files 2000",
    "check": "example:  dagprof check ~/src/myproj --edits edits.json -- -j4 -Q",
    "diff": "example:  dagprof diff base.dagprof new.dagprof --max-growth 5% --html diff.html",
}
# the subcommands that pass everything after `--` to SCons
SCONS_COMMANDS = ("profile", "build", "compare", "check")


class UsageError(Exception):
    """A bad command line; printed as one line, exit exitcodes.USAGE."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _split_scons_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Everything after the first `--` is passed to SCons untouched."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def _out_path(path: str, what: str) -> str:
    """Refuse output paths that cannot be written before spending a whole build on them."""
    if os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a directory, expected a file path")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{what} {path!r}: directory {parent!r} does not exist")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dagprof",
        description="Where an SCons build's memory goes, and a node store that gives it back.",
        epilog="\n".join(EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"dagprof {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from . import commands  # registers build/compare/demo/check/diff; profile takes its gate options

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    pr = add("profile", "run an SCons build in-process and record where its memory goes")
    pr.add_argument("-o", "--output", default="profile.dagprof", help="profile file to write (default: %(default)s)")
    pr.add_argument("--readers", action="store_true", help="also count distinct instances reading each attribute")
    pr.add_argument("--no-introspect", action="store_true", help="access counts only: no sizing, monitor or cycles")
    pr.add_argument("--interval", type=float, default=0.1, help="monitor sampling interval in seconds")
    pr.add_argument("--detail", default="", help="classes for the per-instance detail log, e.g. File,Dir")
    pr.add_argument("--html", metavar="OUT", help="also write a self-contained HTML report")
    pr.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    pr.add_argument("--top", type=int, default=8, help="hottest/coldest attributes shown per class")
    pr.add_argument("--budget", type=int, metavar="BYTES", help="exit 66 when findings estimate more savings than this")
    commands.add_gate_options(pr, baseline=True)

    rp = add("report", "show a recorded profile")
    rp.add_argument("file", help="a .dagprof profile file")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.add_argument("--html", metavar="OUT", help="write a self-contained HTML report")
    rp.add_argument("--top", type=int, default=8, help="hottest/coldest attributes shown per class")
    rp.add_argument("--budget", type=int, metavar="BYTES", help="exit 66 when findings estimate more savings than this")
    rp.add_argument("--what-if", metavar="SPEC",
                    help="estimate savings of changes before making them, e.g. "
                         "'spill=File.includes;lazy=File.waiting_parents;intern=File.contentsig;drop=File.scanner_paths'")

    for register in commands.REGISTER:
        register(add)
    for name in SCONS_COMMANDS:
        _show_scons_args(sub.choices[name])
    return p


def _show_scons_args(p: argparse.ArgumentParser) -> None:
    """The usage line ends with `[-- SCONS_ARGS]`: argparse never sees them (split off before parsing)."""
    usage = p.format_usage().removeprefix("usage: ").rstrip()
    p.usage = usage.replace("%", "%%") + " [-- SCONS_ARGS]"


def _unrecognized(command: str | None, extra: list[str]) -> UsageError:
    """Options argparse did not know; for commands that run SCons, say where SCons options go."""
    words = " ".join(extra)
    if command in SCONS_COMMANDS:
        return UsageError(f"unrecognized arguments: {words} "
                          f"(SCons arguments go after --: dagprof {command} [options] -- {words})")
    return UsageError(f"unrecognized arguments: {words}")


def _console():
    from rich.console import Console

    return Console(soft_wrap=False, width=max(120, Console().width))


def _show(profile, args) -> int:
    """Print (or write) a profile's report; the exit code reflects the findings budget."""
    from .analyze import analyze

    if "findings" not in profile.sections and profile.sections.get("sizes"):
        profile.sections["findings"] = analyze(profile)
    if getattr(args, "html", None):
        from .report.html import write_html

        write_html(profile, _out_path(args.html, "--html"))
    if args.json:
        from .report.jsonout import to_json

        sys.stdout.write(to_json(profile))
    else:
        from .report import text

        console = _console()
        text.render(profile, console, top=args.top)
        if getattr(args, "html", None):
            console.print(f"HTML report written to {args.html}")
    if args.budget is not None:
        from .analyze import estimated_saving, findings_of

        total = estimated_saving(findings_of(profile))  # each byte once, though findings overlap
        if total > args.budget:
            print(f"dagprof: findings estimate {total:,} bytes (each byte counted once), over the budget of "
                  f"{args.budget:,}", file=sys.stderr)
            return exitcodes.BUDGET
    return exitcodes.OK


def cmd_profile(args, scons_args: list[str]) -> int:
    from .builds import scons as adapter

    out = _out_path(args.output, "--output")
    if args.html:
        _out_path(args.html, "--html")
    baseline = None
    if args.baseline is None and args.max_growth is not None:
        raise UsageError("--max-growth needs --baseline OLD (or use: dagprof diff OLD NEW --max-growth ...)")
    if args.baseline is not None:  # read it before spending a whole build on it
        from .profile import load

        if args.rss_floor < 0:
            raise UsageError("--rss-floor must be >= 0 bytes")
        baseline = load(args.baseline)
        if args.max_growth is None:
            args.max_growth = 0.05
    introspector = None
    if not args.no_introspect:
        detail = [d.strip() for d in args.detail.split(",") if d.strip()]
        introspector = make_introspector(adapter, detail=detail, interval_s=args.interval)
    profile = adapter.profile_build(scons_args, readers=args.readers, introspector=introspector)
    profile.save(out)
    status = _show(profile, args)
    if not args.json:
        print(f"profile written to {out}")
    code = profile.meta.get("exit_code", 0)
    if code:
        return code
    if baseline is not None:
        from .commands import gate_against_baseline

        verdict = gate_against_baseline(baseline, profile, args)
        if verdict:
            return verdict
    return status


def make_introspector(adapter, detail: list[str] = (), interval_s: float = 0.1):
    """The sizing/monitor/cycles facade over the adapter's node classes and boundaries."""
    from .introspect import Introspector

    return Introspector(adapter.node_classes(), boundary=adapter.boundary_classes(), detail=list(detail),
                        interval_s=interval_s)


def cmd_report(args, scons_args: list[str]) -> int:
    from .profile import load

    if scons_args:
        raise UsageError("report takes no SCons arguments after --")
    if args.what_if is not None:
        from .whatif import SpecError, parse_spec

        try:
            changes = parse_spec(args.what_if)
        except SpecError as e:
            raise UsageError(str(e)) from None
        return _show_what_if(load(args.file), changes, args)
    return _show(load(args.file), args)


def _show_what_if(profile, changes, args) -> int:
    """`report --what-if`: only the estimate (text or JSON), the question the user asked."""
    from .report import whatif as render
    from .whatif import estimate

    est = estimate(profile, changes)
    if args.json:
        sys.stdout.write(render.to_json(est))
    else:
        render.render_text(est, _console())
    return exitcodes.OK


HANDLERS: dict[str, Callable] = {"profile": cmd_profile, "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; every error ends as one line "dagprof: ..." and one of exitcodes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, scons_args = _split_scons_args(argv)
    if ours[:1] == ["build"]:  # the DAG cache's fast path: before building the whole command line
        from .commands import answer_from_dag_cache

        code = answer_from_dag_cache(ours[1:], scons_args)
        if code is not None:
            return code
    from .profile import ProfileError
    try:
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(ours)
        except SystemExit as e:  # --help, --version
            return int(e.code or 0)
        if extra:
            raise _unrecognized(getattr(args, "command", None), extra)
        if not args.command:
            parser.print_help()
            return exitcodes.USAGE
        from . import commands

        handler = HANDLERS.get(args.command) or commands.HANDLERS[args.command]
        code = handler(args, scons_args)
    except UsageError as e:
        print(f"dagprof: {e}", file=sys.stderr)
        return exitcodes.USAGE
    except ProfileError as e:
        print(f"dagprof: {e}", file=sys.stderr)
        return exitcodes.BAD_INPUT
    except KeyboardInterrupt:
        print("dagprof: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    sys.stdout.flush()
    return code


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()

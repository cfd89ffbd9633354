"""`dagprof report FILE`: show a recorded profile (text, JSON, HTML), or estimate changes with --what-if."""

from __future__ import annotations

import sys
from typing import Any

from .. import exitcodes
from ..cmdline import UsageError, add_command, console, out_path

NAME = "report"
EXAMPLE = "example:  dagprof report build.dagprof --json > build.json"
SCONS_ARGS = False


def register(subparsers: Any) -> None:
    """The `report` subparser; its handler is run()."""
    rp = add_command(subparsers, NAME, "show a recorded profile", EXAMPLE)
    rp.add_argument("file", help="a .dagprof profile file")
    rp.add_argument("--json", action="store_true", help="machine-readable output")
    rp.add_argument("--html", metavar="OUT", help="write a self-contained HTML report")
    rp.add_argument("--top", type=int, default=8, help="hottest/coldest attributes shown per class")
    rp.add_argument("--budget", type=int, metavar="BYTES", help="exit 66 when findings estimate more savings than this")
    rp.add_argument(
        "--what-if",
        metavar="SPEC",
        help="estimate savings of changes before making them, e.g. "
        "'spill=File.includes;lazy=File.waiting_parents;intern=File.contentsig;drop=File.scanner_paths'",
    )
    rp.set_defaults(handler=run)


def show(profile: Any, args: Any) -> int:
    """Print (or write) a profile's report; the exit code reflects the findings budget."""
    from ..analyze import analyze

    if "findings" not in profile.sections and profile.sections.get("sizes"):
        profile.sections["findings"] = analyze(profile)
    if getattr(args, "html", None):
        from ..report.html import write_html

        write_html(profile, out_path(args.html, "--html"))
    if args.json:
        from ..report.jsonout import to_json

        sys.stdout.write(to_json(profile))
    else:
        from ..report import text

        c = console()
        text.render(profile, c, top=args.top)
        if getattr(args, "html", None):
            c.print(f"HTML report written to {args.html}")
    if args.budget is not None:
        from ..analyze import estimated_saving, findings_of

        total = estimated_saving(findings_of(profile))  # each byte once, though findings overlap
        if total > args.budget:
            print(
                f"dagprof: findings estimate {total:,} bytes (each byte counted once), over the budget of "
                f"{args.budget:,}",
                file=sys.stderr,
            )
            return exitcodes.BUDGET
    return exitcodes.OK


def run(args: Any, scons_args: list[str]) -> int:
    """`dagprof report`: exit 0, or exitcodes.BUDGET when the findings are over --budget."""
    from ..profile import load

    if scons_args:
        raise UsageError("report takes no SCons arguments after --")
    if args.what_if is not None:
        from ..whatif import SpecError, parse_spec

        if args.budget is not None:  # the budget is on the report's findings, which --what-if does not show
            raise UsageError("--budget applies to the report's findings and cannot be combined with --what-if")

        try:
            changes = parse_spec(args.what_if)
        except SpecError as e:
            raise UsageError(str(e)) from None
        return show_what_if(load(args.file), changes, args)
    return show(load(args.file), args)


def show_what_if(profile: Any, changes: Any, args: Any) -> int:
    """`report --what-if`: only the estimate (text or JSON), the question the user asked."""
    from ..report import whatif as render
    from ..whatif import estimate

    est = estimate(profile, changes)
    if args.json:
        sys.stdout.write(render.to_json(est))
    else:
        render.render_text(est, console())
    return exitcodes.OK

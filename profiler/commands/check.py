"""`dagprof check PROJECT`: plain SCons vs the store on a copy of a project, through edits (profiler/equivalence.py)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from .. import exitcodes
from ..cmdline import UsageError, add_command

NAME = "check"
EXAMPLE = "example:  dagprof check ~/src/myproj --edits edits.json -- -j4 -Q"
SCONS_ARGS = True  # everything after `--` goes to SCons
EDITS_EXAMPLE = (
    'edits.json: [{"edit": "src/a.c", "append": "\\n"}, {"touch": "include/a.h"}, '
    '[{"add": "src/new.c", "content": "int x;\\n"}, {"edit": "src/SConscript", '
    '"replace": ["a.c", "a.c new.c"]}], {"remove": "src/b.c"}]'
)


def register(subparsers: Any) -> None:
    """The `check` subparser; its handler is run()."""
    p = add_command(
        subparsers,
        NAME,
        "build a copy of an SCons project plainly and with the dagstore, from clean, "
        "as a null build and after each edit; compare outputs, exit codes and rebuilds",
        EXAMPLE + "\n" + EDITS_EXAMPLE,
    )
    p.add_argument("project", help="directory holding the SConstruct (copied; never modified)")
    p.add_argument("--edits", metavar="FILE", help="JSON list of edit steps (see docs/reliability.md)")
    p.add_argument("--store", choices=("lmdb", "memory"), default="lmdb", help="store to compare (default: lmdb)")
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="GLOB",
        help="also ignore files/dirs with this name when comparing (repeatable)",
    )
    p.add_argument("--workdir", metavar="DIR", help="where the two copies go (default: system temp)")
    p.add_argument(
        "--allow-failing",
        action="store_true",
        help="accept a step whose build fails on both sides the same way (default: exit 70)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=run)


def run(args: Any, scons_args: list[str]) -> int:
    """`dagprof check`: exit 0 equivalent, NOT_EQUIVALENT for a difference, BUILD_FAILED when both sides
    failed the same way (unless --allow-failing), BAD_INPUT for a bad project or edits file."""
    from ..equivalence import DEFAULT_IGNORE, EquivalenceError, load_edits, render, run_equivalence

    if args.workdir and not os.path.isdir(args.workdir):
        raise UsageError(f"--workdir {args.workdir!r} is not a directory")
    try:
        steps = load_edits(args.edits) if args.edits else []
        report = run_equivalence(
            args.project,
            steps,
            store=args.store,
            scons_args=scons_args,
            ignore=DEFAULT_IGNORE + tuple(args.ignore),
            workdir=args.workdir,
            allow_failing=args.allow_failing,
            progress=None if args.json else (lambda s: print(f"... {s}", file=sys.stderr)),
        )
    except EquivalenceError as e:
        print(f"dagprof: {e}", file=sys.stderr)
        return exitcodes.BAD_INPUT
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    verdicts = {
        "equivalent": exitcodes.OK,
        "not equivalent": exitcodes.NOT_EQUIVALENT,
        "build failed": exitcodes.BUILD_FAILED,
    }
    return verdicts[report.verdict]

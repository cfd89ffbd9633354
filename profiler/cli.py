"""The `dagprof` command: profile, report, build, compare, demo, check, diff.

One module per subcommand in commands/, each registering its own parser and handler (argparse's
set_defaults); this module only assembles them and turns errors into one line and an exit code.

Exit codes: `profile` and `build` end with the build's own (SCons') exit code; dagprof's own codes are
in exitcodes.py, apart from SCons' (docs/usage.md). Every error is one line "dagprof: ...", never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from . import __version__, exitcodes
from .cmdline import Parser, UsageError, split_scons_args


def _commands() -> list[ModuleType]:
    """The subcommand modules, in the order `dagprof --help` lists them."""
    from .commands import build, check, compare, demo, diff, profile, report

    return [profile, report, build, compare, demo, check, diff]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each subparser carries its handler (args.handler)."""
    commands = _commands()
    p = Parser(
        prog="dagprof",
        description="Where an SCons build's memory goes, and a node store that gives it back.",
        epilog="\n".join(m.EXAMPLE for m in commands),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"dagprof {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for m in commands:
        m.register(sub)
        if m.SCONS_ARGS:
            _show_scons_args(sub.choices[m.NAME])
    return p


def _show_scons_args(p: argparse.ArgumentParser) -> None:
    """The usage line ends with `[-- SCONS_ARGS]`: argparse never sees them (split off before parsing)."""
    usage = p.format_usage().removeprefix("usage: ").rstrip()
    p.usage = usage.replace("%", "%%") + " [-- SCONS_ARGS]"


def _unrecognized(parser: argparse.ArgumentParser, command: str | None, extra: list[str]) -> UsageError:
    """Options argparse did not know; for commands that run SCons, say where SCons' own options go (with the
    command's positional arguments, so the hint can be followed), and that an option neither knows is unknown."""
    words = " ".join(extra)
    if command not in {m.NAME for m in _commands() if m.SCONS_ARGS}:
        return UsageError(f"unrecognized arguments: {words}")
    from .builds.scons_state import is_scons_option

    # a word that is no option (a target, VAR=value, an option's value) is an SCons argument too
    unknown = [w for w in extra if w.startswith("-") and not is_scons_option(w)]
    scons = [w for w in extra if w not in unknown]
    notes = []
    if unknown:
        neither = f"{'an option' if len(unknown) == 1 else 'options'} of neither dagprof {command} nor SCons"
        notes.append(f"{' '.join(unknown)}: {neither}" if scons else neither)
    if scons:
        sub = _subparsers(parser).choices[command]
        positionals = [a.metavar or a.dest.upper() for a in sub._actions if not a.option_strings]
        usage = " ".join([f"dagprof {command} [options]", *map(str, positionals), "--", *scons])
        notes.append(f"SCons arguments go after --: {usage}")
    return UsageError(f"unrecognized arguments: {words} ({'; '.join(notes)})")


def _subparsers(parser: argparse.ArgumentParser) -> Any:
    """The parser's subcommand action (its .choices maps each command name to its parser)."""
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; every error ends as one line "dagprof: ..." and one of exitcodes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, scons_args = split_scons_args(argv)
    from .profile import ProfileError

    try:
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(ours)
        except SystemExit as e:  # --help, --version
            return int(e.code or 0)
        if extra:
            raise _unrecognized(parser, getattr(args, "command", None), extra)
        if not args.command:
            parser.print_help()
            return exitcodes.USAGE
        code = args.handler(args, scons_args)
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
    return int(code)


if __name__ == "__main__":
    sys.exit(main())

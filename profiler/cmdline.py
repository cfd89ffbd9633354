"""What every `dagprof` subcommand module shares: the usage error, the parser class, output-path checks.

Why a module of its own: cli.py imports the command modules and the command modules import this, so
nothing imports cli.py back (no circle). Kept light (argparse and os only): the DAG cache's fast path
imports it before SCons could ever be.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any, NoReturn


class UsageError(Exception):
    """A bad command line; printed as one line, exit exitcodes.USAGE."""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line raises UsageError (one line, our exit code) instead of exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def split_scons_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Everything after the first `--` is passed to SCons untouched."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def add_command(subparsers: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """One subcommand's parser: its help as description, its example as epilog."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=help, epilog=example, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return p


def out_path(path: str, what: str) -> str:
    """Refuse output paths that cannot be written before spending a whole build on them."""
    if os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a directory, expected a file path")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{what} {path!r}: directory {parent!r} does not exist")
    return path


PIPE_WIDTH = 1 << 15  # columns of a console that is not a terminal: wide enough that no cell is cut


def console() -> Any:
    """A rich console for tables on stdout: on a terminal at least 120 columns wide; otherwise (a pipe, a CI
    log) so wide that tables keep their natural width and lines are never wrapped or cut ("223.7 K…")."""
    from rich.console import Console

    # emoji=False: no ":name:" in a class or attribute name is taken for an emoji, and rich does not load
    # its emoji table (~0.6 MiB) into a profiled build at its peak
    probe = Console()
    if probe.is_terminal:
        return Console(soft_wrap=False, width=max(120, probe.width), emoji=False)
    return Console(soft_wrap=True, width=PIPE_WIDTH, emoji=False)


def make_introspector(adapter: Any, detail: Sequence[str] = (), interval_s: float = 0.1, **components: bool) -> Any:
    """The sizing/monitor/cycles facade over the adapter's node classes and boundaries.

    `components` switch parts off (tracker, cycles, monitor, sizes, dup_stats; see Introspector).
    """
    from .introspect import Introspector

    return Introspector(
        adapter.node_classes(),
        boundary=adapter.boundary_classes(),
        detail=list(detail),
        interval_s=interval_s,
        **components,
    )

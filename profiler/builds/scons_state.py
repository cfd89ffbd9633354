"""What SCons leaves on disk and prints, for the engines that run whole builds side by side: the .sconsign
files a comparison saves and restores (`dagprof compare`), the `--debug=explain` lines the equivalence check
reads (`dagprof check`), where SCons looks for the SConstruct, how plain SCons is started, and which words
are SCons' own options (for the command line's hint).

Plain files and strings only: importing this module does not import SCons (is_scons_option does, when called).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence

# The names SCons tries, in its order, for the top-level build file (SCons.Script.Main).
SCONSTRUCT_NAMES = ("SConstruct", "Sconstruct", "sconstruct", "SConstruct.py", "Sconstruct.py", "sconstruct.py")
# Options with which SCons finds the SConstruct somewhere other than the current directory.
LOCATING_OPTIONS = (
    "-f",
    "--file",
    "--makefile",
    "--sconstruct",
    "-C",
    "--directory",
    "-u",
    "-U",
    "-D",
    "--up",
    "--search-up",
)
# SCons' build state: one .sconsign.dblite at the top by default, or a .sconsign per directory.
SCONSIGN_PREFIX = ".sconsign"
SCONSIGN_GLOB = SCONSIGN_PREFIX + "*"
EXPLAIN_OPTION = "--debug=explain"
_EXPLAIN = re.compile(r"^scons: (?:re)?building `(.+?)' because")
# Options SCons reads from the environment on every run (they would apply to one side of a comparison only).
FLAGS_VARIABLE = "SCONSFLAGS"


def plain_command(scons_args: Sequence[str]) -> list[str]:
    """Plain SCons with this interpreter (`python -m SCons ARGS`): no dagprof code in the process."""
    return [sys.executable, "-m", "SCons", *scons_args]


def plain_script_command() -> list[str]:
    """Plain SCons from this Python as the `scons` script starts it; the caller appends the arguments."""
    return [sys.executable, "-c", "import SCons.Script; SCons.Script.main()"]


def clean_args(scons_args: Sequence[str]) -> list[str]:
    """The arguments that remove what `scons ARGS` built (`scons -c ARGS`)."""
    return ["-c", *scons_args]


def without_flags(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the variable SCons reads extra options from."""
    return {k: v for k, v in env.items() if k != FLAGS_VARIABLE}


def has_sconstruct(directory: str | os.PathLike[str]) -> bool:
    """Does `directory` hold a file SCons would read as the SConstruct?"""
    return any(os.path.isfile(os.path.join(directory, n)) for n in SCONSTRUCT_NAMES)


def locates_sconstruct(scons_args: Iterable[str]) -> bool:
    """Do these arguments tell SCons where the SConstruct is (so the current directory need not hold one)?"""
    return any(
        a == o or a.startswith(o + "=") or (o in ("-f", "-C") and a.startswith(o))
        for a in scons_args
        for o in LOCATING_OPTIONS
    )


def sconsign_files(top: str, skip_dirs: Iterable[str] = ()) -> list[str]:
    """Relative paths of every .sconsign* file under `top` (one file or one per directory), sorted."""
    skip = {*skip_dirs, ".git", ".hg", ".svn"}
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in skip]
        found += [os.path.relpath(os.path.join(dirpath, f), top) for f in filenames if f.startswith(SCONSIGN_PREFIX)]
    return sorted(found)


def with_explain(scons_args: Sequence[str]) -> list[str]:
    """The arguments with `--debug=explain` added (once), so SCons says why it rebuilds each target."""
    args = list(scons_args)
    if EXPLAIN_OPTION not in args:
        args.append(EXPLAIN_OPTION)
    return args


def explained(stdout: str) -> dict[str, list[str]]:
    """Targets SCons (re)built according to --debug=explain, each with its explanation lines."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        m = _EXPLAIN.match(line)
        if m:
            current = out.setdefault(m.group(1), [])
            current.append(line.split(" because", 1)[1].strip())
        elif current is not None and line.startswith((" ", "\t")) and line.strip().startswith("`"):
            current.append(line.strip())
        else:
            current = None
    return out


def is_scons_option(word: str) -> bool:
    """Is `word` one of SCons' own command-line options (`-Q`, `-j2`, `--debug=explain`, an abbreviation
    such as `--deb`)? Asks SCons' option parser, so the answer follows the installed SCons. Options an
    SConstruct adds with AddOption are unknown until it is read: False for them."""
    if not word.startswith("-") or word in ("-", "--"):
        return False
    import optparse

    from SCons.Script.SConsOptions import Parser

    parser = Parser("")
    if not word.startswith("--"):
        return parser.has_option(word[:2])  # `-j2`, `-Qs`: the first letter is the option
    try:
        parser._match_long_opt(word.partition("=")[0])
    except optparse.BadOptionError:  # unknown, or an ambiguous abbreviation
        return False
    return True

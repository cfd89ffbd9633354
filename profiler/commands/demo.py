"""`dagprof demo`: generate a synthetic C project, build it, profile it, compare, and tell the story.

The story itself (what is shown, in the terminal and in one HTML page) is profiler/demo.py.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from typing import Any

from .. import exitcodes
from ..cmdline import UsageError, add_command, console

NAME = "demo"
EXAMPLE = "example:  dagprof demo --files 2000"
SCONS_ARGS = False
# Sized so that the whole demo takes about a minute and the figures differ clearly: 68 s for 2000 files
# on a 2-core AMD EPYC VM at load 3 (store peak RSS 0.89x, DAG cache 19x faster than plain SCons).
DEFAULT_FILES = 2000
DEFAULT_RUNS = 1
REPORT = "demo-report.html"
PROFILE_REPORT = "demo-profile.html"


def register(subparsers: Any) -> None:
    """The `demo` subparser; its handler is run()."""
    p = add_command(
        subparsers,
        NAME,
        "generate a synthetic project, profile it, and compare plain SCons, the store, the DAG cache and Make",
        EXAMPLE,
    )
    p.add_argument("--files", type=int, default=DEFAULT_FILES, help="C files to generate (default: %(default)s)")
    p.add_argument("--dir", metavar="DIR", help="where to generate it (new or empty; default: a temporary directory)")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="timed runs per variant (default: %(default)s)")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel jobs for the full build (default: %(default)s)",
    )
    p.add_argument("--no-sizes", action="store_true", help="skip the untimed sizing passes (faster)")
    p.set_defaults(handler=run)


def _project_dir(arg: str | None) -> str:
    """The directory to generate into: a new temporary one, or the user's new or empty --dir."""
    if arg is None:
        return tempfile.mkdtemp(prefix="dagprof-demo-")
    path = os.path.abspath(arg)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UsageError(f"--dir {arg!r} exists and is not an empty directory")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise UsageError(f"--dir {arg!r}: directory {parent!r} does not exist")
    return path


def run(args: Any, scons_args: list[str]) -> int:
    """Generate, build, profile, compare, report; exit 0 when every build succeeded."""
    from rich.console import Console

    from ..compare import CompareError, CompareSpec, default_env, plain_command, run_measured, with_progress
    from ..demo import memory_story, show_story, write_demo_html
    from ..synthetic import generate

    if scons_args:
        raise UsageError("demo takes no SCons arguments after --")
    if args.files < 1:
        raise UsageError(f"--files must be >= 1, not {args.files}")
    if args.runs < 1:
        raise UsageError(f"--runs must be >= 1, not {args.runs}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, not {args.jobs}")
    root = _project_dir(args.dir)
    out = console()
    err = Console(stderr=True)
    env = default_env()
    t0 = time.perf_counter()
    with err.status(f"generating a {args.files}-file synthetic C project in {root}"):
        info = generate(root, files=args.files)
    out.print(
        f"project: {root}: {len(info.files)} C files in {len(info.dirs)} libraries, "
        f"{len(info.headers)} headers, about {info.nodes_estimate:,} SCons nodes, and an equivalent "
        "Makefile; compiler: a stand-in that writes outputs (tools/stubcc), so the figures are the "
        "build tools' own"
    )
    make = shutil.which("make") is not None
    fulls = []
    if make:  # first, so its -MMD dependency files exist and its null build checks headers too
        with err.status(f"full build with GNU Make (-j{args.jobs})"):
            full = run_measured(["make", f"-j{args.jobs}"], cwd=root, env=env)
        if full["exit_code"] != 0:
            print(f"dagprof: the make build failed (exit {full['exit_code']}) in {root}", file=sys.stderr)
            return exitcodes.BUILD_FAILED
        fulls.append(f"GNU Make {full['wall_s']:.1f} s")
    with err.status(f"full build with plain SCons (-j{args.jobs})"):
        full = run_measured(plain_command(["-Q", f"-j{args.jobs}"]), cwd=root, env=env)
    if full["exit_code"] != 0:
        print(f"dagprof: the full build failed (exit {full['exit_code']}) in {root}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    fulls.append(f"plain SCons {full['wall_s']:.1f} s")
    out.print("full build (from clean): " + ", ".join(fulls))

    profile_path = os.path.join(tempfile.mkdtemp(prefix="dagprof-demo-profile-"), "null.dagprof")
    with err.status("1/3 profiling the null build (dagprof profile)"):
        prof = run_measured(
            [sys.executable, "-m", "dagprof", "profile", "-o", profile_path, "--", "-Q"], cwd=root, env=env
        )
    if prof["exit_code"] != 0:
        print(f"dagprof: profiling the null build failed (exit {prof['exit_code']}) in {root}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    from ..profile import load

    profile = load(profile_path)
    shutil.rmtree(os.path.dirname(profile_path), ignore_errors=True)
    memory = memory_story(profile)
    try:
        result = with_progress(
            CompareSpec(
                scons_args=["-Q"],
                runs=args.runs,
                cwd=root,
                state="null",
                sizes=not args.no_sizes,
                dagcache=True,
                make=make,
            ),
            "2-3/3 null builds, alternately",
        )
    except CompareError as e:
        print(f"dagprof: {e}", file=sys.stderr)
        return exitcodes.BUILD_FAILED
    total = time.perf_counter() - t0
    show_story(out, memory, result)
    write_demo_html(os.path.join(root, REPORT), info, fulls, memory, result, total, args)
    from ..report.html import write_html

    write_html(profile, os.path.join(root, PROFILE_REPORT))
    out.print(f"HTML report: {os.path.join(root, REPORT)} (the whole profile: {PROFILE_REPORT})")
    out.print(f"demo took {total:.0f} s; remove {root} when done")
    return exitcodes.OK

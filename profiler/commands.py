"""Subcommands beyond profile/report (build, compare, demo, check); each registers a parser and a handler."""
from __future__ import annotations

import os
import sys
from typing import Callable

REGISTER: list[Callable] = []
HANDLERS: dict[str, Callable] = {}


def _register_build(add: Callable) -> None:
    p = add("build", "run an SCons build with cold node attributes spilled to a store")
    p.add_argument("--store", choices=("lmdb", "memory", "none"), default="lmdb",
                   help="where spilled values go (default: %(default)s)")
    p.add_argument("--store-path", metavar="DIR", help="store directory (default: .dagstore in the top directory)")
    p.add_argument("--spill", default="auto", metavar="ATTRS",
                   help="'auto' (previous build's access profile), 'none', or Class.attr,Class.attr,...")
    p.add_argument("--store-wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for a store another build holds, then build without it (default: 0)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write a profile (access counts + store stats)")
    p.add_argument("--sizes", action="store_true", help="size node data left resident at the end (slower)")
    p.add_argument("--summary", action="store_true",
                   help="print dagprof's own lines (store summary, DAG cache) on stderr even when it is not a terminal")
    p.add_argument("--quiet-store", action="store_true",
                   help="never print the summary line, not even on a terminal (problems are still reported)")
    p.add_argument("--dag-cache", choices=("on", "off", "verify", "reset"), default="on",
                   help="answer an up-to-date build from the last build's DAG snapshot without running SCons "
                        "(on); never (off); run SCons anyway and report if the cache would have been wrong "
                        "(verify, exit 67); forget the snapshot and turn the cache back on (reset); never with -o or "
                        "--sizes, which need a real build")


def answer_from_dag_cache(ours: list[str], scons_args: list[str]) -> int | None:
    """`dagprof build` answered before the full command line is even built: an up-to-date build costs ms.

    Only a command line this small parser fully understands is answered; anything else (an unknown or
    bad option, --output, --sizes, another store) goes the normal way, which reports errors properly.
    """
    import argparse

    class Strict(argparse.ArgumentParser):
        def error(self, message: str):  # type: ignore[override]
            raise ValueError(message)

    p = Strict(add_help=False, allow_abbrev=False)
    p.add_argument("--store", default="lmdb")
    p.add_argument("--store-path")
    p.add_argument("--dag-cache", default="on")
    p.add_argument("--spill", default="auto")
    p.add_argument("--store-wait", type=float, default=0.0)
    p.add_argument("--summary", action="store_true")
    p.add_argument("--quiet-store", action="store_true")
    try:
        args = p.parse_args(ours)
    except (ValueError, SystemExit):
        return None
    if args.store != "lmdb" or args.dag_cache != "on" or args.store_wait < 0:
        return None
    if args.store_path and os.path.exists(args.store_path) and not os.path.isdir(args.store_path):
        return None
    from .builds.scons_dag import try_answer

    global _FAST_PATH_TRIED
    _FAST_PATH_TRIED = True
    return try_answer(scons_args, args.store_path or ".dagstore", args.summary)


_FAST_PATH_TRIED = False  # the fast path already asked the cache in this process: cmd_build does not ask again


def cmd_build(args, scons_args: list[str]) -> int:
    from dagstore.policy import PolicyError

    from .builds import scons as adapter
    from .cli import UsageError, _out_path

    if args.output:
        _out_path(args.output, "--output")
    if args.store_path and os.path.exists(args.store_path) and not os.path.isdir(args.store_path):
        raise UsageError(f"--store-path {args.store_path!r} exists and is not a directory")
    summary = bool(getattr(args, "summary", False))
    store_path = args.store_path or ".dagstore"
    dag_mode = args.dag_cache if args.store == "lmdb" else "off"
    if dag_mode == "on" and not (args.output or args.sizes or _FAST_PATH_TRIED):  # a profile needs SCons
        from .builds.scons_dag import try_answer

        code = try_answer(scons_args, store_path, summary)  # imports neither SCons nor the profiler
        if code is not None:
            return code
    would_answer = None
    if args.store == "lmdb" and args.dag_cache == "off":
        from dagstore.dagcache import DagCache

        DagCache(os.path.abspath(store_path)).invalidate()  # this build may change what the snapshot says
    if dag_mode == "reset":
        from dagstore.dagcache import DagCache

        DagCache(os.path.abspath(store_path)).reset()
        dag_mode = "on"
    elif dag_mode == "verify":
        from .builds.scons_dag import would_answer as _would

        would_answer = _would(scons_args, store_path)
    hooks = []
    if args.store != "none":
        try:
            if args.store_wait < 0:
                raise UsageError("--store-wait must be >= 0 seconds")
            # the process exits after this build: no reload of spilled values at the end (see StoreHooks)
            hooks.append(adapter.StoreHooks(kind=args.store, path=args.store_path, spill=args.spill,
                                            wait_s=args.store_wait, restore_at_close=False))
        except PolicyError as e:
            raise UsageError(str(e)) from None
    elif args.spill not in ("auto", "none"):
        raise UsageError("--spill needs a store (--store lmdb or memory)")
    recorder = None
    if dag_mode != "off":
        from .builds.scons_dag import DagRecorder

        recorder = DagRecorder(scons_args, args.store_path, summary=summary)
        hooks.append(recorder)
    introspector = None
    if args.sizes:
        from .cli import make_introspector

        introspector = make_introspector(adapter, interval_s=0.5)
    # the access counters only run when the store wants a fresh profile (see PROFILE_REFRESH)
    profile = adapter.profile_build(scons_args, introspector=introspector, extra_hooks=hooks,
                                    lazy_counts=bool(hooks) and args.spill == "auto")
    profile.meta["store"] = args.store if args.store != "none" else None
    st = profile.sections.get("store")
    # dagprof's own line must not change what SCons prints into a pipe (tests compare stderr exactly):
    # on a terminal or when asked, and whenever it reports a problem; never when no store was opened
    if st and st.get("path"):
        from dagstore.spill import has_problem, summary_line

        asked = args.summary or (sys.stderr.isatty() and not args.quiet_store)
        if asked or has_problem(st):
            print(summary_line(st), file=sys.stderr)
        if asked and (st.get("plan") or {}).get("line"):
            print(st["plan"]["line"], file=sys.stderr)
    exit_code = int(profile.meta.get("exit_code", 0) or 0)
    if recorder is not None:
        from .builds.scons_dag import after_build

        verdict = after_build(recorder, exit_code, would_answer, summary)
        if verdict is not None:
            exit_code = verdict
    if args.output:
        profile.save(args.output)
    return exit_code


REGISTER.append(_register_build)
HANDLERS["build"] = cmd_build


# ---- compare and demo (profiler/compare.py, profiler/demo.py) --------------------------------------

def _register_compare(add: Callable) -> None:
    from . import compare

    compare.register(add)


def _register_demo(add: Callable) -> None:
    from . import demo

    demo.register(add)


def cmd_compare(args, scons_args: list[str]) -> int:
    from .compare import cmd_compare as run

    return run(args, scons_args)


def cmd_demo(args, scons_args: list[str]) -> int:
    from .demo import cmd_demo as run

    return run(args, scons_args)


def _register_check(add: Callable) -> None:
    from . import equivalence

    equivalence.register(add)


def cmd_check(args, scons_args: list[str]) -> int:
    from .equivalence import cmd_check as run

    return run(args, scons_args)


REGISTER.extend([_register_compare, _register_demo, _register_check])
HANDLERS["compare"] = cmd_compare
HANDLERS["demo"] = cmd_demo
HANDLERS["check"] = cmd_check

"""`dagprof build`: an SCons build with cold node attributes spilled to a store, answered from the DAG cache
when nothing changed.

The DAG cache's fast path is commands/fast.py, called by the console entry (entry.py) before this
module or argparse is imported: an up-to-date build must not import SCons, rich or the profiler.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..cmdline import UsageError, add_command, make_introspector, out_path
from . import fast

NAME = "build"
EXAMPLE = "example:  dagprof build --store lmdb --spill auto -- -Q"
SCONS_ARGS = True  # everything after `--` goes to SCons
RAN_SCONS = False  # set once SCons ran in this process: entry.main may then end it without teardown


def register(subparsers: Any) -> None:
    """The `build` subparser; its handler is run()."""
    p = add_command(
        subparsers,
        NAME,
        "run an SCons build with cold node attributes spilled to a store, "
        "or answer it from the DAG cache when nothing changed",
        EXAMPLE,
    )
    p.add_argument(
        "--store",
        choices=("lmdb", "memory", "none"),
        default="lmdb",
        help="where spilled values go (default: %(default)s)",
    )
    p.add_argument("--store-path", metavar="DIR", help="store directory (default: .dagstore in the top directory)")
    p.add_argument(
        "--spill",
        default="auto",
        metavar="ATTRS",
        help="'auto' (previous build's access profile), 'none', or Class.attr,Class.attr,...",
    )
    p.add_argument(
        "--store-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for a store another build holds, then build without it (default: 0)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="also write a profile (access counts + store stats)")
    p.add_argument("--sizes", action="store_true", help="size node data left resident at the end (slower)")
    p.add_argument(
        "--summary",
        action="store_true",
        help="print dagprof's own lines (store summary, DAG cache) on stderr even when it is not a terminal",
    )
    p.add_argument(
        "--quiet-store",
        action="store_true",
        help="never print the summary line, not even on a terminal (problems are still reported)",
    )
    p.add_argument(
        "--dag-cache",
        choices=("on", "off", "verify", "reset"),
        default="on",
        help="answer an up-to-date build from the last build's DAG snapshot without running SCons "
        "(on); never (off); run SCons anyway and report if the cache would have been wrong "
        "(verify, exit 67); forget the snapshot and turn the cache back on (reset); never with -o or "
        "--sizes, which need a real build",
    )
    p.set_defaults(handler=run)


def run(args: Any, scons_args: list[str]) -> int:
    """`dagprof build`: SCons' own exit code, or exitcodes.VERIFY_MISMATCH from --dag-cache verify."""
    from dagstore.policy import PolicyError

    from ..builds import scons as adapter

    if args.output:
        out_path(args.output, "--output")
    if args.store_path and os.path.exists(args.store_path) and not os.path.isdir(args.store_path):
        raise UsageError(f"--store-path {args.store_path!r} exists and is not a directory")
    summary = bool(getattr(args, "summary", False))
    store_path = args.store_path or ".dagstore"
    dag_mode = args.dag_cache if args.store == "lmdb" else "off"
    if dag_mode == "on" and not (args.output or args.sizes or fast.TRIED):  # a profile needs SCons
        from ..builds.scons_dag import try_answer

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
        from ..builds.scons_dag import would_answer as _would

        would_answer = _would(scons_args, store_path)
    hooks: list[Any] = []
    if args.store != "none":
        try:
            if args.store_wait < 0:
                raise UsageError("--store-wait must be >= 0 seconds")
            # the process exits after this build: no reload of spilled values at the end (see StoreHooks)
            hooks.append(
                adapter.StoreHooks(
                    kind=args.store,
                    path=args.store_path,
                    spill=args.spill,
                    wait_s=args.store_wait,
                    restore_at_close=False,
                )
            )
        except PolicyError as e:
            raise UsageError(str(e)) from None
    elif args.spill not in ("auto", "none"):
        raise UsageError("--spill needs a store (--store lmdb or memory)")
    recorder = None
    if dag_mode != "off":
        from ..builds.scons_dag import DagRecorder

        recorder = DagRecorder(scons_args, args.store_path, summary=summary)
        hooks.append(recorder)  # after the store: a damaged store is set aside before the snapshot is touched
    lazy_counts = bool(hooks) and args.spill == "auto"  # see PROFILE_REFRESH
    pause = _PauseGcAtEnd()
    hooks.insert(0, pause)
    introspector = None
    if args.sizes:
        introspector = make_introspector(adapter, interval_s=0.5)
    try:
        return _build(args, scons_args, adapter, hooks, lazy_counts, introspector, recorder, would_answer, summary)
    finally:
        pause.resume()


def _build(
    args: Any,
    scons_args: list[str],
    adapter: Any,
    hooks: list[Any],
    lazy_counts: bool,
    introspector: Any,
    recorder: Any,
    would_answer: Any,
    summary: bool,
) -> int:
    """Run SCons with the hooks, report, record the DAG snapshot; the exit code."""
    # the access counters only run when the store wants a fresh profile (see PROFILE_REFRESH)
    # the anon/file RSS peaks go into the profile only: a build that writes none does not sample them
    profile = adapter.profile_build(
        scons_args,
        introspector=introspector,
        extra_hooks=hooks,
        lazy_counts=lazy_counts,
        sample_rss=bool(args.output),
    )
    global RAN_SCONS
    RAN_SCONS = True
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
        from ..builds.scons_dag import after_build

        verdict = after_build(recorder, exit_code, would_answer, summary)
        if verdict is not None:
            exit_code = verdict
    if args.output:
        profile.save(args.output)
    return exit_code


class _PauseGcAtEnd:
    """Pauses Python's cyclic collector once SCons has finished, until the command returns.

    Why: what runs then (the store's summary, the DAG snapshot's walk and write) makes no reference
    cycles, but its allocations trigger one more full collection over the whole finished node graph
    (~0.2 s at 5,000 files, docs/benchmarks.md); nothing it could free would lower the peak any more.
    """

    WANTS_NODES = False  # scons_run: not called per task

    def __init__(self) -> None:
        self.paused = False

    def on_phase(self, name: str) -> None:
        pass

    def on_node_done(self, nodes: list[object]) -> None:
        pass

    def on_finish(self) -> None:
        import gc

        if gc.isenabled():
            gc.disable()
            self.paused = True

    def resume(self) -> None:
        """The collector as it was (an in-process caller goes on with its own objects)."""
        if self.paused:
            import gc

            gc.enable()
            self.paused = False

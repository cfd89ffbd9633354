"""Running SCons in this process exactly as `scons ARGS` would (run_scons), with phases and safe points
reported, and one profiled build on top of it (profile_build)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..rss import own_hwm
from .scons_nodes import PHASE_BUILD, PHASE_READ, PHASE_SCONSIGN, PHASE_STARTUP, live_nodes, node_classes, scons_version
from .scons_store import KEEP_ATTRS, SCONS_READS, store_candidates
from .scons_wrap import WRAPPER_FILE, call_as_script, hidden, hook_safe_points

if TYPE_CHECKING:
    from ..profile import Profile


class BuildHooks(Protocol):
    """What a component (recorder, introspector, store) may learn from the build."""

    def on_phase(self, name: str) -> None: ...  # noqa: E704

    def on_node_done(self, nodes: list[object]) -> None: ...

    def on_finish(self) -> None: ...


@dataclass
class RunResult:
    """What an in-process SCons run did, for the profile's metadata."""

    exit_code: int
    wall_s: float
    peak_rss: int
    phases: list[dict[str, Any]] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)


def scons_argv0() -> str:
    """What `scons` itself has as sys.argv[0]: a path that re-runs SCons as `sys.executable argv0 ARGS`.

    The `scons` console script installed beside this Python (a venv's bin/), else the `__main__.py` of
    the SCons package this process imports (runnable as a script: it imports SCons.Script and runs main).
    """
    import SCons

    here = os.path.join(os.path.dirname(sys.executable), "scons")
    if os.path.isfile(here):
        try:
            with open(here, "rb") as f:
                head = f.read(4096)
        except OSError:
            head = b""
        if head.startswith(b"#!") and b"SCons" in head:  # a Python launcher for SCons, not a binary
            return here
    return os.path.join(os.path.dirname(os.path.abspath(SCons.__file__)), "__main__.py")


def run_scons(
    args: list[str],
    on_phase: Callable[[str], None] | None = None,
    on_node_done: Callable[[list[object]], None] | None = None,
    before_exit: Callable[[], None] | None = None,
) -> RunResult:
    """Run SCons in this process exactly as `scons ARGS` would, reporting phases and finished nodes."""
    import SCons.Script.Main as Main
    import SCons.Script.SConscript  # noqa: F401  (the name is shadowed by a function in SCons.Script)

    from ..classpatch import ClassPatches

    _SConscript = sys.modules["SCons.Script.SConscript"]
    phases: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def mark(name: str) -> None:
        now = time.perf_counter() - t0
        if phases:
            if phases[-1]["name"] == name:
                return
            phases[-1]["end_s"] = now
        phases.append({"name": name, "start_s": now, "end_s": now})
        if on_phase is not None:
            on_phase(name)

    patches = ClassPatches()
    depth = [0]
    orig_sconscript = _SConscript._SConscript

    def enter() -> None:
        if depth[0] == 0 and (not phases or phases[-1]["name"] == PHASE_STARTUP):
            mark(PHASE_READ)
        depth[0] += 1

    def leave() -> None:
        depth[0] -= 1

    # SCons' Export()/Import() find the user's namespace by walking up the stack past every frame
    # whose module is SCons.Script.SConscript, so the wrapper must look like part of that module.
    ns: dict[str, Any] = {"__name__": _SConscript.__name__, "_orig": orig_sconscript, "_enter": enter, "_leave": leave}
    exec(
        compile(
            "def _SConscript(*a, **kw):\n"
            "    _enter()\n"
            "    try:\n"
            "        return _orig(*a, **kw)\n"
            "    finally:\n"
            "        _leave()\n",
            WRAPPER_FILE,
            "exec",
        ),
        ns,
    )
    sconscript = ns["_SConscript"]

    orig_build_targets = Main._build_targets

    def build_targets(*a, **kw):
        mark(PHASE_BUILD)
        return orig_build_targets(*a, **kw)

    patches.set(_SConscript, "_SConscript", sconscript)
    patches.set(Main, "_build_targets", hidden(build_targets))
    hook_safe_points(patches, lambda: mark(PHASE_SCONSIGN), on_node_done)

    saved_argv = sys.argv
    saved_cwd = os.getcwd()
    exit_code = 0
    mark(PHASE_STARTUP)
    argv0 = scons_argv0()
    sys.argv = [argv0, *args]
    try:
        call_as_script(argv0, Main.main)
    except SystemExit as e:
        code = e.code
        if code is None:
            exit_code = 0
        elif isinstance(code, int):
            exit_code = code
        else:
            print(code, file=sys.stderr)
            exit_code = 1
    finally:
        sys.argv = saved_argv
        end = time.perf_counter() - t0
        if phases:
            phases[-1]["end_s"] = end
        # the build's own peak, before anything dagprof does afterwards (sizing) can raise it
        peak = own_hwm()
        try:
            if before_exit is not None:
                before_exit()
        finally:
            patches.undo()
            os.chdir(saved_cwd)  # -C/--directory changes the cwd of this process
    return RunResult(exit_code=exit_code, wall_s=end, peak_rss=peak, phases=phases, argv=list(args))


def profile_build(
    args: list[str],
    readers: bool = False,
    introspector: Any | None = None,
    extra_hooks: Iterable[BuildHooks] = (),
    lazy_counts: bool = False,
    sample_rss: bool = True,
) -> Profile:
    """Run one SCons build in-process with access counters (and optional introspection/store hooks).

    lazy_counts: install the counters only if a hook asks for them once SConscripts start being read
    (the store wants a fresh access profile only now and then; counting costs a few percent).
    sample_rss: sample the anonymous and file-backed RSS peaks (a thread reading /proc every 20 ms;
    its wake-ups cost a build ~1%); without it the profile has the kernel's total peak only.
    """
    import datetime
    import platform

    from .. import __version__
    from ..access import AccessRecorder
    from ..measure import machine_description
    from ..profile import Profile

    recorder = AccessRecorder(readers=readers, phase=PHASE_STARTUP)
    hooks = list(extra_hooks)
    for h in hooks:  # guards first: the counters then wrap them, so reads still count
        if hasattr(h, "install"):
            h.install()
        if hasattr(h, "bind"):
            h.bind(recorder)
    counted = [False]

    marks: list[tuple[Any, int]] = []  # (hook, its patch depth when the counters went on top of it)

    def count() -> None:
        marks.extend((h, h.mark()) for h in hooks if hasattr(h, "mark"))
        for cls in node_classes():
            recorder.instrument(cls)
        counted[0] = True

    if not lazy_counts:
        count()
    if introspector is not None:
        introspector.start()

    def on_phase(name: str) -> None:
        recorder.set_phase(name)
        if introspector is not None:
            introspector.mark(name)
        for h in hooks:
            h.on_phase(name)
        if lazy_counts and not counted[0] and name == PHASE_READ and any(getattr(h, "counting", False) for h in hooks):
            count()

    on_done = None
    # a hook that only reads finished nodes (READS_DONE_NODES) sees them before one that spills or
    # evicts their values; every other call keeps the hooks' order. A hook with WANTS_NODES = False
    # is not called per task (no task wrapper at all when no hook wants them)
    node_hooks = sorted(
        (h for h in hooks if getattr(h, "WANTS_NODES", True)), key=lambda h: not getattr(h, "READS_DONE_NODES", False)
    )
    if node_hooks:

        def on_done(nodes: list[object]) -> None:
            for h in node_hooks:
                h.on_node_done(nodes)

    sections: dict[str, Any] = {}

    def before_exit() -> None:
        for h in hooks:
            h.on_finish()
        if introspector is not None:
            sections.update(introspector.finish(live_nodes()))

    from ..rss import PeakSampler

    started = datetime.datetime.now().isoformat(timespec="seconds")
    sampler = PeakSampler().start() if sample_rss else None
    rss: dict[str, int] = {}

    def stop_sampler() -> None:
        if sampler is not None:
            rss.update(sampler.stop())

    def before_exit_all() -> None:
        stop_sampler()
        before_exit()

    try:
        result = run_scons(args, on_phase=on_phase, on_node_done=on_done, before_exit=before_exit_all)
    finally:
        try:  # undo newest first: what hooks patched after the counters, the counters, then the rest
            for h, depth in reversed(marks):
                h.release_above(depth)
        finally:
            recorder.restore()
            if introspector is not None:
                introspector.restore()
            for h in hooks:
                if hasattr(h, "close"):
                    h.close()
    cand = store_candidates()
    meta = {
        "tool_version": __version__,
        "scons_version": scons_version(),
        "python_version": platform.python_version(),
        "argv": list(args),
        "cwd": os.getcwd(),
        "wall_s": result.wall_s,
        "peak_rss": result.peak_rss,
        **rss,
        "exit_code": result.exit_code,
        "started": started,
        "machine": machine_description(),
        "fast_counters": recorder.fast,
        "spillable": {c: list(a) for c, a in cand.spill.items()},
        "spill_collapse": {c: list(a) for c, a in cand.collapse.items() if a},  # collapsed under every plan
        "spill_reuse": {c: list(a) for c, a in cand.reuse.items() if a},  # spilled right after a scan (whatif)
        "spill_keep": dict(KEEP_ATTRS),  # never chosen by the one rule for "cold" (dagstore.policy)
        "scons_reads": dict(SCONS_READS),  # what SCons' code reads in some builds: never advised away
        "late_phases": [PHASE_BUILD, PHASE_SCONSIGN],  # for the one rule of "cold" (dagstore.policy)
        "readers_counted": readers,
        "access_counted": counted[0],
    }
    for h in hooks:
        extra = getattr(h, "profile_sections", None)
        if extra is not None:
            sections.update(extra())
    return Profile(meta=meta, phases=result.phases, access=recorder.rows(), sections=sections)

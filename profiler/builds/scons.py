"""The one place that knows SCons: node classes, node keys, build phases, safe points, in-process runs.

Everything else in dagprof (access counters, sizing, the store) is generic; this adapter tells them
which classes to watch, when a phase starts, and when a node is done (a safe point for spilling).
"""
from __future__ import annotations

import gc
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

if TYPE_CHECKING:
    from ..profile import Profile

PHASE_STARTUP = "startup"
PHASE_READ = "read SConscripts"
PHASE_BUILD = "evaluate/build"
PHASE_SCONSIGN = "write .sconsign"
PHASES = (PHASE_STARTUP, PHASE_READ, PHASE_BUILD, PHASE_SCONSIGN)

# (module, class) of every SCons Node class the issue names; resolved lazily so importing this
# module does not import SCons.
NODE_CLASS_NAMES = (
    ("SCons.Node", "Node"),
    ("SCons.Node.FS", "Base"),
    ("SCons.Node.FS", "File"),
    ("SCons.Node.FS", "Dir"),
    ("SCons.Node.FS", "Entry"),
    ("SCons.Node.FS", "RootDir"),
    ("SCons.Node.Alias", "Alias"),
    ("SCons.Node.Python", "Value"),
)

# Objects that sizing must not walk into from a node: they are shared by many nodes.
BOUNDARY_CLASS_NAMES = (
    ("SCons.Environment", "Base"),
    ("SCons.Environment", "SubstitutionEnvironment"),
    ("SCons.Executor", "Executor"),
    ("SCons.Executor", "Null"),
    ("SCons.Node.FS", "FS"),
    ("SCons.Builder", "BuilderBase"),
    ("SCons.Scanner", "ScannerBase"),
    ("SCons.Action", "ActionBase"),
)


def _load(pairs: Iterable[tuple[str, str]]) -> list[type]:
    import importlib

    out = []
    for mod, name in pairs:
        try:
            out.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            continue  # a class renamed in another SCons release: watch what exists
    return out


def node_classes() -> list[type]:
    """The SCons Node classes to instrument, most derived first (so each gets its own counters)."""
    classes = _load(NODE_CLASS_NAMES)
    return sorted(classes, key=lambda c: -len(c.__mro__))


def boundary_classes() -> tuple[type, ...]:
    """Shared SCons objects where per-node sizing stops."""
    return tuple(_load(BOUNDARY_CLASS_NAMES))


def scons_version() -> str:
    import SCons

    return getattr(SCons, "__version__", "unknown")


def live_nodes() -> list[object]:
    """Every SCons node alive now, found through the garbage collector (nodes are gc-tracked)."""
    import SCons.Node

    node = SCons.Node.Node
    return [o for o in gc.get_objects() if isinstance(o, node)]


def node_key(node: object) -> str | None:
    """A stable key for a node, valid across builds of the same tree (None: no stable key)."""
    import SCons.Node.Alias
    import SCons.Node.FS

    if isinstance(node, SCons.Node.FS.Base):
        return "F:" + node.get_abspath()
    if isinstance(node, SCons.Node.Alias.Alias):
        return "A:" + node.name
    return None


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


class _Patches:
    """Monkeypatches on SCons entry points, undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[object, str, object]] = []

    def replace(self, owner: object, name: str, new: object) -> object:
        old = getattr(owner, name)
        self._undo.append((owner, name, old))
        setattr(owner, name, new)
        return old

    def undo(self) -> None:
        while self._undo:
            owner, name, old = self._undo.pop()
            setattr(owner, name, old)


def run_scons(
    args: list[str],
    on_phase: Callable[[str], None] | None = None,
    on_node_done: Callable[[list[object]], None] | None = None,
    before_exit: Callable[[], None] | None = None,
) -> RunResult:
    """Run SCons in this process exactly as `scons ARGS` would, reporting phases and finished nodes."""
    import SCons.Script.Main as Main
    import SCons.Script.SConscript  # noqa: F401  (the name is shadowed by a function in SCons.Script)
    import SCons.SConsign as SConsign
    import SCons.Taskmaster as Taskmaster

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

    patches = _Patches()
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
    ns: dict[str, Any] = {"__name__": _SConscript.__name__, "_orig": orig_sconscript, "_enter": enter,
                          "_leave": leave}
    exec(
        "def _SConscript(*a, **kw):\n"
        "    _enter()\n"
        "    try:\n"
        "        return _orig(*a, **kw)\n"
        "    finally:\n"
        "        _leave()\n",
        ns,
    )
    sconscript = ns["_SConscript"]

    orig_build_targets = Main._build_targets

    def build_targets(*a, **kw):
        mark(PHASE_BUILD)
        return orig_build_targets(*a, **kw)

    orig_write = SConsign.write

    def write_sconsign(*a, **kw):
        mark(PHASE_SCONSIGN)
        return orig_write(*a, **kw)

    patches.replace(_SConscript, "_SConscript", sconscript)
    patches.replace(Main, "_build_targets", build_targets)
    patches.replace(SConsign, "write", write_sconsign)

    if on_node_done is not None:
        orig_postprocess = Taskmaster.Task.postprocess

        def postprocess(self):
            orig_postprocess(self)
            on_node_done(self.targets)  # the task is finished: its targets are a safe point

        patches.replace(Taskmaster.Task, "postprocess", postprocess)

    saved_argv = sys.argv
    saved_cwd = os.getcwd()
    exit_code = 0
    mark(PHASE_STARTUP)
    sys.argv = ["scons", *args]
    try:
        Main.main()
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
        try:
            if before_exit is not None:
                before_exit()
        finally:
            patches.undo()
            os.chdir(saved_cwd)  # -C/--directory changes the cwd of this process
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return RunResult(exit_code=exit_code, wall_s=end, peak_rss=peak, phases=phases, argv=list(args))


def _machine() -> str:
    import platform

    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.system()} {platform.release()}"


def profile_build(
    args: list[str],
    readers: bool = False,
    introspector: Any | None = None,
    extra_hooks: Iterable[BuildHooks] = (),
) -> "Profile":
    """Run one SCons build in-process with access counters (and optional introspection/store hooks)."""
    import datetime
    import platform

    from .. import __version__
    from ..access import AccessRecorder
    from ..profile import Profile

    recorder = AccessRecorder(readers=readers, phase=PHASE_STARTUP)
    hooks = list(extra_hooks)
    for cls in node_classes():
        recorder.instrument(cls)
    if introspector is not None:
        introspector.start()

    def on_phase(name: str) -> None:
        recorder.set_phase(name)
        if introspector is not None:
            introspector.mark(name)
        for h in hooks:
            h.on_phase(name)

    on_done = None
    if hooks:
        def on_done(nodes: list[object]) -> None:
            for h in hooks:
                h.on_node_done(nodes)

    sections: dict[str, Any] = {}

    def before_exit() -> None:
        for h in hooks:
            h.on_finish()
        if introspector is not None:
            sections.update(introspector.finish(live_nodes()))

    started = datetime.datetime.now().isoformat(timespec="seconds")
    try:
        result = run_scons(args, on_phase=on_phase, on_node_done=on_done, before_exit=before_exit)
    finally:
        recorder.restore()
        if introspector is not None:
            introspector.restore()
    meta = {
        "tool_version": __version__,
        "scons_version": scons_version(),
        "python_version": platform.python_version(),
        "argv": list(args),
        "cwd": os.getcwd(),
        "wall_s": result.wall_s,
        "peak_rss": result.peak_rss,
        "exit_code": result.exit_code,
        "started": started,
        "machine": _machine(),
        "fast_counters": recorder.fast,
        "readers_counted": readers,
    }
    for h in hooks:
        extra = getattr(h, "profile_sections", None)
        if extra is not None:
            sections.update(extra())
    return Profile(meta=meta, phases=result.phases, access=recorder.rows(), sections=sections)

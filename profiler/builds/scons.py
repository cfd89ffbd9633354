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
    from dagstore.codec import Codec

    from ..classpatch import ClassPatches
    from dagstore.policy import Candidates

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


# SCons names the deepest frame whose file is not under a `SCons` directory as the place of a warning or
# error (SCons.Script.Main.find_deepest_user_frame). dagprof's wrappers sit between SCons' own frames, so
# their code says it is from such a directory (a file that does not exist: no source line is shown).
WRAPPER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SCons", "dagprof-wrapper")


def _hidden(fn: Callable) -> Callable:
    """`fn` with its code re-labelled as SCons' own, for SCons' stack walks (closures and defaults kept)."""
    import types

    code = fn.__code__.replace(co_filename=WRAPPER_FILE)
    out = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    out.__qualname__, out.__doc__, out.__kwdefaults__ = fn.__qualname__, fn.__doc__, fn.__kwdefaults__
    return out


def _call_as_script(argv0: str, main: Callable[[], Any]) -> None:
    """Call `main` from a frame that looks like the line of `argv0` (the scons script) that calls it.

    Plain `scons` reports a warning raised under SCons' own frames at that line of its script.
    """
    line = 1
    try:
        with open(argv0, encoding="utf-8", errors="replace") as f:
            for i, text in enumerate(f, 1):
                t = text.strip()
                if "main()" in t and not t.startswith(("#", "def ", "from ", "import ")):
                    line = i
                    break
    except OSError:
        pass
    exec(compile("\n" * (line - 1) + "_dagprof_main()\n", argv0, "exec"), {"_dagprof_main": main})  # noqa: S102


def _hook_safe_points(patches: "ClassPatches", before_sconsign: Callable[[], None],
                      on_node_done: Callable[[list[object]], None] | None) -> None:
    """Wrap the two SCons points every component needs: a finished task, and the .sconsign write."""
    import SCons.SConsign as SConsign
    import SCons.Taskmaster as Taskmaster

    orig_write = SConsign.write

    def write_sconsign(*a, **kw):
        before_sconsign()
        return orig_write(*a, **kw)

    patches.set(SConsign, "write", _hidden(write_sconsign))
    if on_node_done is not None:
        orig_postprocess = Taskmaster.Task.postprocess

        def postprocess(self):
            orig_postprocess(self)
            on_node_done(self.targets)  # the task is finished: its targets are a safe point

        patches.set(Taskmaster.Task, "postprocess", _hidden(postprocess))


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
    ns: dict[str, Any] = {"__name__": _SConscript.__name__, "_orig": orig_sconscript, "_enter": enter,
                          "_leave": leave}
    exec(compile(
        "def _SConscript(*a, **kw):\n"
        "    _enter()\n"
        "    try:\n"
        "        return _orig(*a, **kw)\n"
        "    finally:\n"
        "        _leave()\n",
        WRAPPER_FILE, "exec"), ns)
    sconscript = ns["_SConscript"]

    orig_build_targets = Main._build_targets

    def build_targets(*a, **kw):
        mark(PHASE_BUILD)
        return orig_build_targets(*a, **kw)

    patches.set(_SConscript, "_SConscript", sconscript)
    patches.set(Main, "_build_targets", _hidden(build_targets))
    _hook_safe_points(patches, lambda: mark(PHASE_SCONSIGN), on_node_done)

    saved_argv = sys.argv
    saved_cwd = os.getcwd()
    exit_code = 0
    mark(PHASE_STARTUP)
    argv0 = scons_argv0()
    sys.argv = [argv0, *args]
    try:
        _call_as_script(argv0, Main.main)
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
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        try:
            if before_exit is not None:
                before_exit()
        finally:
            patches.undo()
            os.chdir(saved_cwd)  # -C/--directory changes the cwd of this process
    return RunResult(exit_code=exit_code, wall_s=end, peak_rss=peak, phases=phases, argv=list(args))


def _machine() -> str:
    import platform

    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, {platform.system()} {platform.release()}"


def profile_build(
    args: list[str],
    readers: bool = False,
    introspector: Any | None = None,
    extra_hooks: Iterable[BuildHooks] = (),
    lazy_counts: bool = False,
) -> "Profile":
    """Run one SCons build in-process with access counters (and optional introspection/store hooks).

    lazy_counts: install the counters only if a hook asks for them once SConscripts start being read
    (the store wants a fresh access profile only now and then; counting costs a few percent).
    """
    import datetime
    import platform

    from .. import __version__
    from ..access import AccessRecorder
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
        if lazy_counts and not counted[0] and name == PHASE_READ and any(getattr(h, "counting", False)
                                                                          for h in hooks):
            count()

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

    from ..rss import PeakSampler

    started = datetime.datetime.now().isoformat(timespec="seconds")
    sampler = PeakSampler().start()
    rss: dict[str, int] = {}

    def stop_sampler() -> None:
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
        "machine": _machine(),
        "fast_counters": recorder.fast,
        "spillable": {c: list(a) for c, a in store_candidates().spill.items()},
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


# ---------------------------------------------------------------------------------------------
# The node store (dagstore) on a SCons build: which attributes are safe, keys, stamps, hooks.

# Attributes whose EMPTY containers collapse to a shared marker once a node's task is done. SCons
# re-reads (and re-creates) them through the guard if it ever needs them again; nobody keeps a
# reference to these containers across a task boundary.
COLLAPSE_ATTRS = ("waiting_parents", "waiting_s_e", "side_effects", "sources", "sources_set", "depends",
                  "depends_set", "ignore", "ignore_set", "implicit", "prerequisites")
FS_COLLAPSE_ATTRS = ("scanner_paths", "_path_elements")
# Attributes that may be spilled once a node's task is done (value semantics; never merged by identity).
SPILL_ATTRS = ("includes", "implicit", "implicit_set", "binfo", "contentsig", "cachedir_csig", "cachesig")
DIR_SPILL_ATTRS = ("on_disk_entries", "released_target_info")
# Content-derived: the include names scanned from a file depend only on its bytes, so they are
# reused by the next build when the file's stamp is unchanged.
REUSE_ATTRS = ("includes",)
# binfo is not in the defaults: its lists are shared with the .sconsign entry it was merged into, so
# spilling it encodes ~1 KB per target and frees almost nothing (measured: peak RSS unchanged, +7 s).
# `auto` never picks it (KEEP_ATTRS); an explicit --spill does, and the plan line says it frees little.
KEEP_ATTRS = {"binfo": "shared with .sconsign: frees little",
              "includes": "re-read by the scanners: kept for reuse"}
# includes is not in the defaults either: the scanners read a file's include names again for every
# target that depends on it (issue 13: 86% of spilled include lists were reloaded). They are recorded
# for the next build and stay in memory (reuse), under every plan.
DEFAULT_COLD = {"File": ("implicit_set", "implicit"),
                "Entry": ("implicit_set", "implicit")}
# Node attributes SCons' own code reads in some builds even when this one never did: the report's
# advice never says to stop storing them (dagprof.analyze, via meta "scons_reads"). attribute -> reader.
SCONS_READS = {
    "waiting_s_e": "the Taskmaster, when SideEffect() is used",
    "side_effects": "the Taskmaster, when SideEffect() is used",
    "side_effect": "the Taskmaster, when SideEffect() is used",
    "waiting_parents": "the Taskmaster, when a child finishes",
    "ref_count": "the Taskmaster",
    "state": "the Taskmaster",
    "attributes": "the Taskmaster and builders",
    "always_build": "the Taskmaster and Deciders, when AlwaysBuild() is used",
    "precious": "the build step, when Precious() is used",
    "pseudo": "the build step, when Pseudo() is used",
    "noclean": "scons -c, when NoClean() is used",
    "nocache": "CacheDir, when NoCache() is used",
    "cached": "CacheDir retrieval",
    "cachedir_csig": "CacheDir",
    "cachesig": "CacheDir",
    "contentsig": "content Deciders (get_contents_sig)",
    "ninfo": "Deciders and .sconsign",
    "binfo": "Deciders and .sconsign",
    "implicit": "the Taskmaster and Deciders (children)",
    "implicit_set": "implicit dependency bookkeeping",
    "includes": "the scanners",
    "depends": "the Taskmaster, when Depends() is used",
    "depends_set": "Depends()",
    "ignore": "the Taskmaster and Deciders, when Ignore() is used",
    "ignore_set": "Ignore()",
    "prerequisites": "the Taskmaster, when Requires() is used",
    "sources": "the Taskmaster, builders and Deciders",
    "sources_set": "builders",
    "linked": "VariantDir",
    "released_target_info": "release_target_info",
    "on_disk_entries": "Dir.entry_exists_on_disk (Glob, scanners)",
    "scanner_paths": "the scanners",
    "_memo": "memoized methods",
}
STORE_CLASSES = ("File", "Dir", "Entry", "RootDir", "Alias", "Value")
PROFILE_REFRESH = 10  # builds between two access-counted builds under `dagprof build --spill auto`
# Memoized results SCons recomputes from the file system on demand, and drops itself whenever a node is
# built (Node.clear_memoized_values): once a node's task is done they are evicted from its _memo.
MEMO_EVICT = frozenset(("stat", "_children_get", "_save_str", "get_timestamp", "get_size"))


def store_candidates() -> "Candidates":
    """Tell the store's policy what is safe on each SCons node class."""
    from dagstore.policy import Candidates

    from ..access import slot_names

    classes = {c.__name__: c for c in node_classes() if c.__name__ in STORE_CLASSES}
    spill, collapse, reuse, all_attrs = {}, {}, {}, {}
    import SCons.Node.FS as FS

    for name, cls in classes.items():
        is_fs = issubclass(cls, FS.Base)
        slots = slot_names(cls)
        all_attrs[name] = tuple(slots)
        attrs = SPILL_ATTRS + (DIR_SPILL_ATTRS if issubclass(cls, FS.Dir) else ())
        spill[name] = tuple(a for a in attrs if a in slots)
        collapse[name] = tuple(a for a in COLLAPSE_ATTRS + (FS_COLLAPSE_ATTRS if is_fs else ()) if a in slots)
        reuse[name] = tuple(a for a in REUSE_ATTRS if a in slots) if is_fs else ()
    return Candidates(spill=spill, collapse=collapse, reuse=reuse, default_cold=dict(DEFAULT_COLD),
                      all_attrs=all_attrs, late_phases=(PHASE_BUILD, PHASE_SCONSIGN), keep=dict(KEEP_ATTRS))


def file_stamp(node: object) -> bytes | None:
    """size + mtime_ns + inode + ctime_ns of the file SCons reads for this node: any edit changes it."""
    import SCons.Node.FS as FS

    if type(node) is not FS.File:  # an Entry would be morphed by rfile(); no stamp, no reuse
        return None
    try:
        # the bytes SCons scans come from rfile(): the node itself, or for a VariantDir with
        # duplicate=0 (and Repositories) the source file it stands for
        st = os.stat(node.rfile().get_abspath())
    except OSError:
        return None
    return b"%d:%d:%d:%d" % (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class _Opaque(Exception):
    """A scanner part whose effect on the scanned names cannot be told from outside: no reuse."""


_SIMPLE = (str, bytes, int, float, bool, complex, type(None))


def _scons_dir() -> str:
    import SCons

    return os.path.dirname(os.path.abspath(SCons.__file__)) + os.sep


def _code_parts(code: Any, out: list[str], names: set[str]) -> None:
    """A code object's behaviour (bytecode, constants, names), not its line numbers."""
    out.append(f"code:{code.co_argcount}:{code.co_flags}:{code.co_code.hex()}:{code.co_names}:{code.co_varnames}")
    names.update(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            _code_parts(c, out, names)
        else:
            out.append(f"const:{type(c).__name__}:{c!r}")


class _ScannerSignature:
    """Everything that decides the names a scanner finds, flattened to strings (raises _Opaque)."""

    def __init__(self) -> None:
        import SCons.Environment
        import SCons.Node
        import SCons.Node.FS

        self.scons_dir = _scons_dir()
        self.opaque = (SCons.Node.Node, SCons.Node.FS.FS, SCons.Environment.SubstitutionEnvironment)
        self.out: list[str] = []
        self.path: set[int] = set()

    def trusted(self, code: Any) -> bool:
        return os.path.abspath(code.co_filename).startswith(self.scons_dir)

    def scons_class(self, klass: type) -> bool:
        """Defined in an SCons module (a class in an SConstruct says SCons.Script but is not found there)."""
        mod = sys.modules.get(klass.__module__)
        if not os.path.abspath(getattr(mod, "__file__", None) or "/").startswith(self.scons_dir):
            return False
        found: Any = mod
        for part in klass.__qualname__.split("."):
            found = getattr(found, part, None)
        return found is klass

    def add(self, obj: Any, depth: int = 0) -> None:
        import re
        import types

        out = self.out
        if depth > 12:
            raise _Opaque("too deep")
        tp = type(obj)
        if tp in _SIMPLE:
            out.append(f"{tp.__name__}:{obj!r}")
            return
        if isinstance(obj, re.Pattern):
            out.append(f"re:{obj.pattern!r}:{obj.flags}")
            return
        if isinstance(obj, types.ModuleType):
            out.append(f"module:{obj.__name__}")
            return
        if id(obj) in self.path:
            out.append("cycle")
            return
        self.path.add(id(obj))
        try:
            self._add(obj, tp, depth + 1)
        finally:
            self.path.discard(id(obj))

    def _add(self, obj: Any, tp: type, depth: int) -> None:
        import types

        out = self.out
        if tp in (list, tuple):
            out.append(f"{tp.__name__}:{len(obj)}")
            for v in obj:
                self.add(v, depth)
        elif tp in (set, frozenset, dict):
            items = obj.items() if tp is dict else ((v, None) for v in obj)
            parts = []
            for k, v in items:
                sub = _ScannerSignature.__new__(_ScannerSignature)
                sub.__dict__.update(self.__dict__, out=[])
                sub.add(k, depth)
                sub.add(v, depth)
                parts.append("\x1e".join(sub.out))
            out.append(f"{tp.__name__}:{len(parts)}")
            out.extend(sorted(parts))
        elif isinstance(obj, types.FunctionType):
            self.function(obj, depth)
        elif isinstance(obj, types.MethodType):
            out.append("method")
            self.add(obj.__func__, depth)
            self.add(obj.__self__, depth)
        elif isinstance(obj, (staticmethod, classmethod)):
            out.append(tp.__name__)
            self.add(obj.__func__, depth)
        elif isinstance(obj, types.BuiltinFunctionType):
            owner = obj.__self__
            if owner is not None and not isinstance(owner, types.ModuleType):
                raise _Opaque(f"builtin method bound to {type(owner).__name__}")
            out.append(f"builtin:{obj.__module__}.{obj.__qualname__}")
        elif isinstance(obj, type):
            self.cls(obj, depth)
        elif isinstance(obj, self.opaque):
            raise _Opaque(tp.__name__)
        else:
            state = getattr(obj, "__dict__", None)
            slots = [n for k in tp.__mro__ for n in getattr(k, "__slots__", ()) if n not in ("__dict__", "__weakref__")]
            if state is None and not slots:
                raise _Opaque(tp.__name__)
            out.append("object")
            self.cls(tp, depth)
            self.add(dict(state or {}), depth)
            self.add({n: getattr(obj, n, None) for n in slots}, depth)

    def function(self, f: Any, depth: int) -> None:
        code = f.__code__
        self.out.append(f"function:{f.__module__}.{f.__qualname__}")
        names: set[str] = set()
        _code_parts(code, self.out, names)
        self.add(f.__defaults__, depth)
        self.add(f.__kwdefaults__, depth)
        if self.trusted(code):  # SCons' own code: its module globals are fixed by the SCons version
            for cell in f.__closure__ or ():
                self.add(cell.cell_contents, depth)
            return
        if f.__closure__:  # free variables of user code: what they hold decides the result
            raise _Opaque(f"closure {f.__qualname__}")
        g = f.__globals__
        for name in sorted(names):  # globals the user code may read (attribute names included: harmless)
            if name in g and name not in ("__builtins__",):
                self.out.append(f"global:{name}")
                self.add(g[name], depth)

    def cls(self, cls: type, depth: int) -> None:
        self.out.append(f"class:{cls.__module__}.{cls.__qualname__}")
        for klass in cls.__mro__:
            if klass.__module__ == "builtins" or self.scons_class(klass):
                continue  # SCons' own class: its name says what it does (dagprof's patches on it do not count)
            for name, v in sorted(klass.__dict__.items()):
                if name in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__slots__"):
                    continue
                self.out.append(f"member:{klass.__qualname__}.{name}")
                self.add(v, depth)


def scanner_signature(scanner: object) -> bytes | None:
    """What decides the include names `scanner` stores on a node, hashed; None: it cannot be told (no reuse).

    The scanner's class (and for classes not from SCons, the code of every method), its state (regex,
    skeys, recursive flag, path function, argument...), and for functions their code, defaults,
    closures (refused outside SCons) and the globals user code may read.
    """
    import hashlib

    sig = _ScannerSignature()
    try:
        sig.add(scanner)
    except _Opaque:
        return None
    return hashlib.blake2b("\x1f".join(sig.out).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest().encode()


def make_codec() -> "Codec":
    """msgpack codec that knows SCons' NodeInfo/BuildInfo and maps node references to the same nodes."""
    from dagstore.codec import Codec

    import SCons.Node

    node_cls = SCons.Node.Node
    refs: dict[str, object] = {}

    def key(obj: object) -> str | None:
        if isinstance(obj, node_cls):
            k = str(id(obj))
            refs[k] = obj  # a spilled value referring to a node keeps that node reachable, as it did in memory
            return k
        return None

    codec = Codec(resolve_node=refs.__getitem__, node_key=key)
    codec.node_refs = refs  # accounted in the store section (Spiller.own_memory), cleared by forget_node_refs()
    for cls in _load((
        ("SCons.Node.FS", "FileNodeInfo"), ("SCons.Node.FS", "FileBuildInfo"),
        ("SCons.Node.FS", "DirNodeInfo"), ("SCons.Node.FS", "DirBuildInfo"),
        ("SCons.Node.Alias", "AliasNodeInfo"), ("SCons.Node.Alias", "AliasBuildInfo"),
        ("SCons.Node.Python", "ValueNodeInfo"), ("SCons.Node.Python", "ValueBuildInfo"),
        ("SCons.Node", "NodeInfoBase"), ("SCons.Node", "BuildInfoBase"),
    )):
        codec.register(cls)
    return codec


def _then(method: Callable, collapse_now: Callable, names: tuple[str, ...]) -> Callable:
    """`method`, followed by collapsing the empty containers it just created."""
    def wrapper(node, *a, **kw):
        method(node, *a, **kw)
        collapse_now(node, names)

    return wrapper


class StoreHooks:
    """Plugs a dagstore Spiller into a SCons build: guards at start, spills when a node's task is done."""

    def __init__(self, kind: str = "lmdb", path: str | None = None, spill: str = "auto",
                 collapse_at_creation: bool = True, wait_s: float = 0.0, restore_at_close: bool = True) -> None:
        from dagstore.policy import choose
        from dagstore.spill import Spiller

        from ..classpatch import ClassPatches

        self.kind = kind
        self.path_arg = path
        self.path: str | None = None
        self.spec = spill
        self.collapse_at_creation = collapse_at_creation
        self.wait_s = wait_s
        # close() reloads every spilled value and takes the guards off, so the nodes and classes are as
        # plain SCons left them; a process that exits right after (the CLI) skips it: reloading would only
        # raise its peak RSS back up
        self.restore_at_close = restore_at_close
        self._patches = ClassPatches()
        self.own_memory: dict[str, int] | None = None
        self.memo_evicted = 0
        self._memo_slot = None
        self.candidates = store_candidates()
        choose(spill if spill != "auto" else "none", self.candidates)  # validate an explicit list early
        import threading

        self._scan = threading.local()  # the signature of the scanner running get_found_includes, if any
        self._scanner_sigs: dict[int, tuple[object, bytes | None]] = {}
        self.spiller = Spiller(store=None, codec=make_codec(), stable_key=node_key, stamp=self._stamp, min_bytes=64)
        self.spiller.active = False
        self.store = None
        self.plan = None
        self.warning: str | None = None
        self.recorder = None
        self.counting = True
        self.profile_age = 0
        self._classes = {c.__name__: c for c in node_classes()}
        self._spill_reusable = False  # the plan names a reusable attribute: spill it right after each scan

    def _scanner_sig(self, scanner: object) -> bytes | None:
        """scanner_signature(), once per scanner object per build (the object is kept: its id stays valid)."""
        hit = self._scanner_sigs.get(id(scanner))
        if hit is None or hit[0] is not scanner:
            hit = self._scanner_sigs[id(scanner)] = (scanner, scanner_signature(scanner))
        return hit[1]

    def _stamp(self, node: object) -> bytes | None:
        """A file's include names are reused only from a scan by the same scanner of the same bytes."""
        sig = getattr(self._scan, "sig", None)
        if sig is None:  # read or spilled outside a scan, or by a scanner that cannot be characterised
            return None
        st = file_stamp(node)
        return None if st is None else st + b"|" + sig

    def bind(self, recorder: Any) -> None:
        """The access recorder of this run; its table is saved for the next build's `--spill auto`."""
        self.recorder = recorder

    def install(self) -> None:
        """Guard the node classes before any node exists, with the widest plan (narrowed on open)."""
        import SCons.Node
        import SCons.Node.FS as FS

        slot = SCons.Node.Node.__dict__["_memo"]  # the raw slot: our own reads are not counted
        while getattr(slot, "wrapped", None) is not None:
            slot = slot.wrapped
        self._memo_slot = slot
        cand = self.candidates
        for name, cls in self._classes.items():
            if name not in cand.all_attrs:
                continue
            self.spiller.guard(cls, spill=(), collapse=cand.collapse.get(name, ()), reuse=cand.reuse.get(name, ()))
        collapse_now = self.spiller.collapse_now
        if self.collapse_at_creation:
            # A new node's empty containers are collapsed as soon as the constructor that made them
            # returns: the blocks freed are reused by the next node's, so they never pile up (collapsing
            # them later leaves pymalloc pools fragmented and does not lower peak RSS; docs/benchmarks.md).
            # Node.__init__ makes most of them; FS.Base.__init__ and File._morph add one each.
            for owner, method, names in ((SCons.Node.Node, "__init__", tuple(COLLAPSE_ATTRS)),
                                         (FS.Base, "__init__", ("_path_elements",)),
                                         (FS.File, "_morph", ("scanner_paths",))):
                self._patches.set(owner, method, _hidden(_then(getattr(owner, method), collapse_now, names)))
        # A scanned file's include names are only read again if it is rescanned: right after the
        # scan is a safe point for them (scanned source files in a VariantDir never get a task).
        # Reuse is keyed on the scanner too: the names a scan stores depend on the scanner (its regex,
        # function...), which SCons passes here; _stamp() reads it while the scan runs.
        orig_found = FS.File.get_found_includes
        # The names are recorded for the next build (not spilled: the scanners read them again for every
        # target that depends on the file); only a plan that names File.includes spills them here.
        # Recorded once, by the call that stored them (SCons calls this once per file and scanner path).
        spill, record, raw, hooks = self.spiller.spill, self.spiller.record, self.spiller.raw_value, self
        scan, scanner_sig = self._scan, self._scanner_sig

        def get_found_includes(node, env, scanner, path):
            outer = getattr(scan, "sig", None)
            scan.sig = scanner_sig(scanner) if scanner else None
            try:
                before = raw(node, "includes"), raw(node.rfile(), "includes")
                result = orig_found(node, env, scanner, path)
                real = node.rfile()  # the scanner stores the names on the file it read (VariantDir: the source)
                objs = (node,) if real is node else (node, real)
                if before[0] is None or before[1] is None:
                    record(objs, REUSE_ATTRS)
                if hooks._spill_reusable:
                    spill(objs, only=REUSE_ATTRS)
            finally:
                scan.sig = outer
            return result

        self._patches.set(FS.File, "get_found_includes", _hidden(get_found_includes))

    def _open(self) -> None:
        from dagstore.backends import open_store
        from dagstore.policy import choose

        self.path = os.path.abspath(self.path_arg or ".dagstore")
        expect = {"scons": scons_version(), "python": ".".join(map(str, sys.version_info[:2]))}
        options = {"lock_timeout": self.wait_s} if self.kind == "lmdb" else {}
        store, warning = open_store(self.kind, self.path, expect, **options)
        self.warning = warning
        if warning:
            print(f"dagprof: warning: {warning}", file=sys.stderr)
        if store is None:
            return
        self.store = store

        from dagstore.spill import _STORE_ERRORS

        errors = self.spiller.stats.errors

        def meta(name: str) -> Any:  # advice from earlier builds: unreadable means absent, counted and reported
            try:
                return store.get_meta(name)
            except (*_STORE_ERRORS, ValueError) as e:
                errors["meta_read"] = errors.get("meta_read", 0) + 1
                print(f"dagprof: warning: unreadable {name!r} record in the store ({type(e).__name__}: {e}); "
                      "ignored", file=sys.stderr)
                return None

        previous = history = lat = None
        if self.spec == "auto":
            from dagstore.policy import latency_of_section

            from ..profile import AccessRow

            previous = [AccessRow(*r) for r in meta("access_profile") or ()]
            history = meta("spill_history")
            recorded = meta("store_latency")
            lat = latency_of_section(recorded) if isinstance(recorded, dict) else None
        self.plan = choose(self.spec, self.candidates, previous, history if isinstance(history, dict) else None,
                           lat=lat)
        self._spill_reusable = any(set(self.plan.reuse.get(c, ())) & set(a) for c, a in self.plan.spill.items())
        try:
            self.profile_age = int(meta("profile_age") or 0)
        except (TypeError, ValueError):
            self.profile_age = 0
        # count accesses when there is no profile yet, or it is PROFILE_REFRESH builds old
        self.counting = not previous or self.profile_age + 1 >= PROFILE_REFRESH
        for name, attrs in self.plan.spill.items():
            cls = self._classes.get(name)
            if cls is not None:
                self.spiller.guard(cls, spill=attrs, reuse=self.plan.reuse.get(name, ()))
        self.spiller.store = store
        self.spiller.scratch = self._open_scratch(store)
        self.spiller.begin()
        self.spiller.active = True

    def _open_scratch(self, store: Any) -> Any:
        """Per-build values go to a scratch environment emptied at each start (dropping it reads nothing)."""
        if getattr(store, "backend", None) != "lmdb":
            return None
        import shutil

        from dagstore.backends import LMDBStore

        path = os.path.join(self.path, "scratch")
        shutil.rmtree(path, ignore_errors=True)  # our own per-build data, only valid for the build that wrote it
        try:
            return LMDBStore(path, map_size=256 << 20)
        except Exception as e:
            print(f"dagprof: warning: no scratch area ({e}); per-build values go to the main store", file=sys.stderr)
            return None

    def on_phase(self, name: str) -> None:
        if name == PHASE_READ and self.store is None and self.warning is None:
            self._open()
        elif name in (PHASE_BUILD, PHASE_SCONSIGN) and self.spiller.active:
            self.spiller.flush()

    def on_node_done(self, nodes: list[object]) -> None:
        if self.spiller.active:
            self.spiller.spill(nodes)
            self._evict(nodes)

    def _evict(self, nodes: list[object]) -> None:
        """Drop recomputable memoized results of finished nodes (a smaller dict replaces the old one)."""
        slot, evict = self._memo_slot, MEMO_EVICT
        for n in nodes:
            try:
                memo = slot.__get__(n, type(n))
            except (AttributeError, TypeError):  # no memo yet, or not an SCons node (duck-typed targets)
                continue
            if type(memo) is dict and not evict.isdisjoint(memo):
                kept = {k: v for k, v in memo.items() if k not in evict}
                self.memo_evicted += len(memo) - len(kept)
                slot.__set__(n, kept)

    def on_finish(self) -> None:
        if self.store is None:
            return
        self.spiller.flush()
        self.own_memory = self.spiller.own_memory()  # at the end of the build, before close() reloads
        rows = self.recorder.rows() if self.recorder is not None else []
        try:
            st = self.spiller.stats
            per = st.per_attr
            # [spilled, reloads, encoded bytes, values kept at safe points (too small, refused)]: the cost model's input
            self.store.set_meta("spill_history", {k: [v["spilled"], v["reloads"], v["bytes"],
                                                      v.get("small", 0) + v.get("refused", 0)]
                                                  for k, v in per.items()
                                                  if v.get("spilled") or v.get("small") or v.get("refused")})
            if st.spilled_attrs or st.reloads:
                from dagstore.policy import latency

                self.store.set_meta("store_latency", latency(st.spill_time_s, st.spilled_attrs, st.reload_time_s,
                                                             st.reloads))
            if rows and any(r.reads or r.writes for r in rows):
                self.store.set_meta("access_profile", [r.as_list() for r in rows])
                self.store.set_meta("profile_age", 0)
            else:
                self.store.set_meta("profile_age", self.profile_age + 1)
        except Exception as e:  # the profile is advice for next time; a failure here loses nothing
            print(f"dagprof: warning: could not save the access profile in the store ({e})", file=sys.stderr)

    def close(self) -> None:
        try:
            if self.restore_at_close:
                self._restore()
        finally:
            self._close_stores()

    def mark(self) -> int:
        """Called when another tool (the access counters) patches the same classes on top of the guards."""
        return self.spiller.depth()

    def release_above(self, mark: int) -> None:
        """Before that tool undoes its patches: values back in memory, the guards installed after `mark` off."""
        if self.restore_at_close:
            self._reload()
            self.spiller.restore(since=mark)

    def _reload(self) -> None:
        from dagstore.spill import SpillLost

        self.spiller.active = False
        try:
            self.spiller.reload_all(live_nodes())
        except SpillLost as e:  # the build already read what it needed; say what is left unreadable
            print(f"dagprof: warning: {e}; restoring the node classes anyway", file=sys.stderr)
        else:
            self.spiller.forget_node_refs()

    def _restore(self) -> None:
        """Every spilled or collapsed value of a live node back in its slot, then the guards and wrappers off."""
        try:
            self._reload()
        finally:
            self.spiller.restore()
            self._patches.undo()

    def _close_stores(self) -> None:
        self._patches.undo()
        if self.spiller.scratch is not None:
            try:
                self.spiller.scratch.close()
            except Exception:
                pass
        if self.store is not None:
            try:
                self.store.close()
            finally:
                self.store = None

    def profile_sections(self) -> dict[str, Any]:
        sec = self.spiller.section(self.kind, self.path)
        if self.own_memory is not None:
            sec["own_memory"] = self.own_memory
        sec["memo_evicted"] = self.memo_evicted
        sec["access_counted"] = bool(self.counting)
        from dagstore.policy import plan_line

        sec["plan"] = self.plan.as_dict() if self.plan else {"source": None, "spill": ""}
        if self.plan:
            sec["plan"]["line"] = plan_line(sec["plan"], sec.get("per_attr"))
        if self.warning:
            sec["warning"] = self.warning
        return {"store": sec}


_enabled: StoreHooks | None = None


def enable_store(store: str = "lmdb", path: str | None = None, spill: str = "auto") -> StoreHooks | None:
    """The one line for an SConstruct run by plain `scons`: spill cold node data to a store for this build.

        import dagprof; dagprof.enable_store()

    First in the SConstruct, after its `from __future__` imports (Python wants those first); or in
    site_scons/site_init.py, which SCons runs before the SConstruct (no edit of the SConstruct).
    """
    global _enabled
    if _enabled is not None or store == "none":
        return _enabled
    import atexit

    from ..classpatch import ClassPatches

    hooks = StoreHooks(kind=store, path=path, spill=spill, restore_at_close=False)  # closed at process exit
    hooks.install()
    hooks.on_phase(PHASE_READ)  # SCons has already changed to the top directory: open the store there
    if hooks.store is None:
        return None
    # never undone: they serve this build until the process exits
    _hook_safe_points(ClassPatches(), lambda: hooks.on_phase(PHASE_SCONSIGN), hooks.on_node_done)

    def finish() -> None:
        from dagstore.spill import has_problem, summary_line

        try:
            hooks.on_finish()
        finally:
            hooks.close()
        sec = hooks.profile_sections()["store"]
        if sys.stderr.isatty() or has_problem(sec):  # as `dagprof build`: never a routine line into a pipe
            print(summary_line(sec), file=sys.stderr)
            if sys.stderr.isatty() and (sec.get("plan") or {}).get("line"):
                print(sec["plan"]["line"], file=sys.stderr)

    atexit.register(finish)
    _enabled = hooks
    return hooks

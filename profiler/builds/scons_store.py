"""The node store (dagstore) on a SCons build: which node attributes are safe to collapse, spill or reuse,
file stamps, the codec for SCons' node infos, and StoreHooks, which plugs a Spiller into the build."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from .scons_nodes import (
    PHASE_BUILD,
    PHASE_READ,
    PHASE_SCONSIGN,
    live_nodes,
    load_classes,
    node_classes,
    node_key,
    scons_version,
)
from .scons_scanner import scanner_signature
from .scons_wrap import hidden

if TYPE_CHECKING:
    from dagstore.backends import Store
    from dagstore.codec import Codec
    from dagstore.policy import Candidates, Plan

    from ..access import AccessRecorder


# Attributes whose EMPTY containers collapse to a shared marker once a node's task is done. SCons
# re-reads (and re-creates) them through the guard if it ever needs them again; nobody keeps a
# reference to these containers across a task boundary.
COLLAPSE_ATTRS = (
    "waiting_parents",
    "waiting_s_e",
    "side_effects",
    "sources",
    "sources_set",
    "depends",
    "depends_set",
    "ignore",
    "ignore_set",
    "implicit",
    "prerequisites",
)
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
KEEP_ATTRS = {"binfo": "shared with .sconsign: frees little", "includes": "re-read by the scanners: kept for reuse"}
# includes is not in the defaults either: the scanners read a file's include names again for every
# target that depends on it (issue 13: 86% of spilled include lists were reloaded). They are recorded
# for the next build and stay in memory (reuse), under every plan.
DEFAULT_COLD = {"File": ("implicit_set", "implicit"), "Entry": ("implicit_set", "implicit")}
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


def store_candidates() -> Candidates:
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
    return Candidates(
        spill=spill,
        collapse=collapse,
        reuse=reuse,
        default_cold=dict(DEFAULT_COLD),
        all_attrs=all_attrs,
        late_phases=(PHASE_BUILD, PHASE_SCONSIGN),
        keep=dict(KEEP_ATTRS),
    )


class _Slot(Protocol):
    """A slot's member descriptor (or any data descriptor), called directly to bypass counters and guards."""

    def __get__(self, obj: Any, cls: type | None = None, /) -> Any: ...
    def __set__(self, obj: Any, value: Any, /) -> None: ...


def _raw_slot(cls: type, name: str) -> _Slot:
    """The slot's own member descriptor under any counter or guard: dagprof's reads are not counted."""
    slot = cls.__dict__[name]
    while getattr(slot, "wrapped", None) is not None:
        slot = slot.wrapped
    return slot


def file_stamp(node: Any) -> bytes | None:
    """size + mtime_ns + inode + ctime_ns of the file SCons reads for this node: any edit changes it.

    `node` is any object the store guards (Any: the check below makes it an FS.File, which mypy cannot
    narrow to since SCons is untyped)."""
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


def make_codec() -> Codec:
    """msgpack codec that knows SCons' NodeInfo/BuildInfo and maps node references to the same nodes."""
    import SCons.Node

    from dagstore.codec import Codec

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
    for cls in load_classes(
        (
            ("SCons.Node.FS", "FileNodeInfo"),
            ("SCons.Node.FS", "FileBuildInfo"),
            ("SCons.Node.FS", "DirNodeInfo"),
            ("SCons.Node.FS", "DirBuildInfo"),
            ("SCons.Node.Alias", "AliasNodeInfo"),
            ("SCons.Node.Alias", "AliasBuildInfo"),
            ("SCons.Node.Python", "ValueNodeInfo"),
            ("SCons.Node.Python", "ValueBuildInfo"),
            ("SCons.Node", "NodeInfoBase"),
            ("SCons.Node", "BuildInfoBase"),
        )
    ):
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

    def __init__(
        self,
        kind: str = "lmdb",
        path: str | None = None,
        spill: str = "auto",
        collapse_at_creation: bool = True,
        wait_s: float = 0.0,
        restore_at_close: bool = True,
    ) -> None:
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
        self._history: dict | None = None  # the store's spill history and latency record, as the build found them
        self._latency: dict | None = None
        self.recorded_history: dict[str, list[int]] | None = None  # ... and as it left them (on_finish)
        self.recorded_latency: dict[str, float] | None = None
        self._memo_slot: _Slot | None = None  # set by install()
        self.candidates = store_candidates()
        choose(spill if spill != "auto" else "none", self.candidates)  # validate an explicit list early
        import threading

        self._scan = threading.local()  # the signature of the scanner running get_found_includes, if any
        self._scanner_sigs: dict[int, tuple[object, bytes | None]] = {}
        self.spiller = Spiller(store=None, codec=make_codec(), stable_key=node_key, stamp=self._stamp, min_bytes=64)
        self.spiller.active = False
        self.store: Store | None = None
        self.plan: Plan | None = None
        self.warning: str | None = None
        self.recorder: AccessRecorder | None = None
        self.counting = True
        self.profile_age = 0
        self._reuse_cost: dict | None = None  # policy.reuse_cost of earlier builds, read from the store
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

        self._memo_slot = _raw_slot(SCons.Node.Node, "_memo")
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
            for owner, method, names in (
                (SCons.Node.Node, "__init__", tuple(COLLAPSE_ATTRS)),
                (FS.Base, "__init__", ("_path_elements",)),
                (FS.File, "_morph", ("scanner_paths",)),
            ):
                self._patches.set(owner, method, hidden(_then(getattr(owner, method), collapse_now, names)))
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

        self._patches.set(FS.File, "get_found_includes", hidden(get_found_includes))

        # A released executor is cyclic garbage (its $TARGET/$SOURCES objects hold its own bound methods):
        # ~29 objects per target that only a full collection frees, 149k objects at 5,000 files, and
        # every full pass over the node graph costs 0.1-0.2 s. Its `lvars` are a cache SCons rebuilds on
        # demand (Executor.get_lvars), so dropping them when the node lets the executor go breaks the
        # cycle: it is freed at once. Another target of the same executor just rebuilds them.
        orig_release = FS.File.release_target_info
        executor_slot = _raw_slot(SCons.Node.Node, "executor").__get__

        def executor_of(node):
            try:
                return executor_slot(node)
            except AttributeError:  # never created
                return None

        def release_target_info(node):
            ex = executor_of(node)
            orig_release(node)
            if ex is not None and executor_of(node) is None:  # let go (kept under keep_targetinfo, interactive)
                try:
                    del ex.lvars
                except AttributeError:  # never built
                    pass

        self._patches.set(FS.File, "release_target_info", hidden(release_target_info))

        # the work a reuse hit saves: reading a file and matching its include lines (Classic scanners,
        # C's included); timed so the policy can tell whether reuse pays on this project (reuse_verdict)
        import SCons.Scanner

        orig_names = SCons.Scanner.Classic.find_include_names
        stats = self.spiller.stats

        def find_include_names(scanner, node):
            t0 = perf_counter()
            try:
                return orig_names(scanner, node)
            finally:
                stats.timed_scan(perf_counter() - t0)

        self._patches.set(SCons.Scanner.Classic, "find_include_names", hidden(find_include_names))

    def _open(self) -> None:
        from dagstore.backends import open_store
        from dagstore.policy import choose

        self._started = perf_counter()

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
        meta_errors: tuple[type[BaseException], ...] = (*_STORE_ERRORS, ValueError)

        def meta(name: str) -> Any:  # advice from earlier builds: unreadable means absent, counted and reported
            try:
                return store.get_meta(name)
            except meta_errors as e:
                errors["meta_read"] = errors.get("meta_read", 0) + 1
                print(
                    f"dagprof: warning: unreadable {name!r} record in the store ({type(e).__name__}: {e}); ignored",
                    file=sys.stderr,
                )
                return None

        previous = lat = None
        reuse = meta("reuse_cost")
        self._reuse_cost = reuse if isinstance(reuse, dict) else None  # merged with this build's at the end
        # carried into what this build records (policy.next_history, next_latency), whatever its plan
        history, recorded = meta("spill_history"), meta("store_latency")
        self._history = history if isinstance(history, dict) else None
        self._latency = recorded if isinstance(recorded, dict) else None
        if self.spec == "auto":
            from dagstore.policy import latency_of_section

            from ..profile import AccessRow

            previous = [AccessRow(*r) for r in meta("access_profile") or ()]
            lat = latency_of_section(self._latency) if self._latency else None
        self.plan = choose(
            self.spec,
            self.candidates,
            previous,
            self._history if self.spec == "auto" else None,
            lat=lat,
            reuse=self._reuse_cost,
        )
        self.spiller.reuse_enabled = bool(self.plan.reuse)
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

        assert self.path is not None  # _open() sets it before opening the store
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
        if slot is None:  # install() not run: no node has a memo slot to read (each would fail on None)
            return
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
        from ..rss import own_hwm

        st = self.spiller.stats
        st.build_wall_s, st.build_peak_rss = perf_counter() - self._started, own_hwm()  # the cost model's rate
        self.spiller.flush()
        self.own_memory = self.spiller.own_memory()  # at the end of the build, before close() reloads
        rows = self.recorder.rows() if self.recorder is not None else []
        try:
            from dagstore.policy import latency, next_history, next_latency, reuse_cost

            st = self.spiller.stats
            # [spilled, reloads, encoded bytes, values kept at safe points (too small, refused)]: the cost model's
            # input, with the per-value costs and the build's exchange rate; the profile's section says the same
            self.recorded_history = next_history(self._history, st.per_attr)
            measured = latency(
                st.spill_time_s, st.spilled_attrs, st.reload_time_s, st.reloads, st.build_wall_s, st.build_peak_rss
            )
            self.recorded_latency = next_latency(self._latency, measured, st.spilled_attrs, st.reloads)
            self.store.set_meta("spill_history", self.recorded_history)
            self.store.set_meta("store_latency", self.recorded_latency)

            lookup_s, scan_s = st.reuse_times()
            self.store.set_meta(
                "reuse_cost", reuse_cost(self._reuse_cost, st.reuse_hits, lookup_s + st.record_time_s, st.scans, scan_s)
            )
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
        if self.recorded_history is not None:  # what the next `--spill auto` weighs: the report weighs the same
            sec["spill_history"] = self.recorded_history
            sec.update(self.recorded_latency or {})
        from dagstore.policy import plan_line

        sec["plan"] = self.plan.as_dict() if self.plan else {"source": None, "spill": ""}
        if self.plan:
            sec["plan"]["line"] = plan_line(sec["plan"], sec.get("per_attr"))
        if self.warning:
            sec["warning"] = self.warning
        return {"store": sec}

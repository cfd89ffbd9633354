"""What the DAG cache needs from SCons: which invocations it may answer, what a build examined, what it printed.

Two halves with different import budgets:
- the answer (`eligible`, `invocation`, `try_answer`) runs before SCons is imported and imports
  only os/sys plus dagstore.dagcache (lmdb, msgpack; no OpenSSL): it must cost milliseconds;
- the recording (`DagRecorder`) runs inside a normal in-process build as one more build hook.
The snapshot format and its streaming check are in dagstore/dagcache.py, the read-phase input
recorder in dagstore/inputs.py; neither knows SCons.
"""

from __future__ import annotations

import os
import sys
import time

from ..exitcodes import VERIFY_MISMATCH  # no imports of its own: the answer path stays os/sys

# typing is only for annotations here: importing it costs the DAG cache's answer ~1.5 MiB (with re)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# SCons options after which an up-to-date build may be answered from the snapshot: they change
# neither what is built nor what is printed beyond what the recorded output already holds. Anything
# else (-n, -c, -q, -h, --interactive, --debug, --tree, --taskmastertrace, -C/-D/-U/-u, --config,
# --cache-force, options this list does not know) runs SCons. value: the option takes an argument.
SAFE_OPTIONS = {
    "-Q": False,
    "-s": False,
    "--silent": False,
    "--quiet": False,
    "-k": False,
    "--keep-going": False,
    "-S": False,
    "--no-keep-going": False,
    "--stop": False,
    "-j": True,
    "--jobs": True,
    "-f": True,
    "--file": True,
    "--makefile": True,
    "--sconstruct": True,
    "--site-dir": True,
    "--no-site-dir": False,
    "--warn": True,
    "--warning": True,
    "--random": False,
    "--implicit-cache": False,
    "--max-drift": True,
    "--hash-chunksize": True,
    "--md5-chunksize": True,
    "--duplicate": True,
    "--diskcheck": True,
    "-I": True,
    "--include-dir": True,
    "--stack-size": True,
    "--hash-format": True,
    "--cache-readonly": False,
    "--cache-disable": False,
    "--no-cache": False,
    "--cache-show": False,
    "-i": False,
    "--ignore-errors": False,
    "-Y": True,
    "--repository": True,
    "--srcdir": True,
}


# What the recorder computes per target (_target_digester, _node_name): part of the invocation, so a dagprof
# that digests differently never compares its graphs with an older one's (that would turn the cache off)
RECORD_FORMAT = 2


def eligible(args: list[str]) -> str | None:
    """None when an up-to-date build with these SCons arguments may be answered; else why not."""
    flags = os.environ.get("SCONSFLAGS", "").split()
    for source, argv in (("", args), ("SCONSFLAGS: ", flags)):
        i = 0
        while i < len(argv):
            a = argv[i]
            i += 1
            if a == "--" or not a.startswith("-") or a == "-":
                continue  # a target or VAR=value
            name, eq, _ = a.partition("=")
            if name.startswith("--"):
                takes = SAFE_OPTIONS.get(name)
                if takes is None:
                    return f"{source}{name} is not answered from the DAG cache"
                if takes and not eq:
                    i += 1
                continue
            # short options, possibly bundled (-Qk) or with an attached value (-j2)
            for j, ch in enumerate(a[1:]):
                takes = SAFE_OPTIONS.get("-" + ch)
                if takes is None:
                    return f"{source}-{ch} is not answered from the DAG cache"
                if takes:
                    if j == len(a) - 2:
                        i += 1  # the value is the next argument
                    break
    return None


def _stamp(path: str | None) -> list:
    try:
        st = os.stat(path) if path else None
    except OSError:
        st = None
    return [path, st.st_size, st.st_mtime_ns] if st else [path, None, None]


def _scons_identity() -> list:
    """Where SCons is installed and its stamp, found without importing it."""
    for entry in sys.path:  # as the import system searches it (importlib.util would cost its imports)
        origin = os.path.join(entry or os.getcwd(), "SCons", "__init__.py")
        if os.path.isfile(origin):
            return _stamp(origin)
    return _stamp(None)


def invocation(args: list[str], store_path: str) -> dict:
    """What must be identical for a recorded answer to hold: arguments, environment flags, versions, terminal."""
    from .. import __version__

    return {
        "args": list(args),
        "SCONSFLAGS": os.environ.get("SCONSFLAGS", ""),
        "cwd": os.getcwd(),
        "store": os.path.abspath(store_path),
        "python": [sys.executable, sys.version],
        "scons": _scons_identity(),
        "dagprof": __version__,
        "tty": [os.isatty(1), os.isatty(2)],
        "record": RECORD_FORMAT,
    }


def try_answer(args: list[str], store_path: str, summary: bool) -> int | None:
    """The fast path: 0 when the snapshot says the build is up to date (its output replayed), else None."""
    if eligible(args) is not None:
        return None
    from dagstore.dagcache import DagCache, SnapshotDamaged

    cache = DagCache(os.path.abspath(store_path))
    try:
        ans = cache.answer(invocation(args, store_path))
    except SnapshotDamaged as e:
        where = cache.set_aside(str(e))
        # a problem, said always (as the attribute store does when it sets a damaged store aside)
        print(
            f"dagprof: warning: DAG snapshot damaged ({e}); "
            f"{'set aside at ' + where if where else 'left in place'}; running SCons",
            file=sys.stderr,
        )
        return None
    if not ans.up_to_date:
        _say(f"DAG cache: {ans.reason}; running SCons", summary, verbose_only=True)
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, chunk in ans.output:
        _write_all(fd, chunk)
    _say(f"up to date from the DAG cache: {ans.nodes_checked} nodes checked in {ans.seconds:.2f} s", summary)
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except BrokenPipeError:  # `dagprof build | head`: as SCons, which ignores a closed stdout
        pass


def _say(line: str, summary: bool, verbose_only: bool = False) -> None:
    """dagprof's own lines go to a terminal, or anywhere when --summary asks; never into a pipe otherwise."""
    if summary or (not verbose_only and sys.stderr.isatty()):
        print(f"dagprof: {line}", file=sys.stderr)


# ---- recording -----------------------------------------------------------------------------------

OUTPUT_CAP = 4 << 20  # a null build printing more than this is not replayed


class _Tee:
    """A text stream that records what passes through it (encoded as the real stream would)."""

    def __init__(self, stream: Any, fd: int, sink: OutputCapture) -> None:
        self._stream, self._fd, self._sink = stream, fd, sink
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._errors = getattr(stream, "errors", None) or "strict"

    def write(self, s: str) -> int:
        n = self._stream.write(s)
        self._sink.add(self._fd, s.encode(self._encoding, self._errors) if isinstance(s, str) else bytes(s))
        return n

    def writelines(self, lines: Any) -> None:
        for s in lines:
            self.write(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class OutputCapture:
    """What the build printed on stdout and stderr, in order, so a cached answer prints the same bytes."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.size = 0
        self.overflow = False
        self._saved: tuple[Any, Any] | None = None

    def add(self, fd: int, data: bytes) -> None:
        if self.overflow or not data:
            return
        self.size += len(data)
        if self.size > OUTPUT_CAP:
            self.overflow = True
            self.chunks = []
            return
        if self.chunks and self.chunks[-1][0] == fd:
            self.chunks[-1] = (fd, self.chunks[-1][1] + data)
        else:
            self.chunks.append((fd, data))

    def start(self) -> None:
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, 1, self)
        sys.stderr = _Tee(sys.stderr, 2, self)

    def stop(self) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None


def _content_deciders() -> tuple:
    import SCons.Environment as E

    return (E.Base._changed_content, E.Base._changed_timestamp_then_content)


class DagRecorder:
    """A build hook that records the DAG snapshot: read-phase inputs, examined nodes, the output."""

    READS_DONE_NODES = True  # scons_run: its on_node_done runs before the store spills or evicts anything

    def __init__(self, args: list[str], store_path_arg: str | None, summary: bool = False) -> None:
        self.store_path_arg = store_path_arg
        self.summary = summary
        self.invocation = invocation(args, store_path_arg or ".dagstore")
        self.eligible_reason = eligible(args)
        self.output = OutputCapture()
        self.inputs: Any = None
        self.store_path: str | None = None
        self.started_ns = time.time_ns()
        self.built_nothing = True
        self.first_built: str | None = None
        self.unanswerable: list[str] = []
        self.targets: dict[str, bytes] = {}
        self.examined: set[int] = set()
        self.subprocess_output = False
        self.build_inputs: Any = None
        self.building = False  # SCons is building (Configure's tasks while reading SConscripts are not)
        self._per_task: Any = None  # what on_node_done uses, looked up once: (Node, up_to_date, digest)
        self.snapshot: dict | None = None
        self.record_error: str | None = None
        self.result: dict[str, Any] = {}
        self._saved_popen: Any = None
        self._saved_system: Any = None

    # -- build hooks
    def install(self) -> None:
        """Before SCons starts: site_scons/site_init.py is executed before the first SConscript."""
        self.output.start()
        self.inputs = self._recorder(os.path.abspath(self.store_path_arg or ".dagstore"))
        self.inputs.start()
        self._watch_subprocess_output()

    def on_phase(self, name: str) -> None:
        from . import scons as adapter

        self.building = name == adapter.PHASE_BUILD
        if self.building and self._per_task is None:
            import SCons.Node

            self._per_task = (SCons.Node.Node, SCons.Node.up_to_date, _target_digester())
        if name == adapter.PHASE_READ and self.store_path is None:
            from dagstore.dagcache import DagCache

            self.store_path = os.path.abspath(self.store_path_arg or ".dagstore")  # after -C: as the store
            self.invocation["store"] = self.store_path
            DagCache(self.store_path).invalidate()  # a build is starting: the snapshot must not answer
        elif name == adapter.PHASE_BUILD and self.build_inputs is None:
            self._stop_inputs()
            # what the build itself opens that is not a node (a custom scanner's list file): an input
            # too. Opens only, no wrappers: node files are dropped from it in the walk at the end
            self.build_inputs = self._recorder(self.store_path or os.path.abspath(".dagstore"))
            self.build_inputs.start(opens_only=True)

    @staticmethod
    def _recorder(store: str) -> Any:
        """An input recorder that never records the store itself, nor the machine's state: /proc, /sys
        and /dev (dagprof's own memory sampler reads /proc/self/status meanwhile; docs/dagstore.md)."""
        from dagstore.inputs import InputRecorder

        return InputRecorder(ignore_prefixes=[store + os.sep, "/proc/", "/sys/", "/dev/"])

    def _watch_subprocess_output(self) -> None:
        """A read-phase subprocess writing straight to our stdout cannot be replayed: notice it."""
        import subprocess

        rec = self
        orig_init = subprocess.Popen.__init__
        orig_system = os.system

        def init(self, args, bufsize=-1, executable=None, stdin=None, stdout=None, *a, **kw):
            if stdout is None:
                rec.subprocess_output = True
            return orig_init(self, args, bufsize, executable, stdin, stdout, *a, **kw)

        def system(command):
            rec.subprocess_output = True
            return orig_system(command)

        self._saved_popen, self._saved_system = orig_init, orig_system
        subprocess.Popen.__init__ = init  # type: ignore[method-assign]
        os.system = system

    def _stop_inputs(self) -> None:
        if self.build_inputs is not None:
            self.build_inputs.stop()
        if self.inputs is not None and self._saved_popen is not None:
            import subprocess

            subprocess.Popen.__init__ = self._saved_popen  # type: ignore[method-assign]
            os.system = self._saved_system
            self._saved_popen = self._saved_system = None
            self.inputs.stop()

    def on_node_done(self, nodes: list[object]) -> None:
        """Per finished task (before the store spills or evicts anything of it: READS_DONE_NODES)."""
        if not self.building:
            return  # Configure's own tasks run while SConscripts are read: they are read-phase work
        node_cls, up_to_date, digest = self._per_task
        examined, targets = self.examined, self.targets
        for n in nodes:
            if not isinstance(n, node_cls):
                continue
            examined.add(id(n))
            if n.get_state() != up_to_date:
                self.built_nothing = False
                if self.first_built is None:
                    self.first_built = str(n)
            if n.always_build:
                self._refuse(f"AlwaysBuild target {n}")
            if n.has_builder():
                targets[_node_name(n)] = digest(n)

    def _refuse(self, why: str) -> None:
        if len(self.unanswerable) < 3:
            self.unanswerable.append(why)

    def on_finish(self) -> None:
        """Still inside the run: walk the nodes while SCons' state is intact."""
        self._stop_inputs()
        if self.inputs is None or self.store_path is None:
            return  # SCons stopped before reading SConscripts: nothing to record
        try:
            self.result = self._collect()
        except Exception as e:  # a snapshot is an optimisation: any doubt means no snapshot
            self.result = {}
            self._refuse(f"snapshot not recorded: {type(e).__name__}: {e}")
            raise

    def close(self) -> None:
        self._stop_inputs()
        self.output.stop()

    # -- collecting
    def _collect(self) -> dict[str, Any]:
        import heapq

        import SCons.Node
        import SCons.Util
        from SCons.Node import FS

        from dagstore import dagcache as dc

        fs = FS.get_default_fs()
        root = fs.Top.get_abspath().rstrip("/") + "/"
        build_inputs = self.build_inputs

        pack = dc.record_packer()
        cut = len(root)
        hash_name = SCons.Util.get_hash_format() or SCons.Util.get_current_hash_algorithm_used() or "md5"
        read_inputs = self.inputs.file_paths()
        content_deciders = _content_deciders()
        rehash = True
        nodes: list[bytes] = []  # packed at once: a list of 7 objects per node would cost 3x the memory

        started = min(self.started_ns, time.time_ns() - dc.RACY_NS)  # changed in this build, or racily clean
        seen_envs: set[int] = set()
        last_env = None
        node_record, file_kind, dir_cls, base_cls = dc.node_record, dc.FILE, FS.Dir, FS.Base
        missing_kind, dir_kind, kind_only, hot_nodes = dc.MISSING, dc.DIR, dc.KIND, dc.HOT_NODES
        examined, add_node = self.examined, nodes.append
        # dropped directory by directory (not listed until the end: 65,000 path strings at 20k files, ~7 MiB at
        # the build's peak): stat probes of nodes' paths (their records check as much), and files the build
        # opened that are nodes (their own records check them)
        node_paths: list[str] = []
        checked_kind: list[str] = []
        forget_file, forget_probe = node_paths.append, checked_kind.append
        hot: list[tuple[int, int, list]] = []  # a heap of the newest sources: (mtime_ns, order, record)
        stack = list(fs.Root.values()) if hasattr(fs, "Root") else []
        while stack:
            if checked_kind:
                self.inputs.forget_probes(checked_kind)
                checked_kind.clear()
            if node_paths:
                if build_inputs is not None:
                    build_inputs.forget_files(node_paths)
                node_paths.clear()
            d = stack.pop()
            prefix = d.get_abspath()
            if not prefix.endswith(os.sep):
                prefix += os.sep
            for name, n in list(d.entries.items()):
                if name in (".", ".."):
                    continue
                path = prefix + n.name if n.dir is d else n.get_abspath()  # = get_abspath(), one call less
                forget_file(path)
                if isinstance(n, dir_cls):
                    stack.append(n)
                    try:
                        listed = n.on_disk_entries is not None  # SCons listed it to look for files
                    except AttributeError:
                        listed = False
                    rec = node_record(path, dc.listing_digest(path) if listed else None)
                    if rec[1] == dir_kind:
                        forget_probe(path)  # an exists()/isdir() of it
                    if path.startswith(root):  # paths under the top directory are stored relative to it
                        rec[0] = path[cut:]
                    add_node(pack(rec))
                    continue
                if not isinstance(n, base_cls):
                    continue
                ninfo = getattr(n, "ninfo", None)
                sig = getattr(ninfo, "csig", None) if ninfo is not None else None
                env = getattr(n, "env", None)
                if env is not None and env is not last_env:  # most nodes share their neighbour's environment
                    last_env = env
                    if id(env) not in seen_envs:
                        seen_envs.add(id(env))
                        for f in (getattr(env, "decide_source", None), getattr(env, "decide_target", None)):
                            if (
                                f is not None
                                and f not in content_deciders
                                and f.__name__ not in ("default_decide_source", "default_decide_target")
                            ):
                                rehash = False
                rec = node_record(path, sig)
                kind = rec[1]
                if kind == file_kind and sig is None and path in read_inputs:
                    # the SConstruct or an SConscript as a node: SCons never hashed it, its content is
                    # checked as a read-phase input; as a node only its existence is recorded (a stamp
                    # alone would make `touch SConstruct` a change). Any other file without a signature
                    # keeps its stamp: SCons may read it through another node (a VariantDir's source).
                    rec[1] = kind = kind_only
                elif kind == file_kind and rec[3] >= started:
                    # changed during this build (or just before): the signature must describe the bytes on disk now
                    now = dc.file_digest(path, hash_name)
                    if sig is None:
                        rec[6] = now
                    elif now != sig:
                        self._refuse(f"{path} changed after SCons read it")
                elif kind == missing_kind and id(n) in examined and n.has_builder():
                    self._refuse(f"target {n} was not written by its command")
                if kind in (file_kind, missing_kind, kind_only):
                    forget_probe(path)
                if path.startswith(root):
                    rec[0] = path[cut:]
                if kind == file_kind and (len(hot) < hot_nodes or rec[3] > hot[0][0]) and not n.has_builder():
                    item = (rec[3], len(nodes), rec)
                    (heapq.heappush if len(hot) < hot_nodes else heapq.heapreplace)(hot, item)
                add_node(pack(rec))
        self.inputs.forget_probes(checked_kind)  # the last directory's
        if build_inputs is not None:
            build_inputs.forget_files(node_paths)
        del node_paths, checked_kind
        for name in sorted(os.listdir(root)):
            if _is_sconsign(name):  # SCons' record of the last build: another build changes it
                path = root + name
                rec = dc.node_record(path, dc.file_digest(path, hash_name))
                if rec[1] == "f":
                    rec[1] = "s"  # rewritten by every build: compared by content
                rec[0] = name
                nodes.append(pack(rec))
        # SCons' own .sconsign (read by Configure) is build state, not SConscript input: the node
        # records check it, and a build that rewrites it must not make the inputs look new. Stated
        # after the walk: probes of node paths are gone from it (docs/dagstore.md, "Inputs")
        # digests of files unchanged since the last snapshot are taken from it (the same rule as its check)
        known = dc.DagCache(self.store_path).file_states(hash_name) if self.store_path else dc.StoredStates()
        inputs = [
            r for r in self.inputs.records(hash_name, known) if not (r[0] in ("f", "o", "p") and _is_sconsign(r[1]))
        ]
        default_env = _default_env_deciders()
        if default_env is not None and not all(f in content_deciders for f in default_env):
            rehash = False
        if build_inputs is not None:
            from dagstore.dagcache import BUILD_FILE

            for r in build_inputs.records(hash_name, known):
                if r[0] in ("f", "o") and not _is_sconsign(r[1]):
                    inputs.append([BUILD_FILE, *r[1:]])
        return {
            "nodes": nodes,
            "hash": hash_name,
            "rehash": rehash,
            "root": root,
            "inputs": inputs,
            "hot": [rec for _, _, rec in sorted(hot, reverse=True)],
        }

    def write(self, exit_code: int) -> dict | None:
        """After the run: record the snapshot if the build succeeded (only then)."""
        if self.inputs is None or self.store_path is None or exit_code != 0 or not self.result:
            return None
        import lmdb

        from dagstore.dagcache import DagCache
        from dagstore.hashes import new_hash

        reasons = list(self.unanswerable)
        if self.eligible_reason:
            reasons.append(self.eligible_reason)
        if self.output.overflow:
            reasons.append("the build printed too much to replay")
        if self.subprocess_output:
            reasons.append("a subprocess started while reading SConscripts wrote to the terminal")
        recorded_at = time.time_ns()
        inputs = self.result["inputs"]

        dag = new_hash("sha256")
        for t, d in sorted(self.targets.items()):
            dag.update(t.encode("utf-8", "surrogateescape") + b"\0" + d)
        cache = DagCache(self.store_path)
        try:
            self.snapshot = cache.record(
                self.invocation,
                inputs,
                self.result["nodes"],
                hash_name=self.result["hash"],
                recorded_at_ns=recorded_at,
                dag_digest=dag.hexdigest(),
                dag_targets=self.targets,
                built_nothing=self.built_nothing,
                answerable=not reasons,
                reason="; ".join(reasons),
                output=None if self.output.overflow else self.output.chunks,
                rehash=self.result["rehash"],
                root=self.result["root"],
                hot=self.result["hot"],
            )
        except (OSError, lmdb.Error) as e:  # the store's own failures (no directory, full disk, map full)
            self.record_error = f"{type(e).__name__}: {e}"
            _say(f"DAG snapshot not recorded ({self.record_error}); the next build runs SCons", self.summary)
            return None
        return self.snapshot


def _is_sconsign(path: str) -> bool:
    """SCons' own record of the last build (build state, checked by content, never an SConscript input)."""
    from .scons_state import SCONSIGN_PREFIX

    return os.path.basename(str(path)).startswith(SCONSIGN_PREFIX)


def _default_env_deciders() -> tuple | None:
    import SCons.Defaults

    env = SCons.Defaults._default_env
    if env is None:
        return None
    return (env.decide_source, env.decide_target)


def _node_name(node: Any) -> str:
    """A node's identity in the snapshot: a file's path from the top directory (no memoized str(), which the
    store has just evicted; unlike str(), two nodes of a non-duplicating VariantDir never share it)."""
    get = getattr(node, "get_internal_path", None)
    return get() if get is not None else str(node)


def _names(nodes: Any) -> list[str]:
    """_node_name of each node, sorted; file nodes (nearly all) without a lookup per node."""
    if not nodes:
        return []
    try:
        return sorted([n.get_internal_path() for n in nodes])
    except AttributeError:  # a Value or an Alias among them
        return sorted(_node_name(n) for n in nodes)


def _target_digester() -> Callable[[Any], bytes]:
    """The per-target digest, its lookups done once (it runs for every target of every build)."""
    from SCons.Node import FS

    from dagstore.hashes import new_hash

    fs_base, sha256 = FS.Base, new_hash("sha256")

    def digest(node: Any) -> bytes:
        """What SCons' decision for a target rests on besides file contents: its command and explicit inputs."""
        # an Alias' "command" is its children's contents
        binfo = getattr(node, "binfo", None) if isinstance(node, fs_base) else None
        actsig = getattr(binfo, "bactsig", "") if binfo is not None else ""
        parts = [str(actsig or "")]
        parts += _names(node.sources)
        parts.append("|")
        parts += _names(node.depends)
        h = sha256.copy()
        h.update("\0".join(parts).encode("utf-8", "surrogateescape"))
        return h.digest()[:16]

    return digest


def would_answer(args: list[str], store_path: str) -> Any:
    """For --dag-cache verify: what the cache would have answered, before SCons runs."""
    from dagstore.dagcache import DagCache, SnapshotDamaged

    if eligible(args) is not None:
        return None
    try:
        return DagCache(os.path.abspath(store_path)).answer(invocation(args, store_path))
    except SnapshotDamaged:
        return None


def after_build(recorder: DagRecorder, exit_code: int, predicted: Any, summary: bool) -> int | None:
    """Record the snapshot; under verify, compare what SCons did with what the cache would have said."""
    header = recorder.write(exit_code)
    if header is not None and header.get("off"):
        off = header["off"]
        example = f" (e.g. {off['target']})" if off.get("target") else ""
        _say(
            f"DAG cache turned off: {off.get('reason')}{example}; `dagprof build --dag-cache reset` turns it back on",
            summary,
        )
    if predicted is not None and predicted.up_to_date and (exit_code != 0 or not recorder.built_nothing):
        print(
            "dagprof: DAG cache verify: the cache would have answered 'up to date' but SCons rebuilt "
            f"{recorder.first_built or 'something'}",
            file=sys.stderr,
        )
        return VERIFY_MISMATCH
    return None

"""Record what one phase of a Python program read, and later check that all of it is unchanged.

Why: a cached answer of a program phase (e.g. SCons reading its SConscripts) may be reused only
while everything the phase depended on is unchanged. This module knows nothing about SCons.

Tracked while an InputRecorder is started (one per process at a time):
- files opened (builtins.open, io.open, os.open, io.open_code for imports: PEP 578 "open" event);
  an imported ``__pycache__/x.cpython-311.pyc`` also makes its source ``x.py`` an input, because
  the import system validates the pyc with a stat of the source that this module does not see;
- files the phase opened for writing and that still exist when records() runs (its outputs);
- directories listed (os.listdir, os.scandir, so glob, pathlib.glob and os.walk);
- paths probed with os.stat, os.lstat, os.access (so os.path.exists/isfile/isdir/islink/getmtime,
  pathlib's stat/exists/is_*): only the kind of the path (file/dir/missing/other/link) is kept;
- environment variables read (os.environ[...], .get, os.getenv, ``in``) and the whole environment
  when iterated or copied (dict(os.environ), .copy(), .items(), len());
- subprocesses started (subprocess.Popen, os.system, os.posix_spawn*, os.exec*).

Assumed (not tracked):
- a subprocess's output is a function of its argv, its executable and the files named in its argv
  (they become file inputs; so do the words of an ``sh -c`` command line). Its environment, the
  files it opens by itself and the time it runs are not inputs;
- os.open/os.stat calls with dir_fd: the audit event carries no dir_fd, so os.open(name,
  dir_fd=fd) is recorded against the cwd (conservative: a wrong path only causes a miss);
  wrapped stat/lstat/access calls with dir_fd or an int fd are not recorded;
- stat calls made by the import system itself (it uses posix.stat directly) and extension modules
  loaded with dlopen are not seen; the directories the import system lists are;
- a file's content is what matters, not its timestamps (``touch`` is not a change), and a probe
  records only the kind of a path (touching a probed file is not a change).

File states use git's racily-clean rule: a state whose mtime is within RACY_NS of the moment it was
recorded cannot be trusted by stat alone, so its content is re-hashed at every check. The moment of
recording is stored as the last element of each file state (see records()).

Records are plain lists (msgpack-able), the first element a one-character tag; check() of one
record returns None when unchanged, else a one-line reason. check() and file_state() need only the
standard library, so a fresh process can check a recording without importing anything heavy.
"""

from __future__ import annotations

import builtins
import os
import stat as _st
import sys
import time
from _thread import _local, allocate_lock  # threading's own primitives, without importing threading

from .hashes import new_hash

# typing is only for annotations here: importing it costs the DAG cache's answer ~1.5 MiB (with re)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

RACY_NS = 2_000_000_000  # a file state this close to its recording time is re-hashed (git's rule)

# Bits per path in the recorder's tables.
_READ, _WRITE = 1, 2  # files
_FOLLOW, _NOFOLLOW = 1, 2  # probes: stat/access vs lstat
_READ_MODES = frozenset(("r", "rb", "rt", "br", "tr"))
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})

# The originals, captured at import: the recorder's own file access goes through these.
_stat = os.stat
_lstat = os.lstat
_listdir = os.listdir
_Environ = type(os.environ)
_ENV_METHODS = ("__getitem__", "__setitem__", "__delitem__", "__iter__", "__len__")
_ENV_ORIG = {name: _Environ.__dict__[name] for name in _ENV_METHODS}
_MISSING = object()

_ACTIVE: InputRecorder | None = None  # the one started recorder, read by the hook and wrappers
_HOOKED = False  # audit hooks cannot be removed: install once per process
_CHOOK: Any = None  # dagstore._fastaudit once installed: the hook in C, told when to call us (_set_mode)
_c_probe: Any = None  # its probe(): the stat wrappers' C path (plain absolute paths into a dict)
_START_LOCK = allocate_lock()
_tl = _local()  # .quiet: this thread is the recorder itself, do not record


class _Quiet:
    """Mark this thread as the recorder's own access (records(), check()): nothing is recorded."""

    def __enter__(self) -> None:
        self.prev = getattr(_tl, "quiet", False)
        _tl.quiet = True
        if _CHOOK is not None:  # the C hook's sink does not know threads: every event to _on_event meanwhile
            _CHOOK.quiet(1)

    def __exit__(self, *exc: object) -> None:
        _tl.quiet = self.prev
        if _CHOOK is not None:
            _CHOOK.quiet(-1)


def _kind(mode: int) -> str:
    """Name a stat mode the way records spell it."""
    if _st.S_ISREG(mode):
        return "file"
    if _st.S_ISDIR(mode):
        return "dir"
    if _st.S_ISLNK(mode):
        return "link"
    return "other"


def _new_hash(hash_name: str) -> Any:
    """A hash object that also works on FIPS systems for md5 (content identity, not security)."""
    return new_hash(hash_name)


def _digest_file(path: str, hash_name: str) -> tuple[os.stat_result, str | None]:
    """Hash a file's content and return the fstat of the very descriptor that was hashed."""
    with _Quiet(), builtins.open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if not _st.S_ISREG(st.st_mode):
            return st, None
        h = _new_hash(hash_name)
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
        return st, h.hexdigest()


def file_state(path: str, hash_name: str, known: list | None = None) -> list:
    """[kind, size, mtime_ns, ino, ctime_ns, digest] of a path now: what a file check compares.

    known: this path's state as an earlier recording stored it (with its recorded_at_ns last). When the
    stat is the same and was not racy then, its digest is taken instead of reading the file again: the
    very rule under which check() trusts a stat match (git's index works the same way).
    """
    try:
        st = _stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ["missing", 0, 0, 0, 0, None]
    except (OSError, ValueError):
        return ["other", 0, 0, 0, 0, None]
    kind = _kind(st.st_mode)
    if kind != "file":
        return [kind, 0, 0, 0, 0, None]
    if (
        known is not None
        and len(known) == 7
        and known[0] == "file"
        and known[5] is not None
        and type(known[6]) is int
        and _stat_proves(st, known, known[6])
    ):
        return ["file", st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, known[5]]
    digest = None
    try:
        st, digest = _digest_file(path, hash_name)
    except OSError:
        pass  # unreadable: stat-only state; a differing stat is a change
    return ["file", st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, digest]


def _stat_proves(st: os.stat_result, state: list, recorded_at_ns: int | None) -> bool:
    """Whether a stat alone shows a file unchanged since `state` ([kind, size, mtime_ns, ino, ctime_ns, ...])
    was recorded at recorded_at_ns: the same size, mtime, inode and ctime, and a recorded mtime older than
    recorded_at_ns - RACY_NS (git's racily-clean rule; None trusts every stat match). The one rule for both
    check() and the reuse of a recorded digest (file_state's `known`)."""
    if [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns] != state[1:5]:
        return False
    return recorded_at_ns is None or state[2] < recorded_at_ns - RACY_NS


def same_file(path: str, state: list, hash_name: str, recorded_at_ns: int | None = None) -> bool:
    """Whether a path still holds the recorded state: stat first, content hash when stat can't tell.

    A stat match is trusted only if the recorded mtime is older than recorded_at_ns - RACY_NS
    (git's racily-clean rule); recorded_at_ns None trusts every stat match.
    """
    kind = state[0]
    try:
        st = _stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return kind == "missing"
    except (OSError, ValueError):
        return kind == "other"
    now_kind = _kind(st.st_mode)
    if now_kind != kind:
        return False
    if kind != "file":
        return True
    if _stat_proves(st, state, recorded_at_ns):
        return True
    size, digest = state[1], state[5]
    if digest is None or st.st_size != size:
        return False
    try:
        _, now = _digest_file(path, hash_name)
    except OSError:
        return False
    return now == digest


def _list_digest(path: str, hash_name: str) -> str | None:
    """Digest of a directory's sorted entry names, None when it cannot be listed."""
    try:
        with _Quiet():
            names = _listdir(path)
    except (OSError, ValueError):
        return None
    h = _new_hash(hash_name)
    h.update(b"\0".join(sorted(os.fsencode(n) for n in names)))
    return h.hexdigest()


def _env_digest(env: dict[str, str], hash_name: str) -> str:
    """Digest of a whole environment, independent of its order."""
    h = _new_hash(hash_name)
    for k in sorted(env):
        h.update(os.fsencode(k) + b"=" + os.fsencode(env[k]) + b"\0")
    return h.hexdigest()


def _probe_kind(path: str, bits: int) -> str:
    """Kind of a probed path now: lstat's view, and for a link seen through stat also its target."""
    try:
        lk = _kind(_lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except (OSError, ValueError):
        return "other"
    if lk != "link":
        return lk
    if not bits & _FOLLOW:
        return "link"
    try:
        target = _kind(_stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        target = "missing"
    except (OSError, ValueError):
        target = "other"
    return "link>" + target


def _show(path: str) -> str:
    """A path as short as the reader needs: relative when under the cwd."""
    try:
        cwd = os.getcwd()
    except OSError:
        return path
    if path.startswith(cwd + os.sep):
        return path[len(cwd) + 1 :]
    return path


def check(record: list, hash_name: str = "md5") -> str | None:
    """None if the input a record describes is unchanged, else a one-line reason (why: cache use)."""
    tag = record[0]
    with _Quiet():
        if tag == "f" or tag == "o":
            path, state = record[1], record[2]
            recorded_at = state[6] if len(state) > 6 else None
            if same_file(path, state, hash_name, recorded_at):
                return None
            try:
                _stat(path)
                now = "present"
            except OSError:
                now = "missing"
            if now == "missing" and state[0] != "missing":
                return f"{_show(path)} deleted"
            if state[0] == "missing":
                return f"{_show(path)} created"
            return f"{_show(path)} changed"
        if tag == "d":
            if _list_digest(record[1], hash_name) == record[2]:
                return None
            return f"dir {_show(record[1])} listing changed"
        if tag == "p":
            path, bits = record[1], _FOLLOW if record[2].startswith("link>") else _NOFOLLOW
            now = _probe_kind(path, bits)
            if now == record[2]:
                return None
            return f"{_show(path)} changed ({record[2]} -> {now})"
        if tag == "e":
            if os.environ.get(record[1]) == record[2]:
                return None
            return f"env {record[1]} changed"
        if tag == "E":
            if _env_digest(dict(os.environ), hash_name) == record[1]:
                return None
            return "environment changed"
        if tag == "x":
            return None  # its dependencies are the "f" records made for it
        if tag == "!":
            return f"recording incomplete: {record[1]}"
    return f"unknown input record {tag!r}"


def _fspath(path: object) -> str | None:
    """A str path from what a call received, None for fds and things that are not paths."""
    if type(path) is str:
        return path
    if path is None or isinstance(path, int):
        return None
    try:
        p = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        return None
    return os.fsdecode(p)


class InputRecorder:
    """Observe the inputs of one phase of this process, then describe them as check()able records."""

    def __init__(self, ignore_prefixes: Iterable[str] = ()) -> None:
        """Why ignore_prefixes: the caller's own store must never become an input of the phase."""
        prefixes = [os.path.abspath(p) for p in ignore_prefixes]
        self._ignore_exact = frozenset(prefixes)
        self._ignore_under = tuple(p.rstrip(os.sep) + os.sep for p in prefixes)
        self._lock = allocate_lock()
        self._files: dict[str, int] = {}  # path -> _READ|_WRITE
        # opens_only with the C hook: path -> _READ|_WRITE of plain absolute paths, filled by the hook itself
        # (no Python call per open); merged into _files, as _note_file() would, when read (_absorb)
        self._raw: dict[str, int] = {}
        self._dirs: set[str] = set()
        self._probes: dict[str, int] = {}  # path -> _FOLLOW|_NOFOLLOW
        self._raw_probes: dict[str, int] = {}  # the same, of plain absolute paths, filled by the C probe()
        self._env: dict[str, str | None] = {}  # name -> value at first read
        self._env_set: set[str] = set()  # names the phase set/deleted itself
        self._env_start: dict[str, str] = {}  # the environment when the phase started
        self._whole_env = False
        self._execs: dict[tuple, list] = {}  # (cwd, *argv) -> ["x", argv, exe]
        self._errors: list[str] = []
        self._patched: list[tuple] = []  # (owner, name, original or _MISSING)
        self._support_sets: list[tuple[set, object]] = []
        self.opens_only = False  # start(opens_only=True): files opened, nothing else

    # -- start/stop ------------------------------------------------------------------------------

    def start(self, opens_only: bool = False) -> None:
        """Begin observing: one audit hook per process, narrow wrappers until stop().

        opens_only: record only the files opened (no probes, listings, environment or subprocesses),
        with no wrapper at all: cheap enough to run while a build does its real work.
        """
        global _ACTIVE, _HOOKED
        with _START_LOCK:
            if _ACTIVE is not None:
                raise RuntimeError("another InputRecorder is already recording")
            if self._patched:
                raise RuntimeError("this InputRecorder is already recording")
            if not _HOOKED:
                _install_hook()
                _HOOKED = True
            self.opens_only = opens_only
            if opens_only:
                _ACTIVE = self
                if _CHOOK is not None:
                    _CHOOK.set_sink(self._raw)
                _set_mode(1)
                return
            self._env_start = dict(os.environ)  # before the wrappers: not an observation
            self._patch(os, "stat", _w_stat)
            self._patch(os, "lstat", _w_lstat)
            self._patch(os, "access", _w_access)
            for name, wrapper in _ENV_WRAPPERS.items():
                self._patch(_Environ, name, wrapper)
            _ACTIVE = self
            if _CHOOK is not None:
                _CHOOK.set_probe_sink(self._raw_probes)
            _set_mode(2)

    def _patch(self, owner: object, name: str, wrapper: object) -> None:
        """Replace one attribute, remembering the exact original (or its absence) for stop()."""
        original = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name)
        self._patched.append((owner, name, original))
        if original is not _MISSING and not isinstance(owner, type):
            import functools

            functools.update_wrapper(wrapper, original)  # type: ignore[arg-type]
            for sup in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks, os.supports_effective_ids):
                if original in sup and wrapper not in sup:  # `os.stat in os.supports_*` unchanged
                    sup.add(wrapper)  # type: ignore[arg-type]
                    self._support_sets.append((sup, wrapper))
        setattr(owner, name, wrapper)

    def stop(self) -> None:
        """Stop observing and put back every original object exactly."""
        global _ACTIVE
        with _START_LOCK:
            if _ACTIVE is self:
                _ACTIVE = None
                _set_mode(0)
                if _CHOOK is not None:
                    _CHOOK.set_sink(None)
                    _CHOOK.set_probe_sink(None)
            for owner, name, original in reversed(self._patched):
                if original is _MISSING:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self._patched.clear()
            for sup, wrapper in self._support_sets:
                sup.discard(wrapper)
            self._support_sets.clear()

    # -- recording (called from the hook and the wrappers) ----------------------------------------

    def _abs(self, path: str, cwd: str | None = None) -> str | None:
        """Absolute normalised path, or None when it is under an ignored prefix."""
        if not path:
            return None
        if path[0] == "/" and "//" not in path and "/." not in path and path[-1] != "/":
            p = path  # already what normpath() returns (most paths SCons opens): 2 us less per open
        else:
            if not os.path.isabs(path):
                path = os.path.join(cwd or os.getcwd(), path)
            p = os.path.normpath(path)
        if p in self._ignore_exact or p.startswith(self._ignore_under):
            return None
        return p

    def _fail(self, what: str, exc: BaseException) -> None:
        """An observation could not be recorded: the recording must not be trusted."""
        with self._lock:
            if len(self._errors) < 10:
                self._errors.append(f"{what}: {type(exc).__name__}: {exc}")

    def _note_file(self, path: str | None, bit: int, cwd: str | None = None) -> None:
        """Remember a file read or written."""
        if path is None:
            return
        p = self._abs(path, cwd)
        if p is None:
            return
        with self._lock:
            self._files[p] = self._files.get(p, 0) | bit
        if bit == _READ and p.endswith(".pyc"):
            head, name = os.path.split(p)
            if os.path.basename(head) == "__pycache__":
                src = os.path.join(os.path.dirname(head), name.split(".", 1)[0] + ".py")
                with self._lock:
                    self._files[src] = self._files.get(src, 0) | _READ

    def _absorb(self, probes: bool = True) -> None:
        """What the C hook took itself (opens in self._raw, probes in self._raw_probes), recorded as the
        Python handlers record each event. probes=False: the opens only (the caller forgets probes first)."""
        for raw, note, bits_of in (
            (self._raw, self._note_file, (_READ, _WRITE)),
            (self._raw_probes if probes else {}, self._note_probe, (_FOLLOW, _NOFOLLOW)),
        ):
            while raw:
                path, bits = raw.popitem()  # one at a time: the hook may still be adding
                for bit in bits_of:
                    if bits & bit:
                        note(path, bit)

    def _note_open(self, args: tuple) -> None:
        """The "open" audit event: (path, mode or None, flags)."""
        path, mode, flags = args
        p = _fspath(path)
        if p is None:
            return
        if mode in _READ_MODES:
            write = False
        elif mode is not None:
            write = any(c in mode for c in "wax+")
        else:
            write = bool(flags & _WRITE_FLAGS)
        self._note_file(p, _WRITE if write else _READ)

    def _note_dir(self, args: tuple) -> None:
        """The "os.listdir"/"os.scandir" audit events: (path,), None meaning the cwd."""
        path = args[0]
        p = "." if path is None else _fspath(path)
        if p is None:
            return
        p = self._abs(p)
        if p is not None:
            with self._lock:
                self._dirs.add(p)

    def _note_probe(self, path: object, bit: int) -> None:
        """A stat/lstat/access of a path."""
        p = _fspath(path)
        if p is None:
            return
        old = self._probes.get(p)  # fast path: an absolute path seen before
        if old is not None and old & bit:
            return
        p = self._abs(p)
        if p is None:
            return
        with self._lock:
            old = self._probes.get(p, 0)
            if old & bit == 0:
                self._probes[p] = old | bit

    def _note_env(self, key: object, value: object) -> None:
        """An environment variable read: its value at the first read is the input."""
        name = os.fsdecode(key) if isinstance(key, bytes) else key
        if not isinstance(name, str) or name in self._env_set or name in self._env:
            return
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        with self._lock:
            self._env.setdefault(name, value)  # type: ignore[call-overload]

    def _note_env_set(self, key: object) -> None:
        """A name the phase set or deleted itself: later reads see the phase's own value."""
        name = os.fsdecode(key) if isinstance(key, bytes) else key
        if isinstance(name, str):
            with self._lock:
                self._env_set.add(name)

    def _env_get(self, name: str, env: object) -> str | None:
        """A variable from an explicit env mapping, or from os.environ (then it is an input)."""
        if env is None:
            try:
                value = _ENV_ORIG["__getitem__"](os.environ, name)
            except KeyError:
                value = None
            self._note_env(name, value)
            return value
        for k in (name, os.fsencode(name)):
            try:
                v = env[k]  # type: ignore[index]
            except (KeyError, TypeError):
                continue
            return os.fsdecode(v) if isinstance(v, bytes) else v
        return None

    def _note_exec(self, exe: object, argv: object, cwd: object, env: object) -> None:
        """A subprocess: its executable and every argv word naming a file become file inputs."""
        if isinstance(argv, (str, bytes, os.PathLike)):
            argv = [argv]
        words = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in (argv or [])]  # type: ignore[attr-defined]
        cwd_s = _fspath(cwd) if cwd is not None else None
        if cwd_s is not None:
            cwd_s = os.path.join(os.getcwd(), cwd_s)
        key = (cwd_s or os.getcwd(), *words)  # the same argv elsewhere names other files
        if key in self._execs:
            return
        exe_s = _fspath(exe) if exe is not None else (words[0] if words else None)
        exe_path = self._resolve(exe_s, cwd_s, env) if exe_s else None
        with self._lock:
            self._execs[key] = ["x", words, exe_path]
        if exe_path:
            self._note_file(exe_path, _READ)
        files = words[1:]
        if len(words) >= 3 and os.path.basename(words[0]) in _SHELLS and words[1] == "-c":
            try:
                import shlex  # here: the checker (a fresh, light process) never needs it

                tokens = shlex.split(words[2])
            except ValueError:
                tokens = words[2].split()
            if tokens:
                first = self._resolve(tokens[0], cwd_s, env)
                if first:
                    self._note_file(first, _READ)
            files = files + tokens[1:]
        for w in files:
            if not w or w.startswith("-"):
                continue
            p = os.path.join(cwd_s or os.getcwd(), w)
            try:
                if _st.S_ISREG(_stat(p).st_mode):
                    self._note_file(p, _READ)
            except (OSError, ValueError):
                pass

    def _resolve(self, exe: str, cwd: str | None, env: object) -> str | None:
        """Where a command name leads, the way exec would find it (PATH from env or os.environ)."""
        if os.sep in exe:
            return os.path.normpath(os.path.join(cwd or os.getcwd(), exe))
        path = self._env_get("PATH", env)
        import shutil  # here: the checker never needs it

        found = shutil.which(exe, path=path if path is not None else os.defpath)
        return os.path.abspath(found) if found else None

    # -- results ---------------------------------------------------------------------------------

    def records(self, hash_name: str = "md5", known: Any = None) -> list[list]:
        """The inputs as plain lists, with file states of NOW (call when the phase's outputs are final).

        Each "f"/"o" state is file_state() + [recorded_at_ns]; recorded_at_ns is taken before any
        stat, so it is a lower bound of when each state was seen (what the racy rule needs).
        Order: cheap checks first (env, probes, dirs), then files, so a check stream stops early.
        known: path -> state of a previous recording with the same hash_name (file_state's `known`): a
        dict, or anything with its get() (dagcache.StoredStates).
        """
        known = known or {}
        self._absorb()
        with _Quiet(), self._lock:
            files = dict(self._files)
            dirs = set(self._dirs)
            probes = dict(self._probes)
            env = dict(self._env)
            whole_env = self._whole_env
            execs = list(self._execs.values())
            errors = list(self._errors)
        out: list[list] = [["!", e] for e in errors]
        with _Quiet():
            if whole_env:
                out.append(["E", _env_digest(self._env_start, hash_name)])
            else:  # the whole environment covers each variable
                out.extend(["e", k, v] for k, v in sorted(env.items()))
            recorded_at = time.time_ns()
            file_recs: list[list] = []
            covered = set(dirs)
            for path in sorted(files):
                state = file_state(path, hash_name, known.get(path))
                if files[path] & _WRITE:
                    if state[0] == "missing":
                        continue  # written and gone: a temporary file, not an input
                    file_recs.append(["o", path, state + [recorded_at]])
                else:
                    file_recs.append(["f", path, state + [recorded_at]])
                covered.add(path)
            out.extend(["p", p, _probe_kind(p, bits)] for p, bits in sorted(probes.items()) if p not in covered)
            out.extend(["d", d, _list_digest(d, hash_name)] for d in sorted(dirs))
            out.extend(file_recs)
            out.extend(execs)
        return out

    def forget_files(self, paths: Iterable[str]) -> None:
        """Drop these recorded files, if recorded (the caller tracks them another way: a build's every node)."""
        with self._lock:
            pop, pop_raw = self._files.pop, self._raw.pop
            for p in paths:
                pop(p, None)
                pop_raw(p, None)

    def file_paths(self) -> frozenset[str]:
        """The files recorded so far (read or written), before records() states them."""
        self._absorb(probes=False)
        with self._lock:
            return frozenset(self._files)

    def forget_probe(self, path: str) -> bool:
        """Drop a stat/access probe of a path whose stat kind the caller checks itself (an lstat probe stays:
        a file replaced by a link to the same content changes what lstat says, not what stat says)."""
        with self._lock:
            return self._forget_probe(path)

    def forget_probes(self, paths: Iterable[str]) -> None:
        """forget_probe() for many paths under one lock."""
        with self._lock:
            for p in paths:
                self._forget_probe(p)

    def _forget_probe(self, path: str) -> bool:
        """The rule of forget_probe(), with the lock held (over both the recorder's and the C hook's probes)."""
        if self._probes.get(path, 0) | self._raw_probes.get(path, 0) == _FOLLOW:
            self._probes.pop(path, None)
            self._raw_probes.pop(path, None)
            return True
        return False

    def summary(self) -> dict[str, int]:
        """Counts per record kind, for reports (before records(): writes count as "o")."""
        self._absorb()
        with self._lock:
            written = sum(1 for b in self._files.values() if b & _WRITE)
            return {
                "f": len(self._files) - written,
                "o": written,
                "d": len(self._dirs),
                "p": len(self._probes),
                "e": len(self._env),
                "E": int(self._whole_env),
                "x": len(self._execs),
                "!": len(self._errors),
            }


# -- the audit hook (installed once, a no-op while no recorder is active) --------------------------


def _on_exec_popen(rec: InputRecorder, args: tuple) -> None:
    """subprocess.Popen: (executable, args, cwd, env)."""
    rec._note_exec(args[0], args[1], args[2], args[3])


def _on_system(rec: InputRecorder, args: tuple) -> None:
    """os.system: (command,), run by /bin/sh -c."""
    cmd = args[0]
    cmd = os.fsdecode(cmd) if isinstance(cmd, bytes) else str(cmd)
    rec._note_exec("/bin/sh", ["sh", "-c", cmd], None, None)


def _on_spawn(rec: InputRecorder, args: tuple) -> None:
    """os.posix_spawn/os.exec: (path, argv, env)."""
    rec._note_exec(args[0], args[1], None, args[2])


_EVENTS = {
    "open": InputRecorder._note_open,
    "os.listdir": InputRecorder._note_dir,
    "os.scandir": InputRecorder._note_dir,
    "subprocess.Popen": _on_exec_popen,
    "os.system": _on_system,
    "os.posix_spawn": _on_spawn,
    "os.exec": _on_spawn,
}


def _install_hook() -> None:
    """Add the process's one audit hook: in C where built (events we do not handle never reach Python)."""
    global _CHOOK, _c_probe
    try:
        if os.environ.get("DAGPROF_NO_C", "") not in ("", "0"):
            raise ImportError("DAGPROF_NO_C is set")
        from . import _fastaudit

        _fastaudit.install(_on_event, tuple(_EVENTS))  # ImportError: not built, or another interpreter's
    except ImportError:
        sys.addaudithook(_audit)
        return
    _CHOOK = _fastaudit
    _c_probe = _fastaudit.probe


def _set_mode(mode: int) -> None:
    """Tell the C hook which events to pass on: 0 none, 1 "open" only, 2 all of _EVENTS."""
    if _CHOOK is not None:
        _CHOOK.set_mode(mode)


def _audit(event: str, args: tuple) -> None:
    """The process-wide audit hook in Python: returns at once unless a recorder is active and not quiet."""
    rec = _ACTIVE
    if rec is None or event not in _EVENTS or (rec.opens_only and event != "open"):
        return
    _on_event(event, args)


def _on_event(event: str, args: tuple) -> None:
    """One event the recorder handles (the C hook filtered by name and mode already)."""
    rec = _ACTIVE
    if rec is None or getattr(_tl, "quiet", False):
        return
    handler = _EVENTS[event]
    with _Quiet():  # the handler's own stat/which/environ use is not an input
        try:
            handler(rec, args)
        except Exception as exc:  # noqa: BLE001 - a hook that raises would abort the program's own call
            rec._fail(event, exc)


# -- wrappers (installed by start(), removed by stop()) --------------------------------------------


def _observe_probe(args: tuple, kwargs: dict, bit: int) -> None:
    """Record a probe from a wrapped call's arguments, never raising."""
    rec = _ACTIVE
    if rec is None or kwargs.get("dir_fd") is not None or getattr(_tl, "quiet", False):
        return
    path = args[0] if args else kwargs.get("path")
    if type(path) is int:
        return
    if kwargs.get("follow_symlinks", True) is False:
        bit = _NOFOLLOW
    with _Quiet():
        try:
            rec._note_probe(path, bit)
        except Exception as exc:  # noqa: BLE001 - a wrapper must not change what os.stat raises
            rec._fail("stat", exc)


def _w_stat(*args, **kwargs):
    """os.stat, recording the probed path (exact pass-through of arguments, result, exceptions)."""
    if _c_probe is None or not _c_probe(args, kwargs, _FOLLOW):
        _observe_probe(args, kwargs, _FOLLOW)
    return _stat(*args, **kwargs)


def _w_lstat(*args, **kwargs):
    """os.lstat, recording the probed path and that its link-ness was asked."""
    if _c_probe is None or not _c_probe(args, kwargs, _NOFOLLOW):
        _observe_probe(args, kwargs, _NOFOLLOW)
    return _lstat(*args, **kwargs)


_access = os.access


def _w_access(*args, **kwargs):
    """os.access, recording the probed path."""
    if _c_probe is None or not _c_probe(args, kwargs, _FOLLOW):
        _observe_probe(args, kwargs, _FOLLOW)
    return _access(*args, **kwargs)


def _env_active() -> InputRecorder | None:
    """The recorder that should see an environment access from this thread, if any."""
    rec = _ACTIVE
    if rec is None or getattr(_tl, "quiet", False):
        return None
    return rec


def _e_getitem(self, key):
    """os.environ[key] (also .get, getenv, `in`): the value at the first read is an input."""
    rec = _env_active()
    try:
        value = _ENV_ORIG["__getitem__"](self, key)
    except KeyError:
        if rec is not None:
            rec._note_env(key, None)
        raise
    if rec is not None:
        rec._note_env(key, value)
    return value


def _e_setitem(self, key, value):
    """os.environ[key] = value: the phase's own value is not an input."""
    rec = _env_active()
    if rec is not None:
        rec._note_env_set(key)
    return _ENV_ORIG["__setitem__"](self, key, value)


def _e_delitem(self, key):
    """del os.environ[key]: the phase's own deletion is not an input."""
    rec = _env_active()
    if rec is not None:
        rec._note_env_set(key)
    return _ENV_ORIG["__delitem__"](self, key)


def _e_whole(name: str):
    """A wrapper for a method that observes the whole environment (iteration, length)."""
    original = _ENV_ORIG[name]

    def whole(self, *args):
        """Observes the whole environment: every variable is an input."""
        rec = _env_active()
        if rec is not None:
            rec._whole_env = True
        return original(self, *args)

    whole.__name__ = whole.__qualname__ = name
    return whole


_ENV_WRAPPERS = {
    "__getitem__": _e_getitem,
    "__setitem__": _e_setitem,
    "__delitem__": _e_delitem,
    "__iter__": _e_whole("__iter__"),
    "__len__": _e_whole("__len__"),
}

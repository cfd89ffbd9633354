"""Shared helpers for bench scripts: the machine line, measured subprocess runs, alternation, tables.

Why: every bench prints the same three things (machine, command, side-by-side figures) and measures
builds the same way, so figures from different scripts can be compared. See bench/README.md.

Peak RSS of a subprocess, and the choice made here. The command is started by a small wrapper
(`python -S`, about 8-10 MiB) that posix_spawns it, wait4()s it and reports back; the bench
process itself also samples /proc. Figures returned:
  * ``peak_rss``: ``ru_maxrss`` from the wrapper's ``wait4``. Linux folds in the ru_maxrss of every
    descendant the command reaped, so this is the largest SINGLE process of the tree (not a sum).
    For SCons that is SCons itself (its compilers are small); for ``make`` it is usually a compiler.
    A child's ru_maxrss also starts at its spawner's high-water mark (exec records the vfork-shared
    old mm), which is why the wrapper exists: spawned straight from a bench process the floor would
    be that process's 25-40 MiB. ``floor_rss`` is the wrapper's own peak: values at or below it
    mean "no process in the tree was bigger than the floor", not a measurement.
  * ``self_peak_rss``: the command's OWN high-water mark (VmHWM in /proc/PID/status), read every
    ``poll_s`` through a handle opened on /proc/PID (so a recycled pid is never read). This is how
    make's own peak is reported: rusage cannot separate a process from the children it reaped.
    VmHWM only grows, so the last sample is exact unless the process grew in its final ``poll_s``.
  * ``tree_rss_peak`` (only with ``sample_tree=True``): the largest SUM of RSS over the process tree
    seen at a sample; it matters for parallel builds (-j) and costs a /proc scan per sample.
  * ``wall_s``, ``user_s``, ``sys_s``: measured by the wrapper, so Python start-up is not included.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_view() -> str:
    """The checkout under its import names (`dagprof` -> profiler/), as tests/conftest.py makes it."""
    view = os.path.join(REPO_ROOT, "build", "import-names")
    os.makedirs(view, exist_ok=True)
    for name, folder in (("dagprof", "profiler"), ("dagstore", "dagstore")):  # pyproject's package-dir
        link, target = os.path.join(view, name), os.path.join(REPO_ROOT, folder)
        if not (os.path.islink(link) and os.readlink(link) == target):
            tmp = os.path.join(view, f".{name}.{os.getpid()}")
            os.symlink(target, tmp)
            os.replace(tmp, link)
    return view


# bench scripts run as `python bench/x.py` from a checkout; its processes get IMPORT_PATH as PYTHONPATH
IMPORT_PATH = _import_view()
if IMPORT_PATH not in sys.path:
    sys.path.insert(0, IMPORT_PATH)

from dagprof.measure import TRAMPOLINE, machine_description  # noqa: E402  (after the sys.path line)
from dagprof.rss import Sampler, read_status  # noqa: E402
from dagstore.units import fmt_bytes  # noqa: E402  (the one byte formatter; benches import it from here)

T = TypeVar("T")

__all__ = [
    "REPO_ROOT",
    "IMPORT_PATH",
    "machine_description",
    "run_measured",
    "median",
    "alternate",
    "print_table",
    "print_header",
    "fmt_bytes",
    "fmt_ratio",
    "scons_command",
]


# ---- measured runs ------------------------------------------------------------------------------


def _vm_hwm(proc_dir_fd: int) -> int | None:
    """VmHWM of the process behind a /proc/PID directory handle, in bytes; None once it has exited."""
    return (read_status(dir_fd=proc_dir_fd) or {}).get("hwm")  # dagprof.rss: the one /proc reader


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        top = psutil.Process(pid)
        procs = [top] + top.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class _Sampler:
    """Polls the measured process's own VmHWM (and optionally its tree's summed RSS) through dagprof's one
    sampler thread (dagprof.rss.Sampler); this class only finds the process and says what to read."""

    def __init__(self, pid: int, parent: int, poll_s: float, sample_tree: bool) -> None:
        self.pid, self.sample_tree = pid, sample_tree
        self.proc_dir: int | None = None
        try:
            self.proc_dir = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
            with open("stat", opener=lambda p, f: os.open(p, f, dir_fd=self.proc_dir)) as st:
                if int(st.read().rsplit(")", 1)[1].split()[1]) != parent:  # pid already recycled
                    os.close(self.proc_dir)
                    self.proc_dir = None
        except (OSError, ValueError, IndexError):
            if self.proc_dir is not None:
                os.close(self.proc_dir)
            self.proc_dir = None  # not Linux, or already gone: no self/tree figures
        self.sampler = Sampler(interval_s=poll_s, read=self._read, name="run_measured").start()

    def _read(self) -> dict[str, int] | None:
        if self.proc_dir is None:
            return None
        out = {}
        hwm = _vm_hwm(self.proc_dir)
        if hwm is not None:
            out["self"] = hwm
        if self.sample_tree:
            out["tree"] = _tree_rss(self.pid)
        return out

    @property
    def self_peak(self) -> int:
        return self.sampler.peak("self")

    @property
    def tree_peak(self) -> int:
        return self.sampler.peak("tree")

    def stop(self) -> None:
        self.sampler.stop()
        if self.proc_dir is not None:
            os.close(self.proc_dir)


def run_measured(
    cmd: Sequence[str],
    cwd: str | os.PathLike,
    env: Mapping[str, str] | None = None,
    poll_s: float = 0.02,
    sample_tree: bool = False,
    capture: bool = False,
) -> dict[str, Any]:
    """Run one command and return its wall time, exit code and peak RSS figures (see module doc)."""
    if not cmd:
        raise ValueError("run_measured needs a command")
    out = tempfile.TemporaryFile() if capture else None
    sink = out if out is not None else subprocess.DEVNULL
    r, w = os.pipe()
    try:
        wrapper = subprocess.Popen(
            [sys.executable, "-S", "-c", TRAMPOLINE, str(w), *cmd],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            pass_fds=(w,),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        os.close(w)
    sampler = None
    try:
        with os.fdopen(r, "r") as report:
            pid = int(report.readline() or 0)
            if pid:
                sampler = _Sampler(pid, wrapper.pid, poll_s, sample_tree)
            line = report.readline()
        wrapper.wait()
    except BaseException:
        os.killpg(wrapper.pid, 9)  # the command runs in the wrapper's session: stop both
        wrapper.wait()
        raise
    finally:
        if sampler is not None:
            sampler.stop()
    if not line:
        raise RuntimeError(f"measuring wrapper died (exit {wrapper.returncode}) running {cmd[0]}")
    data = json.loads(line)
    if "error" in data:
        raise FileNotFoundError(data["error"])
    result: dict[str, Any] = {
        "cmd": list(cmd),
        "wall_s": data["wall_s"],
        "exit_code": data["exit_code"],
        "peak_rss": data["maxrss_kib"] * 1024,  # largest single process of the tree (KiB on Linux)
        "self_peak_rss": (sampler.self_peak or None) if sampler else None,
        "floor_rss": data["floor_kib"] * 1024,  # peak_rss can never read below this
        "user_s": data["user_s"],
        "sys_s": data["sys_s"],
    }
    if sample_tree:
        result["tree_rss_peak"] = (sampler.tree_peak or None) if sampler else None
    if out is not None:
        out.seek(0)
        result["output"] = out.read().decode(errors="replace")
        out.close()
    return result


BYTECODE_DIR = os.path.join(tempfile.gettempdir(), "dagprof-bench-pycache")


def bench_env(from_source: bool = False, cache_dir: str = BYTECODE_DIR) -> dict[str, str]:
    """The environment every measured command runs in: this checkout first on the path, no SCONSFLAGS/MAKEFLAGS.

    Byte code: an installed dagprof (and SCons) run from the byte code pip compiled at install. A checkout
    on a machine that sets PYTHONDONTWRITEBYTECODE (this one) would compile every dagprof module from
    source in every measured run (~0.2 s and a few MiB of a 4 s build), which users never pay. So all
    variants, plain SCons too, read byte code from `cache_dir` (PYTHONPYCACHEPREFIX), written by a first,
    unmeasured run of each command; from_source=True measures the checkout as it is.
    """
    env = dict(os.environ, PYTHONPATH=IMPORT_PATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SCONSFLAGS", None)
    env.pop("MAKEFLAGS", None)
    if from_source:
        env.pop("PYTHONPYCACHEPREFIX", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ written by a first run either
    else:
        env["PYTHONPYCACHEPREFIX"] = cache_dir
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def bytecode_note(env: Mapping[str, str]) -> str:
    """One line for a bench's header: where the interpreter's byte code came from."""
    prefix = env.get("PYTHONPYCACHEPREFIX")
    if prefix:
        return f"byte code: compiled once into {prefix} (as an installed package); --from-source to measure without"
    return "byte code: none cached for the checkout (compiled from source in every run)"


def scons_command(*args: str) -> list[str]:
    """The plain-SCons command line benches run (the venv's SCons, in a fresh interpreter)."""
    return [sys.executable, "-m", "SCons", *args]


# ---- repetition and statistics ------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """Median of repeated measurements: robust to the one run a neighbour's job slowed down."""
    values = list(values)
    if not values:
        raise ValueError("median of no values")
    return statistics.median(values)


def alternate(n: int, variants: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run each variant n times, interleaved, so machine drift hits all variants alike.

    Round r starts with variant r mod k (A B C, B C A, C A B, ...), so no variant always runs first
    (cold caches) or always right after another.
    """
    if n < 1:
        raise ValueError("alternate needs n >= 1")
    names = list(variants)
    results: dict[str, list[T]] = {name: [] for name in names}
    for r in range(n):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
    return results


# ---- printing -----------------------------------------------------------------------------------


def fmt_ratio(value: float | None, baseline: float | None) -> str:
    """value/baseline as '0.82x'; '-' when either side is missing or the baseline is zero."""
    if value is None or not baseline:
        return "-"
    return f"{value / baseline:.2f}x"


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], file=None) -> None:
    """Aligned plain-text table (numbers right-aligned) that reads the same in a log or a doc."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) or row[i] is None for row in rows)
        if rows
        else False
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    print(line(list(headers)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in cells:
        print(line(r), file=file)


def print_header(title: str, command: Sequence[str] | str, file=None) -> None:
    """The lines every bench prints first: what, on which machine, with which command."""
    cmd = command if isinstance(command, str) else " ".join(command)
    print(f"# {title}", file=file)
    print(f"machine: {machine_description()}", file=file)
    print(f"command: {cmd}", file=file)

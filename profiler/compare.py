"""`dagprof compare`: the same SCons build as plain SCons and with the node store, each in its own process.

Why: the store's savings are only believable side by side with plain SCons, measured the same way,
on the same work, alternately (so machine drift hits both alike).

How each figure is measured (the choices, documented in docs/low-memory-scons.md too):
  * plain = ``python -m SCons ARGS`` with the same interpreter: no dagprof code in the process.
    store = ``python -m dagprof build --store KIND --spill SPILL --dag-cache off -o TMP -- ARGS`` (the
    attribute store alone: the DAG cache never answers these runs).
    dagcache = ``python -m dagprof build --store lmdb --summary -- ARGS`` started from a store whose DAG
    snapshot a warm-up build recorded and confirmed: the null build is answered from the snapshot without
    importing SCons. Each run records whether it was (``answered``, from the line --summary prints); a run
    SCons had to build is reported in the notes. Null builds only (``--state null|second``).
    make = ``make MAKE_ARGS`` (``--make``, when the top directory has a Makefile): GNU Make's own null
    build of the same tree, for scale. Its dependency files (-MMD) exist only if Make built the tree once.
  * Both run under the same small ``python -S`` wrapper that posix_spawns the build and ``wait4``s it:
    ``peak_rss`` is the kernel's ru_maxrss (the floor is the wrapper's own ~9 MiB, not ours).
  * ``peak_rss_anon``/``peak_rss_file`` are the maxima of RssAnon/RssFile read from
    /proc/PID/status every 20 ms from OUTSIDE the process, for both variants alike (samples, so they
    can miss a spike shorter than the interval; the kernel keeps no split high-water mark).
  * ``node_bytes``/``nodes`` (node data resident at the end) need the sizer inside the process, so they
    come from one extra, untimed pass per variant (``dagprof build --store none|KIND --sizes``) on the
    same reset state; plain's figure is SCons' own data (the access counters add no per-node data).
  * Build state is reset before every run so both variants do the same work: ``null`` restores the
    .sconsign files saved after one up-front build and removes the store (the store's first build);
    ``second`` also restores a store saved after one warm-up store build; ``full`` cleans the outputs
    (``scons -c``) and removes .sconsign and the store. The user's own store directory is moved aside
    first and put back at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .builds.scons_state import clean_args, has_sconstruct, locates_sconstruct, plain_command, sconsign_files
from .measure import TRAMPOLINE, machine_description
from .rss import Sampler

VARIANTS = ("plain", "store", "dagcache", "make")
MAKEFILES = ("GNUmakefile", "makefile", "Makefile")
DAG_ANSWERED = "dagprof: up to date from the DAG cache"
TIMED = ("peak_rss", "peak_rss_anon", "peak_rss_file", "wall_s", "floor_rss")
METRICS = (
    "peak_rss",
    "peak_rss_anon",
    "peak_rss_file",
    "wall_s",
    "node_bytes",
    "nodes",
    "spilled_attrs",
    "spilled_bytes",
    "collapsed",
    "reloads",
    "reuse_hits",
    "refused",
)
STORE_STATS = ("spilled_attrs", "spilled_bytes", "collapsed", "reloads", "reuse_hits", "refused")
STORE_DIR = ".dagstore"


class CompareError(Exception):
    """A comparison that cannot go on (a build failed, a wrapper died); one line for the user."""


@dataclass
class CompareSpec:
    """What to compare: the SCons arguments, the store, how many runs, which build state."""

    scons_args: list[str]
    store: str = "lmdb"
    runs: int = 3
    spill: str = "auto"
    state: str = "null"
    cwd: str = "."
    sizes: bool = True
    env: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    baseline: dict[str, Any] | None = None  # a plain variant already measured on the same state: reuse it
    dagcache: bool = False  # also measure null builds answered from the DAG cache
    make: bool = False  # also measure GNU Make's build of the same tree (needs a Makefile)
    make_args: list[str] = field(default_factory=list)

    def variants(self) -> list[str]:
        """The measured variants in table order; plain is the baseline every ratio divides by."""
        return ["plain", "store"] + (["dagcache"] if self.dagcache else []) + (["make"] if self.make else [])


# ---- measured runs ------------------------------------------------------------------------------


def run_measured(
    cmd: Sequence[str], cwd: str, env: dict[str, str] | None = None, poll_s: float = 0.02, log: str | None = None
) -> dict[str, Any]:
    """Run one build process; wall time, exit code, ru_maxrss peak and sampled anon/file peaks."""
    r, w = os.pipe()
    sink = open(log, "wb") if log else subprocess.DEVNULL
    try:
        wrapper = subprocess.Popen(
            [sys.executable, "-S", "-c", TRAMPOLINE, str(w), *cmd],
            cwd=cwd,
            env=env,
            pass_fds=(w,),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        os.close(w)
        if log:
            sink.close()  # type: ignore[union-attr]
    sampler = None
    try:
        with os.fdopen(r, "r") as report:
            pid = int(report.readline() or 0)
            if pid:
                sampler = Sampler(poll_s, pid=pid, name="dagprof-compare").start()
            line = report.readline()
        wrapper.wait()
    except BaseException:
        os.killpg(wrapper.pid, 9)
        wrapper.wait()
        raise
    finally:
        if sampler is not None:
            sampler.stop()
    if not line:
        raise CompareError(f"measuring wrapper died (exit {wrapper.returncode}) running {cmd[0]}")
    data = json.loads(line)
    if "error" in data:
        raise CompareError(data["error"])
    return {
        "wall_s": data["wall_s"],
        "exit_code": data["exit_code"],
        "peak_rss": data["maxrss_kib"] * 1024,
        "floor_rss": data["floor_kib"] * 1024,
        "peak_rss_anon": (sampler.peak("anon") or None) if sampler else None,
        "peak_rss_file": (sampler.peak("file") or None) if sampler else None,
    }


# ---- build state ------------------------------------------------------------------------------


def _sconsign_files(top: str) -> list[str]:
    """SCons' state files under the top directory (the store's directory is not searched)."""
    return sconsign_files(top, skip_dirs=(STORE_DIR,))


class BuildState:
    """Saves and restores .sconsign files and the store directory, so every run starts the same."""

    def __init__(self, top: str) -> None:
        self.top = os.path.abspath(top)
        self.tmp = tempfile.mkdtemp(prefix="dagprof-compare-")
        self.store_dir = os.path.join(self.top, STORE_DIR)
        self.user_store: str | None = None

    def put_aside_user_store(self) -> None:
        """The comparison must not destroy a store the user already has: keep it until close()."""
        if os.path.exists(self.store_dir):
            self.user_store = os.path.join(self.tmp, "user-store")
            shutil.move(self.store_dir, self.user_store)

    def save(self, name: str, with_store: bool = False) -> None:
        """Snapshot the .sconsign files (and the store) under a name."""
        dest = os.path.join(self.tmp, name)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(os.path.join(dest, "sconsign"))
        for rel in _sconsign_files(self.top):
            os.makedirs(os.path.dirname(os.path.join(dest, "sconsign", rel)), exist_ok=True)
            shutil.copy2(os.path.join(self.top, rel), os.path.join(dest, "sconsign", rel))
        if with_store and os.path.isdir(self.store_dir):
            shutil.copytree(self.store_dir, os.path.join(dest, "store"), symlinks=True)

    def restore(self, name: str, store: bool) -> None:
        """Put a snapshot back; without a saved store (or store=False) the store is removed."""
        src = os.path.join(self.tmp, name)
        for rel in _sconsign_files(self.top):
            os.remove(os.path.join(self.top, rel))
        base = os.path.join(src, "sconsign")
        for rel in _sconsign_files(base) if os.path.isdir(base) else []:
            shutil.copy2(os.path.join(base, rel), os.path.join(self.top, rel))
        self.drop_store()
        if store and os.path.isdir(os.path.join(src, "store")):
            shutil.copytree(os.path.join(src, "store"), self.store_dir, symlinks=True)

    def drop_store(self) -> None:
        shutil.rmtree(self.store_dir, ignore_errors=True)

    def close(self) -> None:
        """Drop the comparison's store, put the user's back, drop the snapshots."""
        self.drop_store()
        if self.user_store:
            shutil.move(self.user_store, self.store_dir)
            self.user_store = None
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- the comparison ---------------------------------------------------------------------------


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_env() -> dict[str, str]:
    """The environment both variants run with: ours, plus this checkout on PYTHONPATH for the store side."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _package_root() + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def dagprof_build_command(
    store: str, spill: str, out: str, scons_args: Sequence[str], sizes: bool = False
) -> list[str]:
    """`dagprof build` in a fresh interpreter, writing a profile with the store's figures (no DAG cache)."""
    cmd = [sys.executable, "-m", "dagprof", "build", "--store", store, "--quiet-store", "-o", out]
    if store != "none":
        cmd += ["--spill", spill]
    if store == "lmdb":
        cmd += ["--dag-cache", "off"]  # the attribute store alone; the DAG cache is its own variant
    if sizes:
        cmd.append("--sizes")
    return [*cmd, "--", *scons_args]


def dagcache_command(scons_args: Sequence[str]) -> list[str]:
    """`dagprof build` as a user runs it (DAG cache on); --summary says whether the cache answered."""
    return [sys.executable, "-m", "dagprof", "build", "--store", "lmdb", "--summary", "--", *scons_args]


def make_command(make_args: Sequence[str]) -> list[str]:
    return ["make", *make_args]


def find_makefile(top: str) -> str | None:
    return next((n for n in MAKEFILES if os.path.isfile(os.path.join(top, n))), None)


def _answered(log: str) -> bool:
    """Did this `dagprof build --summary` run answer from the DAG cache (SCons never ran)?"""
    with open(log, errors="replace") as f:
        return any(line.startswith(DAG_ANSWERED) for line in f)


def _cache_reason(log: str) -> str:
    """Why the DAG cache did not answer, from the line --summary prints."""
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("dagprof: DAG") and ("running SCons" in line or "damaged" in line):
                return line.strip().removeprefix("dagprof: ")
    return "no reason printed"


def _profile_figures(path: str) -> dict[str, Any]:
    """Store stats and node sizes from a profile written by `dagprof build -o`."""
    from .profile import load

    p = load(path)
    out: dict[str, Any] = {}
    st = p.sections.get("store") or {}
    for k in STORE_STATS:
        if k in st:
            out[k] = st[k]
    if st.get("stopped"):
        out["stopped"] = st["stopped"]
    sizes = p.sections.get("sizes")
    if sizes and sizes.get("classes"):
        out["node_bytes"] = sum(int(c.get("total", 0)) for c in sizes["classes"].values())
        out["nodes"] = sum(int(c.get("count", 0)) for c in sizes["classes"].values())
    return out


def _median(values: list) -> float | None:
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(nums) if nums else None


def summarize(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Add each variant's medians and return the store/plain ratios of the medians (the renderer's shape)."""
    return ratios_by_variant(variants).get("store", {})


def ratios_by_variant(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each variant's medians (added in place) and, for every variant but plain, its ratios to plain.

    A variant is metric -> per-run values (lists); "median" (metric -> value) is added here."""
    for v in variants.values():
        v["median"] = {k: _median(v[k]) for k in METRICS if isinstance(v.get(k), list) and _median(v[k]) is not None}
    base = variants["plain"]["median"]
    out = {}
    for name, v in variants.items():
        if name == "plain":
            continue
        other = v["median"]
        ratios = {k: other[k] / base[k] for k in METRICS if base.get(k) and other.get(k) is not None}
        if base.get("node_bytes") and base.get("nodes") and other.get("node_bytes") is not None and other.get("nodes"):
            ratios["bytes_per_node"] = (other["node_bytes"] / other["nodes"]) / (base["node_bytes"] / base["nodes"])
        out[name] = ratios
    return out


Progress = Callable[[str], None]


class Comparison:
    """Runs one comparison: prepare the state, alternate the timed runs, then the untimed sizing passes."""

    def __init__(self, spec: CompareSpec, progress: Progress | None = None) -> None:
        self.spec = spec
        self.top = os.path.abspath(spec.cwd)
        self.env = spec.env if spec.env is not None else default_env()
        self.progress = progress or (lambda msg: None)
        self.state = BuildState(self.top)
        self.logdir = os.path.join(self.state.tmp, "logs")
        os.makedirs(self.logdir)
        self.count = 0
        self.dag_note: str | None = None  # why the DAG cache never answered its warm-up builds

    def steps(self) -> int:
        """How many build processes this comparison runs (for a progress bar; the DAG-cache warm-up may
        take fewer than its budget)."""
        s = self.spec
        plain = 0 if s.baseline else 1
        timed = (1 + plain + s.dagcache + s.make) * s.runs
        prep = (
            (1 if s.state != "full" and not s.baseline else 0)
            + (1 if s.state == "second" else 0)
            + (WARMUPS if s.dagcache else 0)
        )
        cleans = (1 + plain + s.make) * (s.runs + s.sizes) if s.state == "full" else 0
        return timed + prep + ((1 + plain) if s.sizes else 0) + cleans

    def _run(self, label: str, cmd: list[str]) -> tuple[dict[str, Any], str]:
        self.count += 1
        self.progress(label)
        log = os.path.join(self.logdir, f"{self.count:02d}.log")
        r = run_measured(cmd, cwd=self.top, env=self.env, log=log)
        if r["exit_code"] != 0:
            with open(log, errors="replace") as f:
                tail = [ln.strip() for ln in f.read().splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise CompareError(f"{label} failed (exit {r['exit_code']}): {tail[0][:200]}")
        return r, log

    def _reset(self, variant: str) -> None:
        s = self.spec
        if s.state == "full":
            self._run("cleaning (scons -c)", plain_command(clean_args(s.scons_args)))
            self.state.restore("empty", store=False)
        elif variant == "dagcache":
            self.state.restore("dagwarm", store=True)
        else:
            warm = variant == "store" and s.state == "second"
            self.state.restore("warm" if warm else "built", store=warm)

    def prepare(self) -> None:
        """Bring the tree to the state every run starts from, and save it."""
        s = self.spec
        self.state.put_aside_user_store()
        if s.state == "full":
            os.makedirs(os.path.join(self.state.tmp, "empty", "sconsign"))  # restoring it removes them all
            for rel in _sconsign_files(self.top):
                os.remove(os.path.join(self.top, rel))
            return
        if not s.baseline:  # with a baseline the tree is already in the state it was measured on
            self._run("full build, once (plain SCons)", plain_command(s.scons_args))
        self.state.save("built")
        if s.state == "second":
            out = os.path.join(self.state.tmp, "warmup.dagprof")
            self._run(
                "warm-up store build (its store is kept)", dagprof_build_command(s.store, s.spill, out, s.scons_args)
            )
            self.state.save("warm", with_store=True)  # store runs start from what the warm-up left
        if s.dagcache:
            self.state.restore("built", store=False)
            self.dag_note = None
            for i in range(WARMUPS):  # records the snapshot, confirms it (a null build), until it answers
                _r, log = self._run(f"DAG cache warm-up {i + 1}", dagcache_command(s.scons_args))
                if _answered(log):
                    break
            else:
                self.dag_note = f"the DAG cache did not answer after {WARMUPS} warm-up builds: {_cache_reason(log)}"
            self.state.save("dagwarm", with_store=True)

    def run(self) -> dict[str, Any]:
        """All runs; returns the result dict (see profiler/report/compare.py for its shape)."""
        s = self.spec
        names = s.variants()
        notes = list(s.notes)
        try:
            self.prepare()
            variants: dict[str, dict[str, Any]] = {name: {k: [] for k in TIMED} for name in names}
            variants["store"].update({k: [] for k in STORE_STATS})
            if s.dagcache:
                variants["dagcache"]["answered"] = []
            out = os.path.join(self.state.tmp, "store.dagprof")
            cmds = {
                "plain": plain_command(s.scons_args),
                "store": dagprof_build_command(s.store, s.spill, out, s.scons_args),
            }
            if s.dagcache:
                cmds["dagcache"] = dagcache_command(s.scons_args)
            if s.make:
                cmds["make"] = make_command(s.make_args)
            stopped = set()
            for i in range(s.runs):
                order = names if i % 2 == 0 else names[::-1]
                for name in order:
                    if name == "plain" and s.baseline:
                        continue
                    self._reset(name)
                    r, log = self._run(f"{name} run {i + 1}/{s.runs}", cmds[name])
                    v = variants[name]
                    for k in TIMED:
                        v[k].append(r[k])
                    if name == "store":
                        figs = _profile_figures(out)
                        for k in STORE_STATS:
                            v[k].append(figs.get(k))
                        if figs.get("stopped"):
                            stopped.add(str(figs["stopped"]))
                    elif name == "dagcache":
                        v["answered"].append(_answered(log))
            if s.sizes:
                for name, kind in (("plain", "none"), ("store", s.store)):
                    if name == "plain" and s.baseline:
                        continue
                    sized = os.path.join(self.state.tmp, f"sizes-{name}.dagprof")
                    self._reset(name)
                    self._run(
                        f"{name} sizing pass (untimed)",
                        dagprof_build_command(kind, s.spill, sized, s.scons_args, sizes=True),
                    )
                    figs = _profile_figures(sized)
                    variants[name]["node_bytes"] = [figs.get("node_bytes")]
                    variants[name]["nodes"] = [figs.get("nodes")]
            if s.state != "full":
                self.state.restore("built", store=False)  # leave the tree as a plain build left it
            if s.baseline:
                variants["plain"] = {k: v for k, v in s.baseline.items() if k != "median"}
            if stopped:
                notes.append("store stopped spilling: " + "; ".join(sorted(stopped)))
            if s.dagcache:
                if self.dag_note:
                    notes.append(self.dag_note)
                missed = variants["dagcache"]["answered"].count(False)
                if missed:
                    notes.append(
                        f"{missed} of {s.runs} dagcache runs were not answered from the DAG cache "
                        "(SCons ran): their figures are a normal store build's"
                    )
            for name in names:
                v = variants[name]
                if v["peak_rss"] and v["floor_rss"] and min(v["peak_rss"]) <= 1.1 * max(v["floor_rss"]):
                    own = (_median(v["peak_rss_anon"]) or 0) + (_median(v["peak_rss_file"]) or 0)
                    own_text = (
                        f"sampled anon+file RSS, {own / 2**20:.1f} MiB, is the process's own"
                        if own
                        else "it ended before the sampler saw it: its own RSS is below that"
                    )
                    notes.append(
                        f"{name}: its peak RSS is the measuring wrapper's own floor "
                        f"({max(v['floor_rss']) / 2**20:.1f} MiB); {own_text}"
                    )
            if s.make and s.state != "full" and not _has_make_deps(self.top):
                notes.append(
                    "make: no dependency (.d) files in the tree, so Make's null build checked sources "
                    "but not headers (build the tree with make once to give it its -MMD files)"
                )
        finally:
            self.state.close()
        by_variant = ratios_by_variant(variants)
        return {
            "argv": list(s.scons_args),
            "runs": s.runs,
            "machine": machine_description(),
            "state": s.state,
            "store": s.store,
            "spill": s.spill,
            "cwd": self.top,
            "commands": {k: " ".join(c) for k, c in cmds.items()},
            "variants": variants,
            "ratios": by_variant.get("store", {}),
            "ratios_by_variant": by_variant,
            "notes": notes,
            "measured": "peak_rss: wait4 ru_maxrss; anon/file: /proc status sampled every 20 ms; "
            "node data: separate untimed --sizes pass",
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }


def _has_make_deps(top: str) -> bool:
    for _dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d not in (STORE_DIR, ".git")]
        if any(f.endswith(".d") for f in filenames):
            return True
    return False


WARMUPS = 3


def compare(spec: CompareSpec, progress: Progress | None = None) -> dict[str, Any]:
    """Run a comparison and return its result dict."""
    return Comparison(spec, progress).run()


def with_progress(spec: CompareSpec, title: str = "dagprof compare") -> dict[str, Any]:
    """compare() with a rich progress bar on stderr (quiet when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    console = Console(stderr=True)
    cmp = Comparison(spec)
    with Bar(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(title, total=cmp.steps())
        first = [True]

        def step(label: str) -> None:
            if not first[0]:
                bar.advance(task)
            first[0] = False
            bar.update(task, description=f"{title}: {label}")

        cmp.progress = step
        result = cmp.run()
        bar.update(task, completed=cmp.steps())
    return result


# ---- checks before any build runs (the compare command turns a reason into a usage error) ---------


def check_project(cwd: str, scons_args: Sequence[str]) -> str | None:
    """Why this directory cannot be compared (one line), or None; saves a failed up-front build."""
    if locates_sconstruct(scons_args):
        return None  # SCons finds the SConstruct itself
    if not has_sconstruct(cwd):
        return f"no SConstruct in {os.path.abspath(cwd)} (run dagprof compare from the top of the build)"
    return None


def check_spill(spill: str) -> str | None:
    """An explicit --spill list is checked before any build runs (a typo would fail every store run)."""
    if spill in ("auto", "none"):
        return None
    from dagstore.policy import PolicyError, choose

    from .builds.scons import store_candidates

    try:
        choose(spill, store_candidates())
    except PolicyError as e:
        return str(e)
    return None

"""Build-correctness equivalence: does a project build the same with the dagstore as with plain SCons?

Why: a store that changes one rebuild decision or one output byte is a wrong build. This tool runs
any SCons project twice, plain and with `dagprof build --store ...`, from clean, as a null build,
and after each step of a list of edits, and compares exit codes, the rebuild sets (from
`--debug=explain`), SCons' messages and the bytes of every file in the tree.

    dagprof check PROJECT_DIR [--edits FILE] [--store lmdb] [-- scons args]
    (`python -m dagprof.equivalence ...` is the same command)

It works on two copies of PROJECT_DIR (the user's tree is never touched). Both copies are built at
the SAME absolute path, one after the other (each copy is renamed into place for its build), so
absolute paths that end up in outputs or command lines are identical in both.

Edits FILE is JSON: a list of steps; a step is one edit object or a list of edit objects applied
together, each one of
    {"edit": PATH, "append": TEXT}       append text to an existing file
    {"edit": PATH, "replace": [OLD, NEW]} replace the first occurrence of OLD (which must occur)
    {"touch": PATH}                      move the mtime forward, content unchanged
    {"remove": PATH}                     delete a file
    {"add": PATH, "content": TEXT}       create a file (or overwrite one)
PATH is relative to PROJECT_DIR. Both copies get the same bytes AND the same timestamps: every file
a step writes or touches gets one mtime chosen for the step, so a project that embeds source mtimes
in its outputs (a generated header with the newest source time) builds identical bytes on both sides.

A step whose build fails on both sides in the same way is not a pass: the verdict is BUILD FAILED
(exit 70) unless `--allow-failing` accepts it (the comparison still holds: same exit codes, same
messages, same outputs). Exit 0 equivalent, 69 not equivalent, 70 equivalent but a build failed,
65 bad input (project, edits file), 64 bad command line (dagprof/exitcodes.py).

Standard error is not compared (timings, -j order); lines the store build printed there that plain
SCons did not print are reported under the step as "store build only on stderr" (a compiler's
warnings, printed by both builds, are not).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .builds.scons_state import (
    SCONSIGN_GLOB,
    clean_args,
    explained,
    has_sconstruct,
    plain_script_command,
    with_explain,
    without_flags,
)

__all__ = [
    "EquivalenceError",
    "Step",
    "StepResult",
    "Report",
    "load_edits",
    "check_edits",
    "apply_edits",
    "snapshot",
    "explained",
    "run_equivalence",
    "main",
]

DEFAULT_IGNORE = (SCONSIGN_GLOB, ".dagstore", ".dagstore.bad-*")
EDIT_KINDS = ("edit", "touch", "remove", "add")
# the directory `dagprof` was imported from (not resolved: it may be a name mapped onto profiler/)
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EquivalenceError(Exception):
    """Bad input (project, edits file); one line for the user, exit exitcodes.BAD_INPUT."""


@dataclass
class Step:
    """One build of the sequence: its name and the edits applied before it."""

    name: str
    edits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StepResult:
    """What one step did in each tree, and every difference found."""

    name: str
    exit_plain: int
    exit_store: int
    rebuilt_plain: list[str]
    rebuilt_store: list[str]
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure: str = ""  # the last line of stderr when both builds failed (same exit code)

    @property
    def equivalent(self) -> bool:
        return not self.differences

    @property
    def failed(self) -> bool:
        """Both builds failed (and the same way: a different exit code is a difference)."""
        return self.equivalent and self.exit_plain != 0


@dataclass
class Report:
    """The whole comparison; `equivalent` is the verdict."""

    project: str
    store: str
    scons_args: list[str]
    steps: list[StepResult] = field(default_factory=list)
    allow_failing: bool = False

    @property
    def equivalent(self) -> bool:
        """No step differs, and no build failed on both sides unless allow_failing accepts it."""
        return all(s.equivalent for s in self.steps) and (self.allow_failing or not self.failed_steps)

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if s.failed]

    @property
    def verdict(self) -> str:
        """ "equivalent", "not equivalent" (a difference) or "build failed" (same failure on both sides)."""
        if not all(s.equivalent for s in self.steps):
            return "not equivalent"
        return "equivalent" if self.equivalent else "build failed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "store": self.store,
            "scons_args": self.scons_args,
            "equivalent": self.equivalent,
            "verdict": self.verdict,
            "allow_failing": self.allow_failing,
            "steps": [
                {
                    "name": s.name,
                    "exit": [s.exit_plain, s.exit_store],
                    "rebuilt": [s.rebuilt_plain, s.rebuilt_store],
                    "differences": s.differences,
                    "failed": s.failed,
                    "failure": s.failure,
                    "notes": s.notes,
                }
                for s in self.steps
            ],
        }


# ---- edits ---------------------------------------------------------------------------------------
def load_edits(path: str) -> list[Step]:
    """Read and validate an edits file (JSON) into steps."""
    if os.path.isdir(path):
        raise EquivalenceError(f"--edits {path!r} is a directory, expected a JSON file")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise EquivalenceError(f"cannot read --edits {path!r}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise EquivalenceError(f"--edits {path!r} is not valid JSON: {str(e).splitlines()[0]}") from None
    return steps_from_data(data)


def steps_from_data(data: Any) -> list[Step]:
    """Steps from parsed JSON: a list whose items are an edit or a list of edits."""
    if not isinstance(data, list):
        raise EquivalenceError("edits must be a JSON list of steps")
    steps = []
    for i, item in enumerate(data, 1):
        edits = item if isinstance(item, list) else [item]
        if not edits:
            raise EquivalenceError(f"edits step {i} is an empty list")
        for e in edits:
            _check_edit_shape(e, i)
        label = "; ".join(_describe(e) for e in edits)
        steps.append(Step(name=f"step {i}: {label}", edits=edits))
    return steps


def _check_edit_shape(e: Any, i: int) -> None:
    if not isinstance(e, dict):
        raise EquivalenceError(f'edits step {i}: expected an object like {{"touch": "a.c"}}, got {e!r}')
    kinds = [k for k in EDIT_KINDS if k in e]
    if len(kinds) != 1:
        raise EquivalenceError(f"edits step {i}: each edit needs exactly one of {', '.join(EDIT_KINDS)}: {e!r}")
    kind = kinds[0]
    allowed = {
        "edit": {"edit", "append", "replace"},
        "touch": {"touch"},
        "remove": {"remove"},
        "add": {"add", "content"},
    }[kind]
    extra = set(e) - allowed
    if extra:
        raise EquivalenceError(f"edits step {i}: unknown key(s) {', '.join(sorted(extra))} in {e!r}")
    path = e[kind]
    if not isinstance(path, str) or not path or os.path.isabs(path) or ".." in Path(path).parts:
        raise EquivalenceError(f"edits step {i}: path {path!r} must be relative and inside the project")
    if kind == "edit":
        if ("append" in e) == ("replace" in e):
            raise EquivalenceError(f"edits step {i}: 'edit' needs one of 'append' or 'replace': {e!r}")
        if "append" in e and not isinstance(e["append"], str):
            raise EquivalenceError(f"edits step {i}: 'append' must be a string")
        if "replace" in e and not (
            isinstance(e["replace"], list)
            and len(e["replace"]) == 2
            and all(isinstance(s, str) for s in e["replace"])
            and e["replace"][0]
        ):
            raise EquivalenceError(f"edits step {i}: 'replace' must be [OLD, NEW] strings with OLD non-empty")
    if kind == "add" and not isinstance(e.get("content"), str):
        raise EquivalenceError(f"edits step {i}: 'add' needs a 'content' string")


def _describe(e: dict[str, Any]) -> str:
    for kind in EDIT_KINDS:
        if kind in e:
            return f"{kind} {e[kind]}"
    return "?"


def check_edits(root: Path, steps: Sequence[Step]) -> None:
    """Replay the edits on the set of files that would exist, so a bad path fails before any build."""
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    for n, step in enumerate(steps, 1):
        for e in step.edits:
            if "add" in e:
                files.add(os.path.normpath(e["add"]))
                continue
            kind = next(k for k in EDIT_KINDS if k in e)
            path = os.path.normpath(e[kind])
            if path not in files:
                raise EquivalenceError(f"edits step {n}: {kind} {e[kind]!r}: no such file in the project at that point")
            if kind == "edit" and "replace" in e and e["replace"][0] not in _read_text(root / path):
                # only checkable when the file is original; a file edited by an earlier step is checked when applied
                if not any(_touches(s, path) for s in steps[: n - 1]):
                    raise EquivalenceError(f"edits step {n}: {e['replace'][0]!r} does not occur in {path}")
            if kind == "remove":
                files.discard(path)


def _touches(step: Step, path: str) -> bool:
    return any(os.path.normpath(e.get(k, "")) == path for e in step.edits for k in EDIT_KINDS if k in e)


def _read_text(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return ""


def step_time(roots: Sequence[Path], edits: Sequence[dict[str, Any]]) -> int:
    """The one mtime (ns) a step gives every file it writes or touches, in every tree.

    Past every current mtime of the touched files by 2 s (any file system's granularity), and not
    before now. A file system with coarse timestamps truncates it the same way in both trees.
    """
    t = _now_ns()
    for root in roots:
        for e in edits:
            kind = next(k for k in EDIT_KINDS if k in e)
            if kind in ("touch", "edit"):
                try:
                    t = max(t, (root / e[kind]).stat().st_mtime_ns + 2_000_000_000)
                except OSError:
                    pass
    return t


def apply_edits(root: Path, edits: Sequence[dict[str, Any]], mtime_ns: int | None = None) -> None:
    """Apply one step's edits to one tree; both trees get the same operations and the same `mtime_ns`."""
    if mtime_ns is None:
        mtime_ns = step_time([root], edits)
    for e in edits:
        if "add" in e:
            p = root / e["add"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(e["content"], encoding="utf-8")
            os.utime(p, ns=(mtime_ns, mtime_ns))
        elif "remove" in e:
            (root / e["remove"]).unlink()
        elif "touch" in e:
            os.utime(root / e["touch"], ns=(mtime_ns, mtime_ns))
        else:
            p = root / e["edit"]
            text = p.read_text(encoding="utf-8", errors="surrogateescape")
            if "append" in e:
                text += e["append"]
            else:
                old, new = e["replace"]
                if old not in text:
                    raise EquivalenceError(f"edit {e['edit']}: {old!r} does not occur in the file")
                text = text.replace(old, new, 1)
            p.write_text(text, encoding="utf-8", errors="surrogateescape")
            os.utime(p, ns=(mtime_ns, mtime_ns))


def _now_ns() -> int:
    import time

    return time.time_ns()


# ---- observing a tree ----------------------------------------------------------------------------
def _ignored(rel: str, ignore: Sequence[str]) -> bool:
    parts = Path(rel).parts
    return any(fnmatch.fnmatch(part, pat) for part in parts for pat in ignore)


def snapshot(root: Path, ignore: Sequence[str] = DEFAULT_IGNORE) -> dict[str, tuple[bytes, int]]:
    """Every file under root (minus ignored names) -> (bytes, mtime_ns); symlinks by their target text."""
    out: dict[str, tuple[bytes, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if not _ignored(os.path.join(rel_dir, d), ignore)]
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if _ignored(rel, ignore):
                continue
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                out[rel] = (b"-> " + os.fsencode(os.readlink(p)), 0)
            else:
                st = os.stat(p)
                with open(p, "rb") as f:
                    out[rel] = (f.read(), st.st_mtime_ns)
    return out


# ---- running -------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = without_flags(os.environ)
    env["PYTHONPATH"] = _REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def plain_command() -> list[str]:
    """Plain SCons from this Python, so both runs use the same SCons release."""
    return plain_script_command()


def store_command(store: str, store_path: str | None = None) -> list[str]:
    """`dagprof build` with the store, quiet summary, SCons arguments appended after `--`."""
    cmd = [sys.executable, "-m", "dagprof", "build", "--store", store]
    if store_path:
        cmd += ["--store-path", store_path]
    return cmd + ["--"]


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _normal_lines(stdout: str) -> list[str]:
    return sorted(stdout.splitlines())  # -j may reorder lines; the multiset must match


def _diff_trees(a: dict[str, tuple[bytes, int]], b: dict[str, tuple[bytes, int]], limit: int = 8) -> list[str]:
    out = []
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            out.append(f"{rel}: only in the plain build")
        elif rel not in a:
            out.append(f"{rel}: only in the store build")
        elif a[rel][0] != b[rel][0]:
            out.append(f"{rel}: bytes differ ({len(a[rel][0])} vs {len(b[rel][0])} bytes)")
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more"]
    return out


def _written(before: dict[str, tuple[bytes, int]], after: dict[str, tuple[bytes, int]]) -> set[str]:
    return {rel for rel, v in after.items() if rel not in before or before[rel][1] != v[1]}


def run_equivalence(
    project: str | os.PathLike,
    steps: Sequence[Step] = (),
    store: str = "lmdb",
    scons_args: Sequence[str] = (),
    store_path: str | None = None,
    ignore: Sequence[str] = DEFAULT_IGNORE,
    workdir: str | None = None,
    timeout: float = 3600,
    plain_cmd: Sequence[str] | None = None,
    store_cmd: Sequence[str] | None = None,
    progress: Any = None,
    allow_failing: bool = False,
) -> Report:
    """Build two copies of `project` step by step (plain vs store) and collect every difference."""
    src = Path(project)
    if not src.exists():
        raise EquivalenceError(f"project {str(project)!r} does not exist")
    if not src.is_dir():
        raise EquivalenceError(f"project {str(project)!r} is not a directory")
    if not has_sconstruct(src):
        raise EquivalenceError(f"project {str(project)!r} has no SConstruct")
    steps = list(steps)
    check_edits(src, steps)
    args = with_explain(scons_args)
    plain = list(plain_cmd) if plain_cmd is not None else plain_command()
    with_store = list(store_cmd) if store_cmd is not None else store_command(store, store_path)
    report = Report(project=str(src.resolve()), store=store, scons_args=list(scons_args), allow_failing=allow_failing)
    work = Path(tempfile.mkdtemp(prefix="dagprof-equiv-", dir=workdir))
    try:
        here = work / "tree"  # the one path both copies are built at
        parked = {"plain": work / "plain", "store": work / "store"}
        copy_ignore = shutil.ignore_patterns(*ignore)
        for p in parked.values():
            shutil.copytree(src, p, symlinks=True, ignore=copy_ignore)

        def build(which: str, cmd: list[str]) -> tuple[subprocess.CompletedProcess, dict, dict]:
            parked[which].rename(here)
            try:
                before = snapshot(here, ignore)
                done = _run(cmd + args, here, timeout)
                after = snapshot(here, ignore)
            finally:
                here.rename(parked[which])
            return done, before, after

        # from clean: whatever outputs the copied tree holds are removed by SCons itself
        for which in ("plain", "store"):
            parked[which].rename(here)
            try:
                _run(plain + clean_args(scons_args), here, timeout)
            finally:
                here.rename(parked[which])

        sequence = [Step("clean build"), Step("null build")] + steps
        for step in sequence:
            if progress:
                progress(step.name)
            when = step_time(list(parked.values()), step.edits)
            for which in ("plain", "store"):
                apply_edits(parked[which], step.edits, when)
            p_done, p_before, p_after = build("plain", plain)
            s_done, s_before, s_after = build("store", with_store)
            report.steps.append(_compare(step.name, p_done, s_done, p_before, p_after, s_before, s_after))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _compare(
    name: str,
    p: subprocess.CompletedProcess,
    s: subprocess.CompletedProcess,
    p_before: dict,
    p_after: dict,
    s_before: dict,
    s_after: dict,
) -> StepResult:
    pe, se = explained(p.stdout), explained(s.stdout)
    res = StepResult(
        name=name, exit_plain=p.returncode, exit_store=s.returncode, rebuilt_plain=sorted(pe), rebuilt_store=sorted(se)
    )
    d = res.differences
    if p.returncode != s.returncode:
        d.append(
            f"exit code: plain {p.returncode}, store {s.returncode}"
            + (f" (store stderr: {_last_line(s.stderr)})" if s.returncode else "")
        )
    if set(pe) != set(se):
        only_p, only_s = sorted(set(pe) - set(se)), sorted(set(se) - set(pe))
        d.append(f"rebuild sets differ: only plain rebuilt {_few(only_p)}; only the store build rebuilt {_few(only_s)}")
    else:
        why = [t for t in sorted(pe) if pe[t] != se[t]]
        if why:
            d.append(f"rebuild reasons differ for {_few(why)}: plain {pe[why[0]]!r}, store {se[why[0]]!r}")
    wp, ws = _written(p_before, p_after), _written(s_before, s_after)
    if wp != ws:
        d.append(
            f"files written differ: only plain wrote {_few(sorted(wp - ws))}; only the store build "
            f"wrote {_few(sorted(ws - wp))}"
        )
    d.extend(f"output {x}" for x in _diff_trees(p_after, s_after))
    if _normal_lines(p.stdout) != _normal_lines(s.stdout):
        only_p = sorted(set(p.stdout.splitlines()) - set(s.stdout.splitlines()))
        only_s = sorted(set(s.stdout.splitlines()) - set(p.stdout.splitlines()))
        d.append(f"SCons messages differ: plain only {_few(only_p, 2)}; store only {_few(only_s, 2)}")
    if p.returncode and p.returncode == s.returncode:
        res.failure = _last_line(s.stderr) or _last_line(s.stdout)
    plain_err = Counter(ln.rstrip() for ln in p.stderr.splitlines())
    for line in s.stderr.splitlines():  # the store's own words: what plain SCons did not say
        key = line.rstrip()
        if plain_err[key] > 0:
            plain_err[key] -= 1
        elif key.strip():
            res.notes.append(f"store build only on stderr: {key.strip()}")
    return res


def _few(items: Sequence[str], n: int = 4) -> str:
    if not items:
        return "nothing"
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def render(report: Report) -> str:
    """The human verdict: one line per step, the differences under it, then EQUIVALENT or not."""
    lines = [
        f"project {report.project}: plain SCons vs --store {report.store}"
        + (f" (scons args: {' '.join(report.scons_args)})" if report.scons_args else "")
    ]
    for s in report.steps:
        mark = ("same, both FAILED" if s.failed else "same") if s.equivalent else "DIFFERENT"
        lines.append(
            f"  {s.name}: {mark}; exit {s.exit_plain}/{s.exit_store}; "
            f"rebuilt {len(s.rebuilt_plain)}/{len(s.rebuilt_store)} targets"
        )
        lines.extend(f"      - {x}" for x in s.differences)
        if s.failure:
            lines.append(f"      both failed: {s.failure}")
        lines.extend(f"      {x}" for x in s.notes)
    bad = sum(not s.equivalent for s in report.steps)
    failed = len(report.failed_steps)
    if bad:
        lines.append(f"NOT EQUIVALENT: {bad} of {len(report.steps)} steps differ")
    elif failed and not report.allow_failing:
        lines.append(
            f"BUILD FAILED: {failed} of {len(report.steps)} steps failed on both sides (same exit code, "
            "messages and outputs); a failed build proves little; --allow-failing accepts it"
        )
    elif failed:
        lines.append(
            f"EQUIVALENT: {len(report.steps)} steps, same exit codes, rebuild sets, messages and outputs "
            f"({failed} failed on both sides, accepted by --allow-failing)"
        )
    else:
        lines.append(f"EQUIVALENT: {len(report.steps)} steps, same exit codes, rebuild sets, messages and outputs")
    return "\n".join(lines)


if __name__ == "__main__":  # `python -m dagprof.equivalence ARGS` is `dagprof check ARGS`
    from dagprof.cli import main

    sys.exit(main(["check", *sys.argv[1:]]))

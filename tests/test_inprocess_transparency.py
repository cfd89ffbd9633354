"""`dagprof build` runs SCons in-process: to the SConstruct and to SCons' messages it must look like `scons`."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import _env

SCONS_SCRIPT = os.path.join(os.path.dirname(sys.executable), "scons")


def real_scons(args, cwd):
    """Plain `scons` the way a user starts it: the console script (its sys.argv[0] is that script)."""
    return subprocess.run(
        [sys.executable, SCONS_SCRIPT, *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _project(root: Path, sconstruct: str) -> Path:
    root.mkdir(parents=True)
    (root / "SConstruct").write_text(sconstruct)
    (root / "in.txt").write_text("x\n")
    return root


RERUN = r"""
import subprocess, sys
p = subprocess.run([sys.executable, sys.argv[0], '--version'], capture_output=True, text=True)
if p.returncode != 0 or 'SCons' not in p.stdout:
    print('re-running scons failed:', sys.argv[0], p.returncode, p.stderr)
    Exit(3)
env = Environment(tools=[])
env.Command('out.txt', 'in.txt', Copy('$TARGET', '$SOURCE'))
"""


def test_sconstruct_can_rerun_scons_through_argv0(tmp_path, dagprof):
    root = _project(tmp_path / "p", RERUN)
    p = real_scons(["-Q"], root)
    assert p.returncode == 0, p.stdout
    for store in ("lmdb", "none"):
        p = dagprof(["build", "--store", store, "--", "-Q"], root)
        assert p.returncode == 0, p.stdout + p.stderr


FAILING = r"""
env = Environment(tools=[])
env.Command('out.txt', 'in.txt', Copy('$TARGET', '$SOURCE'))
if ARGUMENTS.get('fail'):
    env.Command('bad.txt', 'in.txt', 'exit 3')
"""


def test_stderr_in_a_pipe_is_exactly_scons_stderr(tmp_path, dagprof, scons):
    plain, ours = _project(tmp_path / "plain", FAILING), _project(tmp_path / "ours", FAILING)
    for args in (["-Q"], ["-Q"], ["-Q", "fail=1"], ["-Q", "--version"], ["-Q", "--nosuchoption"]):
        a = scons(args, plain)
        b = dagprof(["build", "--store", "lmdb", "--", *args], ours)
        assert (a.returncode, a.stderr) == (b.returncode, b.stderr), args
        assert "dagstore" not in b.stderr and "dagprof" not in b.stderr
    b = dagprof(["build", "--store", "lmdb", "--summary", "--", "-Q"], ours)
    assert b.returncode == 0
    lines = [line for line in b.stderr.splitlines() if not line.startswith("dagprof: DAG cache: ")]
    # the store's summary, then its plan in one line (issue 13)
    assert len(lines) == 2 and lines[0].startswith("dagstore: lmdb store at " + str(ours / ".dagstore")), b.stderr
    assert lines[1].startswith("dagstore: spill plan ("), b.stderr
    b = dagprof(["build", "--store", "lmdb", "--summary", "--", "-Q", "--version"], ours)
    assert "store at None" not in b.stderr and b.stderr == "", b.stderr


def test_enable_store_prints_nothing_of_its_own_into_a_pipe(tmp_path, scons):
    plain = _project(tmp_path / "plain", FAILING)
    ours = _project(tmp_path / "ours", "import dagprof; dagprof.enable_store()\n" + FAILING)
    for args in (["-Q"], ["-Q"], ["-Q", "fail=1"]):
        a, b = scons(args, plain), scons(args, ours)
        assert (a.returncode, a.stderr) == (b.returncode, b.stderr), args
    assert (ours / ".dagstore").is_dir()


WARNS = r"""
import SCons.Scanner
scan = SCons.Scanner.Classic('InScan', ['.in'], 'INPATH', r'^include\s+(\S+)')
env = Environment(tools=[], SCANNERS=[scan])
env.Command('out.txt', 'main.in', Copy('$TARGET', '$SOURCE'))
env.Command('dup.txt', 'main.in', Copy('$TARGET', '$SOURCE'))
env.Clone(X=1).Command('dup.txt', 'main.in', Copy('$TARGET', '$SOURCE'))
"""
MISSING = "SConscript('missing/SConscript')\n"


def test_scons_messages_point_where_plain_scons_points(tmp_path, dagprof):
    """SCons names the deepest frame that is not SCons' own: the SConstruct line for a warning or error in
    the SConscript phase, and for a warning under a scan (a missing include, --warn=dependency) the same
    outer frame as `scons` (its console script). dagprof's wrappers never show."""
    for name, sconstruct, expect in (
        ("warns", WARNS, ["Two different environments", "No dependency generated"]),
        ("missing", MISSING, ["missing SConscript file"]),
    ):
        plain, ours = _project(tmp_path / name / "plain", sconstruct), _project(tmp_path / name / "ours", sconstruct)
        for root in (plain, ours):
            (root / "main.in").write_text("include nothere.h\n")
        args = ["-Q", "--warn=dependency"]
        a = real_scons(args, plain)
        b = dagprof(["build", "--store", "lmdb", "--", *args], ours)
        for e in expect:
            assert e in a.stderr, a.stderr
        assert (a.returncode, a.stderr.replace(str(plain), "<root>")) == (
            b.returncode,
            b.stderr.replace(str(ours), "<root>"),
        )


class _DuckNode:
    """A target that is not an SCons node, as SCons' own TaskmasterTests use."""

    def __init__(self, name):
        self.name = name
        self._memo = {"stat": 1}
        self.includes = None
        self.waiting_parents = set()
        self.side_effects = None

    def postprocess(self):
        pass


def test_store_hooks_tolerate_targets_that_are_not_scons_nodes(tmp_path, monkeypatch):
    import SCons.Node.FS as FS
    import SCons.Taskmaster as Taskmaster

    from dagprof.builds.scons import PHASE_READ, StoreHooks, hook_safe_points
    from dagprof.classpatch import ClassPatches

    monkeypatch.chdir(tmp_path)
    hooks = StoreHooks(kind="memory")
    patches = ClassPatches()
    hooks.install()
    try:
        hooks.on_phase(PHASE_READ)
        assert hooks.spiller.active
        hook_safe_points(patches, lambda: None, hooks.on_node_done)
        duck, real = _DuckNode("duck"), FS.FS().File("a.c")
        real._memo["stat"] = None
        real._memo["kept"] = 1
        hooks.on_node_done([duck, real])  # what SCons tolerates, the hooks tolerate
        assert duck._memo == {"stat": 1}
        assert real._memo == {"kept": 1}

        class Tm:
            trace = None
            pending_children: set = set()

        task = Taskmaster.AlwaysTask(Tm(), [duck], True, None)
        task.postprocess()  # the wrapped entry point, with a duck target
    finally:
        patches.undo()
        hooks.close()

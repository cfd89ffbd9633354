"""Garbage collection in `dagprof build`: released executors freed at once, no collection after SCons ends."""

import json

import pytest
from conftest import run_python

from dagprof.synthetic import generate

SCRIPT = r"""
import gc, json, os, sys
os.chdir(sys.argv[1])
from dagprof.builds import scons as adapter
import SCons.Executor

gc.disable()  # what a full collection would find stays findable
hooks = [adapter.StoreHooks(kind="memory")] if sys.argv[2] == "store" else []
prof = adapter.profile_build(sys.argv[3:] or ["-Q"], extra_hooks=hooks)
gc.set_debug(gc.DEBUG_SAVEALL)
gc.collect()
garbage = sum(1 for o in gc.garbage if isinstance(o, SCons.Executor.Executor))
gc.garbage.clear()
gc.set_debug(0)
print(json.dumps({"exit": prof.meta["exit_code"], "garbage_executors": garbage}))
"""


def _run(root, variant, *args):
    return json.loads(run_python(SCRIPT, root, variant, *args).stdout.splitlines()[-1])


def test_released_executors_are_not_left_as_garbage(tmp_path):
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=3)
    assert _run(proj.root, "plain")["exit"] == 0  # full build
    plain = _run(proj.root, "plain")  # null build: every target is released up to date
    store = _run(proj.root, "store")
    assert plain["exit"] == store["exit"] == 0
    # without the store SCons leaves one executor per released target (30 objects, 3 libraries, a program)
    assert plain["garbage_executors"] >= 30
    assert store["garbage_executors"] == 0


MULTI = (
    "env = Environment()\n"
    "a, b = env.Command(['a.out', 'b.out'], 'in.txt',\n"
    "                   'cat $SOURCE > ${TARGETS[0]} && cat $SOURCES $SOURCE > ${TARGETS[1]}')\n"
    "env.Command('c.out', [a, b], 'cat $SOURCES > $TARGET')\n"
    "env.Command('d.out', b, 'cat $SOURCE > $TARGET')\n"
)


@pytest.mark.parametrize("args", [["-j2"], ["--debug=explain"], ["--tree=all"]])
def test_shared_executor_of_a_multi_target_command(tmp_path, args):
    """Two targets of one command share an executor: the store drops its lvars when the first is released, and
    every later use ($TARGETS/$SOURCES in explain, tree and -j builds, the rebuilt command lines) sees what plain
    SCons sees: the same output and the same files, before and after an edit."""
    out = {}
    for variant in ("plain", "store"):
        root = tmp_path / variant
        root.mkdir()
        (root / "in.txt").write_text("x\n")
        (root / "SConstruct").write_text(MULTI)
        first = run_python(SCRIPT, root, variant, "-Q", *args)
        (root / "in.txt").write_text("y\n")
        second = run_python(SCRIPT, root, variant, "-Q", *args)
        lines = [p.stdout.splitlines()[:-1] for p in (first, second)]
        if "-j2" in args:  # parallel jobs print in the order they finish
            lines = [sorted(x) for x in lines]
        out[variant] = lines + [(root / f).read_text() for f in ("a.out", "b.out", "c.out", "d.out")]
        if variant == "store":
            assert json.loads(second.stdout.splitlines()[-1])["garbage_executors"] == 0
    assert out["store"] == out["plain"]
    assert out["plain"][2:] == ["y\n", "y\ny\n", "y\ny\ny\n", "y\ny\n"]
    assert any("cat" in line for line in out["plain"][1])  # the second build ran the commands again


PAUSE_SCRIPT = r"""
import gc, json, os, sys
os.chdir(sys.argv[1])
from dagprof.cli import main

late = []
def watch(phase, info):
    if phase == "start":
        names = set()
        f = sys._getframe(1)
        while f is not None:
            names.add(f.f_code.co_name)
            f = f.f_back
        if names & {"on_finish", "after_build", "summary_line"}:  # after SCons: the snapshot's walk and write
            late.append(info["generation"])
gc.callbacks.append(watch)
gc.set_threshold(1)  # a collection at (almost) every allocation unless the collector is paused
code = main(["build", "--store", "lmdb", "--summary", "--", "-Q"])
print(json.dumps({"code": code, "late": len(late), "enabled": gc.isenabled()}))
"""


def test_no_collection_after_scons_ends_and_the_collector_comes_back(tmp_path):
    proj = generate(tmp_path / "p", files=12, files_per_dir=6, seed=5)
    p = run_python(PAUSE_SCRIPT, proj.root)
    got = json.loads(p.stdout.splitlines()[-1])
    assert got == {"code": 0, "late": 0, "enabled": True}
    assert "not recorded" not in p.stderr  # the snapshot was written, with the collector paused
    assert (proj.root / ".dagstore" / "dag" / "data.mdb").stat().st_size > 0

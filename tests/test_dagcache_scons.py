"""The DAG cache on real SCons builds in real processes: answers only where plain scons finds nothing to do.

Every step builds two identical copies, one with plain scons and one with `dagprof build`, and asserts
the same exit code and byte-identical stdout and stderr; whether dagprof answered from the cache is
proved with `-X importtime` (SCons never imported).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from dagcache_project import MODULE, Twins

pytestmark = pytest.mark.slow

ARGS = ["-Q"]


def _settle(tw: Twins) -> None:
    """Full build, then a null build (SCons confirms these inputs), then the cache answers."""
    p, answered = tw.both(ARGS)
    assert not answered and "gcc" in p.stdout or "cc" in p.stdout
    _, answered = tw.both(ARGS)
    assert not answered  # first null build: SCons itself confirms the recorded inputs
    p, answered = tw.both(ARGS)
    assert answered, "third build must be answered from the DAG cache"
    assert "up to date" in p.stdout


@pytest.fixture
def tw(tmp_path):
    t = Twins(tmp_path)
    _settle(t)
    return t


def test_null_build_is_answered_byte_identical(tw):
    p, answered = tw.both(ARGS)
    assert answered
    p, answered = tw.both([])  # without -Q: other arguments, SCons runs; then answered after confirmation
    assert not answered
    assert "scons: Reading SConscript files ..." in p.stdout
    tw.both([])
    p, answered = tw.both([])
    assert answered and "scons: done building targets." in p.stdout
    tw.outputs_equal()


@pytest.mark.parametrize(
    "edit, rebuilds",
    [
        ("edit_c", True),
        ("edit_header", True),
        ("touch", False),
        ("delete_output", True),
        ("edit_sconstruct", True),
        ("edit_sconscript", True),
        ("edit_read_file", True),
        ("edit_site_scons", True),
        ("edit_site_init", True),
        ("add_glob_match", True),
        ("remove_source", True),
        ("env_var", True),
        ("unrelated_env_var", False),
    ],
)
def test_edit_then_same_decisions_as_scons(tmp_path, edit, rebuilds):
    tw = Twins(tmp_path)
    _settle(tw)
    args = ARGS
    if edit == "edit_c":
        tw.append("lib/a.c", "int a2(void) { return 3; }\n")
    elif edit == "edit_header":
        tw.write("lib/b.h", "#define B 5\n")
    elif edit == "touch":
        tw.touch("lib/a.c")
        tw.touch("include/common.h")
        tw.touch("SConstruct")
    elif edit == "delete_output":
        tw.remove("app/main")
    elif edit == "edit_sconstruct":
        tw.append("SConstruct", "print('one more line')\n")
    elif edit == "edit_sconscript":
        tw.write(
            "lib/SConscript",
            "Import('env')\nenv.Command('extra.txt', 'a.c', Copy('$TARGET', '$SOURCE'))\n"
            "lib = env.StaticLibrary('util', Glob('*.c'))\nReturn('lib')\n",
        )
        tw.append("SConstruct", "Default('lib/extra.txt')\n")
    elif edit == "edit_read_file":
        tw.write("version.txt", "2.0\n")
    elif edit == "edit_site_scons":
        tw.write(
            "site_scons/dagtest_helpers.py",
            "def banner(version, mode):\n    return 'version %s, mode %s' % (version, mode)\n",
        )
    elif edit == "edit_site_init":  # executed by SCons before the first SConscript
        tw.write("site_scons/site_init.py", "SITE_GREETING = 'changed'\n")
    elif edit == "add_glob_match":
        tw.write("lib/c.c", "int c(void) { return 7; }\n")
    elif edit == "remove_source":
        tw.remove("lib/b.c")
        tw.write("lib/a.c", '#include "common.h"\nint a(void) { return COMMON; }\nint b(void) { return 0; }\n')
    elif edit == "env_var":
        tw.extra_env["DAGTEST_MODE"] = "debug"
    elif edit == "unrelated_env_var":
        tw.extra_env["SOME_UNRELATED_VARIABLE"] = "x"
    p, answered = tw.both(args)
    assert answered == (not rebuilds), p.stdout
    if rebuilds and edit not in (
        "edit_sconstruct",
        "edit_site_scons",
        "edit_read_file",
        "env_var",
        "edit_sconscript",
        "edit_site_init",
    ):
        assert "up to date" not in p.stdout
    tw.outputs_equal()
    # and the loop goes on: with the SConscript inputs unchanged since a confirmed build the cache
    # answers at once; with new inputs, SCons confirms them once first
    # (new inputs whose first build rebuilt nothing are confirmed by that very build)
    p, answered = tw.both(args)
    new_inputs = edit in (
        "edit_sconstruct",
        "edit_sconscript",
        "edit_read_file",
        "edit_site_scons",
        "edit_site_init",
        "add_glob_match",
        "remove_source",
        "env_var",
    )
    if not new_inputs:
        assert answered
    p, answered = tw.both(args)
    assert answered


def test_value_node_content_change(tw):
    tw.write("version.txt", "3.0\n")
    p, answered = tw.both(ARGS)
    assert not answered and "write_value" in p.stdout
    assert (tw.cached / "gen/version.txt").read_text() == "3.0/plain\n"


def test_always_build_target_is_never_answered(tw):
    for _ in range(3):
        p, answered = tw.both(ARGS + ["stamp.txt"])
        assert not answered and "date" in p.stdout


def test_alias_and_other_targets(tw):
    for _ in range(3):
        p, answered = tw.both(ARGS + ["all"])
    assert answered
    p, answered = tw.both(ARGS + ["lib"])
    assert not answered


def test_failed_build_then_no_answer(tw):
    tw.write("lib/b.h", "#define B (\n")
    p, answered = tw.both(ARGS)
    assert p.returncode == 2 and not answered
    tw.write("lib/b.h", "#define B 2\n")
    p, answered = tw.both(ARGS)  # the failed build left no snapshot: SCons runs and rebuilds
    assert not answered
    p, answered = tw.both(ARGS)
    assert answered


@pytest.mark.parametrize("option", ["-n", "-c", "-q", "--tree=all", "--debug=explain", "-h"])
def test_never_answered_for_options_that_change_the_build(tw, option):
    p, answered = tw.both(ARGS + [option])
    assert not answered


def test_damaged_snapshot_is_set_aside(tw):
    data = tw.cached / ".dagstore" / "dag" / "data.mdb"
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.seek(0)
        f.write(os.urandom(min(size, 8192)))
    plain = tw.scons(ARGS)
    p, answered = tw.dagprof(ARGS)
    warning, _, rest = p.stderr.partition("\n")
    assert warning.startswith("dagprof: warning: DAG snapshot damaged") and "set aside at" in warning
    assert (p.returncode, p.stdout, rest) == (plain.returncode, plain.stdout, plain.stderr)
    assert not answered
    aside = [d for d in (tw.cached / ".dagstore").iterdir() if d.name.startswith("dag.damaged-")]
    assert len(aside) == 1 and (aside[0] / "data.mdb").exists()
    tw.both(ARGS)
    p, answered = tw.both(ARGS)
    assert answered


def test_hot_list_names_sources_and_finds_a_repeated_edit_first(tw):
    """The snapshot's hot list holds only sources (no target SCons builds), the file edited last first; the
    next edit of it is found before any node is streamed, and the decisions stay plain scons' own."""
    import lmdb
    import msgpack

    from dagstore.dagcache import DagCache

    tw.append("lib/a.c", "int a3(void) { return 4; }\n")
    _, answered = tw.both(ARGS)
    assert not answered
    env = lmdb.open(str(tw.cached / ".dagstore" / "dag"), readonly=True, lock=False)
    with env.begin() as txn:
        header = msgpack.unpackb(txn.get(b"H"), raw=False, strict_map_key=False)
        targets = {msgpack.unpackb(v, raw=False)[0] for k, v in txn.cursor() if k[:1] == b"t"}
    env.close()
    hot = [rec[0] for rec in header["hot"]]
    assert hot[0] == "lib/a.c" and {"lib/b.c", "app/main.c"} <= set(hot)
    assert len(targets) >= 4 and not targets & set(hot)
    tw.append("lib/a.c", "int a4(void) { return 5; }\n")
    ans = DagCache(str(tw.cached / ".dagstore")).answer(header["invocation"])
    assert not ans.up_to_date and ans.reason.endswith("lib/a.c changed")
    assert (ans.nodes_checked, ans.inputs_checked) == (0, 0)
    _, answered = tw.both(ARGS)
    assert not answered
    _, answered = tw.both(ARGS)
    assert answered
    tw.outputs_equal()


def test_node_paths_are_checked_by_their_node_records_only(tw):
    """A stat of a node's path while SConscripts are read, or a node file the build opened, is not also an input
    record: the node's own record checks it (the walk drops them directory by directory, the last one too)."""
    import lmdb
    import msgpack

    tw.append("lib/a.c", "int a5(void) { return 6; }\n")
    tw.both(ARGS)
    env = lmdb.open(str(tw.cached / ".dagstore" / "dag"), readonly=True, lock=False)
    with env.begin() as txn:
        header = msgpack.unpackb(txn.get(b"H"), raw=False, strict_map_key=False)
        records = [(k[:1], msgpack.unpackb(v, raw=False)) for k, v in txn.cursor() if k[:1] in (b"i", b"n")]
    env.close()
    root = header["root"]
    nodes = {r[0] if r[0].startswith("/") else root + r[0] for k, r in records if k == b"n" and r[1] in ("f", "m", "d")}
    inputs = [r for k, r in records if k == b"i"]
    assert {root + "lib/a.c", root + "lib/a.o", root + "app"} <= nodes
    probed = {r[1] for r in inputs if r[0] == "p"}
    opened = {r[1] for r in inputs if r[0] == "F"}
    assert not probed & nodes and not opened & nodes, (sorted(probed & nodes), sorted(opened & nodes))
    assert any(r[0] == "f" and r[1] == root + "SConstruct" for r in inputs)


def test_killed_build_leaves_no_answering_snapshot(tw):
    """kill -9 while the build runs (after reading SConscripts): the next build is SCons', and correct."""
    settled = (tw.plain / "SConstruct").read_text()
    tw.write("lib/b.h", "#define B 9\n")
    tw.append(
        "SConstruct", "import time\nenv.Command('slow.txt', [], 'sleep 30; echo > $TARGET')\nDefault('slow.txt')\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-m", MODULE, "build", "--", *ARGS],
        cwd=tw.cached,
        env=tw.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    out = ""
    while time.time() < deadline:
        time.sleep(0.5)
        if (tw.cached / "app/main.o").exists() or "sleep" in out:
            break
    time.sleep(2)
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL  # killed while building, not finished
    tw.write("SConstruct", settled)  # back to the settled SConstruct: the same inputs as a confirmed build
    p2, answered = tw.dagprof(ARGS)
    assert not answered and p2.returncode == 0
    assert "up to date" not in p2.stdout or "main" in p2.stdout
    plain = tw.scons(ARGS)
    assert plain.returncode == 0
    tw.outputs_equal()


@pytest.mark.parametrize(
    "how, target",
    [
        ("command", "when.txt"),
        ("define", "app/main.o"),  # time.time() in a define: every compile command differs
    ],
)
def test_time_in_the_build_turns_cache_off(tmp_path, how, target):
    tw = Twins(tmp_path)
    if how == "command":
        tw.append(
            "SConstruct",
            "import time\nenv.Command('when.txt', [], 'echo %d > $TARGET' % time.time_ns())\nDefault('when.txt')\n",
        )
    else:
        text = (
            (tw.plain / "SConstruct")
            .read_text()
            .replace(
                "Export('env')", "import time\nenv.Append(CPPDEFINES=[('BUILD_TIME', time.time_ns())])\nExport('env')"
            )
        )
        tw.write("SConstruct", text)
    for _ in range(4):  # (plain scons prints another time: compare decisions, not bytes)
        p, answered = tw.dagprof(ARGS)
        assert p.returncode == 0 and not answered and ("echo" in p.stdout or "gcc" in p.stdout)
    p = subprocess.run(
        [sys.executable, "-m", MODULE, "build", "--summary", "--", *ARGS],
        cwd=tw.cached,
        env=tw.env(),
        capture_output=True,
        text=True,
    )
    assert "DAG cache" in p.stderr and "off for this project" in p.stderr and target in p.stderr, p.stderr
    p = subprocess.run(
        [sys.executable, "-m", MODULE, "build", "--dag-cache", "reset", "--summary", "--", *ARGS],
        cwd=tw.cached,
        env=tw.env(),
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0


def test_verify_agrees_with_scons(tw):
    p, answered = tw.dagprof(ARGS, ("--dag-cache", "verify"))
    assert p.returncode == 0 and not answered
    tw.append("lib/a.c", "int a3(void) { return 1; }\n")
    p, answered = tw.dagprof(ARGS, ("--dag-cache", "verify"))
    assert p.returncode == 0


def test_dag_cache_off_never_answers(tw):
    p, answered = tw.dagprof(ARGS, ("--dag-cache", "off"))
    assert not answered and p.returncode == 0


def test_random_edits_under_verify_agree_with_scons(tmp_path):
    """30 seeded random edits: at every step dagprof (verify) prints what plain scons prints, and the
    cache's prediction never says "up to date" where SCons rebuilt something (exit 67)."""
    import random

    rng = random.Random(20261125)
    tw = Twins(tmp_path)
    _settle(tw)
    extra = 0

    def edit_c():
        tw.append(rng.choice(["lib/a.c", "lib/b.c", "app/main.c"]), f"/* {rng.random()} */\n")

    def edit_header():
        tw.write(
            rng.choice(["lib/b.h", "include/common.h"]),
            rng.choice(["#define B 2\n#define COMMON 1\n", "#define B 3\n#define COMMON 1\n"]),
        )

    def touch():
        tw.touch(rng.choice(["lib/a.c", "lib/b.h", "SConstruct", "version.txt", "lib/SConscript"]))

    def delete_output():
        tw.remove(rng.choice(["app/main", "lib/a.o", "lib/libutil.a", "gen/version.txt"]))

    def add_source():
        nonlocal extra
        extra += 1
        tw.write(f"lib/x{extra}.c", f"int x{extra}(void) {{ return {extra}; }}\n")

    def remove_source():
        added = sorted(p.name for p in (tw.plain / "lib").glob("x*.c"))
        if added:
            tw.remove(f"lib/{rng.choice(added)}")

    def version():
        tw.write("version.txt", rng.choice(["1.0\n", "1.1\n", "2.0\n"]))

    def env_var():
        tw.extra_env["DAGTEST_MODE"] = rng.choice(["plain", "debug"])

    def nothing():
        pass

    edits = [edit_c, edit_header, touch, delete_output, add_source, remove_source, version, env_var, nothing, nothing]
    answered_steps = 0
    for step in range(30):
        what = rng.choice(edits)
        what()
        plain = tw.scons(ARGS)
        p, answered = tw.dagprof(ARGS, ("--dag-cache", "verify"))
        assert p.returncode == plain.returncode == 0, (step, what.__name__, p.stderr)
        assert (p.stdout, p.stderr) == (plain.stdout, plain.stderr), (step, what.__name__)
        assert not answered  # verify always runs SCons
        p, answered = tw.dagprof(ARGS)  # and the cache itself, right after: nothing changed since
        answered_steps += answered
        assert p.returncode == 0 and "up to date" in p.stdout, (step, what.__name__, p.stdout)
    tw.outputs_equal()
    assert answered_steps >= 15  # the edit loop is mostly answered at once (inputs already trusted)

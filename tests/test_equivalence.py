"""The equivalence tool: plain SCons vs the store on generated projects, and that it catches differences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import _env

from dagprof.equivalence import EquivalenceError, Step, explained, run_equivalence, snapshot, steps_from_data
from dagprof.exitcodes import BAD_INPUT, USAGE
from dagprof.synthetic import generate

PLAIN = [sys.executable, "-c", "import SCons.Script; SCons.Script.main()"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("eq") / "proj", files=30, files_per_dir=10, seed=11)


def _edits(project) -> list:
    """Edit a .c, edit a header, add a file, remove a file (SConscripts edited alongside)."""
    c, header = project.files[3], project.headers[1]
    d = project.dirs[1]
    first = [f for f in project.files if f.startswith(f"src/{d}/")][-1].rsplit("/", 1)[1]
    victim = project.files[-2]
    vd, vname = victim.rsplit("/", 1)
    return [
        {"edit": c, "replace": ["int rev = ", "int rev = 2 + "]},
        {"edit": header, "append": "\n#define EQUIV_EXTRA 1\n"},
        [
            {"add": f"src/{d}/f09999.c", "content": f'#include "{d}_local.h"\nint f09999(int x) {{ return x; }}\n'},
            {"edit": f"src/{d}/SConscript", "replace": [first, f"{first}\n    f09999.c"]},
        ],
        [{"remove": victim}, {"edit": f"{vd}/SConscript", "replace": [f"    {vname}\n", ""]}],
        {"touch": project.headers[0]},
    ]


@pytest.mark.slow
def test_cli_generated_project_is_equivalent_and_untouched(project, tmp_path):
    import subprocess

    before = _tree(project.root)
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps(_edits(project)))
    p = subprocess.run(
        [sys.executable, "-m", "dagprof.equivalence", str(project.root), "--edits", str(edits), "--json", "--", "-Q"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(p.stdout)
    assert report["equivalent"] is True
    steps = {s["name"].split(":")[0]: s for s in report["steps"]}
    assert list(steps) == ["clean build", "null build", "step 1", "step 2", "step 3", "step 4", "step 5"]
    rebuilt = {k: s["rebuilt"][0] for k, s in steps.items()}
    assert len(rebuilt["clean build"]) == len(project.outputs())
    assert rebuilt["null build"] == []
    assert project.object_of(project.files[3]) in rebuilt["step 1"]
    dependents = {project.object_of(f) for f in project.dependents(project.headers[1])}
    assert dependents and dependents <= set(rebuilt["step 2"])
    assert f"build/{project.dirs[1]}/f09999.o" in rebuilt["step 3"]
    assert project.library_of(project.files[-2].split("/")[1]) in rebuilt["step 4"]
    assert rebuilt["step 5"] == []  # content unchanged: SCons' MD5 decider rebuilds nothing, nor must the store
    for s in report["steps"]:
        assert s["rebuilt"][0] == s["rebuilt"][1] and s["exit"] == [0, 0]
    assert _tree(project.root) == before  # the user's tree is never built in or edited


def _store_cmd(script: str) -> list[str]:
    """A stand-in "store build": plain SCons, then `script` misbehaves in a known way."""
    code = (
        "import sys, os, SCons.Script\n"
        "try:\n    SCons.Script.main()\n"
        "except SystemExit as e:\n    code = e.code or 0\n"
        f"{script}\n"
        "sys.exit(code)\n"
    )
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(
    "script,needle",
    [
        ("open('build/prog', 'ab').write(b'x')", "output build/prog: bytes differ"),
        ("code = 3", "exit code: plain 0, store 3"),
        ("os.remove('build/main.o')", "output build/main.o: only in the plain build"),
        ("print('scons: building `phantom\\' because I said so')", "only the store build rebuilt phantom"),
        ("print('hello')", "SCons messages differ"),
    ],
)
def test_detects_each_kind_of_difference(project, script, needle):
    report = run_equivalence(project.root, [], scons_args=["-Q"], plain_cmd=PLAIN, store_cmd=_store_cmd(script))
    assert not report.equivalent
    diffs = [d for s in report.steps for d in s.differences]
    assert any(needle in d for d in diffs), diffs


def test_detects_a_different_rebuild_set_after_an_edit(project):
    """A "store" that skips work on the step after an edit (stale state) is caught by rebuilds and files."""
    skip = [
        sys.executable,
        "-c",
        "import os, sys, SCons.Script\n"
        f"if 'EQUIV_SKIP' in open({project.headers[1]!r}).read():\n"
        "    sys.argv += ['--implicit-deps-unchanged', 'build/main.o']\n"
        "SCons.Script.main()\n",
    ]
    steps = steps_from_data([{"edit": project.headers[1], "append": "\n#define EQUIV_SKIP 1\n"}])
    report = run_equivalence(project.root, steps, scons_args=["-Q"], plain_cmd=PLAIN, store_cmd=skip)
    assert report.steps[0].equivalent and report.steps[1].equivalent  # clean, null: no difference
    step = report.steps[2]
    assert not step.equivalent
    assert any("rebuild sets differ" in d for d in step.differences), step.differences
    assert any("files written differ" in d for d in step.differences), step.differences


def test_plain_against_itself_is_equivalent(project):
    steps = [Step("touch", [{"touch": project.files[0]}])]
    report = run_equivalence(project.root, steps, scons_args=["-Q"], plain_cmd=PLAIN, store_cmd=PLAIN)
    assert report.equivalent and len(report.steps) == 3


def test_explained_parses_targets_and_reasons():
    out = (
        "scons: building `a.o' because it doesn't exist\ncc -o a.o a.c\n"
        "scons: rebuilding `b.o' because:\n           `b.h' changed\n           `c.h' is a new dependency\n"
        "cc -o b.o b.c\n"
    )
    assert explained(out) == {"a.o": ["it doesn't exist"], "b.o": [":", "`b.h' changed", "`c.h' is a new dependency"]}


def test_snapshot_ignores_scons_and_store_state(tmp_path):
    (tmp_path / ".sconsign.dblite").write_bytes(b"x")
    (tmp_path / ".dagstore").mkdir()
    (tmp_path / ".dagstore" / "data.mdb").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "out.o").write_bytes(b"o")
    assert set(snapshot(tmp_path)) == {"sub/out.o"}


@pytest.mark.parametrize(
    "setup,args,needle",
    [
        (None, ["missing-dir"], "does not exist"),
        ("file", ["afile"], "is not a directory"),
        ("empty", ["empty"], "has no SConstruct"),
        ("proj", ["proj", "--edits", "nope.json"], "cannot read --edits"),
        ("proj", ["proj", "--edits", "proj"], "is a directory"),
        ("proj", ["proj", "--edits", "bad.json"], "is not valid JSON"),
        ("proj", ["proj", "--edits", "notlist.json"], "must be a JSON list"),
        ("proj", ["proj", "--edits", "unknown.json"], "needs exactly one of"),
        ("proj", ["proj", "--edits", "escape.json"], "must be relative and inside the project"),
        ("proj", ["proj", "--edits", "missing.json"], "no such file in the project"),
        ("proj", ["proj", "--edits", "noreplace.json"], "does not occur"),
        ("proj", ["proj", "--edits", "extra.json"], "unknown key"),
        ("proj", ["proj", "--store", "redis"], "invalid choice"),
        ("proj", ["proj", "--frobnicate"], "unrecognized arguments"),
        ("proj", [], None),  # placeholder replaced below: no arguments at all
    ],
)
def test_bad_input_one_line_and_own_exit_code(tmp_path, setup, args, needle):
    import subprocess

    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "SConstruct").write_text("Command('out', 'in', Copy('$TARGET', '$SOURCE'))\n")
    (proj / "in").write_text("data\n")
    files = {
        "bad.json": '[{"touch": ',
        "notlist.json": '{"touch": "in"}',
        "unknown.json": '[{"poke": "in"}]',
        "escape.json": '[{"touch": "../afile"}]',
        "missing.json": '[{"remove": "in"}, {"touch": "in"}]',
        "noreplace.json": '[{"edit": "in", "replace": ["zzz", "y"]}]',
        "extra.json": '[{"touch": "in", "content": "x"}]',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    if needle is None:
        args, needle = [], "the following arguments are required: project"
    p = subprocess.run(
        [sys.executable, "-m", "dagprof.equivalence", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    usage = needle in ("invalid choice", "unrecognized arguments", "the following arguments are required: project")
    assert p.returncode == (USAGE if usage else BAD_INPUT), (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_steps_from_data_rejects_bad_shapes():
    for bad in (
        [[]],
        [{"edit": "a"}],
        [{"edit": "a", "append": 1}],
        [{"add": "a"}],
        [3],
        [{"edit": "a", "append": "x", "replace": ["a", "b"]}],
        [{"touch": "/etc/passwd"}],
    ):
        with pytest.raises(EquivalenceError):
            steps_from_data(bad)


# ---- defects found on real projects (gpsd, serf) --------------------------------------------------
STAMP_SCONSTRUCT = """\
import os
srcs = ['a.c', 'b.c']
newest = max(os.stat(s).st_mtime_ns for s in srcs)   # as gpsd: the newest source time goes into a header
def stamp(target, source, env):
    open(str(target[0]), 'w').write('#define NEWEST %s\\n' % source[0].read())
env = Environment()
env.Command('stamp.h', Value(str(newest)), stamp)
env.Command('out.txt', ['stamp.h'] + srcs, Action('cat $SOURCES > $TARGET'))
"""


def test_edits_give_both_copies_the_same_timestamps(tmp_path):
    """A project that embeds the newest source mtime in a generated header is EQUIVALENT after edits."""
    import os

    proj = tmp_path / "stamp"
    proj.mkdir()
    (proj / "SConstruct").write_text(STAMP_SCONSTRUCT)
    for name in ("a.c", "b.c"):
        (proj / name).write_text(f"int {name[0]};\n")
        os.utime(proj / name, (1_000_000_000, 1_000_000_000))  # old sources: a touch moves to "now"
    steps = steps_from_data(
        [
            {"touch": "a.c"},
            {"edit": "b.c", "append": "int c;\n"},
            [{"add": "a.c", "content": "int a2;\n"}, {"touch": "b.c"}],
        ]
    )
    report = run_equivalence(proj, steps, scons_args=["-Q"], plain_cmd=PLAIN, store_cmd=PLAIN)
    assert report.verdict == "equivalent", [s.differences for s in report.steps]
    assert all("stamp.h" in s.rebuilt_plain for s in report.steps[2:])  # each step did change the stamp


FAILING_SCONSTRUCT = """\
import sys
def boom(target, source, env):
    sys.stderr.write("gen.c:1:2: warning: unused variable 'x'\\n")
    return 0 if 'ok' in source[0].get_text_contents() else 1
Command('out.txt', 'in.txt', boom)
"""


@pytest.mark.parametrize("allow", [False, True])
def test_a_build_failing_on_both_sides_is_not_a_pass(tmp_path, allow):
    import subprocess

    proj = tmp_path / "fail"
    proj.mkdir()
    (proj / "SConstruct").write_text(FAILING_SCONSTRUCT)
    (proj / "in.txt").write_text("bad\n")
    args = [str(proj), "--store", "memory"] + (["--allow-failing"] if allow else []) + ["--", "-Q"]
    p = subprocess.run(
        [sys.executable, "-m", "dagprof", "check", *args], env=_env(), capture_output=True, text=True, timeout=300
    )
    from dagprof.exitcodes import BUILD_FAILED, OK

    assert p.returncode == (OK if allow else BUILD_FAILED), p.stdout + p.stderr
    assert ("EQUIVALENT" if allow else "BUILD FAILED") in p.stdout.splitlines()[-1]
    assert "both FAILED" in p.stdout
    # the action's compiler-style warning is printed by both builds: not a note about the store
    assert "warning" not in p.stdout and "note:" not in p.stdout, p.stdout


def test_stderr_of_the_store_only_is_reported(project):
    report = run_equivalence(
        project.root,
        [],
        scons_args=["-Q"],
        plain_cmd=PLAIN,
        store_cmd=_store_cmd("sys.stderr.write('dagstore: trouble\\n')"),
    )
    notes = [n for s in report.steps for n in s.notes]
    assert notes and all(n == "store build only on stderr: dagstore: trouble" for n in notes), notes

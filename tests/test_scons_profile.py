"""`dagprof profile` on a real SCons build: same outputs, messages and rebuild decisions as plain scons."""

import json
from pathlib import Path

import pytest

from dagprof.exitcodes import BAD_INPUT, USAGE
from dagprof.profile import load
from dagprof.synthetic import generate


def snapshot_outputs(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted((root / "build").rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def commands(stdout: str) -> list[str]:
    return sorted(line for line in stdout.splitlines() if "stub" in line)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("proj"), files=40, files_per_dir=10, seed=3)


def build_sequence(project, runner, make_args):
    """Full build, null build, edit a header, rebuild, edit a .c, rebuild; record everything."""
    project.reset_build()
    root = project.root
    seq = []
    header = project.headers[0]
    c_file = project.files[5]
    orig_h = (root / header).read_text()
    orig_c = (root / c_file).read_text()
    try:
        for step in ("full", "null", "edit-header", "edit-c"):
            if step == "edit-header":
                project.edit_header(0)
            elif step == "edit-c":
                project.edit_c(5)
            p = runner(make_args(), root)
            seq.append((step, p.returncode, p.stdout, snapshot_outputs(root)))
    finally:
        (root / header).write_text(orig_h)
        (root / c_file).write_text(orig_c)
    return seq


def test_outputs_messages_and_rebuilds_identical(project, scons, dagprof, tmp_path):
    prof = tmp_path / "p.dagprof"
    plain = build_sequence(project, scons, lambda: ["-Q"])
    profiled = build_sequence(
        project, lambda a, cwd: dagprof(["profile", "--no-introspect", "-o", str(prof), "--", *a], cwd), lambda: ["-Q"]
    )
    assert len(plain) == len(profiled) == 4
    for (step, rc1, out1, files1), (_, rc2, out2, files2) in zip(plain, profiled):
        assert rc1 == rc2 == 0, step
        assert out2.startswith(out1), f"{step}: SCons messages differ under dagprof"
        assert commands(out1) == commands(out2), step
        assert files1 == files2, f"{step}: build outputs differ"
    # the rebuild decisions are the real ones: a null build runs nothing, a header edit rebuilds its users
    assert commands(plain[1][2]) == []
    dependents = {project.object_of(f) for f in project.dependents(project.headers[0])}
    rebuilt = {line.split(" -o ")[1].split()[0] for line in commands(plain[2][2]) if " -c " in line}
    assert rebuilt == dependents and rebuilt


def test_profile_file_and_json_report_agree(project, dagprof, scons, tmp_path):
    project.reset_build()
    assert scons(["-Q"], project.root).returncode == 0
    prof = tmp_path / "p.dagprof"
    p = dagprof(["profile", "--no-introspect", "-o", str(prof), "--", "-Q"], project.root, check=True)
    for name in ("_memo", "ninfo", "_sconsign"):
        assert name in p.stdout
    profile = load(prof)
    totals = profile.access_totals()
    for cls, attr in (("File", "_memo"), ("File", "ninfo"), ("Dir", "_sconsign")):
        assert totals[(cls, attr)].reads > 0, (cls, attr)
    assert [ph["name"] for ph in profile.phases] == ["startup", "read SConscripts", "evaluate/build", "write .sconsign"]
    assert profile.meta["exit_code"] == 0 and profile.meta["peak_rss"] > 0
    assert profile.meta["scons_version"]
    j = json.loads(dagprof(["report", str(prof), "--json"], project.root, check=True).stdout)
    rows = {(r[0], r[1], r[2]): r for r in j["access"]}
    for r in profile.access:
        assert rows[(r.cls, r.attr, r.phase)][3:6] == [r.reads, r.writes, r.deletes]


def test_failing_build_keeps_scons_exit_code(tmp_path, scons, dagprof):
    (tmp_path / "SConstruct").write_text("Command('out', [], 'exit 3')\n")
    plain = scons(["-Q"], tmp_path)
    prof = dagprof(["profile", "--no-introspect", "-o", str(tmp_path / "x.dagprof"), "--", "-Q"], tmp_path)
    assert plain.returncode == prof.returncode == 2
    assert prof.stdout.startswith(plain.stdout)
    assert "Traceback" not in prof.stderr


def test_sconscript_error_exit_code(tmp_path, scons, dagprof):
    (tmp_path / "SConstruct").write_text("Import('nope')\n")
    plain = scons(["-Q"], tmp_path)
    prof = dagprof(["profile", "--no-introspect", "-o", str(tmp_path / "x.dagprof"), "--", "-Q"], tmp_path)
    assert plain.returncode == prof.returncode != 0
    assert plain.stderr.splitlines()[0] == prof.stderr.splitlines()[0]


@pytest.mark.parametrize(
    "args,needle,code",
    [
        (["report", "missing.dagprof"], "cannot read", BAD_INPUT),
        (["report", "."], "is a directory", BAD_INPUT),
        (["report", "garbage.dagprof"], "not a dagprof profile", BAD_INPUT),
        (["report", "truncated.dagprof"], "damaged or truncated", BAD_INPUT),
        (["report", "empty.dagprof"], "empty file", BAD_INPUT),
        (["report", "future.dagprof"], "version 99 is not supported", BAD_INPUT),
        (["profile", "-o", ".", "--", "-Q"], "is a directory", USAGE),
        (["profile", "--frobnicate"], "unrecognized arguments", USAGE),
        (["nosuchcommand"], "invalid choice", USAGE),
        (["report", "garbage.dagprof", "--top", "many"], "invalid int value", USAGE),
    ],
)
def test_bad_input_one_line_and_own_exit_code(tmp_path, dagprof, args, needle, code):
    import msgpack

    from dagprof.profile import Profile

    (tmp_path / "garbage.dagprof").write_bytes(b"GIF89a this is a picture, not a profile")
    good = Profile(meta={"x": 1}).dumps()
    (tmp_path / "truncated.dagprof").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.dagprof").write_bytes(b"")
    (tmp_path / "future.dagprof").write_bytes(msgpack.packb({"format": "dagprof-profile", "version": 99}))
    p = dagprof(args, tmp_path)
    assert p.returncode == code, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr

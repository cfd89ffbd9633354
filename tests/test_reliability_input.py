"""Bad input wherever a user types (beyond tests/test_scons_profile.py and test_compare.py): one line, dagprof's
own exit code (64 bad command line, 65 bad input file), no traceback; bad SCons arguments behave exactly as
under plain SCons."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_fixtures import full_profile

from dagprof.exitcodes import BAD_INPUT, USAGE
from dagprof.profile import Profile, ProfileError, load
from dagprof.synthetic import generate


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("input") / "proj", files=20, files_per_dir=10, seed=2)


def _one_line_exit(p, needle: str, code: int = USAGE) -> None:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "args,needle,code",
    [
        (*c, USAGE) if len(c) == 2 else c
        for c in [
            (["build", "--frobnicate", "--", "-Q"], "unrecognized arguments: --frobnicate"),
            (["build", "--store", "redis", "--", "-Q"], "invalid choice: 'redis'"),
            (["build", "--store"], "expected one argument"),
            (["build", "--spill", "Nope.attr", "--", "-Q"], "unknown class 'Nope'"),
            (["build", "--spill", "File.no_such_attr", "--", "-Q"], "File has no attribute 'no_such_attr'"),
            (["build", "--spill", "File.includes,Dir.nope", "--", "-Q"], "Dir has no attribute 'nope'"),
            (["build", "--spill", "includes", "--", "-Q"], "is not of the form Class.attribute"),
            (["build", "--spill", "File.", "--", "-Q"], "is not of the form Class.attribute"),
            (["build", "--spill", ",", "--", "-Q"], "empty list"),
            (["build", "--spill", "Fïle.includes", "--", "-Q"], "unknown class 'Fïle'"),
            (["build", "--store", "none", "--spill", "File.includes", "--", "-Q"], "needs a store"),
            (["build", "--store-path", "afile", "--", "-Q"], "exists and is not a directory"),
            (["build", "-o", ".", "--", "-Q"], "is a directory"),
            (["build", "-o", "no/such/dir/x.dagprof", "--", "-Q"], "does not exist"),
            (["report", "adir"], "is a directory", BAD_INPUT),
            (["report", "afile"], "not a dagprof profile", BAD_INPUT),
            (["report", "lmdb.dagprof"], "profile", BAD_INPUT),
            (["report", "good.dagprof", "--", "-Q"], "takes no SCons arguments"),
            (["report", "good.dagprof", "--budget", "lots"], "invalid int value"),
            (["profile", "--interval", "often", "--", "-Q"], "invalid float value"),
            (["demo", "--dir", "afile"], "exists and is not an empty directory"),
            (["demo", "--runs", "0"], "--runs must be >= 1"),
            (["compare", "--spill", "File.nope", "--", "-Q"], "File has no attribute 'nope'"),
        ]
    ],
)
def test_bad_input_one_line_and_own_exit_code(tmp_path, dagprof, args, needle, code):
    (tmp_path / "SConstruct").write_text("Command('out', [], 'echo hi > $TARGET')\n")
    (tmp_path / "afile").write_text("not a profile, not a directory\n")
    (tmp_path / "adir").mkdir()
    from dagstore.backends import LMDBStore

    with LMDBStore(tmp_path / "st") as s:
        s.put_many([(b"k", b"v" * 100)])
    shutil.copy(tmp_path / "st" / "data.mdb", tmp_path / "lmdb.dagprof")  # a store file passed as a profile
    Profile(meta={"x": 1}).save(tmp_path / "good.dagprof")
    p = dagprof(args, tmp_path)
    _one_line_exit(p, needle, code)
    assert not (tmp_path / ".dagstore").exists()  # refused before anything was built or opened


def test_every_truncation_of_a_real_profile_is_a_clean_error(tmp_path):
    blob = full_profile().dumps()
    step = max(1, len(blob) // 400)
    for n in list(range(0, len(blob), step)) + [len(blob) - 1]:
        with pytest.raises(ProfileError):
            Profile.loads(blob[:n])
    assert Profile.loads(blob).meta  # the whole file is fine


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_profile_bytes_never_escape_as_another_exception(data):
    blob = bytearray(full_profile().dumps())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    try:
        Profile.loads(bytes(blob))
    except ProfileError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("cut", [1, 10, 0.5, -1])
def test_report_of_a_truncated_profile_file(tmp_path, dagprof, cut):
    blob = full_profile().dumps()
    n = cut if isinstance(cut, int) and cut > 0 else (len(blob) + cut if isinstance(cut, int) else int(len(blob) * cut))
    (tmp_path / "t.dagprof").write_bytes(blob[:n])
    p = dagprof(["report", "t.dagprof"], tmp_path)
    assert p.returncode == BAD_INPUT, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    with pytest.raises(ProfileError):
        load(tmp_path / "t.dagprof")


@pytest.mark.parametrize(
    "scons_args",
    [
        ["--no-such-scons-option"],
        ["-f", "adir"],
        ["-f", "missing.SConstruct"],
        ["-C", "no-such-dir"],
        ["--debug=nonsense"],
    ],
)
def test_bad_scons_arguments_behave_as_under_plain_scons(project, tmp_path, scons, dagprof, scons_args):
    root = tmp_path / "p"
    shutil.copytree(project.root, root)
    (root / "adir").mkdir()
    plain = scons(["-Q", *scons_args], root)
    store = dagprof(["build", "--store", "lmdb", "--", "-Q", *scons_args], root)
    assert store.returncode == plain.returncode, (plain.stderr, store.stderr)
    assert "Traceback" not in store.stderr
    first_plain = plain.stderr.strip().splitlines()[0] if plain.stderr.strip() else plain.stdout.strip()
    assert first_plain in store.stderr + store.stdout


def test_store_path_under_a_file_is_bypassed_and_the_build_is_right(project, tmp_path, scons, dagprof):
    plain, root = tmp_path / "plain", tmp_path / "store"
    shutil.copytree(project.root, plain)
    shutil.copytree(project.root, root)
    (root / "afile").write_text("x")
    p = scons(["-Q"], plain)
    s = dagprof(["build", "--store", "lmdb", "--store-path", "afile/.dagstore", "--", "-Q"], root)
    assert p.returncode == s.returncode == 0, s.stderr
    warnings = [ln for ln in s.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "building without the store" in warnings[0], s.stderr
    from dagprof.equivalence import snapshot

    out_p = {k: v[0] for k, v in snapshot(plain).items()}
    out_s = {k: v[0] for k, v in snapshot(root).items() if k != "afile"}
    assert out_s == out_p

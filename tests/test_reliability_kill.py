"""kill -9 of `dagprof build --store lmdb` at chosen moments: the next build is correct and rebuilds what
plain SCons would.

The moment is chosen deterministically by the test project's own SConstruct (no hook in dagprof): it
SIGKILLs its own process while reading SConscripts, from a Python action mid-build, inside the
store's write transaction while spilling, or halfway through writing .sconsign. Each scenario runs
twice, in two identical trees: under plain SCons and under `dagprof build --store lmdb`, and the
build after the kill must do the same in both (same rebuild set, same messages, same outputs, both
equal to a clean build's).
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from dagprof.equivalence import explained, snapshot
from dagprof.synthetic import generate

pytestmark = pytest.mark.slow

KILL_HOOK = r"""
# --- test hook (tests/test_reliability_kill.py): SIGKILL this process at a chosen moment -------------
import os as _os, signal as _signal, sys as _sys
_KILL = _os.environ.get('RELIABILITY_KILL', '')


def _die():
    _sys.stdout.flush()
    _os.kill(_os.getpid(), _signal.SIGKILL)


if _KILL == 'read':                    # while SCons reads SConscripts (the store is already open)
    _die()
elif _KILL == 'build':                 # mid-build: main.o and all of d001 built, the rest not
    def _kill_action(target, source, env):
        _die()
    Depends(prog, env.Command('#build/killer.stamp', '#build/lib/libd001.a', _kill_action))
elif _KILL == 'spill':                 # inside the LMDB write transaction of a spill flush, after the puts
    _b = _sys.modules.get('dagstore.backends')
    if _b is not None:
        _orig = _b.LMDBStore._write_locked

        def _write_locked(self, fill, what):
            if 'values' in what and _os.path.exists('build/prog'):
                def fill_and_die(txn):
                    fill(txn)
                    _die()
                return _orig(self, fill_and_die, what)
            return _orig(self, fill, what)
        _b.LMDBStore._write_locked = _write_locked
elif _KILL == 'sconsign-start':        # everything built, .sconsign not written yet
    import SCons.SConsign as _sconsign
    _sconsign.write = _die
elif _KILL == 'sconsign':              # halfway through writing .sconsign's temporary file
    import pickle as _pickle
    import SCons.dblite as _dblite

    def _half_dump(obj, f, protocol):
        data = _pickle.dumps(obj, protocol)
        f.write(data[: len(data) // 2])
        f.flush()
        _die()
    _dblite._Dblite._pickle_dump = staticmethod(_half_dump)
"""

# what plain SCons does at the same point: a spill has no plain twin, so its reference is a kill at the
# same place in the build (everything built, .sconsign not yet written).
PLAIN_TWIN = {"spill": "sconsign-start"}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    info = generate(tmp_path_factory.mktemp("kill") / "proj", files=30, files_per_dir=10, seed=5)
    with open(info.root / "SConstruct", "a") as f:
        f.write(KILL_HOOK)
    return info


def _copy(template, dest: Path) -> Path:
    shutil.copytree(template.root, dest)
    return dest


def _norm(text: str, root: Path) -> list[str]:
    return sorted(text.replace(str(root), "<ROOT>").splitlines())


def _outputs(root: Path) -> dict[str, bytes]:
    return {k: v[0] for k, v in snapshot(root).items()}


def _header_edit(root: Path, header: str) -> None:
    with open(root / header, "a") as f:
        f.write("\n#define KILL_TEST_EDIT 1\n")


def _scenario(template, tmp_path, monkeypatch, run, kind: str, phase: str, prebuilt: bool):
    """Build (optionally), edit a header, build with a kill at `phase`, then build again; return observations."""
    root = _copy(template, tmp_path / kind)
    if kind == "plain":

        def build(*extra):
            return run["scons"](["-Q", *extra], root)
    else:

        def build(*extra):
            return run["dagprof"](["build", "--store", "lmdb", "--", "-Q", *extra], root)

    if prebuilt:
        first = build()
        assert first.returncode == 0, first.stdout + first.stderr
    _header_edit(root, template.headers[1])
    monkeypatch.setenv("RELIABILITY_KILL", phase)
    killed = build()
    monkeypatch.delenv("RELIABILITY_KILL")
    assert killed.returncode == -signal.SIGKILL, (
        f"{kind}: the kill at {phase!r} did not happen",
        killed.stdout,
        killed.stderr,
    )
    after = build("--debug=explain")
    null = build("--debug=explain")
    return root, after, null


@pytest.mark.parametrize(
    "phase,prebuilt",
    [
        ("read", True),
        ("build", True),
        ("build", False),
        ("spill", True),
        ("sconsign", True),
    ],
)
def test_next_build_after_kill_is_what_plain_scons_does(
    template, tmp_path, monkeypatch, scons, dagprof, phase, prebuilt
):
    run = {"scons": scons, "dagprof": dagprof}
    p_root, p_after, p_null = _scenario(
        template, tmp_path, monkeypatch, run, "plain", PLAIN_TWIN.get(phase, phase), prebuilt
    )
    s_root, s_after, s_null = _scenario(template, tmp_path, monkeypatch, run, "store", phase, prebuilt)

    assert p_after.returncode == 0, p_after.stderr
    assert s_after.returncode == 0, s_after.stdout + s_after.stderr
    assert "Traceback" not in s_after.stderr
    assert sorted(explained(s_after.stdout)) == sorted(explained(p_after.stdout))
    assert explained(p_after.stdout), "the kill left nothing to rebuild: the scenario tests nothing"
    assert _norm(s_after.stdout, s_root) == _norm(p_after.stdout, p_root)

    # outputs equal plain's, and plain's equal a clean build of the same sources
    clean = _copy(template, tmp_path / "clean")
    _header_edit(clean, template.headers[1])
    assert scons(["-Q"], clean).returncode == 0
    assert _outputs(s_root) == _outputs(p_root) == _outputs(clean)

    # the build after that is a null build in both, and the store was neither lost nor set aside
    assert s_null.returncode == p_null.returncode == 0
    assert explained(s_null.stdout) == explained(p_null.stdout) == {}
    assert (s_root / ".dagstore" / "data.mdb").is_file()
    assert not list(s_root.glob(".dagstore.bad-*"))
    assert "warning" not in s_after.stderr, s_after.stderr


def test_store_build_after_kill_leaves_sconsign_plain_scons_agrees_with(
    template, tmp_path, monkeypatch, scons, dagprof
):
    """After kill -9 + a store rebuild, plain SCons (no dagprof) sees an up-to-date tree: .sconsign is sound."""
    root = _copy(template, tmp_path / "mixed")
    assert dagprof(["build", "--store", "lmdb", "--", "-Q"], root).returncode == 0
    _header_edit(root, template.headers[1])
    monkeypatch.setenv("RELIABILITY_KILL", "build")
    assert dagprof(["build", "--store", "lmdb", "--", "-Q"], root).returncode == -signal.SIGKILL
    monkeypatch.delenv("RELIABILITY_KILL")
    assert dagprof(["build", "--store", "lmdb", "--", "-Q"], root).returncode == 0
    plain = scons(["-Q", "--debug=explain"], root)
    assert plain.returncode == 0 and explained(plain.stdout) == {}, plain.stdout

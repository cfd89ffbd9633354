"""Damaged, mismatched, read-only, full and busy stores under a real `dagprof build`: a one-line warning,
the store set aside (kept, never deleted) or bypassed, and a build identical to plain SCons'."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, _env

from dagprof.equivalence import explained, snapshot
from dagprof.profile import load
from dagprof.synthetic import generate
from dagstore.backends import LMDBStore

KiB = 1 << 10


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("store") / "proj", files=30, files_per_dir=10, seed=9)


@pytest.fixture(scope="module")
def clean_outputs(template, tmp_path_factory):
    """Outputs of a plain clean build after the edit every test makes (the reference)."""
    root = tmp_path_factory.mktemp("ref") / "proj"
    shutil.copytree(template.root, root)
    _edit(root, template)
    from conftest import run_scons

    assert run_scons(["-Q"], root).returncode == 0
    return _outputs(root)


def _edit(root: Path, template) -> None:
    with open(root / template.files[4], "a") as f:
        f.write("\nint reliability_edit;\n")


def _outputs(root: Path) -> dict[str, bytes]:
    return {k: v[0] for k, v in snapshot(root).items()}


def _tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file except the lock files (LMDB rewrites its lock table on every open attempt)."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.startswith("lock.")
    }


def _warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "warning" in ln.lower()]


# ---- damaged and mismatched stores ---------------------------------------------------------------------
def _truncate_half(s: Path) -> None:
    data = s / "data.mdb"
    os.truncate(data, max(8 * KiB, data.stat().st_size // 2))


def _truncate_empty(s: Path) -> None:
    os.truncate(s / "data.mdb", 0)


def _garbage(s: Path) -> None:
    data = s / "data.mdb"
    data.write_bytes(os.urandom(data.stat().st_size))


def _garbage_meta_pages(s: Path) -> None:
    with open(s / "data.mdb", "r+b") as f:
        f.write(b"\xde\xad\xbe\xef" * 2048)  # both LMDB meta pages


def _other_schema(s: Path) -> None:
    shutil.rmtree(s)
    LMDBStore(s, schema=99, expect=_expect()).close()


def _other_scons(s: Path) -> None:
    shutil.rmtree(s)
    LMDBStore(s, expect={**_expect(), "scons": "3.0.0"}).close()


def _other_python(s: Path) -> None:
    shutil.rmtree(s)
    LMDBStore(s, expect={**_expect(), "python": "3.99"}).close()


def _a_file(s: Path) -> None:
    shutil.rmtree(s)
    s.write_bytes(b"a user's file that happens to be called .dagstore\n")


def _expect() -> dict[str, str]:
    import SCons

    return {"scons": SCons.__version__, "python": ".".join(map(str, sys.version_info[:2]))}


SET_ASIDE = {
    "truncated-half": _truncate_half,
    "truncated-empty": _truncate_empty,
    "garbage": _garbage,
    "garbage-meta-pages": _garbage_meta_pages,
    "other-schema": _other_schema,
    "other-scons": _other_scons,
    "other-python": _other_python,
    "a-file": _a_file,
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", sorted(SET_ASIDE))
def test_bad_store_is_set_aside_and_the_build_is_plain_scons(template, clean_outputs, tmp_path, scons, dagprof, damage):
    plain, root = tmp_path / "plain", tmp_path / "store"
    shutil.copytree(template.root, plain)
    shutil.copytree(template.root, root)
    assert scons(["-Q"], plain).returncode == 0
    assert dagprof(["build", "--store", "lmdb", "--", "-Q"], root).returncode == 0
    store = root / ".dagstore"
    assert (store / "data.mdb").is_file()
    SET_ASIDE[damage](store)
    bad_bytes = _tree_digest(store)
    _edit(plain, template)
    _edit(root, template)

    p = scons(["-Q", "--debug=explain"], plain)
    s = dagprof(["build", "--store", "lmdb", "--", "-Q", "--debug=explain"], root)
    assert s.returncode == p.returncode == 0, s.stderr
    assert "Traceback" not in s.stderr
    warnings = _warnings(s.stderr)
    assert len(warnings) == 1 and "set aside as" in warnings[0], s.stderr
    aside = list(root.glob(".dagstore.bad-*"))
    assert len(aside) == 1 and str(aside[0]) in warnings[0]
    assert _tree_digest(aside[0]) == bad_bytes  # renamed, bytes kept
    assert sorted(explained(s.stdout)) == sorted(explained(p.stdout)) != []
    assert _outputs(root) == _outputs(plain) == clean_outputs

    again = dagprof(["build", "--store", "lmdb", "--", "-Q", "--debug=explain"], root)
    assert again.returncode == 0 and _warnings(again.stderr) == [], again.stderr  # the fresh store is sound
    assert explained(again.stdout) == {}


def test_garbage_lock_file_is_recovered(template, clean_outputs, tmp_path, dagprof):
    """LMDB's lock file is rebuilt when nobody else uses the store: no data is lost, nothing set aside."""
    root = tmp_path / "store"
    shutil.copytree(template.root, root)
    assert dagprof(["build", "--store", "lmdb", "--", "-Q"], root).returncode == 0
    (root / ".dagstore" / "lock.mdb").write_bytes(os.urandom(8 * KiB))
    _edit(root, template)
    s = dagprof(["build", "--store", "lmdb", "--", "-Q"], root)
    assert s.returncode == 0 and "Traceback" not in s.stderr, s.stderr
    assert len(_warnings(s.stderr)) <= 1
    assert _outputs(root) == clean_outputs


def test_scratch_area_that_is_a_file_does_not_break_the_build(template, clean_outputs, tmp_path, dagprof):
    root = tmp_path / "store"
    shutil.copytree(template.root, root)
    assert dagprof(["build", "--store", "lmdb", "--", "-Q"], root).returncode == 0
    scratch = root / ".dagstore" / "scratch"
    if scratch.is_dir():
        shutil.rmtree(scratch)
    scratch.write_bytes(b"not a store")
    _edit(root, template)
    s = dagprof(["build", "--store", "lmdb", "--", "-Q"], root)
    assert s.returncode == 0 and "Traceback" not in s.stderr, s.stderr
    assert len(_warnings(s.stderr)) <= 1
    assert _outputs(root) == clean_outputs


# ---- read-only locations (a real read-only mount: root ignores chmod) ---------------------------------
def _mount(where: Path, opts: str) -> bool:
    where.mkdir(exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True)
    return mount.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], check=True)


@pytest.mark.parametrize("existing", [False, True])
def test_read_only_store_location_is_bypassed(template, clean_outputs, tmp_path, dagprof, existing):
    mnt = tmp_path / "ro"
    if not _mount(mnt, "size=4m"):
        pytest.skip("cannot mount tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        if existing:
            LMDBStore(mnt / "s", expect=_expect()).close()
            before = _tree_digest(mnt / "s")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        root = tmp_path / "store"
        shutil.copytree(template.root, root)
        _edit(root, template)
        s = dagprof(["build", "--store", "lmdb", "--store-path", str(mnt / "s"), "--", "-Q"], root)
        assert s.returncode == 0 and "Traceback" not in s.stderr, s.stderr
        warnings = _warnings(s.stderr)
        assert len(warnings) == 1 and "building without the store" in warnings[0], s.stderr
        assert _outputs(root) == clean_outputs
        if existing:
            assert _tree_digest(mnt / "s") == before
    finally:
        _umount(mnt)


# ---- full map / full disk while spilling --------------------------------------------------------------
TINY_MAP = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import dagstore.backends as b
    orig = b.LMDBStore.__init__
    def small(self, path, **kw):  # every LMDB environment dagprof opens gets a map that cannot grow
        kw["map_size"] = kw["max_map_size"] = {size}
        orig(self, path, **kw)
    b.LMDBStore.__init__ = small
    from dagprof.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _store_section(path: Path) -> dict:
    return load(path).sections["store"]


@pytest.mark.slow
def test_full_map_while_spilling_keeps_values_and_says_why(template, clean_outputs, tmp_path, scons, dagprof):
    """A map that cannot grow (max_map_size: a tiny option of LMDBStore; the CLI has none) fills mid-build."""
    root = tmp_path / "store"
    shutil.copytree(template.root, root)
    _edit(root, template)
    prof = tmp_path / "b.dagprof"
    code = TINY_MAP.format(root=str(ROOT), size=48 * KiB)
    s = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "build",
            "--store",
            "lmdb",
            "--spill",
            "auto",
            "-o",
            str(prof),
            "--",
            "-Q",
            "--debug=explain",
        ],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert s.returncode == 0 and "Traceback" not in s.stderr, s.stdout + s.stderr
    sec = _store_section(prof)
    assert sec["stopped"] and "full" in sec["stopped"].lower(), sec
    assert sec["spilled_attrs"] > 0
    summary = [ln for ln in s.stderr.splitlines() if ln.startswith("dagstore:")]
    assert summary and "stopped:" in summary[-1] and "full" in summary[-1].lower(), s.stderr
    assert _outputs(root) == clean_outputs
    # nothing the build needed was lost: .sconsign is sound for plain SCons and for the store
    again = scons(["-Q", "--debug=explain"], root)
    assert again.returncode == 0 and explained(again.stdout) == {}, again.stdout
    null = dagprof(["build", "--store", "lmdb", "--", "-Q", "--debug=explain"], root)
    assert null.returncode == 0 and explained(null.stdout) == {}, null.stdout + null.stderr


FILL_HOOK = r"""
# --- test hook (tests/test_reliability_store.py): fill the disk once the store is open ------------------
import os as _os
_FILL = _os.environ.get('RELIABILITY_FILL')
if _FILL:
    _fd = _os.open(_FILL, _os.O_WRONLY | _os.O_CREAT, 0o644)
    for _chunk in (1 << 16, 1 << 12, 1):
        try:
            while True:
                _os.write(_fd, b'\0' * _chunk)
        except OSError:
            pass
    _os.close(_fd)
"""


@pytest.mark.slow
def test_disk_full_while_spilling_keeps_values_and_says_why(
    template, clean_outputs, tmp_path, scons, dagprof, monkeypatch
):
    """A real small tmpfs, filled by the SConstruct right after the store opened: spilling stops, the build is right."""
    mnt = tmp_path / "small"
    if not _mount(mnt, "size=8m"):
        pytest.skip("cannot mount tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        root = tmp_path / "store"
        shutil.copytree(template.root, root)
        with open(root / "SConstruct", "a") as f:
            f.write(FILL_HOOK)
        _edit(root, template)
        prof = tmp_path / "b.dagprof"
        monkeypatch.setenv("RELIABILITY_FILL", str(mnt / "filler"))
        s = dagprof(["build", "--store", "lmdb", "--store-path", str(mnt / "s"), "-o", str(prof), "--", "-Q"], root)
        monkeypatch.delenv("RELIABILITY_FILL")
        assert s.returncode == 0 and "Traceback" not in s.stderr, s.stdout + s.stderr
        sec = _store_section(prof)
        assert sec["stopped"] and ("space" in sec["stopped"] or "full" in sec["stopped"].lower()), sec
        summary = [ln for ln in s.stderr.splitlines() if ln.startswith("dagstore:")]
        assert summary and "stopped:" in summary[-1], s.stderr
        outputs = _outputs(root)
        outputs.pop("SConstruct")
        assert outputs == {k: v for k, v in clean_outputs.items() if k != "SConstruct"}
        again = scons(["-Q", "--debug=explain"], root)
        assert again.returncode == 0 and explained(again.stdout) == {}, again.stdout
    finally:
        _umount(mnt)


def test_store_on_a_full_disk_build_is_correct(template, clean_outputs, tmp_path, dagprof):
    """An existing store on a disk that filled up since: the build is right and says the store stopped."""
    mnt = tmp_path / "full"
    if not _mount(mnt, "size=1m"):
        pytest.skip("cannot mount tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        LMDBStore(mnt / "s", expect=_expect()).close()
        (mnt / "s" / "lock.dagprof").write_text("12345\n")  # a stale pid: taking the lock needs no new block
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        for chunk in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)
        root = tmp_path / "store"
        shutil.copytree(template.root, root)
        _edit(root, template)
        s = dagprof(["build", "--store", "lmdb", "--store-path", str(mnt / "s"), "--", "-Q"], root)
        assert s.returncode == 0 and "Traceback" not in s.stderr, s.stderr
        assert "stopped: StoreFull" in s.stderr or "building without the store" in s.stderr, s.stderr
        assert _outputs(root) == clean_outputs
    finally:
        _umount(mnt)


OPEN_UNDER_FSIZE = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, {root!r})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))  # files cannot grow past this: EFBIG
    from dagstore.backends import open_store
    store, warning = open_store("lmdb", {path!r}, {{"scons": "x"}})
    print("store" if store is not None else "none", warning)
""")


@pytest.mark.parametrize("limit_kib", [20, 24])
def test_open_store_never_raises_when_the_first_commit_fails(tmp_path, limit_kib):
    code = OPEN_UNDER_FSIZE.format(root=str(ROOT), limit=limit_kib * KiB, path=str(tmp_path / "s"))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.startswith("none ") and "building without the store" in p.stdout, p.stdout


# ---- two builds on one store at once --------------------------------------------------------------------
PAUSE_HOOK = r"""
# --- test hook (tests/test_reliability_store.py): hold the build mid-way until the test says go ----------
import os as _os, time as _time
_PAUSE = _os.environ.get('RELIABILITY_PAUSE')
if _PAUSE:
    def _pause(target, source, env):
        open(_os.path.join(_PAUSE, 'ready'), 'w').close()
        deadline = _time.monotonic() + 120
        while not _os.path.exists(_os.path.join(_PAUSE, 'go')) and _time.monotonic() < deadline:
            _time.sleep(0.05)
        open(str(target[0]), 'w').write('paused\n')
    Depends(prog, env.Command('#build/pause.stamp', '#build/lib/libd001.a', _pause))
"""


@pytest.mark.slow
def test_second_build_on_a_busy_store_runs_without_it(template, clean_outputs, tmp_path, dagprof):
    shared = tmp_path / "shared-store"
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        shutil.copytree(template.root, root)
        _edit(root, template)
    with open(first / "SConstruct", "a") as f:
        f.write(PAUSE_HOOK)
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**_env(), "RELIABILITY_PAUSE": str(gate)}
    holder = subprocess.Popen(
        [sys.executable, "-m", "dagprof", "build", "--store", "lmdb", "--store-path", str(shared), "--", "-Q"],
        cwd=first,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (gate / "ready").exists():
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() < deadline, "the first build never reached its pause"
            time.sleep(0.05)
        s = dagprof(["build", "--store", "lmdb", "--store-path", str(shared), "--", "-Q"], second)
        assert s.returncode == 0 and "Traceback" not in s.stderr, s.stderr
        warnings = _warnings(s.stderr)
        assert len(warnings) == 1 and f"pid {holder.pid}" in warnings[0], s.stderr
        assert "building without the store" in warnings[0]
        assert _outputs(second) == clean_outputs
    finally:
        (gate / "go").touch()
        out, err = holder.communicate(timeout=300)
    assert holder.returncode == 0 and _warnings(err) == [], err
    first_outputs = _outputs(first)
    assert first_outputs.pop("build/pause.stamp") == b"paused\n"
    first_outputs.pop("SConstruct")  # carries the pause hook
    assert first_outputs == {k: v for k, v in clean_outputs.items() if k != "SConstruct"}
    # the shared store is intact: a third build uses it without a warning and reuses the first's values
    third = dagprof(
        ["build", "--store", "lmdb", "--store-path", str(shared), "-o", str(tmp_path / "t.dagprof"), "--", "-Q"], first
    )
    assert third.returncode == 0 and _warnings(third.stderr) == [], third.stderr
    assert _store_section(tmp_path / "t.dagprof")["reuse_hits"] > 0
    with LMDBStore(shared, expect=_expect()) as st:
        assert st.get_meta("access_profile")
    assert not list(tmp_path.glob("shared-store.bad-*"))

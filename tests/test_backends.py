"""Store backends: the interface on both stores, and every way an LMDB store can fail to be used."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dagstore.backends import (
    OPEN_MARK,
    LMDBStore,
    MemoryStore,
    Store,
    StoreBusy,
    StoreDamaged,
    StoreError,
    StoreFull,
    StoreMismatch,
    open_store,
    set_aside,
)

ROOT = Path(__file__).resolve().parents[1]
EXPECT = {"scons": "4.11.1", "python": "3.11.7"}
KiB, MiB = 1 << 10, 1 << 20


@pytest.fixture(params=["memory", "lmdb"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else LMDBStore(tmp_path / ".dagstore", expect=EXPECT)
    yield s
    s.close()


def test_both_implement_the_protocol(store) -> None:
    assert isinstance(store, Store)


def test_put_get_delete_len(store) -> None:
    assert len(store) == 0 and store.get(b"a") is None
    written = store.put_many([(b"a", b"1"), (b"b", b"22"), (b"c", b"")])
    assert written == 1 + 1 + 1 + 2 + 1 + 0
    assert (store.get(b"a"), store.get(b"b"), store.get(b"c")) == (b"1", b"22", b"")
    assert len(store) == 3
    store.put_many([(b"a", b"replaced")])
    assert store.get(b"a") == b"replaced" and len(store) == 3
    assert store.delete_many([b"a", b"missing"]) == 1
    assert store.get(b"a") is None and len(store) == 2
    assert store.put_many([]) == 0


def test_items_by_prefix_in_key_order(store) -> None:
    store.put_many((f"n/{i:05d}".encode(), str(i).encode()) for i in range(2500))
    store.put_many([(b"m/x", b"other"), (b"o", b"after")])
    got = list(store.items(b"n/"))
    assert [k for k, _ in got] == [f"n/{i:05d}".encode() for i in range(2500)]
    assert got[1234] == (b"n/01234", b"1234")
    assert len(list(store.items())) == 2502
    assert list(store.items(b"zz")) == []


def test_items_survives_writes_between_chunks(store) -> None:
    store.put_many((f"k{i:05d}".encode(), b"v") for i in range(3000))
    seen = 0
    for i, (k, _) in enumerate(store.items(b"k")):
        if i % 1000 == 999:
            store.put_many([(b"z" + k, b"w")])
        seen += 1
    assert seen == 3000


def test_bad_keys_and_values_write_nothing(store) -> None:
    for batch in (
        [(b"ok", b"1"), ("str", b"1")],
        [(b"ok", b"1"), (b"k", bytearray(b"1"))],
        [(b"ok", b"1"), (b"", b"1")],
    ):
        with pytest.raises(TypeError):
            store.put_many(batch)
    assert len(store) == 0


def test_meta_is_plain_data(store) -> None:
    assert store.get_meta("access_profile") is None
    profile = {"File._memo": {"reads": 3, "phases": ["evaluate/build"]}, 1: [b"x", None, 2.5]}
    store.set_meta("access_profile", profile)
    assert store.get_meta("access_profile") == profile
    with pytest.raises(TypeError, match="plain msgpack"):
        store.set_meta("bad", object())
    assert len(store) == 0  # meta records are not values


def test_stats_shape(store) -> None:
    store.put_many([(b"k", b"v" * 100)])
    store.get(b"k")
    st = store.stats()
    for key in (
        "backend",
        "entries",
        "map_size",
        "used_bytes",
        "file_bytes",
        "puts",
        "gets",
        "bytes_written",
        "bytes_read",
    ):
        assert key in st
    assert st["entries"] == 1 and st["puts"] == 1 and st["gets"] == 1 and st["bytes_read"] == 100


def test_memory_store_limit_is_all_or_nothing() -> None:
    s = MemoryStore(limit_bytes=1000)
    s.put_many([(b"a", b"x" * 500)])
    with pytest.raises(StoreFull):
        s.put_many([(b"b", b"x" * 300), (b"c", b"x" * 300)])
    assert len(s) == 1 and s.get(b"b") is None


# ---- LMDB only -----------------------------------------------------------------------------------
def test_lmdb_persists_across_reopen(tmp_path) -> None:
    path = tmp_path / ".dagstore"
    with LMDBStore(path, expect=EXPECT) as s:
        s.put_many([(b"k1", b"v1"), (b"k2", b"v2")])
        s.set_meta("access_profile", {"rows": [["File", "_memo", 7]]})
        created = s.header["created"]
    with LMDBStore(path, expect=EXPECT) as s:
        assert s.get(b"k1") == b"v1" and len(s) == 2
        assert s.get_meta("access_profile") == {"rows": [["File", "_memo", 7]]}
        assert s.header == {"schema": 1, "created": created, "versions": EXPECT}
        assert s.get_meta(OPEN_MARK)["pid"] == os.getpid()
    with LMDBStore(path) as s:  # no expectations: any writer versions are accepted
        assert len(s) == 2


def test_a_closed_lmdb_store_says_so(tmp_path) -> None:
    """Use after close() is the store's own error (callers stop spilling on StoreError), not a crash on None."""
    s = LMDBStore(tmp_path / ".dagstore", expect=EXPECT)
    s.put_many([(b"k", b"v")])
    s.close()
    for use in (
        lambda: s.get(b"k"),
        lambda: s.put_many([(b"k2", b"v")]),
        lambda: len(s),
        lambda: s.stats(),
        lambda: list(s.items()),
        lambda: s.get_meta("x"),
    ):
        with pytest.raises(StoreError, match="is closed"):
            use()


def test_lmdb_map_grows_when_full(tmp_path) -> None:
    with LMDBStore(tmp_path / "s", map_size=64 * KiB, max_map_size=1 << 30) as s:
        value = os.urandom(10 * KiB)
        for batch in range(10):
            s.put_many((f"{batch}/{i}".encode(), value) for i in range(100))
        st = s.stats()
        assert st["entries"] == 1000 and st["map_grows"] >= 8 and st["map_size"] >= 10 * MiB
        assert s.get(b"7/42") == value


def test_lmdb_store_full_writes_nothing_and_stays_usable(tmp_path) -> None:
    with LMDBStore(tmp_path / "s", map_size=64 * KiB, max_map_size=1 * MiB) as s:
        s.put_many([(b"small", b"x" * 100)])
        with pytest.raises(StoreFull, match="full") as info:
            s.put_many((f"big{i}".encode(), os.urandom(4 * KiB)) for i in range(512))  # 2 MiB
        assert "full" in str(info.value)
        # nothing of the failed batch is in the store (its items read back as absent), the rest is intact
        assert len(s) == 1 and s.get(b"small") == b"x" * 100
        assert all(s.get(f"big{i}".encode()) is None for i in range(512))
        s.put_many([(b"after", b"y")])  # a smaller batch still fits
        assert len(s) == 2


def test_lmdb_disk_full_raises_store_full(tmp_path) -> None:
    """A real 1 MiB tmpfs: LMDB's failed commit is StoreFull, the batch is absent, reads still work."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN) to fill a disk")
    try:
        with LMDBStore(mnt / "s", map_size=64 * MiB) as s:
            s.put_many([(b"first", b"1")])
            with pytest.raises(StoreFull, match="bytes free"):
                s.put_many((f"k{i}".encode(), b"x" * 1000) for i in range(3000))
            assert len(s) == 1 and s.get(b"first") == b"1" and s.get(b"k0") is None
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_lmdb_long_keys(tmp_path) -> None:
    with LMDBStore(tmp_path / "s") as s:
        long_a, long_b = b"a" * 600 + b"1", b"a" * 600 + b"2"
        s.put_many([(long_a, b"A"), (long_b, b"B")])
        assert (s.get(long_a), s.get(long_b), len(s)) == (b"A", b"B", 2)
        assert s.delete_many([long_a]) == 1 and s.get(long_a) is None


def test_schema_mismatch(tmp_path) -> None:
    path = tmp_path / "s"
    LMDBStore(path, schema=1).close()
    with pytest.raises(StoreMismatch, match="schema 1, this dagstore uses 2"):
        LMDBStore(path, schema=2)


def test_version_mismatch(tmp_path) -> None:
    path = tmp_path / "s"
    LMDBStore(path, expect=EXPECT).close()
    with pytest.raises(StoreMismatch, match="written with scons 4.11.1, this is scons 4.12.0"):
        LMDBStore(path, expect={**EXPECT, "scons": "4.12.0"})
    with pytest.raises(StoreMismatch, match="written with pypy None, this is pypy 7.3"):
        LMDBStore(path, expect={"pypy": "7.3"})


def _written_store(path: Path, n: int = 2000) -> None:
    with LMDBStore(path, expect=EXPECT) as s:
        s.put_many((f"k{i:06d}".encode(), os.urandom(200)) for i in range(n))


def test_garbage_data_file_is_damaged(tmp_path) -> None:
    path = tmp_path / "s"
    _written_store(path)
    (path / "data.mdb").write_bytes(os.urandom(64 * KiB))
    with pytest.raises(StoreDamaged, match="damaged"):
        LMDBStore(path, expect=EXPECT)


@pytest.mark.parametrize("keep", [0.5, 0.1, 0])
def test_truncated_data_file_is_damaged(tmp_path, keep: float) -> None:
    path = tmp_path / "s"
    _written_store(path)
    data = path / "data.mdb"
    size = data.stat().st_size
    os.truncate(data, int(size * keep))
    with pytest.raises(StoreDamaged, match="truncated|damaged|no header"):
        LMDBStore(path, expect=EXPECT)


def test_store_path_that_is_a_file_is_damaged(tmp_path) -> None:
    (tmp_path / "s").write_bytes(b"not a directory")
    with pytest.raises(StoreDamaged, match="not a directory"):
        LMDBStore(tmp_path / "s")


def test_set_aside_renames_and_keeps_the_bytes(tmp_path) -> None:
    path = tmp_path / ".dagstore"
    _written_store(path)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    moved = set_aside(path)
    assert not path.exists() and Path(moved).name.startswith(".dagstore.bad-")
    assert {p.name: p.read_bytes() for p in Path(moved).iterdir()} == before
    path.mkdir()
    moved2 = set_aside(path)  # same second: a distinct name, nothing overwritten
    assert moved2 != moved and Path(moved).exists()


def test_open_store_sets_aside_a_damaged_store_and_starts_fresh(tmp_path) -> None:
    path = tmp_path / ".dagstore"
    _written_store(path)
    (path / "data.mdb").write_bytes(b"garbage" * 1000)
    store, warning = open_store("lmdb", path, EXPECT)
    try:
        assert isinstance(store, LMDBStore) and len(store) == 0
        assert warning.startswith("dagstore: ") and "set aside as" in warning and "\n" not in warning
        bad = [p for p in tmp_path.iterdir() if p.name.startswith(".dagstore.bad-")]
        assert len(bad) == 1 and (bad[0] / "data.mdb").read_bytes() == b"garbage" * 1000
    finally:
        store.close()


def test_open_store_sets_aside_a_mismatched_store(tmp_path) -> None:
    path = tmp_path / ".dagstore"
    _written_store(path)
    store, warning = open_store("lmdb", path, {**EXPECT, "python": "3.12.0"})
    try:
        assert len(store) == 0 and "written with python 3.11.7, this is python 3.12.0" in warning
        assert store.header["versions"]["python"] == "3.12.0"
    finally:
        store.close()


def test_open_store_bypasses_when_the_directory_cannot_be_created(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    store, warning = open_store("lmdb", tmp_path / "file" / ".dagstore", EXPECT)
    assert store is None and "building without the store" in warning and "\n" not in warning


def test_open_store_bypasses_a_read_only_filesystem(tmp_path) -> None:
    """A real read-only mount (what chmod cannot give root): EROFS means build without the store."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        store, warning = open_store("lmdb", ro / ".dagstore", EXPECT)
        assert store is None and "Read-only file system" in warning and "building without the store" in warning
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_open_store_bypasses_a_read_only_directory(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        probe = ro / "probe"
        try:
            probe.mkdir()
            probe.rmdir()
            pytest.skip("running as root: chmod does not stop writes (covered by the parent-is-a-file test)")
        except PermissionError:
            pass
        store, warning = open_store("lmdb", ro / ".dagstore", EXPECT)
        assert store is None and "Permission denied" in warning
    finally:
        ro.chmod(0o755)


def test_open_store_kinds(tmp_path) -> None:
    assert open_store("none", tmp_path) == (None, None)
    s, w = open_store("memory", None)
    assert isinstance(s, MemoryStore) and w is None
    with pytest.raises(ValueError, match="unknown store kind"):
        open_store("redis", tmp_path)


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from dagstore.backends import LMDBStore
    s = LMDBStore({path!r})
    s.put_many([(b"from-holder", b"1")])
    print("ready", flush=True)
    {then}
""")


def _holder(path: Path, then: str) -> subprocess.Popen:
    code = HOLDER.format(root=str(ROOT), path=str(path), then=then)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_second_process_gets_store_busy(tmp_path) -> None:
    path = tmp_path / ".dagstore"
    p = _holder(path, "time.sleep(60)")
    try:
        with pytest.raises(StoreBusy, match=f"in use by pid {p.pid}"):
            LMDBStore(path)
        store, warning = open_store("lmdb", path, None)
        assert store is None and f"in use by pid {p.pid}" in warning
        assert path.exists() and not list(tmp_path.glob("*.bad-*"))  # a busy store is never set aside
    finally:
        p.kill()
        p.wait()


def test_waiting_for_the_lock_succeeds_when_the_holder_exits(tmp_path) -> None:
    path = tmp_path / ".dagstore"
    p = _holder(path, "time.sleep(0.5); s.close()")
    try:
        with LMDBStore(path, lock_timeout=30) as s:
            assert s.get(b"from-holder") == b"1"
    finally:
        p.wait()


def test_kill_9_keeps_committed_batches_and_releases_the_lock(tmp_path) -> None:
    path = tmp_path / ".dagstore"
    p = _holder(path, "time.sleep(60)")
    p.send_signal(signal.SIGKILL)
    p.wait()
    with LMDBStore(path) as s:  # same boot: the leftover open mark is not damage
        assert s.get(b"from-holder") == b"1"


def test_store_left_open_across_a_reboot_is_damaged(tmp_path) -> None:
    """A store still marked open under another boot id may have lost unsynced pages: set it aside."""
    path = tmp_path / ".dagstore"
    p = _holder(path, "s.set_meta('open_by', {'pid': 1, 'boot_id': 'some-earlier-boot'}); import os; os._exit(0)")
    p.wait()
    with pytest.raises(StoreDamaged, match="when the system went down"):
        LMDBStore(path)
    with LMDBStore(path, sync=True) as s:  # durable commits: the mark does not matter
        assert s.get(b"from-holder") == b"1"


def test_reads_see_each_write_and_survive_map_growth(tmp_path) -> None:
    """get() keeps a shared read transaction; every write must end it (new data visible, map resizable)."""
    with LMDBStore(tmp_path / "s", map_size=64 * KiB) as s:
        for i in range(300):
            s.put_many([(f"k{i}".encode(), os.urandom(2 * KiB))])
            assert s.get(f"k{i}".encode()) is not None and s.get(b"k0") is not None
        s.delete_many([b"k5"])
        assert s.get(b"k5") is None
        assert s.stats()["map_grows"] >= 3


def test_concurrent_reloads_from_threads(tmp_path) -> None:
    import concurrent.futures

    with LMDBStore(tmp_path / "s") as s:
        s.put_many((f"k{i}".encode(), str(i).encode()) for i in range(5000))

        def read(i: int) -> bytes:
            if i % 500 == 0:
                s.put_many([(f"w{i}".encode(), b"w")])
            return s.get(f"k{i}".encode())

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            got = list(ex.map(read, range(5000)))
        assert got == [str(i).encode() for i in range(5000)]


def test_damaged_or_missing_lock_files_are_not_fatal(tmp_path) -> None:
    """lock.mdb and lock.dagprof hold no data: garbage or absence must not cost the store."""
    path = tmp_path / "s"
    with LMDBStore(path) as s:
        s.put_many([(b"a", b"1")])
    (path / "lock.mdb").write_bytes(os.urandom(8192))
    (path / "lock.dagprof").write_bytes(b"garbage\n")
    with LMDBStore(path) as s:
        assert s.get(b"a") == b"1"
    (path / "lock.mdb").unlink()
    (path / "lock.dagprof").unlink()
    with LMDBStore(path) as s:
        assert s.get(b"a") == b"1"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="release_pages is Linux only")
def test_madvise_paths_drop_pages_and_report_a_bad_range() -> None:
    """release_pages() calls madvise through the C extension, or ctypes without it (DAGPROF_NO_C): both give 0 for
    a mapped range (its pages read back as zeros: dropped) and a failure for an unaligned address."""
    import ctypes
    import mmap

    from dagstore import _fastguard
    from dagstore.backends import _ctypes_madvise

    for madvise in (_fastguard.madvise, _ctypes_madvise()):
        m = mmap.mmap(-1, 4 * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m[:4] = b"data"
        buf = ctypes.c_char.from_buffer(m)
        addr = ctypes.addressof(buf)
        assert madvise(addr, 4 * mmap.PAGESIZE, 4) == 0  # MADV_DONTNEED
        assert m[:4] == b"\0\0\0\0"
        assert madvise(addr + 1, mmap.PAGESIZE, 4) != 0  # EINVAL
        del buf
        m.close()

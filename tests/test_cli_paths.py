"""Command-line paths the other tests do not take: compare from a clean tree, --store-wait against a
store another process holds, and the memo eviction the store does at safe points."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import _env

from dagprof.synthetic import generate

pytestmark = pytest.mark.slow


def test_compare_full_state_builds_from_clean(tmp_path, dagprof):
    info = generate(tmp_path / "p", files=20, files_per_dir=10, seed=4)
    p = dagprof(["compare", "--runs", "1", "--state", "full", "--no-sizes", "--json", "--", "-Q"], cwd=info.root)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["state"] == "full" and set(data["variants"]) >= {"plain", "store"}
    for name in ("plain", "store"):
        assert data["variants"][name]["wall_s"][0] > 0
    assert "dagcache" not in data["variants"]  # full builds: nothing for the cache to answer


def test_store_wait_then_build_without_the_busy_store(tmp_path, dagprof, scons):
    info = generate(tmp_path / "p", files=10, files_per_dir=10, seed=6)
    root = info.root
    store = root / ".dagstore"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from dagstore.backends import LMDBStore; "
            f"s = LMDBStore({str(store)!r}); print('held', flush=True); time.sleep(30)",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        p = dagprof(["build", "--store", "lmdb", "--store-wait", "1.5", "--", "-Q"], cwd=root)
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert p.returncode == 0, p.stderr
    assert waited >= 1.5  # it did wait for the holder before giving up on the store
    assert "in use" in p.stderr and "without the store" in p.stderr
    plain = generate(tmp_path / "q", files=10, files_per_dir=10, seed=6).root
    s = scons(["-Q"], plain)
    assert p.stdout.replace(str(root), "R") == s.stdout.replace(str(plain), "R")  # the build itself is unchanged


def test_memo_entries_are_evicted_at_safe_points_and_the_build_stays_right(tmp_path, dagprof):
    info = generate(tmp_path / "p", files=30, files_per_dir=10, seed=8)
    out = tmp_path / "b.dagprof"
    p = dagprof(["build", "--store", "lmdb", "-o", str(out), "--", "-Q"], cwd=info.root)
    assert p.returncode == 0, p.stderr
    from dagprof.profile import load

    st = load(out).sections["store"]
    assert st["memo_evicted"] > 30  # stat/_save_str/... of finished nodes dropped
    # a null build after it (SCons recomputes what was evicted) finds everything up to date
    p = dagprof(["build", "--store", "lmdb", "--dag-cache", "off", "--", "-Q"], cwd=info.root)
    assert p.returncode == 0 and "up to date" in p.stdout and "stubcc" not in p.stdout

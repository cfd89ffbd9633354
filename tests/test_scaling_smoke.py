"""bench/scaling.py on tiny sizes: it runs end to end; its tables have every system (and the edit build)."""

import json
import os
import re
import subprocess
import sys

from conftest import IMPORT_PATH, ROOT


def test_scaling_smoke(tmp_path):
    env = dict(os.environ, PYTHONPATH=IMPORT_PATH)
    env.pop("SCONSFLAGS", None)
    out_json, png = tmp_path / "s.json", tmp_path / "s.png"
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scaling.py"),
            "--sizes",
            "60,120",
            "--runs",
            "1",
            "--dir",
            str(tmp_path / "proj"),
            "--json",
            str(out_json),
            "--plot",
            str(png),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "stand-in" in p.stdout and "machine:" in p.stdout and "command:" in p.stdout
    rows = [ln for ln in p.stdout.splitlines() if re.match(r"\s*(60|120)\s+\d+\s+(make|scons)", ln)]
    systems = {re.split(r"\s{2,}", r.strip())[2] for r in rows}
    assert systems == {"make", "scons", "scons+store (1st)", "scons+store (2nd)", "scons+dagcache"}
    for r in rows:
        assert re.search(r"\d+\.\d MiB\s+\d+\.\d\dx\s+[\d,]+\s+\d+\.\d+$", r), r
    data = json.loads(out_json.read_text())
    assert [r["files"] for r in data["results"]] == [60, 120]
    for res in data["results"]:
        assert res["nodes"] > res["files"]
        for name in ("make", "scons", "scons+store (1st)", "scons+store (2nd)", "scons+dagcache"):
            assert res["systems"][name]["peak_rss"] > 0
        for key in ("edit", "edit_fresh"):  # the same file every run, and a file not edited before
            assert set(res[key]) == {"scons", "dagprof build"}
            assert all(e["peak_rss"] > 0 and e["wall_s"] > 0 for e in res[key].values())
        assert res["systems"]["scons"]["peak_rss"] > res["systems"]["make"]["peak_rss"]  # Python vs C: not timing
    assert "# one-file edit" in p.stdout and "# DAG-cache null build" in p.stdout
    assert "dagprof build (same file)" in p.stdout and "dagprof build (another file)" in p.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any((tmp_path / "proj").iterdir())  # projects removed unless --keep


def test_scaling_bad_sizes_exit_2(tmp_path):
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scaling.py"), "--sizes", "ten"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "--sizes" in p.stderr and "Traceback" not in p.stderr


def _bench(tmp_path, script, *args, timeout=600):
    env = dict(os.environ, PYTHONPATH=IMPORT_PATH)
    env.pop("SCONSFLAGS", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *map(str, args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_edit_bench_smoke(tmp_path):
    """bench/edit.py: plain SCons and each named `dagprof build` variant, every one a real edit build, a row each."""
    proj = tmp_path / "proj"
    variants = ("store=--store lmdb --dag-cache off", "none=--store lmdb --dag-cache off --spill none")
    p = _bench(tmp_path, "edit.py", "--files", 40, "--runs", 1, "--dir", proj, *variants)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "machine:" in p.stdout and f"command: python bench/edit.py --files 40 --runs 1 --dir {proj} " in p.stdout
    assert "a project of 41 C sources" in p.stdout  # the 40 generated files and the program's main.c
    rows = {ln.split()[0]: ln for ln in p.stdout.splitlines() if re.match(r"\s*(plain|store|none)\s+\d", ln)}
    assert set(rows) == {"plain", "store", "none"}
    assert re.search(r"1\.000x\s+1\.000x\s+[\d.]+ MiB\s+1\.000x", rows["plain"])
    assert (proj / ".dagstore-store" / "data.mdb").exists() and (proj / ".dagstore-none" / "data.mdb").exists()
    bad = _bench(tmp_path, "edit.py", "--dir", proj, "--runs", 1, "oops")
    assert bad.returncode == 2 and "NAME='OPTIONS'" in bad.stderr

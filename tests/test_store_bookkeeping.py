"""The store's own memory: bounded bookkeeping, reported in the profile's store section."""

from __future__ import annotations

from dagprof.profile import load
from dagprof.synthetic import generate


def test_own_memory_is_reported_and_plausible(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=40, files_per_dir=10, seed=12)
    root = proj.root
    for name in ("b1.dagprof", "b2.dagprof"):  # b2: include lists reused from b1's store
        if name == "b2.dagprof":
            proj.edit_header(0)
        # an explicit list that spills (auto's built-in defaults find nothing above the size floor here)
        p = dagprof(
            ["build", "--spill", "File.implicit,File.implicit_set,File.includes", "-o", name, "--sizes", "--", "-Q"],
            root,
            check=True,
        )
        assert "own memory" not in p.stderr
    prof = load(str(root / "b2.dagprof"))
    st = prof.sections["store"]
    own = st["own_memory"]
    nodes = sum(int(c.get("count") or 0) for c in prof.sections["sizes"]["classes"].values())
    assert st["reuse_hits"] > 0 and st["spilled_attrs"] > 0
    # targets reached their safe point: their reuse bookkeeping is gone; what is left are the scanned
    # sources (never "done"), bounded by reuse_memory (tests/test_spill.py)
    sources = len(proj.files) + len(proj.headers)
    assert own["tried_reuse"] <= sources and own["reused_values"] <= sources
    assert 0 < own["node_refs"] <= nodes  # at most one entry per node a spilled value refers to
    assert own["bytes"] == (
        own["pending_bytes"] + own["reuse_bytes"] + own["node_refs_bytes"] + own["stats_bytes"] + own["cache_bytes"]
    )
    assert 1_000 < own["bytes"] < 2_000_000  # a few hundred bytes per node at most, on ~150 nodes
    assert own["bytes"] < prof.meta["peak_rss"] / 20


def test_the_report_shows_it(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=10, files_per_dir=10, seed=13)
    dagprof(["build", "-o", "b.dagprof", "--", "-Q"], proj.root, check=True)
    r = dagprof(["report", "b.dagprof"], proj.root, check=True)
    assert "store's own memory" in r.stdout


SCRIPT = """
import json, os, sys
os.chdir(sys.argv[1])
from dagprof.builds import scons as adapter
hooks = adapter.StoreHooks(kind="memory", spill="File.binfo,File.implicit")
prof = adapter.profile_build(["-Q"], extra_hooks=[hooks])
print(json.dumps([prof.meta["exit_code"], prof.sections["store"]["spilled_attrs"],
                  prof.sections["store"]["own_memory"]["node_refs"], len(hooks.spiller.codec.node_refs)]))
"""


def test_in_process_close_forgets_node_references(tmp_path):
    """After an in-process build (its own interpreter: SCons keeps global state) the codec holds no node."""
    import json
    import subprocess
    import sys

    from conftest import _env

    proj = generate(tmp_path / "p", files=10, files_per_dir=10, seed=14)
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(proj.root)], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    code, spilled, refs_at_end, refs_after_close = json.loads(p.stdout.strip().splitlines()[-1])
    assert code == 0 and spilled > 0
    assert refs_at_end > 0 and refs_after_close == 0

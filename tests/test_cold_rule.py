"""One rule for "cold": the report's recommended --spill list is what --spill auto picks on the same profile."""

from __future__ import annotations

import json

from dagprof.analyze import spill_candidates
from dagprof.profile import load
from dagprof.synthetic import generate


def test_report_recommends_what_spill_auto_then_picks(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=7)
    root = proj.root
    # build 1: no profile in the store yet, so it counts accesses and keeps them (and its spills' reloads)
    dagprof(["build", "--store", "lmdb", "--dag-cache", "off", "-o", "b1.dagprof", "--", "-Q"], root, check=True)
    first = load(str(root / "b1.dagprof"))
    advised = spill_candidates(first)
    rep = dagprof(["report", "b1.dagprof", "--json"], root, check=True)
    summary = [f for f in json.loads(rep.stdout)["findings"] if f["kind"] == "spill_candidate" and f["attr"] is None]
    assert [f["spill"] for f in summary] == [",".join(advised)]
    # build 2: --spill auto decides from build 1's access table and reload rates
    proj.edit_header(0)
    dagprof(["build", "--store", "lmdb", "--dag-cache", "off", "-o", "b2.dagprof", "--", "-Q"], root, check=True)
    plan = load(str(root / "b2.dagprof")).sections["store"]["plan"]
    assert plan["source"].startswith("auto: previous build's access profile"), plan
    assert plan["spill"] == ",".join(advised)
    assert advised  # a real build has cold attributes (the test would be empty otherwise)


def test_policy_and_analyze_share_the_function():
    import inspect

    from dagprof import analyze
    from dagstore import policy

    assert "cold_attributes" in inspect.getsource(analyze.spill_plan)
    assert "cold_attributes" in inspect.getsource(policy.choose)

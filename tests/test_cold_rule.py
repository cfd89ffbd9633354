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


def test_the_report_weighs_the_latency_the_store_records():
    """The cost model's per-value latency: the profile's store section must give the report exactly what the
    store records for the next `--spill auto` (meta "store_latency"). The section's times are rounded to
    0.1 ms for reading, which on a small build moved the report's verdict on File.implicit_set away from
    the plan's; the section carries the unrounded per-value figures."""
    from dagstore.backends import MemoryStore
    from dagstore.codec import Codec
    from dagstore.policy import latency, latency_of_section
    from dagstore.spill import Spiller

    sp = Spiller(MemoryStore(), Codec())
    st = sp.stats
    st.spill_time_s, st.spilled_attrs, st.reload_time_s, st.reloads = 0.00123456, 61, 0.00004321, 3
    recorded = latency(st.spill_time_s, st.spilled_attrs, st.reload_time_s, st.reloads)  # what StoreHooks stores
    assert latency_of_section(sp.section("memory", None)) == recorded
    assert recorded["spill_us"] != latency(round(st.spill_time_s, 4), st.spilled_attrs)["spill_us"]  # rounding mattered

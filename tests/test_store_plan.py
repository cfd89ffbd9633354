"""Issue 13: the plan is shown and followed, `none` spills nothing, the cost model keeps re-read attributes in
memory, and the advice never tells to stop storing what SCons' own code reads."""

from __future__ import annotations

from dagprof.analyze import analyze, spill_plan
from dagprof.profile import AccessRow, Profile, load
from dagprof.synthetic import generate
from dagstore.policy import (
    Candidates,
    choose,
    cold_attributes,
    exchange_rate,
    latency,
    latency_of_section,
    next_history,
    next_latency,
    plan_line,
    reuse_cost,
    reuse_verdict,
    robust_total,
    spill_verdict,
)


def _build(dagprof, root, spill, out, *extra):
    return dagprof(
        [
            "build",
            "--store",
            "lmdb",
            "--dag-cache",
            "off",
            "--summary",
            "--spill",
            spill,
            "-o",
            out,
            *extra,
            "--",
            "-Q",
        ],
        root,
        check=True,
    )


def test_spill_none_spills_nothing_and_still_reuses(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=3)
    root = proj.root
    for out in ("n1.dagprof", "n2.dagprof"):
        p = _build(dagprof, root, "none", out)
        st = load(str(root / out)).sections["store"]
        assert st["spilled_attrs"] == 0 and st["spilled_bytes"] == 0 and st["reloads"] == 0
        assert all(v["spilled"] == 0 for v in st["per_attr"].values())
        assert st["plan"]["spill"] == "" and "spill plan (none): nothing spilled" in p.stderr
    # the include names were recorded (not spilled) by the first build and reused by the second
    assert st["reuse_hits"] >= len(proj.files)


def test_plan_attribute_with_values_is_spilled_or_explained(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=5)
    root = proj.root
    plan_attrs = "File.implicit_set,File.implicit,File.contentsig,File.binfo"
    p = _build(dagprof, root, plan_attrs, "e.dagprof")
    st = load(str(root / "e.dagprof")).sections["store"]
    line = st["plan"]["line"]
    assert line in p.stderr and line.startswith("dagstore: spill plan (explicit --spill)")
    for label in plan_attrs.split(","):
        a = st["per_attr"].get(label) or {}
        accounted = a.get("spilled", 0) + a.get("small", 0) + a.get("refused", 0) + a.get("collapsed", 0)
        if accounted:  # it held values at safe points: each was spilled or counted with its reason
            assert label + " [" in line
            assert a.get("spilled", 0) > 0 or "too small" in line or "refused" in line
        else:
            assert "held no value at any safe point" in line and label in line
    assert st["per_attr"]["File.implicit_set"]["spilled"] > 0
    assert "File.binfo [explicit; shared with .sconsign" in line
    # contentsig: its values encode under the store's minimum size; the line says so rather than nothing
    cs = st["per_attr"].get("File.contentsig") or {}
    if cs.get("small"):
        assert "File.contentsig [explicit]: 0 spilled" in line and "too small" in line


def _cands():
    return Candidates(
        spill={"File": ("includes", "implicit_set", "implicit")},
        collapse={},
        reuse={},
        default_cold={},
        all_attrs={"File": ("includes", "implicit_set", "implicit")},
        late_phases=("evaluate/build",),
    )


def test_attribute_reloaded_on_most_nodes_is_not_chosen_by_auto():
    rows = [AccessRow("File", a, "evaluate/build", 10, 100, 0) for a in ("includes", "implicit_set", "implicit")]
    # issue 13's project: 39,583 include lists spilled, 34,167 reloaded (86%); implicit_set rarely reloaded
    history = {
        "File.includes": [39583, 34167, 39583 * 280, 0],
        "File.implicit_set": [7341, 50, 7341 * 200, 0],
        "File.implicit": [7341, 40, 7341 * 30, 0],
    }
    lat = {"spill_us": 20.0, "reload_us": 10.0}
    plan = choose("auto", _cands(), rows, history, lat=lat)
    assert "includes" not in plan.spill["File"]
    assert "reloaded 86%" in plan.dropped["File.includes"]
    assert "implicit_set" in plan.spill["File"] and plan.why["File.implicit_set"].startswith("measured cold")
    # a rarely reloaded attribute that frees less than it costs (30 B/value for 20 us) is not spilled either
    assert "implicit" not in plan.spill["File"] and "frees" in plan.dropped["File.implicit"]
    assert spill_verdict(100, 90, 100 * 10_000, lat)[0] is False  # reloaded on most nodes, however big
    # the report follows the same rule on a profile carrying that history
    prof = Profile(
        meta={"spillable": {"File": ["includes", "implicit_set", "implicit"]}, "late_phases": ["evaluate/build"]},
        phases=[],
        access=rows,
        sections={
            "store": {
                "spill_time_s": 0.2,
                "spilled_attrs": 10000,
                "reload_time_s": 0.1,
                "reloads": 10000,
                "per_attr": {k: {"spilled": v[0], "reloads": v[1], "bytes": v[2]} for k, v in history.items()},
            }
        },
    )
    assert spill_plan(prof) == {"File": ("implicit_set",)}
    assert cold_attributes(rows, _cands().spill, ("evaluate/build",), history, lat=lat) == plan.spill
    assert "not spilled: File.implicit" in plan_line(plan.as_dict(), {})


def test_a_spill_must_free_the_share_of_peak_memory_it_costs_in_time():
    """The exchange rate is the last build's peak RSS over its wall time: a value freeing 110 encoded bytes for
    27 us (4 B/us) is worth spilling in a build of 100 MiB over 60 s (1.7 B/us: the floor of 2 applies), not in
    one of 44 MiB over 1.3 s (35 B/us), where it would cost 2% of the time to free under 1% of the memory."""
    slow = latency(0.027, 1000, 0, 0, 60.0, 100 << 20)
    fast = latency(0.027, 1000, 0, 0, 1.3, 44 << 20)
    assert exchange_rate(slow) == 2.0 and exchange_rate(None) == 2.0
    assert round(exchange_rate(fast)) == 35
    assert spill_verdict(1000, 0, 1000 * 110, slow)[0] is True
    ok, why = spill_verdict(1000, 0, 1000 * 110, fast)
    assert ok is False and "frees 110 B/value for 27 us, under 35 B/us" in why
    assert spill_verdict(1000, 0, 1000 * 110, latency(0.027, 1000))[0] is True  # figures unknown: floor
    # the store's meta record and the profile's store section carry the rate to the plan and to the report alike
    assert latency_of_section(fast) == fast and latency_of_section({"spill_us": 27.0}).get("build_bytes_per_us") is None


def test_small_build_stops_spilling_what_costs_more_time_than_it_frees(tmp_path, dagprof):
    """A real 30-file build: the first one spills the built-in defaults; their measured cost, weighed at that
    build's rate (a small build's peak over its short wall time), drops them from the next plan, which says so."""
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=5)
    root = proj.root
    _build(dagprof, root, "auto", "a1.dagprof")
    first = load(str(root / "a1.dagprof"))
    st1 = first.sections["store"]
    assert st1["per_attr"]["File.implicit_set"]["spilled"] > 0
    rate = st1["build_bytes_per_us"]
    assert rate > 20  # tens of MiB over well under a few seconds
    proj.edit_header(0)
    p = _build(dagprof, root, "auto", "a2.dagprof")
    plan = load(str(root / "a2.dagprof")).sections["store"]["plan"]
    assert "File.implicit_set" not in plan["spill"].split(",")
    assert f"under {rate:.0f} B/us" in plan["dropped"]["File.implicit_set"]
    assert f"under {rate:.0f} B/us" in p.stderr  # the --summary plan line
    assert spill_plan(first) == {c: tuple(a) for c, a in _plan_spill(plan["spill"]).items()}  # the report agrees
    # it stays out: the next build, which spilled nothing of it, keeps the figures that left it out (before, the
    # history held only what a build met, and every other build spilled it again)
    second = load(str(root / "a2.dagprof")).sections["store"]
    assert second["spill_history"]["File.implicit_set"] == st1["spill_history"]["File.implicit_set"]
    proj.edit_header(1)
    _build(dagprof, root, "auto", "a3.dagprof")
    plan3 = load(str(root / "a3.dagprof")).sections["store"]["plan"]
    assert "File.implicit_set" not in plan3["spill"].split(",") and "B/us" in plan3["dropped"]["File.implicit_set"]


def test_history_and_latency_carry_what_a_build_did_not_measure():
    old = {"File.implicit_set": [1000, 0, 171_000, 21], "File.contentsig": [0, 0, 0, 2126]}
    per = {"File.implicit": {"spilled": 10, "reloads": 1, "bytes": 900, "small": 2}, "File.depends": {"collapsed": 5}}
    assert next_history(old, per) == {**old, "File.implicit": [10, 1, 900, 2]}
    assert next_history(None, {}) == {}
    measured = latency(0.0, 0, 0.0, 0, 2.0, 100 << 20)  # nothing spilled or reloaded: only the rate is new
    carried = next_latency({"spill_us": 24.0, "reload_us": 7.0, "build_bytes_per_us": 30.0}, measured, 0, 0)
    assert carried == {"spill_us": 24.0, "reload_us": 7.0, "build_bytes_per_us": (100 << 20) / 2e6}
    fresh = next_latency(None, latency(0.003, 100, 0.0, 0, 2.0, 100 << 20), 100, 0)
    assert fresh["spill_us"] == 30.0 and fresh["reload_us"] == 10.0  # measured; the default where not


def _plan_spill(spec: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in filter(None, spec.split(",")):
        cls, _, attr = label.partition(".")
        out.setdefault(cls, []).append(attr)
    return out


def test_includes_kept_for_reuse_not_chosen_by_auto(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=9)
    root = proj.root
    _build(dagprof, root, "auto", "a1.dagprof")
    p = _build(dagprof, root, "auto", "a2.dagprof")
    st = load(str(root / "a2.dagprof")).sections["store"]
    assert "includes" not in st["plan"]["spill"]
    assert (st["per_attr"].get("File.includes") or {}).get("spilled", 0) == 0
    assert st["reuse_hits"] >= len(proj.files) and "File.includes kept in memory" in p.stderr
    # the report prints the plan's reasons as they are: [brackets] are text, not markup
    rep = dagprof(["report", "a2.dagprof"], root, check=True)
    assert "File.includes [re-read by the scanners: kept for reuse]" in " ".join(rep.stdout.split())


def test_waiting_s_e_advice_never_says_stop_storing_it():
    rows = [
        AccessRow("File", "waiting_s_e", "evaluate/build", 0, 5000, 0),
        AccessRow("File", "unused_thing", "evaluate/build", 0, 5000, 0),
    ]
    sizes = {
        "classes": {
            "File": {
                "count": 5000,
                "total": 10 << 20,
                "attrs": {
                    "waiting_s_e": {"bytes": 1 << 20, "empty": 0, "empty_bytes": 0},
                    "unused_thing": {"bytes": 1 << 20, "empty": 0, "empty_bytes": 0},
                },
            }
        }
    }
    from dagprof.builds.scons import SCONS_READS

    prof = Profile(
        meta={"scons_reads": dict(SCONS_READS), "spillable": {}}, phases=[], access=rows, sections={"sizes": sizes}
    )
    found = {f["attr"]: f for f in analyze(prof) if f["kind"] == "never_read"}
    w = found["waiting_s_e"]
    assert "stop storing" not in w["message"] and "never read in this build" in w["message"]
    assert "SideEffect()" in w["message"] and "keep it" in w["message"] and w["bytes"] == 0
    assert "never read in this build" in found["unused_thing"]["message"]
    assert "stop storing" not in found["unused_thing"]["message"]


def test_profile_meta_declares_what_scons_reads(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=10, files_per_dir=10, seed=1)
    _build(dagprof, proj.root, "auto", "m.dagprof")
    meta = load(str(proj.root / "m.dagprof")).meta
    assert "SideEffect()" in meta["scons_reads"]["waiting_s_e"]
    assert "includes" in meta["spill_keep"] and "binfo" in meta["spill_keep"]


def test_attribute_never_spilled_for_size_is_dropped_by_auto():
    rows = [AccessRow("File", "implicit_set", "evaluate/build", 1, 100, 0)]
    # issue 13: File.contentsig was in the plan and never spilled: every value encodes under the floor
    plan = choose("auto", _cands(), rows, {"File.implicit_set": [0, 0, 0, 10_606]})
    assert "File" not in plan.spill
    assert "10,606 values" in plan.dropped["File.implicit_set"]


def test_release_pages_drops_mapped_store_pages(tmp_path):
    from dagstore.backends import LMDBStore

    st = LMDBStore(str(tmp_path / "s"))
    try:
        st.put_many([(b"k%06d" % i, b"x" * 200) for i in range(5000)])
        assert all(st.get(b"k%06d" % i) == b"x" * 200 for i in range(0, 5000, 7))
        assert st.release_pages() > 0
        assert st.get(b"k000007") == b"x" * 200  # faulted back in from the page cache
    finally:
        st.close()


def test_values_too_small_in_a_row_are_not_encoded_and_said_so():
    from dagstore.backends import MemoryStore
    from dagstore.codec import Codec
    from dagstore.spill import SMALL_STREAK, Spiller

    class N:
        __slots__ = ("sig",)

    sp = Spiller(MemoryStore(), Codec(), min_bytes=64)
    sp.guard(N, spill=("sig",))
    try:
        nodes = [N() for _ in range(SMALL_STREAK + 100)]
        for n in nodes:
            n.sig = "d41d8cd98f00b204e9800998ecf8427e"
        encodes = []
        real = sp.codec.encode
        sp.codec.encode = lambda v: encodes.append(1) or real(v)
        sp.spill(nodes)
        st = sp.stats.per_attr["N.sig"]
        assert st["small"] == len(nodes) and st["spilled"] == 0
        assert len(encodes) == SMALL_STREAK and st["small_assumed"] == 100
        line = plan_line(
            {"source": "explicit --spill", "spill": "N.sig", "why": {"N.sig": "explicit"}}, sp.stats.per_attr
        )
        assert f"{len(nodes):,} too small" in line and "100 of those not encoded" in line
    finally:
        sp.restore()


def test_a_collector_pause_inside_one_lookup_does_not_turn_reuse_off():
    """5,000 lookups of 10 us and one that a full collection stretched to 0.3 s: the plain total says a hit
    costs 70 us (more than a 30 us scan), the robust one 10 us; with few samples the plain total stands."""
    lookups = [10e-6] * 4999 + [0.3]
    total = sum(lookups)
    assert not reuse_verdict(reuse_cost(None, 5000, total, 100, 100 * 30e-6))[0]
    robust = robust_total(lookups[:4096], 5000, total)
    assert abs(robust - 5000 * 10e-6) < 1e-9
    assert reuse_verdict(reuse_cost(None, 5000, robust, 100, 100 * 30e-6))[0]
    assert robust_total([1.0] * 10, 5000, 3.5) == 3.5  # too few samples: the total
    assert robust_total([], 0, 0.0) == 0.0


def test_reuse_cost_keeps_figures_with_too_few_samples():
    # a build that reused everything timed no scan: the last measured scan stays; 10 hits are too few
    assert reuse_cost({"hit_us": 30.0, "scan_us": 12.0}, 5000, 0.1, 0, 0.0) == {"hit_us": 20.0, "scan_us": 12.0}
    assert reuse_cost({"hit_us": 30.0, "scan_us": 12.0}, 10, 1.0, 100, 0.01) == {"hit_us": 30.0, "scan_us": 100.0}
    assert reuse_cost(None, 0, 0.0, 0, 0.0) == {}
    assert reuse_verdict(None) == (True, "")
    assert reuse_verdict({"hit_us": 30.0}) == (True, "")  # nothing to weigh it against yet
    keep, why = reuse_verdict({"hit_us": 30.0, "scan_us": 12.0})
    assert not keep and why == "a reuse hit costs 30 us, the scan it saves 12 us"
    assert reuse_verdict({"hit_us": 30.0, "scan_us": 120.0})[0]


def test_choose_turns_reuse_off_when_a_hit_costs_more_than_the_scan():
    plan = choose("none", _cands(), reuse={"hit_us": 30.0, "scan_us": 12.0})
    assert plan.reuse == {} and "reuse off: a reuse hit costs 30 us, the scan it saves 12 us" in plan_line(
        plan.as_dict(), {}
    )
    assert choose("none", _cands(), reuse={"hit_us": 3.0, "scan_us": 12.0}).reuse == _cands().reuse


def _commands(out, root):
    return sorted(ln.replace(str(root), "<root>") for ln in out.splitlines() if "stub" in ln)


def _set_reuse_cost(root, cost):
    from dagstore.backends import LMDBStore

    with LMDBStore(str(root / ".dagstore")) as st:
        st.set_meta("reuse_cost", cost)


def test_reuse_that_does_not_pay_is_off_and_builds_stay_exact(tmp_path, dagprof, scons):
    """Measured on this machine a lookup may cost more than the scan of a small file: then nothing is looked
    up or recorded, SCons scans, and the rebuilds are plain SCons' (an edited header is still seen)."""
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=21)
    twin = generate(tmp_path / "q", files=30, files_per_dir=10, seed=21)
    root = proj.root
    _build(dagprof, root, "none", "r1.dagprof")
    scons(["-Q"], twin.root)
    _set_reuse_cost(root, {"hit_us": 500.0, "scan_us": 5.0})
    proj.edit_header(0)
    twin.edit_header(0)
    p = _build(dagprof, root, "none", "r2.dagprof")
    q = scons(["-Q"], twin.root)
    st = load(str(root / "r2.dagprof")).sections["store"]
    assert st["reuse_enabled"] is False and st["plan"]["reuse"] == ""
    assert st["reuse_hits"] == 0 and st["recorded"] == 0 and st["reuse_time_s"] == 0
    assert st["scans"] >= len(proj.files)  # every source scanned by SCons, timed
    assert "reuse off: a reuse hit costs 500 us, the scan it saves 5 us" in p.stderr
    assert _commands(p.stdout, root) == _commands(q.stdout, twin.root) != []
    # every scan was timed, but fewer than REUSE_MIN_SAMPLES: the stored figures stay as they were
    from dagstore.backends import LMDBStore
    from dagstore.policy import REUSE_MIN_SAMPLES

    with LMDBStore(str(root / ".dagstore")) as s:
        cost = s.get_meta("reuse_cost")
    assert st["scans"] < REUSE_MIN_SAMPLES and cost == {"hit_us": 500.0, "scan_us": 5.0}
    # cheaper lookups than scans again: the values the first build recorded are reused where their file's
    # stamp still matches (the edited header's is not: rescanned and recorded anew)
    _set_reuse_cost(root, {"hit_us": 1.0, "scan_us": 500.0})
    _build(dagprof, root, "none", "r3.dagprof")
    st = load(str(root / "r3.dagprof")).sections["store"]
    assert st["reuse_enabled"] is True and st["reuse_hits"] >= len(proj.files)
    assert st["recorded"] == st["reuse_stale"] == 1


def test_one_lookup_in_64_is_left_to_the_scan(tmp_path, dagprof):
    """So the scan a hit saves keeps being timed where everything could be reused."""
    proj = generate(tmp_path / "p", files=80, files_per_dir=40, seed=4)
    _build(dagprof, proj.root, "none", "s1.dagprof")
    first = load(str(proj.root / "s1.dagprof")).sections["store"]
    _build(dagprof, proj.root, "none", "s2.dagprof")
    st = load(str(proj.root / "s2.dagprof")).sections["store"]
    lookups = first["scans"]  # every file scanned by the first build is looked up once
    assert lookups >= 64 and st["reuse_sampled"] == lookups // 64
    assert st["reuse_hits"] == lookups - st["reuse_sampled"] and st["scans"] == st["reuse_sampled"]
    assert st["recorded"] == st["reuse_sampled"]  # a sampled file's names are stored again, as after any scan

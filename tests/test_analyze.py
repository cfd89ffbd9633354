"""The analyzer on hand-built profiles: which findings, with which byte estimates, in which order."""

from __future__ import annotations

import pytest
from report_fixtures import EMPTY_SET, N_FILES, full_profile

from dagprof.analyze import analyze, findings_of, parse_attr_names, spill_candidates
from dagprof.profile import AccessRow, Profile
from dagprof.whatif import estimate, marker_bytes, parse_spec


def _by(findings: list[dict], kind: str) -> dict[tuple[str, str | None], int]:
    return {(f["cls"], f["attr"]): f["bytes"] for f in findings if f["kind"] == kind}


def test_expected_findings_and_bytes() -> None:
    found = analyze(full_profile())
    assert _by(found, "empty_container") == {
        ("File", "waiting_parents"): N_FILES * EMPTY_SET,
        ("File", "waiting_s_e"): N_FILES * EMPTY_SET,
        ("File", "side_effects"): N_FILES * 56,
    }
    assert _by(found, "duplicate_values") == {("File", "includes"): 1_200_000, ("File", "name"): 20_000}
    # big ones one by one; small ones (Dir.srcdir holds 0 bytes) grouped per class
    assert _by(found, "never_read") == {("File", "cached_sig"): 400_000, ("Dir", None): 0}
    grouped = next(f for f in found if f["kind"] == "never_read" and f["attr"] is None)
    assert "srcdir" in grouped["message"] and "1 attributes" in grouped["message"]
    assert _by(found, "cycle") == {("Executor", None): 120 * 1_000}
    # what the store would free by the policy's rule: bytes x the share its spills kept out (not reloaded):
    # binfo 2,000 of 10,000 reloaded -> 0.8; _sconsign 30 of 100 -> 0.7; cached_sig never spilled -> all
    assert _by(found, "spill_candidate") == {
        ("Dir", "_sconsign"): 7_699_999,
        ("File", "binfo"): 2_800_000,
        ("File", "cached_sig"): 400_000,
        ("*", None): 10_899_999,
    }


def test_findings_sorted_by_bytes_and_shaped() -> None:
    found = analyze(full_profile())
    assert [f["bytes"] for f in found] == sorted((f["bytes"] for f in found), reverse=True)
    for f in found:
        assert set(f) == {"kind", "cls", "attr", "bytes", "message", "spill"}
        assert "\n" not in f["message"]


def test_spill_list_format() -> None:
    p = full_profile()
    assert spill_candidates(p) == ["Dir._sconsign", "File.binfo", "File.cached_sig"]
    summary = [f for f in analyze(p) if f["kind"] == "spill_candidate" and f["attr"] is None]
    assert len(summary) == 1
    assert summary[0]["spill"] == "Dir._sconsign,File.binfo,File.cached_sig"
    assert "--spill Dir._sconsign,File.binfo,File.cached_sig" in summary[0]["message"]
    each = {f["spill"] for f in analyze(p) if f["kind"] == "spill_candidate" and f["attr"]}
    assert each == {"Dir._sconsign", "File.binfo", "File.cached_sig"}


def test_spill_list_is_the_one_rule_of_cold() -> None:
    """Reads per write in the late phases, the adapter's safe list, and the reloads of this run's spills."""
    p = full_profile()
    # File.includes: 3 reads per write in the build phase: hot; Dir._sconsign: read 1.5 times per write
    assert "File.includes" not in spill_candidates(p)
    # reads before the late phases do not count: File.name is read 5 times per write while reading
    p.meta["spillable"]["File"].append("name")
    p.access.append(AccessRow("File", "name", "evaluate/build", 0, 0, 0, 0))
    assert "File.name" not in spill_candidates(p)  # 300,000 build-phase reads for 10,000 writes
    # the last build reloaded Dir._sconsign 3 times per spill: hot, whatever the counters say
    p.sections["store"]["per_attr"]["Dir._sconsign"]["reloads"] = 300
    assert spill_candidates(p) == ["File.binfo", "File.cached_sig"]
    # an empty container is never a spill finding of its own (no non-empty bytes)
    assert not any(f["kind"] == "spill_candidate" and "waiting" in (f["attr"] or "") for f in analyze(p))


def test_unaccessed_class_is_not_cold() -> None:
    p = full_profile()
    p.access = [r for r in p.access if r.cls != "Dir"]
    assert "Dir._sconsign" not in spill_candidates(p)


def test_never_read_without_sizes_still_reported() -> None:
    p = Profile(
        access=[
            AccessRow("Node", "flag", "evaluate/build", 0, 3, 0, -1),
            AccessRow("Node", "state", "evaluate/build", 5, 3, 0, -1),
        ]
    )
    [f] = [f for f in analyze(p) if f["kind"] == "never_read"]
    assert (f["kind"], f["cls"], f["attr"], f["bytes"]) == ("never_read", "Node", None, 0)
    assert "flag" in f["message"] and "state" not in f["message"]


def test_empty_profile_has_no_findings() -> None:
    assert analyze(Profile()) == []


def test_findings_of_prefers_recorded() -> None:
    p = full_profile()
    recorded = [{"kind": "cycle", "cls": "X", "attr": None, "bytes": 1, "message": "m", "spill": None}]
    p.sections["findings"] = recorded
    assert findings_of(p) == recorded


def test_what_if() -> None:
    """The one what-if estimator (dagprof.whatif) on a profile that recorded its spills: the store's rule."""
    p = full_profile()
    p.meta["spill_keep"] = {"binfo": "shared with .sconsign: frees little"}  # as the SCons adapter records it
    p.meta["spill_collapse"], p.meta["spill_reuse"] = {}, {}
    w = estimate(p, parse_spec("spill=File.binfo,Dir._sconsign,File.nope"))
    spill = w["changes"][0]
    # binfo's lists stay alive in the .sconsign entry (the adapter's keep, not reusable): nothing freed
    assert spill["spill"]["File.binfo"]["bytes"] == 0 and spill["spill"]["File.binfo"]["reloads"] == 0
    # _sconsign: 100 spilled, 30 reloaded (a reloaded value stays): 70% of its bytes, less 70 markers
    assert spill["per_attr"]["Dir._sconsign"] == int(11_000_000 * 0.7) - 70 * marker_bytes()
    assert spill["reloads"] == 30 and spill["values"] == 70
    assert w["unknown"] == ["File.nope"]
    before = p.sections["sizes"]["classes"]["File"]["total"] + p.sections["sizes"]["classes"]["Dir"]["total"]
    assert w["node_bytes_before"] == before and w["node_bytes_after"] == before - w["bytes"]
    assert w["peak_rss_after_estimate"] == 102_000_000 - w["bytes"]


@pytest.mark.parametrize("bad", ["File", "File.", ".attr", "File.a.b", ",", ""])
def test_parse_attr_names_rejects_bad_items(bad: str) -> None:
    with pytest.raises(ValueError, match="--spill"):
        parse_attr_names(bad, "--spill")


def test_parse_attr_names_ok() -> None:
    assert parse_attr_names(" File._memo, Dir._sconsign ", "--spill") == ["File._memo", "Dir._sconsign"]


def test_spill_advice_limited_to_what_the_adapter_can_spill():
    from report_fixtures import full_profile

    from dagprof.analyze import spill_candidates

    p = full_profile()
    every = spill_candidates(p)
    assert every
    keep = every[0]
    cls, attr = keep.split(".")
    p.meta["spillable"] = {cls: [attr]}
    assert spill_candidates(p) == [keep]


def test_estimated_saving_counts_each_byte_once() -> None:
    from dagprof.analyze import estimated_saving

    found = analyze(full_profile())
    naive = sum(f["bytes"] for f in found)
    once = estimated_saving(found)
    # File.cached_sig is never_read AND a spill candidate; the "*" summary repeats every candidate
    by_attr: dict = {}
    for f in found:
        if f["attr"] is not None:
            by_attr.setdefault((f["cls"], f["attr"]), []).append(f["kind"])
    assert sorted(by_attr[("File", "cached_sig")]) == ["never_read", "spill_candidate"]
    # spill candidates (cached_sig once, via never_read) as the store would free them: reloaded values come
    # back (binfo 20% reloaded, _sconsign 30%)
    expected = (
        7_699_999
        + 2_800_000
        + 400_000
        + 1_200_000
        + 20_000  # duplicates
        + 2 * N_FILES * EMPTY_SET
        + N_FILES * 56  # empty containers
        + 120 * 1_000
        + 0
    )  # cycles, grouped never_read of Dir
    assert once == expected
    assert naive == once + 10_899_999 + 400_000  # the "*" summary, and cached_sig counted twice


def test_never_read_and_empty_container_on_one_attribute() -> None:
    from dagprof.analyze import estimated_saving

    found = [
        {"kind": "never_read", "cls": "File", "attr": "x", "bytes": 100_000},
        {"kind": "empty_container", "cls": "File", "attr": "x", "bytes": 60_000},
        {"kind": "duplicate_values", "cls": "File", "attr": "x", "bytes": 30_000},
    ]
    assert estimated_saving(found) == 100_000
    assert estimated_saving(found[1:]) == 90_000


@pytest.mark.parametrize("budget,code", [("once", 0), ("once-1", 66)])
def test_budget_compares_bytes_counted_once(tmp_path, budget, code) -> None:
    from conftest import run_dagprof

    from dagprof.analyze import estimated_saving

    p = full_profile()
    once = estimated_saving(analyze(p))
    path = tmp_path / "p.dagprof"
    p.save(str(path))
    limit = once if budget == "once" else once - 1
    r = run_dagprof(["report", str(path), "--budget", str(limit)], cwd=tmp_path)
    assert r.returncode == code, r.stdout + r.stderr
    assert f"all findings together: {once:,} bytes" in r.stdout
    if code:
        assert f"findings estimate {once:,} bytes" in r.stderr

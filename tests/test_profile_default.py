"""The default `dagprof profile` on a real small SCons build: every section present and plausible, the
figures of one report agree with each other, and --html/--json/--readers/--detail/--budget work."""

from __future__ import annotations

import json
import re

import pytest
from small_projects import write_command_project

from dagprof.exitcodes import BUDGET
from dagprof.profile import load


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = write_command_project(tmp_path_factory.mktemp("prof"), 12)
    from conftest import run_dagprof

    p = run_dagprof(
        ["profile", "-o", "p.dagprof", "--html", "r.html", "--readers", "--detail", "File", "--", "-Q"],
        cwd=root,
        check=True,
    )
    return root, p, load(str(root / "p.dagprof"))


def test_every_section_is_there_and_plausible(run):
    root, p, prof = run
    assert (root / "out" / "all.txt").read_text().count("common") == 12
    for sec in ("sizes", "counts", "lifetimes", "monitor", "snapshots", "cycles", "detail"):
        assert sec in prof.sections, sec
    files = prof.sections["sizes"]["classes"]["File"]
    assert files["count"] == prof.sections["counts"]["File"]["now"]
    assert 12 + 12 + 1 + 1 <= files["count"] < 100  # sources, outputs, common, all.txt (+ SConstruct)
    assert 200 * files["count"] < files["total"] < 20_000 * files["count"]
    assert prof.meta["exit_code"] == 0 and 0 < prof.meta["wall_s"] < 120
    assert 10 * 2**20 < prof.meta["peak_rss"] < 2**31
    assert prof.sections["monitor"]["samples"]
    reads = {(r.cls, r.attr): r.reads for r in prof.access_totals().values()}
    assert reads and sum(reads.values()) > 0
    assert prof.meta["readers_counted"] is True
    assert any(t.instances for t in prof.access_totals().values())  # --readers: distinct readers recorded
    assert prof.sections["detail"]  # --detail File
    for heading in ("Run", "Sizes per class", "Instances", "Lifetimes", "Memory monitor", "Findings"):
        assert heading in p.stdout, heading


def test_html_and_json_load(run, tmp_path):
    root, _p, _prof = run
    html = (root / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype html>")
    assert 'id="table-counts"' in html and "chart-memory" in html
    from conftest import run_dagprof

    j = run_dagprof(["report", str(root / "p.dagprof"), "--json"], cwd=tmp_path, check=True)
    data = json.loads(j.stdout)
    assert data["meta"]["peak_rss"] == _prof.meta["peak_rss"]
    assert {"sizes", "counts", "lifetimes"} <= set(data["sections"])


def test_two_figures_that_claim_the_same_thing_agree(run):
    _root, p, prof = run
    counts, lifetimes = prof.sections["counts"], prof.sections["lifetimes"]
    # Entry -> File morphs are creations of File and departures from Entry
    assert counts["File"]["morphed_in"] >= 25, counts["File"]
    assert counts["Entry"]["morphed_out"] >= counts["File"]["morphed_in"]
    for cls, lt in lifetimes.items():
        assert lt["created"] - lt["morphed_out"] - lt["freed"] == lt["alive"], cls
        if cls in counts:
            assert counts[cls]["created"] == lt["created"], cls
            assert counts[cls]["now"] == lt["alive"], (cls, counts[cls], lt)  # all created after the hooks
    # nothing is freed in this build: the ages of the live nodes say how long they were held
    f = lifetimes["File"]
    assert f["alive"] > 0 and 0 < f["alive_p50_s"] <= f["alive_max_s"] < prof.meta["wall_s"] + 5
    assert "alive: mean age s" in p.stdout
    # one "peak RSS" figure, whichever section prints it
    peaks = set(re.findall(r"peak RSS\s+([\d.]+ \w+)", p.stdout))
    assert len(peaks) == 1, peaks
    assert "highest sampled RSS" in p.stdout


def test_budget_exit_code(run, tmp_path):
    root, _p, _prof = run
    from conftest import run_dagprof

    r = run_dagprof(["report", str(root / "p.dagprof"), "--budget", "0"], cwd=tmp_path)
    assert r.returncode == BUDGET and "over the budget of 0" in r.stderr, r.stderr
    ok = run_dagprof(["report", str(root / "p.dagprof"), "--budget", str(2**40)], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr


def test_phase_labels_do_not_overlap_and_fit():
    from dagprof.report.svg import line_chart

    def label_width(text: str) -> float:  # 11px sans-serif: at most ~6.6 px a character
        return 6.6 * len(text)

    marks = [(0.0, "startup"), (0.01, "read SConscripts"), (0.02, "build"), (9.95, "write .sconsign")]
    svg = str(line_chart("c", [("rss", "#000", [(0.0, 1.0), (10.0, 2.0)])], marks, width=600))
    labels = re.findall(r'class="phase-label" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]+)<', svg)
    assert [t for _x, _y, t in labels] == [m[1] for m in marks]
    boxes = [(float(x), float(x) + label_width(t), y) for x, y, t in labels]
    for x0, x1, _y in boxes:
        assert 0 <= x0 and x1 <= 600, boxes  # "write .sconsign" is not cut off at the right edge
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] != b[2] or a[1] <= b[0] or b[1] <= a[0], (a, b)


def test_component_switches_leave_out_only_their_part(run):
    """--no-sizes/--no-cycles/--no-tracker/--no-monitor (bench/overhead.py --breakdown): the build runs and
    its accesses are counted; the switched-off sections are empty; --no-dup-stats leaves only those out."""
    root, _p, prof = run
    from conftest import run_dagprof

    run_dagprof(
        ["profile", "-o", "off.dagprof", "--no-sizes", "--no-cycles", "--no-tracker", "--no-monitor", "--", "-Q"],
        cwd=root,
        check=True,
    )
    off = load(str(root / "off.dagprof"))
    assert off.meta["exit_code"] == 0
    assert not off.sections["sizes"] and not off.sections["cycles"]
    assert off.sections["monitor"]["cost"]["cpu_s"] == 0  # no sampling thread ran
    assert all("scan" not in s for s in off.sections["snapshots"])  # no gc scans at phase marks
    assert prof.sections["sizes"] and prof.sections["cycles"]
    reads = {k: (t.reads, t.writes) for k, t in off.access_totals().items()}
    assert reads and sum(r for r, _w in reads.values()) > 0
    dup = run_dagprof(["profile", "-o", "nodup.dagprof", "--no-dup-stats", "--", "-Q"], cwd=root, check=True)
    assert dup.returncode == 0
    attrs = load(str(root / "nodup.dagprof")).sections["sizes"]["classes"]["File"]["attrs"]
    assert attrs and all(a["distinct"] == -1 and a["dup_bytes"] == 0 for a in attrs.values())

"""The demo's terminal story reuses the report's renderers: its findings table is the report's, row for row."""

from report_fixtures import comparison, full_profile
from rich.console import Console

from dagprof.demo import memory_story, show_story
from dagprof.report.text import render


def _lines(render) -> list[str]:
    con = Console(record=True, width=200, color_system=None)
    render(con)
    return [" ".join(ln.split()) for ln in con.export_text().splitlines()]  # column widths vary with the rows


def test_demo_findings_rows_are_the_reports():
    profile = full_profile()
    memory = memory_story(profile)
    assert memory["findings"]
    result = comparison()
    result["variants"]["make"] = result["variants"]["plain"]  # part 3 needs a second variant beside plain
    result["ratios_by_variant"] = {"store": result["ratios"], "make": {k: 1.0 for k in result["ratios"]}}
    demo = _lines(lambda con: show_story(con, memory, result))
    report = _lines(lambda con: render(profile, con, sections={"findings"}))
    for f in memory["findings"]:
        row = [ln for ln in report if f["message"][:40] in ln]
        assert row and row[0] in demo, (f, row)

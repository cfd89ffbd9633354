"""Report renderers over hand-built profiles: exact numbers, cold attributes, JSON == text."""

from __future__ import annotations

import io

from rich.console import Console

from dagprof.profile import AccessRow, Profile
from dagprof.report.text import render_access_summary

PHASES = [
    {"name": "read SConscripts", "start_s": 0.0, "end_s": 1.0},
    {"name": "evaluate/build", "start_s": 1.0, "end_s": 4.0},
    {"name": "write .sconsign", "start_s": 4.0, "end_s": 4.5},
]


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, color_system=None, force_terminal=False), buf


def _access_profile() -> Profile:
    rows = [
        AccessRow("File", "_memo", "read SConscripts", 1234, 10, 0, 500),
        AccessRow("File", "_memo", "evaluate/build", 98765, 20, 3, 900),
        AccessRow("File", "ninfo", "evaluate/build", 4321, 7, 0, 800),
        AccessRow("File", "written_only", "read SConscripts", 0, 55, 0, 0),
        AccessRow("Dir", "_sconsign", "write .sconsign", 77, 1, 0, 70),
    ]
    sizes = {
        "classes": {
            "File": {
                "count": 10,
                "total": 1000,
                "shallow": 400,
                "attrs": {
                    "_memo": {"bytes": 300, "set": 10, "empty": 0, "empty_bytes": 0, "distinct": -1, "dup_bytes": 0},
                    "never_touched": {
                        "bytes": 200,
                        "set": 10,
                        "empty": 10,
                        "empty_bytes": 200,
                        "distinct": 1,
                        "dup_bytes": 180,
                    },
                },
            }
        }
    }
    return Profile(meta={}, phases=PHASES, access=rows, sections={"sizes": sizes})


def test_access_summary_exact_counts_and_cold_attrs() -> None:
    con, buf = _console()
    render_access_summary(_access_profile(), con, top=8)
    out = buf.getvalue()
    memo = next(line for line in out.splitlines() if " _memo " in line)
    assert "1,234/10/0" in memo and "98,765/20/3" in memo and "99,999/30/3" in memo and "900" in memo
    # File is hotter than Dir, so its table comes first
    assert out.index("File:") < out.index("Dir:")
    for cold in ("written_only", "never_touched"):
        line = next(line for line in out.splitlines() if f" {cold} " in line)
        assert line.lstrip().startswith("cold")
    assert "2 never read" in out


def test_access_summary_limits_rows_per_class() -> None:
    rows = [AccessRow("File", f"a{i:02d}", "evaluate/build", i, 0, 0, -1) for i in range(50)]
    con, buf = _console()
    render_access_summary(Profile(phases=PHASES, access=rows), con, top=3)
    out = buf.getvalue()
    shown = [line.split()[1] for line in out.splitlines() if line.lstrip().startswith(("hot", "cold"))]
    assert shown == ["a49", "a48", "a47", "a00", "a01", "a02"]
    assert "44 more" in out
    assert "readers" not in out  # instances were not counted


def test_full_report_honours_top() -> None:
    from dagprof.report.text import render

    rows = [AccessRow("File", f"a{i:02d}", "evaluate/build", i, 0, 0, -1) for i in range(50)]
    con, buf = _console()
    render(Profile(phases=PHASES, access=rows), con, top=2)
    shown = [line.split()[1] for line in buf.getvalue().splitlines() if line.lstrip().startswith(("hot", "cold"))]
    assert shown == ["a49", "a48", "a00", "a01"]


# ---- full report and JSON ---------------------------------------------------------------------
import json  # noqa: E402
import re  # noqa: E402

from report_fixtures import full_profile  # noqa: E402

from dagprof.report.jsonout import to_json  # noqa: E402
from dagprof.report.text import render  # noqa: E402


def _line(out: str, *words: str) -> str:
    return next(line for line in out.splitlines() if all(w in line for w in words))


def test_full_render_has_every_section_with_exact_numbers() -> None:
    con, buf = _console()
    render(full_profile(), con)
    out = buf.getvalue()
    for heading in (
        "Run",
        "Phases",
        "Attribute access",
        "Sizes per class",
        "Instances",
        "Lifetimes",
        "Memory monitor",
        "Snapshots",
        "Reference cycles",
        "Findings",
        "Node store (lmdb)",
    ):
        assert heading in out
    assert re.search(r"File\s+10,000\s+10,050\s+10,200\s+0\s+0\s+2,818\s+28,180,000", out)  # counts table
    assert re.search(r"waiting_parents\s+2,160,000\s+2.1 MiB\s+7.7%\s+10,000\s+10,000\s+2,160,000", out)
    assert "113,833,460 bytes" in _line(out, "highest sampled RSS ", "bytes")  # the max over samples
    assert "--spill Dir._sconsign,File.binfo,File.cached_sig" in out
    assert re.search(r"^\s*Executor\s+120\s*$", out, re.M)  # classes in cycles


def test_render_skips_absent_sections() -> None:
    con, buf = _console()
    render(Profile(), con)
    out = buf.getvalue()
    assert "Sizes" not in out and "Memory monitor" not in out and "Node store" not in out
    assert "no findings" in out


def test_render_selected_sections_only() -> None:
    con, buf = _console()
    render(full_profile(), con, sections={"counts"})
    out = buf.getvalue()
    assert "Instances" in out and "Findings" not in out and "Attribute access" not in out


def test_findings_text_in_bytes_order() -> None:
    con, buf = _console()
    render(full_profile(), con, sections={"findings"})
    rows = re.finditer(r"^\s*([\d,]+)\s+[\d.]+ [KMG]?i?B", buf.getvalue(), re.M)
    nums = [int(m.group(1).replace(",", "")) for m in rows]
    assert nums and nums == sorted(nums, reverse=True)


def test_json_numbers_equal_text_numbers() -> None:
    p = full_profile()
    data = json.loads(to_json(p))
    con, buf = _console()
    render(p, con)
    out = buf.getvalue()
    for c in data["access_summary"]:
        for row in c["hot"] + c["cold"]:
            line = _line(out, f" {row['attr']} ")
            total = "/".join(f"{n:,}" for n in (row["total"] if c["deletes"] else row["total"][:2]))
            if any(row["total"]):
                assert total in line
            for cell in row["phases"].values():
                if any(cell):
                    assert "/".join(f"{n:,}" for n in (cell if c["deletes"] else cell[:2])) in line
    for t in data["access_totals"]:
        if t["attr"] == "_memo":
            assert (t["reads"], t["writes"], t["readers"]) == (1_520_000, 40_000, 10_000)
    for f in data["findings"]:
        assert re.search(rf"{f['bytes']:,}\s.*{f['kind']}", out)
    assert data["sections"]["counts"]["File"]["total_bytes"] == 28_180_000


def test_json_is_stable_and_plain() -> None:
    a, b = to_json(full_profile()), to_json(full_profile())
    assert a == b
    data = json.loads(a)
    assert data["format"] == "dagprof-profile" and data["version"] == 1
    assert [f["bytes"] for f in data["findings"]] == sorted((f["bytes"] for f in data["findings"]), reverse=True)


# ---- comparison -------------------------------------------------------------------------------
from report_fixtures import comparison  # noqa: E402

from dagprof.report.compare import compare_rows, compare_to_json, render_compare  # noqa: E402


def test_compare_table_medians_and_ratios() -> None:
    con, buf = _console()
    render_compare(comparison(), con)
    out = buf.getvalue()
    assert re.search(r"peak RSS\s+97\.3 MiB\s+76\.3 MiB\s+0\.78x", out)
    assert re.search(r"node bytes / node\s+3\.9 KiB\s+2\.5 KiB\s+0\.64x", out)
    assert re.search(r"wall time\s+4\.50 s\s+5\.00 s\s+1\.11x", out)
    assert re.search(r"reloads\s+0\s+2,300", out)
    assert "median of 3 runs" in out and "scons -Q" in out


def test_compare_json_matches_rows() -> None:
    data = json.loads(compare_to_json(comparison()))
    rows = {r["key"]: r for r in data["table"]}
    assert rows["peak_rss"]["plain"] == 102_000_000 and rows["peak_rss"]["store"] == 80_000_000
    assert rows["bytes_per_node"]["store"] == 25_500_000 / 10_100
    assert rows["bytes_per_node"]["ratio"] == (25_500_000 / 10_100) / (40_000_000 / 10_100)
    assert rows["peak_rss"]["store_runs"] == [80_000_000, 81_000_000, 79_000_000]
    assert data["runs"] == 3


def test_compare_needs_two_variants() -> None:
    import pytest

    with pytest.raises(ValueError, match="two variants"):
        compare_rows({"variants": {"plain": {}}})

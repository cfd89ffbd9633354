"""Report renderers over hand-built profiles: exact numbers, cold attributes, JSON == text."""
from __future__ import annotations

import io

from rich.console import Console

from profiler.profile import AccessRow, Profile
from profiler.report.text import render_access_summary

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
    sizes = {"classes": {"File": {"count": 10, "total": 1000, "shallow": 400, "attrs": {
        "_memo": {"bytes": 300, "set": 10, "empty": 0, "empty_bytes": 0, "distinct": -1, "dup_bytes": 0},
        "never_touched": {"bytes": 200, "set": 10, "empty": 10, "empty_bytes": 200, "distinct": 1,
                          "dup_bytes": 180}}}}}
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

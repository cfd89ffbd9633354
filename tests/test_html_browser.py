"""The HTML report: self-contained (no network), and its charts really render in headless Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from report_fixtures import comparison, full_profile

from dagprof.profile import Profile
from dagprof.report.compare import write_compare_html
from dagprof.report.html import write_html

CHROMIUM = "/usr/bin/chromium"
CHART_IDS = ("chart-memory", "chart-class-bytes", "chart-attr-bytes", "chart-access-heat")


def _assert_offline(html: str) -> None:
    assert not re.search(r"https?://", html), "the report must not reference any URL"
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"@import|url\(", html)


def test_html_is_self_contained_and_has_charts(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    write_html(full_profile(), str(out))
    html = out.read_text(encoding="utf-8")
    _assert_offline(html)
    for cid in CHART_IDS:
        assert f'id="{cid}"' in html
    assert html.count('class="series"') == 3  # RSS, anon, file
    assert html.count('class="phase-mark"') == 3
    assert "--spill Dir._sconsign,File.binfo,File.cached_sig" in html
    assert "28,180,000" in html  # counts table total bytes for File


def test_html_of_empty_profile_still_renders(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    write_html(Profile(), str(out))
    html = out.read_text(encoding="utf-8")
    _assert_offline(html)
    for cid in CHART_IDS:
        assert f'id="{cid}"' in html


def test_html_escapes_names(tmp_path: Path) -> None:
    p = full_profile()
    p.meta["argv"] = ["<script>alert(1)</script>"]
    p.sections["sizes"]["classes"]["<b>X</b>"] = {
        "count": 1,
        "total": 10,
        "shallow": 10,
        "attrs": {"</script>": {"bytes": 10, "set": 1}},
    }
    out = tmp_path / "r.html"
    write_html(p, str(out))
    html = out.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "<b>X</b>" not in html
    assert html.count("</script>") == 2  # the JSON data block and the inline JS, nothing injected


def test_compare_html_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "c.html"
    write_compare_html(comparison(), str(out))
    html = out.read_text(encoding="utf-8")
    _assert_offline(html)
    assert 'id="chart-compare"' in html and 'id="table-compare"' in html


def _dump_dom(path: Path, profile_dir: Path) -> str:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
        "--dump-dom",
        path.resolve().as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (/usr/bin/chromium)")
def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    write_html(full_profile(), str(out))
    dom = _dump_dom(out, tmp_path / "chromium-profile")
    assert 'data-js="ready"' in dom  # the inline script ran to the end
    for cid in ("chart-memory", "chart-class-bytes", "chart-attr-bytes"):
        m = re.search(rf'<svg id="{cid}"[^>]*>(.*?)</svg>', dom, re.S)
        assert m, f"{cid} missing from the rendered DOM"
    memory = re.search(r'<svg id="chart-memory"[^>]*>(.*?)</svg>', dom, re.S).group(1)
    assert len(re.findall(r"<polyline[^>]*class=\"series\"", memory)) == 3
    assert 'id="chart-memory-hover"' in memory  # built by the inline JS after load
    bars = re.search(r'<svg id="chart-class-bytes"[^>]*>(.*?)</svg>', dom, re.S).group(1)
    assert re.findall(r'data-label="([^"]+)"', bars) == ["File", "Dir"]
    heat = re.search(r'<table id="chart-access-heat"[^>]*>(.*?)</table>', dom, re.S).group(1)
    assert heat.count('class="heat-cell"') == 12 * 4  # 12 attributes x (3 phases + total)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (/usr/bin/chromium)")
def test_compare_renders_in_headless_chromium(tmp_path: Path) -> None:
    out = tmp_path / "c.html"
    write_compare_html(comparison(), str(out))
    dom = _dump_dom(out, tmp_path / "chromium-profile")
    assert 'data-js="ready"' in dom
    assert re.search(r'<svg id="chart-compare"', dom)

"""One self-contained, offline HTML report of a Profile: inline CSS, inline JS, inline SVG charts.

Nothing is fetched from the network, so the file can be mailed, archived or opened on a build
machine without internet. Charts carry stable ids (chart-memory, chart-class-bytes,
chart-attr-bytes, chart-access-heat) for tests and for people linking to them.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from dagprof.analyze import findings_of
from dagprof.profile import Profile
from dagprof.report import svg, tables
from dagprof.report.tables import fmt_int
from dagstore.units import fmt_bytes

SERIES = (("RSS", "#3366cc", 1), ("RSS anon", "#dc3912", 2), ("RSS file", "#109618", 3))
TOP_ATTR_BARS = 30


def _asset(name: str) -> str:
    return resources.files("dagprof.report").joinpath("assets", name).read_text(encoding="utf-8")


def environment() -> jinja2.Environment:
    """The jinja2 environment shared by the profile and comparison reports."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dagprof.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = fmt_bytes
    env.filters["int"] = fmt_int
    env.filters["f3"] = lambda x: f"{x:.3f}" if isinstance(x, (int, float)) else "-"
    env.globals["css"] = Markup(_asset("report.css"))
    env.globals["js"] = Markup(_asset("report.js"))
    return env


def json_script(data: Any) -> Markup:
    """JSON safe to put inside <script type="application/json">: no '</' can close the tag early."""
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, default=list)
    return Markup(text.replace("</", "<\\/").replace("<!--", "<\\!--"))


def write_atomic(path: str, text: str) -> None:
    """Write via a temporary file, so a failed render never leaves a half report behind."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _memory_chart(profile: Profile) -> Markup:
    mon = profile.sections.get("monitor") or {}
    samples = mon.get("samples") or []
    marks = [(float(t), str(n)) for t, n in (mon.get("marks") or [])]
    if not marks:
        marks = [(float(p.get("start_s") or 0.0), str(p["name"])) for p in profile.phases if "name" in p]
    series = []
    if samples:
        for name, colour, i in SERIES:
            pts = [(float(s[0]), float(s[i])) for s in samples if len(s) > i and isinstance(s[i], (int, float))]
            series.append((name, colour, pts))
    else:
        snaps = [s for s in profile.sections.get("snapshots") or [] if isinstance(s.get("rss"), (int, float))]
        if snaps:
            points = [(float(s.get("t") or 0.0), float(s["rss"])) for s in snaps]
            series.append(("RSS (snapshots)", SERIES[0][1], points))
    return svg.line_chart(
        "chart-memory", series, marks, empty="no memory samples in this profile (the monitor did not run)"
    )


def _class_bars(profile: Profile, sizes: list[dict]) -> Markup:
    if sizes:
        bars = [
            (c["cls"], c["total"], [(sum(a["empty_bytes"] for a in c["attrs"]), "#ff9900", "empty containers")])
            for c in sizes
        ]
    else:
        bars = [(r["cls"], r["total_bytes"], []) for r in tables.counts_table(profile) if r["total_bytes"]]
    return svg.bar_chart("chart-class-bytes", bars, empty="no sizes in this profile (sizing did not run)")


def _attr_bars(sizes: list[dict]) -> Markup:
    rows = [(f"{c['cls']}.{a['attr']}", a) for c in sizes for a in c["attrs"] if a["bytes"] > 0]
    rows.sort(key=lambda r: (-r[1]["bytes"], r[0]))
    bars = []
    for label, a in rows[:TOP_ATTR_BARS]:
        dup = max(0, a["dup_bytes"] - a["empty_bytes"])
        bars.append(
            (
                label,
                a["bytes"],
                [(a["empty_bytes"], "#ff9900", "empty containers"), (dup, "#990099", "duplicate values")],
            )
        )
    return svg.bar_chart("chart-attr-bytes", bars, empty="no sizes in this profile (sizing did not run)")


def _heat(profile: Profile) -> dict[str, Any]:
    """Every attribute of every class (hottest first) with a colour per phase cell."""
    summary = tables.access_summary(profile, top=10**9)
    vmax = max((cell[0] for c in summary for r in c["hot"] for cell in r["phases"].values()), default=0)
    tmax = max((r["total"][0] for c in summary for r in c["hot"]), default=0)
    for c in summary:
        for r in c["hot"]:
            r["colours"] = {ph: svg.heat_colour(cell[0], vmax) for ph, cell in r["phases"].items()}
            r["total_colour"] = svg.heat_colour(r["total"][0], tmax)
    return {"classes": summary, "vmax": vmax}


def context(profile: Profile) -> dict[str, Any]:
    """Everything the template shows, computed once from the shared tables."""
    sizes = tables.class_sizes(profile)
    mon = tables.monitor_summary(profile)
    m = profile.meta
    argv = m.get("argv")
    return {
        "title": "dagprof report" + (f": {' '.join(map(str, argv))}" if isinstance(argv, list) and argv else ""),
        "meta": m,
        "argv": " ".join(map(str, argv)) if isinstance(argv, list) else (argv or ""),
        "phases": profile.phases,
        "phase_names": profile.phase_names(),
        "chart_memory": _memory_chart(profile),
        "chart_class": _class_bars(profile, sizes),
        "chart_attr": _attr_bars(sizes),
        "chart_attr_limit": TOP_ATTR_BARS,
        "heat": _heat(profile),
        "sizes": sizes,
        "sizes_meta": profile.sections.get("sizes") or {},
        "counts": tables.counts_table(profile),
        "lifetimes": sorted(
            (profile.sections.get("lifetimes") or {}).items(), key=lambda kv: (-(kv[1].get("created") or 0), kv[0])
        ),
        "monitor": mon,
        "snapshots": profile.sections.get("snapshots") or [],
        "cycles": profile.sections.get("cycles"),
        "findings": findings_of(profile),
        "store": profile.sections.get("store"),
        "data": json_script(
            {
                "samples": [s[:4] for s in (profile.sections.get("monitor") or {}).get("samples") or []],
                "series": [name for name, _c, _i in SERIES],
            }
        ),
    }


def render_html(profile: Profile) -> str:
    """The report as one HTML string (write_html writes it)."""
    return environment().get_template("report.html.j2").render(**context(profile))


def write_html(profile: Profile, path: str) -> None:
    """Write the self-contained HTML report of a profile to `path`."""
    write_atomic(path, render_html(profile))

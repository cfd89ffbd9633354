"""Renderers of a profile diff (dagprof.diff): terminal tables, JSON and one offline HTML page.

Every number comes from the dict `dagprof.diff.diff_profiles` computed once; the HTML page uses the
single report's chart renderers (dagprof.report.svg) and page frame (base.html.j2), one chart per
section with OLD and NEW side by side.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dagprof.profile import Profile
from dagprof.report import svg
from dagprof.report.tables import fmt_int
from dagstore.units import fmt_bytes

OLD_COLOUR, NEW_COLOUR = "#999999", "#3366cc"
TOP_ATTRS = 20


# ---- formatting shared by text and HTML ------------------------------------------------------------


def fmt_value(v: float | None, unit: str) -> str:
    """A value in its unit; '-' when not recorded."""
    if v is None:
        return "-"
    if unit == "bytes":
        return f"{fmt_bytes(v)}" if abs(v) >= 1024 else f"{v:,.0f} B"
    if unit == "s":
        return f"{v:.3f} s"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def fmt_delta(v: float | None, unit: str) -> str:
    """A signed difference: '+1.2 KiB', '-3', '0'."""
    if v is None:
        return "-"
    if v == 0:
        return "0"
    return ("+" if v > 0 else "-") + fmt_value(abs(v), unit)


def fmt_rel(c: dict[str, Any]) -> str:
    """Relative change: '+9.4%', 'new' (appeared), '-' (unknown)."""
    if c["rel"] is None:
        return "new" if c["delta"] and not c["old"] else "-"
    return f"{c['rel'] * 100:+.1f}%"


def _style(c: dict[str, Any]) -> str:
    d = c["delta"]
    return "" if not d else ("red" if d > 0 else "green")


def gate_lines(g: dict[str, Any]) -> list[str]:
    """The gate's verdict as plain lines (the same on stdout of `diff` and stderr of `profile`)."""
    pct = f"{g['max_growth'] * 100:g}%"
    lines = []
    if g["failed"]:
        n = len(g["causes"])
        lines.append(
            f"memory regression: {n} limit{'s' if n != 1 else ''} exceeded (max growth {pct}); "
            f"largest cause{'s' if n != 1 else ''}:"
        )
        for c in g["causes"][:3]:
            line = (
                f"  {c['what']}: {fmt_value(c['old'], 'bytes')} -> {fmt_value(c['new'], 'bytes')} "
                f"({c['rel'] * 100:+.1f}%, {fmt_delta(c['bytes'], 'bytes')} in all)"
                if c["rel"] is not None
                else f"  {c['what']}: {fmt_delta(c['delta'], 'bytes')}"
            )
            if c["attrs"]:
                line += "; grew most: " + ", ".join(f"{a['name']} {fmt_delta(a['delta'], 'bytes')}" for a in c["attrs"])
            lines.append(line)
        if n > 3:
            lines.append(f"  … and {n - 3} more (see the tables or --json)")
    else:
        lines.append(f"no memory regression beyond {pct}: checked " + ", ".join(g["checked"]))
    for what in g["not_compared"]:
        lines.append(f"not compared: {what}")
    return lines


# ---- text ------------------------------------------------------------------------------------------


def render_text(d: dict[str, Any], console: Console, g: dict[str, Any] | None = None, top: int = TOP_ATTRS) -> None:
    """The diff as terminal tables: run, classes, attributes (biggest byte change first), then the gate."""
    o, n = d["old"], d["new"]
    console.print(f"[bold]OLD[/bold] {o['source']}  [bold]NEW[/bold] {n['source']}")
    for note in d["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print()

    def table(title: str) -> Table:
        return Table(
            title=title, title_justify="left", show_edge=False, pad_edge=False, box=None, header_style="bold cyan"
        )

    t = table("[bold]Run[/bold]")
    for col in ("", "OLD", "NEW", "change", "%"):
        t.add_column(col, justify="left" if not col else "right", no_wrap=True)
    for r in d["run"]:
        t.add_row(
            r["label"],
            fmt_value(r["old"], r["unit"]),
            fmt_value(r["new"], r["unit"]),
            Text(fmt_delta(r["delta"], r["unit"]), style=_style(r)),
            fmt_rel(r),
        )
    console.print(t)
    console.print()

    if d["classes"]:
        t = table("[bold]Classes[/bold] (biggest byte change first)")
        for col in ("class", "", "bytes OLD", "bytes NEW", "change", "%", "instances", "per instance", "%"):
            t.add_column(col, justify="left" if col in ("class", "") else "right", no_wrap=True)
        for c in d["classes"]:
            b, k, pi = c["bytes"], c["count"], c["per_instance"]
            t.add_row(
                c["cls"],
                "" if c["status"] == "both" else c["status"],
                fmt_value(b["old"], "bytes"),
                fmt_value(b["new"], "bytes"),
                Text(fmt_delta(b["delta"], "bytes"), style=_style(b)),
                fmt_rel(b),
                f"{fmt_int(k['old'])} -> {fmt_int(k['new'])}",
                f"{fmt_value(pi['old'], 'count')} -> {fmt_value(pi['new'], 'count')}",
                fmt_rel(pi),
            )
        console.print(t)
        console.print()

    changed = [
        a
        for a in d["attrs"]
        if a["bytes"]["delta"] or a["reads"]["delta"] or a["writes"]["delta"] or a["status"] != "both"
    ]
    if changed:
        shown = changed[:top]
        access = d["compared"]["access"]
        phases = [ph for ph in d["phases"] if any(a["phases"][ph]["reads"]["delta"] for a in shown)]
        t = table(
            f"[bold]Attributes[/bold] ({len(shown)} of {len(changed)} changed, biggest byte change first)"
            + ("; reads per phase: change" if phases else "")
        )
        t.add_column("attribute", no_wrap=True)
        t.add_column("", no_wrap=True)
        for col in ("bytes NEW", "change", "%", "per inst.") + (("reads NEW", "change", "writes") if access else ()):
            t.add_column(col, justify="right", no_wrap=True)
        for ph in phases:
            t.add_column(ph, justify="right", no_wrap=True)
        for a in shown:
            b, pi = a["bytes"], a["per_instance"]
            cells: list[Any] = [
                f"{a['cls']}.{a['attr']}",
                "" if a["status"] == "both" else a["status"],
                fmt_value(b["new"], "bytes"),
                Text(fmt_delta(b["delta"], "bytes"), style=_style(b)),
                fmt_rel(b),
                fmt_delta(pi["delta"], "count"),
            ]
            if access:
                cells += [
                    fmt_int(a["reads"]["new"]),
                    fmt_delta(a["reads"]["delta"], "count"),
                    fmt_delta(a["writes"]["delta"], "count"),
                ]
            cells += [fmt_delta(a["phases"][ph]["reads"]["delta"], "count") for ph in phases]
            t.add_row(*cells)
        console.print(t)
        console.print()

    for word in ("appeared", "disappeared"):
        for kind in ("classes", "attrs"):
            names = d[word][kind]
            if names:
                listed = ", ".join(names[:12]) + (f", … ({len(names) - 12} more)" if len(names) > 12 else "")
                console.print(f"{word} ({'classes' if kind == 'classes' else 'attributes'}): {listed}")
    if g is not None:
        console.print()
        for line in gate_lines(g):
            console.print(Text(line, style="bold red" if g["failed"] and not line.startswith(("  ", "not")) else ""))


# ---- JSON ------------------------------------------------------------------------------------------


def to_json(d: dict[str, Any], g: dict[str, Any] | None = None) -> str:
    """Stable JSON of the diff (and the gate's verdict when one ran): the same numbers as the tables."""
    data = dict(d)
    if g is not None:
        data["gate"] = g
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=list) + "\n"


# ---- HTML ------------------------------------------------------------------------------------------


def _rss_points(p: Profile) -> list[tuple[float, float]]:
    samples = (p.sections.get("monitor") or {}).get("samples") or []
    pts = [(float(s[0]), float(s[1])) for s in samples if len(s) > 1 and isinstance(s[1], (int, float))]
    if not pts:
        pts = [
            (float(s.get("t") or 0.0), float(s["rss"]))
            for s in p.sections.get("snapshots") or []
            if isinstance(s.get("rss"), (int, float))
        ]
    return pts


def _pairs(chart_id: str, rows: list[tuple[str, Any, Any]], empty: str) -> Markup:
    """OLD and NEW bars next to each other, one pair per label, through the single report's bar renderer."""
    bars = []
    for label, old, new in rows:
        bars.append((f"{label} OLD", float(old or 0), [(float(old or 0), OLD_COLOUR, "OLD")]))
        bars.append((f"{label} NEW", float(new or 0), []))
    return svg.bar_chart(chart_id, bars, empty=empty)


def html_context(
    d: dict[str, Any], old: Profile, new: Profile, g: dict[str, Any] | None = None, top: int = TOP_ATTRS
) -> dict[str, Any]:
    """What diff.html.j2 shows: the diff's rows, formatted, and one OLD-vs-NEW chart per section."""
    from dagprof.report.html import json_script

    marks = [(float(t), str(nm)) for t, nm in ((new.sections.get("monitor") or {}).get("marks") or [])]
    memory = svg.line_chart(
        "chart-memory",
        [("OLD RSS", OLD_COLOUR, _rss_points(old)), ("NEW RSS", NEW_COLOUR, _rss_points(new))],
        marks,
        empty="no memory samples in these profiles (the monitor did not run)",
    )
    no_sizes = "no sizes in both profiles (sizing did not run in one of them)"
    chart_class = _pairs(
        "chart-class-bytes", [(c["cls"], c["bytes"]["old"], c["bytes"]["new"]) for c in d["classes"]], no_sizes
    )
    sized = [a for a in d["attrs"] if a["bytes"]["delta"]]
    chart_attr = _pairs(
        "chart-attr-bytes",
        [(f"{a['cls']}.{a['attr']}", a["bytes"]["old"], a["bytes"]["new"]) for a in sized[:top]],
        "no attribute bytes changed" if d["compared"]["sizes"] else no_sizes,
    )
    reads = sorted(
        (a for a in d["attrs"] if a["reads"]["delta"]), key=lambda a: (-abs(a["reads"]["delta"]), a["cls"], a["attr"])
    )[:top]
    vmax = max((abs(a["phases"][ph]["reads"]["delta"] or 0) for a in reads for ph in d["phases"]), default=0)
    access = [
        {
            "name": f"{a['cls']}.{a['attr']}",
            "reads": a["reads"],
            "writes": a["writes"],
            "cells": [
                {
                    "ph": ph,
                    "delta": a["phases"][ph]["reads"]["delta"],
                    "text": fmt_delta(a["phases"][ph]["reads"]["delta"], "count"),
                    "colour": svg.heat_colour(abs(a["phases"][ph]["reads"]["delta"] or 0), vmax),
                }
                for ph in d["phases"]
            ],
        }
        for a in reads
    ]
    return {
        "title": f"dagprof diff: {d['old']['source']} vs {d['new']['source']}",
        "d": d,
        "gate": g,
        "gate_lines": gate_lines(g) if g is not None else [],
        "chart_memory": memory,
        "chart_class": chart_class,
        "chart_attr": chart_attr,
        "access": access,
        "attrs": sized[:top] if sized else [],
        "fmt_value": fmt_value,
        "fmt_delta": fmt_delta,
        "fmt_rel": fmt_rel,
        "old_colour": OLD_COLOUR,
        "new_colour": NEW_COLOUR,
        "meta": new.meta,
        "data": json_script({"run": d["run"], "gate": g}),
    }


def render_html(d: dict[str, Any], old: Profile, new: Profile, g: dict[str, Any] | None = None) -> str:
    from dagprof.report.html import environment

    return environment().get_template("diff.html.j2").render(**html_context(d, old, new, g))


def write_html(d: dict[str, Any], old: Profile, new: Profile, path: str, g: dict[str, Any] | None = None) -> None:
    """Write the self-contained HTML page of a diff to `path`."""
    from dagprof.report.html import write_atomic

    write_atomic(path, render_html(d, old, new, g))

"""Tiny inline-SVG chart builders for the offline HTML reports (no chart library, no network).

Each function returns a markupsafe.Markup string; every label is escaped here, so templates
can insert the result as-is. Geometry is computed in Python so the charts render even with
JavaScript off; report.js only adds hover read-outs on top.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from dagstore.units import fmt_bytes

PALETTE = ["#3366cc", "#dc3912", "#109618", "#ff9900", "#990099", "#0099c6", "#dd4477", "#66aa00"]


def _nice_step(span: float, ticks: int = 5) -> float:
    """A 1/2/5 x 10^k step giving about `ticks` gridlines, so axes read as round numbers."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag  # pragma: no cover


def _nice_bytes_step(span: float, ticks: int = 5) -> float:
    """Round steps in binary units (1/2/5 x KiB/MiB/GiB) so byte axes carry clean labels."""
    if span <= 0:
        return 1.0
    unit = 1
    for u in (1024, 1024**2, 1024**3):
        if span / u >= 1:
            unit = u
    return _nice_step(span / unit, ticks) * unit


LABEL_ROW_H = 13
LABEL_CHAR_W = 6.6  # an upper bound of one character's width at font-size 11 (sans-serif)


def label_width(text: str) -> float:
    return LABEL_CHAR_W * len(text)


def phase_label_layout(
    marks: Sequence[tuple[float, str]], xmax: float, left: float, pw: float, width: float
) -> list[tuple[float, int]]:
    """(x, row) per phase label: right of its mark, pulled left to end inside the chart, and in the
    first row where it overlaps no other label (a short phase's label goes one row up)."""
    out: list[tuple[float, int]] = []
    row_end: list[float] = []
    for t, name in marks:
        w = label_width(name)
        x = min(left + pw * t / (xmax or 1.0) + 3, width - 2 - w)
        x = max(x, 2.0)
        row = next((r for r, end in enumerate(row_end) if end + 6 <= x), len(row_end))
        if row == len(row_end):
            row_end.append(0.0)
        row_end[row] = x + w
        out.append((x, row))
    return out


def line_chart(
    chart_id: str,
    series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]],
    marks: Sequence[tuple[float, str]] = (),
    width: int = 900,
    height: int = 320,
    x_label: str = "seconds",
    empty: str = "no samples",
) -> Markup:
    """Byte values over time: one polyline per (name, colour, points), phase marks as labelled bands."""
    left, right, bottom = 78, 16, 36
    pw = width - left - right
    pts = [p for _n, _c, s in series for p in s]
    if not pts:
        return Markup(
            f'<svg id="{escape(chart_id)}" class="chart chart-empty" width="{width}" height="60" '
            f'role="img"><text x="10" y="30">{escape(empty)}</text></svg>'
        )
    xmax = max(max(p[0] for p in pts), max((m[0] for m in marks), default=0.0)) or 1.0
    labels = phase_label_layout(marks, xmax, left, pw, width)
    rows = max((r for _x, r in labels), default=0) + 1
    top = 10 + LABEL_ROW_H * rows + 8
    height = max(height, top + bottom + 200)
    ph = height - top - bottom
    ymax = max(p[1] for p in pts) or 1.0
    ystep = _nice_bytes_step(ymax)
    ytop = math.ceil(ymax / ystep) * ystep
    xstep = _nice_step(xmax, 8)

    def X(x: float) -> float:
        return left + pw * x / xmax

    def Y(y: float) -> float:
        return top + ph - ph * y / ytop

    out = [
        f'<svg id="{escape(chart_id)}" class="chart chart-line" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'data-xmax="{xmax}" data-ytop="{ytop}" data-left="{left}" data-top="{top}" '
        f'data-pw="{pw}" data-ph="{ph}">'
    ]
    # phase bands
    bounds = list(marks) + [(xmax, "")]
    for i, (t, name) in enumerate(marks):
        x0, x1 = X(t), X(bounds[i + 1][0])
        out.append(
            f'<rect class="phase-band" x="{x0:.1f}" y="{top}" width="{max(0.0, x1 - x0):.1f}" '
            f'height="{ph}" fill="{"#f2f4f8" if i % 2 == 0 else "#ffffff"}"/>'
        )
        out.append(
            f'<line class="phase-mark" x1="{x0:.1f}" x2="{x0:.1f}" y1="{top - 14}" y2="{top + ph}" '
            f'stroke="#888" stroke-dasharray="4 3"/>'
        )
        lx, row = labels[i]
        out.append(
            f'<text class="phase-label" x="{lx:.1f}" y="{10 + LABEL_ROW_H * (row + 1)}" font-size="11" '
            f'fill="#444">{escape(name)}</text>'
        )
    # grid and axes
    y = 0.0
    while y <= ytop + 1e-9:
        out.append(f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{Y(y):.1f}" y2="{Y(y):.1f}" stroke="#ddd"/>')
        out.append(
            f'<text x="{left - 6}" y="{Y(y) + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
            f"{escape(fmt_bytes(y))}</text>"
        )
        y += ystep
    x = 0.0
    while x <= xmax + 1e-9:
        out.append(
            f'<text x="{X(x):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle" fill="#555">{x:g}</text>'
        )
        x += xstep
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle" '
        f'fill="#555">{escape(x_label)}</text>'
    )
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#999"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#999"/>')
    # series
    for name, colour, s in series:
        if not s:
            continue
        coords = " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in s)
        out.append(
            f'<polyline class="series" data-series="{escape(name)}" points="{coords}" fill="none" '
            f'stroke="{colour}" stroke-width="2"><title>{escape(name)}</title></polyline>'
        )
        peak = max(s, key=lambda p: p[1])
        out.append(
            f'<circle class="peak" cx="{X(peak[0]):.1f}" cy="{Y(peak[1]):.1f}" r="3.5" fill="{colour}">'
            f"<title>peak {escape(name)}: {escape(fmt_bytes(peak[1]))} at {peak[0]:.2f} s</title></circle>"
        )
    # legend
    lx = left + 8
    for name, colour, s in series:
        if not s:
            continue
        out.append(
            f'<rect x="{lx}" y="{top + 6}" width="12" height="3" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{top + 11}" font-size="11" fill="#222">{escape(name)}</text>'
        )
        lx += 22 + 7 * len(name)
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(
    chart_id: str,
    bars: Sequence[tuple[str, float, Sequence[tuple[float, str, str]]]],
    width: int = 900,
    bar_h: int = 18,
    label_w: int = 230,
    empty: str = "no data",
) -> Markup:
    """Horizontal byte bars, largest first; each bar may carry overlay segments (value, colour, name)."""
    if not bars:
        return Markup(
            f'<svg id="{escape(chart_id)}" class="chart chart-empty" width="{width}" height="30" '
            f'role="img"><text x="10" y="20">{escape(empty)}</text></svg>'
        )
    gap, top = 5, 6
    right = 110
    keys = list(dict.fromkeys((colour, name) for _, _, segs in bars for _, colour, name in segs))
    height = top + len(bars) * (bar_h + gap) + 6 + (20 if keys else 0)
    vmax = max(b[1] for b in bars) or 1.0
    pw = width - label_w - right
    out = [
        f'<svg id="{escape(chart_id)}" class="chart chart-bars" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img">'
    ]
    for i, (label, value, segments) in enumerate(bars):
        y = top + i * (bar_h + gap)
        w = pw * value / vmax
        out.append(f'<g class="bar" data-label="{escape(label)}" data-value="{int(value)}">')
        out.append(
            f'<text x="{label_w - 8}" y="{y + bar_h - 5}" font-size="12" text-anchor="end" fill="#222">'
            f"{escape(label)}</text>"
        )
        out.append(
            f'<rect x="{label_w}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_h}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {int(value):,} bytes</title></rect>'
        )
        x = float(label_w)
        for seg_v, colour, seg_name in segments:
            sw = pw * seg_v / vmax
            if sw <= 0:
                continue
            out.append(
                f'<rect class="segment" x="{x:.1f}" y="{y}" width="{sw:.1f}" height="{bar_h}" '
                f'fill="{colour}"><title>{escape(label)} {escape(seg_name)}: {int(seg_v):,} bytes'
                f"</title></rect>"
            )
            x += sw
        out.append(
            f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h - 5}" font-size="12" fill="#444">'
            f"{escape(fmt_bytes(value))}</text>"
        )
        out.append("</g>")
    if keys:  # what the segment colours mean (the bar itself is the total)
        y = top + len(bars) * (bar_h + gap) + 8
        x = float(label_w)
        out.append('<g class="legend">')
        for colour, name in [(PALETTE[0], "total"), *keys]:
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{colour}"/>'
                f'<text x="{x + 14:.1f}" y="{y + 9}" font-size="11" fill="#444">{escape(name)}</text>'
            )
            x += 24 + 7 * len(name)
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


def heat_colour(value: int, vmax: int) -> str:
    """Log-scaled white-to-red, so 10 reads and 1 M reads are both visible in one table."""
    if value <= 0 or vmax <= 0:
        return "#ffffff"
    f = math.log1p(value) / math.log1p(vmax)
    # white (255,255,255) -> light orange -> deep red (178,24,43)
    r = int(255 - (255 - 178) * f)
    g = int(255 - (255 - 24) * f)
    b = int(255 - (255 - 43) * f)
    return f"#{r:02x}{g:02x}{b:02x}"

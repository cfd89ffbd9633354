"""Plain-data tables shared by every renderer, so text, JSON and HTML show the same numbers.

Nothing here formats or prints: each function turns a Profile into lists/dicts of ints and strings
that a renderer lays out. Keeping the selection logic (what is hot, what is cold, what is shown)
in one place is what makes "the JSON numbers equal the text numbers" true by construction.
"""

from __future__ import annotations

from typing import Any

from dagprof.profile import AccessRow, Profile
from dagstore.units import fmt_bytes as fmt_bytes  # re-exported; its home is dagstore/units.py


def class_attrs(profile: Profile) -> dict[str, list[str]]:
    """Every known attribute per class: from access rows and from sizes, so never-touched ones show up."""
    out: dict[str, list[str]] = {}
    for r in profile.access:
        attrs = out.setdefault(r.cls, [])
        if r.attr not in attrs:
            attrs.append(r.attr)
    sizes = (profile.sections.get("sizes") or {}).get("classes") or {}
    for cls, c in sizes.items():
        attrs = out.setdefault(cls, [])
        for a in c.get("attrs") or {}:
            if a not in attrs:
                attrs.append(a)
    return out


def attr_bytes(profile: Profile, cls: str, attr: str) -> int:
    """Exclusive bytes of one attribute from the sizes section, 0 when not sized."""
    sizes = (profile.sections.get("sizes") or {}).get("classes") or {}
    a = ((sizes.get(cls) or {}).get("attrs") or {}).get(attr) or {}
    return int(a.get("bytes", 0) or 0)


def access_summary(profile: Profile, top: int = 8) -> list[dict[str, Any]]:
    """Per class (hottest class first): the `top` hottest and `top` coldest attributes with per-phase counts.

    Cold means fewest reads over the whole run; ties are broken by bytes held (bigger first), so
    a large never-read attribute is shown before a tiny one. Attributes known only from sizes
    (never touched at all) count as cold with reads 0. When a class has at most 2*top attributes
    they are all shown once, hottest first, and "cold" is empty.
    """
    phases = profile.phase_names()
    totals = profile.access_totals()
    cells: dict[tuple[str, str, str], AccessRow] = {(r.cls, r.attr, r.phase): r for r in profile.access}
    out = []
    for cls, attrs in class_attrs(profile).items():
        rows: list[dict[str, Any]] = []
        for attr in attrs:
            t = totals.get((cls, attr)) or AccessRow(cls, attr, "*", 0, 0, 0, -1)
            per_phase: dict[str, list[int]] = {}
            for ph in phases:
                c = cells.get((cls, attr, ph))
                per_phase[ph] = [c.reads, c.writes, c.deletes] if c else [0, 0, 0]
            rows.append(
                {
                    "attr": attr,
                    "phases": per_phase,
                    "total": [t.reads, t.writes, t.deletes],
                    "readers": t.instances,
                    "bytes": attr_bytes(profile, cls, attr),
                }
            )
        hot_sorted = sorted(rows, key=lambda r: (-r["total"][0], -r["total"][1], r["attr"]))
        if len(rows) <= 2 * top:
            hot, cold, hidden = hot_sorted, [], 0
        else:
            hot = hot_sorted[:top]
            shown = {r["attr"] for r in hot}
            cold_sorted = sorted(
                (r for r in rows if r["attr"] not in shown),
                key=lambda r: (r["total"][0], -r["bytes"], -r["total"][1], r["attr"]),
            )
            cold = cold_sorted[:top]
            hidden = len(rows) - len(hot) - len(cold)
        out.append(
            {
                "cls": cls,
                "reads": sum(r["total"][0] for r in rows),
                "writes": sum(r["total"][1] for r in rows),
                "deletes": sum(r["total"][2] for r in rows),
                "attrs": len(rows),
                "never_read": sum(1 for r in rows if r["total"][0] == 0),
                "show_readers": any(r["readers"] >= 0 for r in rows),
                "hot": hot,
                "cold": cold,
                "hidden": hidden,
            }
        )
    out.sort(key=lambda c: (-c["reads"], c["cls"]))
    return out


def counts_table(profile: Profile) -> list[dict[str, Any]]:
    """The size-annotated counts table, biggest total bytes first."""
    counts = profile.sections.get("counts") or {}
    rows = [
        {
            "cls": cls,
            **{
                k: c.get(k, 0)
                for k in ("now", "peak", "created", "morphed_in", "morphed_out", "avg_bytes", "total_bytes")
            },
        }
        for cls, c in counts.items()
    ]
    rows.sort(key=lambda r: (-(r["total_bytes"] or 0), r["cls"]))
    return rows


def class_sizes(profile: Profile) -> list[dict[str, Any]]:
    """Per class bytes and, inside each, per attribute bytes with share of the class and waste stats."""
    classes = (profile.sections.get("sizes") or {}).get("classes") or {}
    out = []
    for cls, c in classes.items():
        total = int(c.get("total", 0) or 0)
        attrs = []
        for attr, a in (c.get("attrs") or {}).items():
            b = int(a.get("bytes", 0) or 0)
            attrs.append(
                {
                    "attr": attr,
                    "bytes": b,
                    "pct": (100.0 * b / total) if total else 0.0,
                    "set": int(a.get("set", 0) or 0),
                    "empty": int(a.get("empty", 0) or 0),
                    "empty_bytes": int(a.get("empty_bytes", 0) or 0),
                    "distinct": int(a.get("distinct", -1) if a.get("distinct") is not None else -1),
                    "dup_bytes": int(a.get("dup_bytes", 0) or 0),
                }
            )
        attrs.sort(key=lambda r: (-r["bytes"], r["attr"]))
        out.append(
            {
                "cls": cls,
                "count": int(c.get("count", 0) or 0),
                "total": total,
                "shallow": int(c.get("shallow", 0) or 0),
                "per_instance": (total // int(c["count"])) if c.get("count") else 0,
                "attrs": attrs,
            }
        )
    out.sort(key=lambda r: (-r["total"], r["cls"]))
    return out


def monitor_summary(profile: Profile) -> dict[str, Any] | None:
    """Peaks and cost of the background monitor, or None when the run had no monitor."""
    mon = profile.sections.get("monitor")
    if not mon:
        return None
    samples = mon.get("samples") or []
    cost = mon.get("cost") or {}

    def peak(i: int) -> int:
        vals = [s[i] for s in samples if len(s) > i and isinstance(s[i], (int, float))]
        return int(max(vals)) if vals else 0

    return {
        "interval_s": mon.get("interval_s", 0.0),
        "samples": len(samples),
        "duration_s": float(samples[-1][0]) if samples else 0.0,
        "peak_rss": peak(1),
        "peak_rss_anon": peak(2),
        "peak_rss_file": peak(3),
        "marks": [list(m) for m in (mon.get("marks") or [])],
        "cost_cpu_s": float(cost.get("cpu_s", 0.0) or 0.0),
        "cost_samples": int(cost.get("samples", len(samples)) or 0),
        "cost_self_bytes": int(cost.get("self_bytes", 0) or 0),
    }


def fmt_int(n: int | None) -> str:
    """Thousands-separated integer; '-' for unknown (negative sentinel) values."""
    if n is None or (isinstance(n, int) and n < 0):
        return "-"
    return f"{int(n):,}"

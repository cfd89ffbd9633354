"""Renderers of a `dagprof compare` result: plain SCons vs SCons with the node store, side by side.

The comparison dict is produced by the CLI; its shape:
    {"argv": [...], "runs": N, "machine": str,
     "variants": {"plain": {metric: [per run], ..., "median": {metric: value}}, "store": {...}},
     "ratios": {metric: store/plain median ratio}}
with metrics peak_rss, peak_rss_anon, peak_rss_file, wall_s, node_bytes, nodes, spilled_attrs,
spilled_bytes, reloads, reuse_hits. Text, JSON and HTML all show the rows of `compare_rows`.
"""
from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dagprof.report import svg
from dagprof.report.tables import fmt_bytes, fmt_int

# (key, label, unit, lower_is_better)
METRICS = (
    ("peak_rss", "peak RSS", "bytes", True),
    ("peak_rss_anon", "peak RSS anon", "bytes", True),
    ("peak_rss_file", "peak RSS file", "bytes", True),
    ("node_bytes", "node data at end", "bytes", True),
    ("nodes", "nodes", "count", None),
    ("bytes_per_node", "node bytes / node", "bytes", True),
    ("wall_s", "wall time", "seconds", True),
    ("spilled_attrs", "attributes spilled", "count", None),
    ("spilled_bytes", "bytes spilled", "bytes", None),
    ("reloads", "reloads", "count", None),
    ("reuse_hits", "reuse hits", "count", None),
)


def _variants(result: dict) -> tuple[str, dict, str, dict]:
    """The baseline and the store variant; named plain/store, else the first two in order."""
    v = result.get("variants") or {}
    if "plain" in v and "store" in v:
        return "plain", v["plain"], "store", v["store"]
    names = list(v)
    if len(names) < 2:
        raise ValueError("comparison needs two variants (plain and store)")
    return names[0], v[names[0]], names[1], v[names[1]]


def _median(variant: dict, key: str) -> float | None:
    med = variant.get("median") or {}
    if key == "bytes_per_node":
        nb, n = med.get("node_bytes"), med.get("nodes")
        return (nb / n) if isinstance(nb, (int, float)) and isinstance(n, (int, float)) and n else None
    val = med.get(key)
    return val if isinstance(val, (int, float)) else None


def _runs(variant: dict, key: str) -> list:
    if key == "bytes_per_node":
        nb, n = variant.get("node_bytes") or [], variant.get("nodes") or []
        return [(a / b) if b else None for a, b in zip(nb, n)]
    vals = variant.get(key)
    return list(vals) if isinstance(vals, list) else []


def compare_rows(result: dict) -> list[dict[str, Any]]:
    """One row per metric with both medians, the store/plain ratio and the per-run values."""
    base_name, base, other_name, other = _variants(result)
    ratios = result.get("ratios") or {}
    rows = []
    for key, label, unit, lower_better in METRICS:
        a, b = _median(base, key), _median(other, key)
        if a is None and b is None:
            continue
        ratio = ratios.get(key) if key in ratios else None
        if ratio is None and a and b is not None:
            ratio = b / a
        rows.append({"key": key, "label": label, "unit": unit, "lower_is_better": lower_better,
                     base_name: a, other_name: b, "ratio": ratio,
                     f"{base_name}_runs": _runs(base, key), f"{other_name}_runs": _runs(other, key)})
    return rows


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes":
        return fmt_bytes(value)
    if unit == "seconds":
        return f"{value:.2f} s"
    return fmt_int(int(value))


def _fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def render_compare(result: dict, console: Console) -> None:
    """The side-by-side savings table (metric | plain | store | ratio), medians over the runs."""
    base_name, _b, other_name, _o = _variants(result)
    rows = compare_rows(result)
    title = f"{base_name} vs {other_name}: median of {result.get('runs', '?')} runs each"
    t = Table(title=title, title_justify="left", header_style="bold cyan", box=box.SIMPLE_HEAD)
    t.add_column("metric")
    t.add_column(base_name, justify="right")
    t.add_column(other_name, justify="right")
    t.add_column(f"ratio {other_name}/{base_name}", justify="right")
    for r in rows:
        ratio = Text(_fmt_ratio(r["ratio"]))
        if r["ratio"] is not None and r["lower_is_better"] is not None:
            better = r["ratio"] < 1 if r["lower_is_better"] else r["ratio"] > 1
            ratio.stylize("green" if better and r["ratio"] != 1 else ("red" if r["ratio"] != 1 else ""))
        t.add_row(r["label"], _fmt(r[base_name], r["unit"]), _fmt(r[other_name], r["unit"]), ratio)
    console.print(t)
    argv = result.get("argv")
    foot = []
    if argv:
        foot.append("scons " + " ".join(map(str, argv)))
    if result.get("machine"):
        foot.append(str(result["machine"]))
    if foot:
        console.print("[dim]" + " · ".join(foot) + "[/dim]", soft_wrap=True)


def compare_to_json(result: dict) -> str:
    """The comparison as stable JSON, with the computed rows (same numbers as the table)."""
    data = dict(result)
    data["table"] = compare_rows(result)
    return json.dumps(data, indent=2, sort_keys=True, default=list) + "\n"


def _chart(result: dict) -> Any:
    base_name, base, other_name, other = _variants(result)
    bars = []
    for name, v in ((base_name, base), (other_name, other)):
        rss = _median(v, "peak_rss")
        if rss is not None:
            bars.append((f"{name} peak RSS", rss, [(_median(v, "peak_rss_anon") or 0, "#dc3912", "anon"),
                                                   (_median(v, "peak_rss_file") or 0, "#109618", "file")]))
    for name, v in ((base_name, base), (other_name, other)):
        nb = _median(v, "node_bytes")
        if nb is not None:
            bars.append((f"{name} node data", nb, []))
    return svg.bar_chart("chart-compare", bars)


def write_compare_html(result: dict, path: str) -> None:
    """One self-contained HTML page with the savings table and a bar chart."""
    from dagprof.report.html import environment, json_script, write_atomic

    base_name, _b, other_name, _o = _variants(result)
    rows = compare_rows(result)
    for r in rows:
        r["base_fmt"] = _fmt(r[base_name], r["unit"])
        r["other_fmt"] = _fmt(r[other_name], r["unit"])
        r["ratio_fmt"] = _fmt_ratio(r["ratio"])
        r["base_runs_fmt"] = ", ".join(_fmt(x, r["unit"]) for x in r[f"{base_name}_runs"])
        r["other_runs_fmt"] = ", ".join(_fmt(x, r["unit"]) for x in r[f"{other_name}_runs"])
        better = None
        if r["ratio"] is not None and r["lower_is_better"] is not None and r["ratio"] != 1:
            better = (r["ratio"] < 1) == bool(r["lower_is_better"])
        r["verdict"] = "" if better is None else ("better" if better else "worse")
    argv = result.get("argv") or []
    html = environment().get_template("compare.html.j2").render(
        title="dagprof compare" + (": scons " + " ".join(map(str, argv)) if argv else ""),
        result=result, rows=rows, base_name=base_name, other_name=other_name, chart=_chart(result),
        data=json_script({"table": compare_rows(result)}),
    )
    write_atomic(path, html)

"""Renderers of a `dagprof compare` result: plain SCons vs SCons with the node store (and, when measured,
null builds answered from the DAG cache and GNU Make), side by side.

The comparison dict is produced by the CLI; its shape:
    {"argv": [...], "runs": N, "machine": str,
     "variants": {"plain": {metric: [per run], ..., "median": {metric: value}}, "store": {...},
                  optionally "dagcache": {..., "answered": [bool per run]}, "make": {...}},
     "ratios": {metric: store/plain median ratio},
     "ratios_by_variant": {variant: {metric: variant/plain median ratio}}}
with metrics peak_rss, peak_rss_anon, peak_rss_file, wall_s, node_bytes, nodes, spilled_attrs,
spilled_bytes, reloads, reuse_hits. Text, JSON and HTML all show the rows of `compare_rows`; the first
variant is the baseline every ratio divides by.
"""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dagprof.report import svg
from dagprof.report.tables import fmt_int
from dagstore.units import fmt_bytes

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
    names = variant_names(result)
    v = result["variants"]
    return names[0], v[names[0]], names[1], v[names[1]]


def variant_names(result: dict) -> list[str]:
    """Baseline first (plain, else the first), then the others in their order; at least two."""
    v = result.get("variants") or {}
    names = list(v)
    if len(names) < 2:
        raise ValueError("comparison needs two variants (plain and store)")
    if "plain" in v:
        names.remove("plain")
        names.insert(0, "plain")
        if "store" in v:
            names.remove("store")
            names.insert(1, "store")
    return names


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


def subset(result: dict, names: list[str]) -> dict:
    """The same comparison showing only some variants (the first one stays the baseline)."""
    out = dict(result)
    out["variants"] = {n: result["variants"][n] for n in names}
    out["ratios_by_variant"] = {n: r for n, r in (result.get("ratios_by_variant") or {}).items() if n in names}
    if "store" not in names:
        out["ratios"] = out["ratios_by_variant"].get(names[1], {}) if len(names) > 1 else {}
    return out


def compare_rows(result: dict, keys: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One row per metric with every variant's median, its ratio to the baseline and its per-run values.

    ``ratio`` is the second variant's (the store's) ratio; ``ratios`` has every non-baseline variant's."""
    names = variant_names(result)
    variants = result["variants"]
    base_name = names[0]
    by_variant = dict(result.get("ratios_by_variant") or {})
    if len(names) > 1 and names[1] not in by_variant and result.get("ratios"):
        by_variant[names[1]] = result["ratios"]
    rows = []
    for key, label, unit, lower_better in METRICS:
        if keys is not None and key not in keys:
            continue
        medians = {n: _median(variants[n], key) for n in names}
        if all(m is None for m in medians.values()):
            continue
        a = medians[base_name]
        ratios: dict[str, float | None] = {}
        for n in names[1:]:
            b = medians[n]
            r = (by_variant.get(n) or {}).get(key)
            if r is None and a and b is not None:
                r = b / a
            ratios[n] = r
        row: dict[str, Any] = {
            "key": key,
            "label": label,
            "unit": unit,
            "lower_is_better": lower_better,
            "ratio": ratios.get(names[1]),
            "ratios": ratios,
        }
        for n in names:
            row[n] = medians[n]
            row[f"{n}_runs"] = _runs(variants[n], key)
        rows.append(row)
    return rows


def _better(ratio: float | None, lower_is_better: bool | None) -> bool | None:
    if ratio is None or lower_is_better is None or ratio == 1:
        return None
    return (ratio < 1) == bool(lower_is_better)


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


def render_compare(result: dict, console: Console, keys: tuple[str, ...] | None = None, footer: bool = True) -> None:
    """The side-by-side table (metric | plain | store | ratio | dagcache | ratio ...), medians over the runs."""
    names = variant_names(result)
    base_name = names[0]
    rows = compare_rows(result, keys)
    title = f"{' vs '.join(names)}: median of {result.get('runs', '?')} runs each"
    t = Table(title=title, title_justify="left", header_style="bold cyan", box=box.SIMPLE_HEAD)
    t.add_column("metric", no_wrap=True)
    t.add_column(base_name, justify="right")
    for n in names[1:]:
        t.add_column(n, justify="right")
        t.add_column(f"ratio {n}/{base_name}", justify="right")
    for r in rows:
        cells: list[Any] = [r["label"], _fmt(r[base_name], r["unit"])]
        for n in names[1:]:
            ratio = Text(_fmt_ratio(r["ratios"][n]))
            better = _better(r["ratios"][n], r["lower_is_better"])
            if better is not None:
                ratio.stylize("green" if better else "red")
            cells += [_fmt(r[n], r["unit"]), ratio]
        t.add_row(*cells)
    console.print(t)
    if not footer:
        return
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
    names = variant_names(result)
    v = result["variants"]
    bars = []
    for name in names:
        rss = _median(v[name], "peak_rss")
        if rss is not None:
            bars.append(
                (
                    f"{name} peak RSS",
                    rss,
                    [
                        (_median(v[name], "peak_rss_anon") or 0, "#dc3912", "anon"),
                        (_median(v[name], "peak_rss_file") or 0, "#109618", "file"),
                    ],
                )
            )
    for name in names:
        nb = _median(v[name], "node_bytes")
        if nb is not None:
            bars.append((f"{name} node data", nb, []))
    return svg.bar_chart("chart-compare", bars)


def html_context(result: dict, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What compare.html.j2 (and the demo's page) needs to show one comparison table."""
    names = variant_names(result)
    rows = compare_rows(result, keys)
    for r in rows:
        r["cells"] = []
        for i, n in enumerate(names):
            cell = {
                "name": n,
                "value": _fmt(r[n], r["unit"]),
                "runs": ", ".join(_fmt(x, r["unit"]) for x in r[f"{n}_runs"]),
            }
            if i:
                better = _better(r["ratios"][n], r["lower_is_better"])
                cell["ratio"] = _fmt_ratio(r["ratios"][n])
                cell["verdict"] = "" if better is None else ("better" if better else "worse")
            r["cells"].append(cell)
    return {"result": result, "rows": rows, "names": names, "base_name": names[0], "chart": _chart(result)}


def write_compare_html(result: dict, path: str) -> None:
    """One self-contained HTML page with the comparison table and a bar chart."""
    from dagprof.report.html import environment, json_script, write_atomic

    argv = result.get("argv") or []
    html = (
        environment()
        .get_template("compare.html.j2")
        .render(
            title="dagprof compare" + (": scons " + " ".join(map(str, argv)) if argv else ""),
            data=json_script({"table": compare_rows(result)}),
            **html_context(result),
        )
    )
    write_atomic(path, html)

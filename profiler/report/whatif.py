"""Renderers of a what-if estimate (dagprof.whatif): one terminal table, or JSON with the same numbers."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from dagstore.units import fmt_bytes


def render_text(est: dict[str, Any], console: Console) -> None:
    """Bytes saved per change and in total (each byte once); reloads and their time for spills."""
    t = Table(
        title="[bold]What if[/bold] (estimated from the recorded sizes and access counts; each byte counted once)",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
        box=None,
        header_style="bold cyan",
    )
    for col in ("change", "attribute", "bytes saved", "reloads", "reload time"):
        t.add_column(col, justify="left" if col in ("change", "attribute") else "right", no_wrap=True)
    for r in est["changes"]:
        first = True
        for name in r["targets"]:
            b = r["per_attr"].get(name)
            shared = " (counted under an earlier change)" if name in r["shared"] else ""
            note = " (not sized)" if b is None else shared
            sp = (r.get("spill") or {}).get(name)
            if sp is not None and sp["why"] != "spilled" and not note:
                note = f" ({sp['why']})"
            t.add_row(
                r["kind"] if first else "",
                name + note,
                fmt_bytes(b or 0),
                f"{sp['reloads']:,}" if sp is not None else "",
                "",
            )
            first = False
        if len(r["targets"]) > 1 or r["kind"] == "spill":
            t.add_row(
                "",
                f"[bold]{r['kind']} total[/bold]",
                f"[bold]{fmt_bytes(r['bytes'])}[/bold]",
                f"{r['reloads']:,}" if r["kind"] == "spill" else "",
                f"{r['reload_time_s']:.3f} s" if r["kind"] == "spill" else "",
            )
    t.add_row(
        "[bold]total[/bold]",
        "",
        f"[bold]{fmt_bytes(est['bytes'])}[/bold] ({est['bytes']:,} B)",
        f"{est['reloads']:,}",
        f"{est['reload_time_s']:.3f} s",
    )
    console.print(t)
    before, after = est["node_bytes_before"], est["node_bytes_after"]
    if before:
        console.print(
            f"node data {fmt_bytes(before)} -> {fmt_bytes(after)} ({100.0 * after / before:.1f}%)"
            + (
                f"; peak RSS {fmt_bytes(est['peak_rss'])} -> about {fmt_bytes(est['peak_rss_after_estimate'])}"
                if est["peak_rss"] is not None
                else ""
            )
        )
    if est["reloads"] or any(r["kind"] == "spill" for r in est["changes"]):
        console.print(
            f"reload latency {est['reload_latency_s'] * 1e6:.1f} us ({est['reload_latency_source']}); "
            "reloads: the recorded reads after the values' safe points (profiler/whatif.py); "
            f"every read from the build phase on, the upper bound: {est['reloads_upper']:,}"
        )
    for note in est["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")


def to_json(est: dict[str, Any]) -> str:
    return json.dumps({"what_if": est}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

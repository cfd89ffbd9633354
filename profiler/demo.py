"""The story `dagprof demo` tells on an embedded synthetic project, in about a minute (the command that
runs it is profiler/commands/demo.py).

Why: a newcomer should see with one command and no project of their own what dagprof shows and what
it saves. The demo generates a C project (with an equivalent Makefile), builds it with GNU Make and
with SCons, then tells three things, in the terminal and in one HTML page:
  1. where the memory goes: node data by class and the top findings of a profile of the null build;
  2. what the attribute store saves: plain SCons vs `dagprof build --store lmdb --dag-cache off`;
  3. a null build answered from the DAG cache, side by side with plain SCons and GNU Make (peak RSS,
     wall time, ratios), all measured alternately by `dagprof compare`'s machinery.
"""

from __future__ import annotations

from typing import Any

TOP_FINDINGS = 5
STORE_KEYS = (
    "peak_rss",
    "peak_rss_anon",
    "node_bytes",
    "nodes",
    "bytes_per_node",
    "wall_s",
    "spilled_attrs",
    "spilled_bytes",
    "reloads",
)
NULL_KEYS = ("peak_rss", "peak_rss_anon", "peak_rss_file", "wall_s")


def memory_story(profile: Any) -> dict[str, Any]:
    """Part 1 from a profile: node data by class, the top findings, the process's peak."""
    from .analyze import findings_of
    from .report import tables

    classes = tables.class_sizes(profile)
    return {
        "classes": classes[:4],
        "node_bytes": sum(c["total"] for c in classes),
        "nodes": sum(c["count"] for c in classes),
        "findings": findings_of(profile)[:TOP_FINDINGS],
        "findings_total": len(findings_of(profile)),
    }


def _x(ratio: float | None) -> str:
    """A ratio as 'N x less/faster' prose: 0.25 -> '4.0x less'."""
    if not ratio:
        return "?"
    return f"{1 / ratio:.1f}x less" if ratio < 1 else f"{ratio:.2f}x more"


def headlines(result: dict[str, Any]) -> dict[str, str]:
    """One sentence per comparison part, from the medians (the tables hold the details)."""
    from dagstore.units import fmt_bytes

    v = {n: d.get("median") or {} for n, d in result["variants"].items()}
    r = result.get("ratios_by_variant") or {}
    out = {}
    st, pl = v["store"], v["plain"]
    if st.get("node_bytes") and pl.get("node_bytes"):
        store = (
            f"node data left in memory: {fmt_bytes(pl['node_bytes'])} -> {fmt_bytes(st['node_bytes'])} "
            f"({_x(r['store'].get('node_bytes'))}); "
        )
    else:
        store = ""
    out["store"] = store + (
        f"peak RSS {fmt_bytes(pl['peak_rss'])} -> {fmt_bytes(st['peak_rss'])} "
        f"({r['store']['peak_rss']:.2f}x), wall {pl['wall_s']:.2f} s -> {st['wall_s']:.2f} s "
        f"({r['store']['wall_s']:.2f}x)"
    )
    parts = [f"plain SCons {pl['wall_s']:.2f} s, {fmt_bytes(pl['peak_rss'])}"]
    if "dagcache" in v:
        d, rd = v["dagcache"], r["dagcache"]
        answered = result["variants"]["dagcache"].get("answered") or []
        parts.append(
            f"DAG cache {d['wall_s']:.2f} s, {fmt_bytes(d['peak_rss'])} "
            f"({1 / rd['wall_s']:.0f}x faster, {rd['peak_rss']:.2f}x the RSS; "
            f"answered without SCons in {sum(answered)} of {len(answered)} runs)"
        )
    if "make" in v:
        m = v["make"]
        own = (m.get("peak_rss_anon") or 0) + (m.get("peak_rss_file") or 0)
        rss = f"{fmt_bytes(own)} sampled RSS" if own else f"under {fmt_bytes(m['peak_rss'])} RSS (too brief to sample)"
        parts.append(f"GNU Make {m['wall_s']:.2f} s, {rss}")
    out["null"] = "; ".join(parts)
    return out


def show_story(console: Any, memory: dict[str, Any], result: dict[str, Any]) -> None:
    """The three parts in the terminal."""
    from dagstore.units import fmt_bytes

    from .report.compare import render_compare, subset
    from .report.tables import fmt_int
    from .report.text import findings_table

    console.print()
    console.print("[bold]1. where the memory goes[/bold] (profile of the null build, dagprof profile)")
    console.print(
        f"node data: {fmt_bytes(memory['node_bytes'])} in {fmt_int(memory['nodes'])} objects; "
        "by class: " + ", ".join(f"{c['cls']} {fmt_bytes(c['total'])}" for c in memory["classes"])
    )
    console.print(
        findings_table(
            memory["findings"],
            title=f"top {len(memory['findings'])} of {memory['findings_total']} findings (estimated bytes saved)",
        )
    )
    lines = headlines(result)
    console.print()
    console.print(
        "[bold]2. what the attribute store saves[/bold] (null build, store's first build: "
        "dagprof build --store lmdb --dag-cache off)"
    )
    render_compare(subset(result, ["plain", "store"]), console, keys=STORE_KEYS, footer=False)
    console.print(lines["store"], soft_wrap=True)
    console.print()
    names = [n for n in ("plain", "dagcache", "make") if n in result["variants"]]
    console.print(
        "[bold]3. null build: the DAG cache vs plain SCons vs GNU Make[/bold] "
        "(dagprof build, answered from the snapshot a previous build confirmed)"
    )
    render_compare(subset(result, names), console, keys=NULL_KEYS)
    console.print(lines["null"], soft_wrap=True)
    for note in result.get("notes") or []:
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    console.print()


def write_demo_html(
    path: str, info: Any, fulls: list[str], memory: dict[str, Any], result: dict[str, Any], total: float, args: Any
) -> None:
    """One self-contained page with the same three parts."""
    from .report.compare import html_context, subset
    from .report.html import environment, json_script, write_atomic

    names = [n for n in ("plain", "dagcache", "make") if n in result["variants"]]
    store = html_context(subset(result, ["plain", "store"]), STORE_KEYS)
    null = html_context(subset(result, names), NULL_KEYS)
    html = (
        environment()
        .get_template("demo.html.j2")
        .render(
            title=f"dagprof demo: {len(info.files)} C files",
            result=result,
            memory=memory,
            store=store,
            null=null,
            lines=headlines(result),
            fulls=fulls,
            total=total,
            files=len(info.files),
            libs=len(info.dirs),
            nodes=info.nodes_estimate,
            root=str(info.root),
            runs=args.runs,
            data=json_script({"store": store["rows"], "null": null["rows"], "findings": memory["findings"]}),
        )
    )
    write_atomic(path, html)

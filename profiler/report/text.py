"""Terminal report of a Profile (rich): what `dagprof profile` prints and `dagprof report` shows.

Every number comes from dagprof.report.tables, the same rows the JSON and HTML renderers use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dagprof.profile import Profile
from dagprof.report import tables
from dagprof.report.tables import fmt_int
from dagstore.units import fmt_bytes

SECTIONS = (
    "meta",
    "phases",
    "access",
    "sizes",
    "counts",
    "lifetimes",
    "monitor",
    "snapshots",
    "cycles",
    "findings",
    "store",
)


def _cell(counts: list[int], with_deletes: bool) -> Text:
    """One reads/writes[/deletes] cell; all-zero cells are a dim dot so hot cells stand out."""
    r, w, d = counts
    if r == 0 and w == 0 and d == 0:
        return Text("·", style="dim")
    s = f"{r:,}/{w:,}" + (f"/{d:,}" if with_deletes else "")
    return Text(s, style="bold" if r else "")


def render_access_summary(profile: Profile, console: Console, top: int = 8) -> None:
    """Hottest and coldest attributes per class and phase: the table a user reads first."""
    summary = tables.access_summary(profile, top=top)
    if not summary:
        console.print("[dim]no attribute access was recorded[/dim]")
        return
    phases = profile.phase_names()
    for c in summary:
        with_deletes = c["deletes"] > 0
        unit = "reads/writes/deletes" if with_deletes else "reads/writes"
        title = (
            f"[bold]{c['cls']}[/bold]: {c['reads']:,} reads, {c['writes']:,} writes"
            + (f", {c['deletes']:,} deletes" if with_deletes else "")
            + f"; {c['attrs']} attributes, {c['never_read']} never read"
        )
        t = Table(
            title=title,
            title_justify="left",
            caption=f"cells: {unit}",
            caption_justify="left",
            show_edge=False,
            pad_edge=False,
            box=None,
            header_style="bold cyan",
        )
        t.add_column("", no_wrap=True)
        t.add_column("attribute", no_wrap=True)
        for ph in phases:
            t.add_column(ph, justify="right", no_wrap=True)
        t.add_column("total", justify="right", no_wrap=True)
        if c["show_readers"]:
            t.add_column("readers", justify="right", no_wrap=True)
        t.add_column("bytes", justify="right", no_wrap=True)

        def add(
            row: dict[str, Any], label: Text, t: Table = t, c: dict[str, Any] = c, with_deletes: bool = with_deletes
        ) -> None:  # bound now: called in this iteration only
            cells: list[Any] = [label, row["attr"]]
            cells += [_cell(row["phases"][ph], with_deletes) for ph in phases]
            cells.append(_cell(row["total"], with_deletes))
            if c["show_readers"]:
                cells.append(fmt_int(row["readers"]))
            cells.append(fmt_bytes(row["bytes"]) if row["bytes"] else Text("·", style="dim"))
            t.add_row(*cells)

        for row in c["hot"]:
            add(row, Text("hot", style="red") if row["total"][0] else Text("cold", style="blue"))
        if c["cold"]:
            if c["hidden"]:
                t.add_row("", Text(f"… {c['hidden']} more", style="dim"), *[""] * (len(t.columns) - 2))
            for row in c["cold"]:
                add(row, Text("cold", style="blue"))
        console.print(t)
        console.print()


def render(profile: Profile, console: Console, sections: set[str] | None = None, top: int = 8) -> None:
    """The full text report; each section is skipped when the profile has no data for it."""
    want = set(SECTIONS) if sections is None else set(sections)
    renderers: list[tuple[str, Callable[[Profile, Console], bool]]] = [
        ("meta", _render_meta),
        ("phases", _render_phases),
        ("access", lambda p, c: _render_access(p, c, top)),
        ("sizes", _render_sizes),
        ("counts", _render_counts),
        ("lifetimes", _render_lifetimes),
        ("monitor", _render_monitor),
        ("snapshots", _render_snapshots),
        ("cycles", _render_cycles),
        ("findings", _render_findings),
        ("store", _render_store),
    ]
    for name, fn in renderers:
        if name in want:
            fn(profile, console)


def _heading(console: Console, text: str) -> None:
    from rich.rule import Rule

    # at most 120 columns: a console writing to a pipe is as wide as its longest table (dagprof.cmdline.console)
    console.print(Rule(f"[bold]{text}[/bold]", align="left"), width=min(console.width, 120))


def _render_access(profile: Profile, console: Console, top: int = 8) -> bool:
    if not profile.access and not (profile.sections.get("sizes") or {}).get("classes"):
        return False
    _heading(console, "Attribute access (hottest and coldest per class)")
    render_access_summary(profile, console, top=top)
    return True


def _render_meta(profile: Profile, console: Console) -> bool:
    m = profile.meta
    if not m:
        return False
    _heading(console, "Run")
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    argv = m.get("argv")
    rows = [
        ("command", " ".join(str(a) for a in argv) if isinstance(argv, list) else argv),
        ("cwd", m.get("cwd")),
        ("started", m.get("started")),
        ("machine", m.get("machine")),
        (
            "versions",
            ", ".join(
                f"{label} {m[k]}"
                for k, label in (("tool_version", "dagprof"), ("scons_version", "SCons"), ("python_version", "Python"))
                if m.get(k)
            ),
        ),
        ("wall time", f"{m['wall_s']:.2f} s" if isinstance(m.get("wall_s"), (int, float)) else None),
        (
            "peak RSS",
            (fmt_bytes(m["peak_rss"]) + " (the kernel's high-water mark of the build)")
            if isinstance(m.get("peak_rss"), (int, float))
            else None,
        ),
        ("exit code", m.get("exit_code")),
        ("store", m.get("store") or ("none" if "store" in m else None)),
    ]
    for k, v in rows:
        if v not in (None, ""):
            t.add_row(k, str(v))
    console.print(t)
    console.print()
    return True


def _render_phases(profile: Profile, console: Console) -> bool:
    if not profile.phases:
        return False
    _heading(console, "Phases")
    t = Table(box=None, header_style="bold cyan")
    for col in ("phase", "start s", "end s", "duration s"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for p in profile.phases:
        s, e = p.get("start_s"), p.get("end_s")
        dur = f"{e - s:.3f}" if isinstance(s, (int, float)) and isinstance(e, (int, float)) else "-"
        t.add_row(str(p.get("name")), _f3(s), _f3(e), dur)
    console.print(t)
    console.print()
    return True


def _f3(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def _render_sizes(profile: Profile, console: Console, top_attrs: int = 12) -> bool:
    rows = tables.class_sizes(profile)
    if not rows:
        return False
    sizes = profile.sections["sizes"]
    _heading(console, "Sizes per class and attribute (exclusive bytes)")
    extra = []
    if sizes.get("objects") is not None:
        extra.append(f"{fmt_int(sizes['objects'])} objects sized")
    if isinstance(sizes.get("elapsed_s"), (int, float)):
        extra.append(f"in {sizes['elapsed_s']:.2f} s")
    if sizes.get("boundary"):
        extra.append("boundary: " + ", ".join(sizes["boundary"]))
    if extra:
        console.print("[dim]" + "; ".join(extra) + "[/dim]")
    t = Table(box=None, header_style="bold cyan")
    t.add_column("class")
    for col in ("instances", "total bytes", "", "shallow", "bytes/instance"):
        t.add_column(col, justify="right")
    for c in rows:
        t.add_row(
            c["cls"],
            fmt_int(c["count"]),
            fmt_int(c["total"]),
            fmt_bytes(c["total"]),
            fmt_int(c["shallow"]),
            fmt_int(c["per_instance"]),
        )
    console.print(t)
    console.print()
    for c in rows:
        if not c["attrs"]:
            continue
        t = Table(
            title=f"[bold]{c['cls']}[/bold] attributes ({fmt_bytes(c['total'])} total)",
            title_justify="left",
            box=None,
            header_style="bold cyan",
        )
        for col in ("attribute", "bytes", "", "% class", "set", "empty", "empty bytes", "distinct", "dup bytes"):
            t.add_column(col, justify="left" if col == "attribute" else "right", no_wrap=True)
        for a in c["attrs"][:top_attrs]:
            t.add_row(
                a["attr"],
                fmt_int(a["bytes"]),
                fmt_bytes(a["bytes"]),
                f"{a['pct']:.1f}%",
                fmt_int(a["set"]),
                fmt_int(a["empty"]),
                fmt_int(a["empty_bytes"]),
                fmt_int(a["distinct"]),
                fmt_int(a["dup_bytes"]),
            )
        rest = c["attrs"][top_attrs:]
        if rest:
            t.add_row(
                Text(f"… {len(rest)} more", style="dim"),
                fmt_int(sum(a["bytes"] for a in rest)),
                fmt_bytes(sum(a["bytes"] for a in rest)),
                "",
                "",
                "",
                "",
                "",
                "",
            )
        console.print(t)
        console.print()
    return True


def _render_counts(profile: Profile, console: Console) -> bool:
    rows = tables.counts_table(profile)
    if not rows:
        return False
    _heading(console, "Instances (size-annotated counts)")
    t = Table(box=None, header_style="bold cyan")
    for col in ("class", "now", "peak", "created", "morphed in", "morphed out", "avg bytes", "total bytes", ""):
        t.add_column(col, justify="left" if col == "class" else "right")
    for r in rows:
        t.add_row(
            r["cls"],
            fmt_int(r["now"]),
            fmt_int(r["peak"]),
            fmt_int(r["created"]),
            fmt_int(r.get("morphed_in", 0)),
            fmt_int(r.get("morphed_out", 0)),
            fmt_int(r["avg_bytes"]),
            fmt_int(r["total_bytes"]),
            fmt_bytes(r["total_bytes"]),
        )
    console.print(t)
    console.print(
        "[dim]by class at the end: now = live instances (gc scan at the end); created = instances that "
        "became this class (new, plus morphs into it: Entry -> File); morphed out = left it for another "
        "class[/dim]"
    )
    console.print()
    return True


def _render_lifetimes(profile: Profile, console: Console) -> bool:
    lt = profile.sections.get("lifetimes") or {}
    if not lt:
        return False
    _heading(console, "Lifetimes")
    console.print(
        "[dim]by class at the end, as Instances: created - morphed out - freed = alive (= Instances' "
        "now, unless instances existed before the profiler started); "
        "lifetimes of the freed instances, and ages at the "
        "end of those still alive ('-': none)[/dim]"
    )
    t = Table(box=None, header_style="bold cyan")
    ages = any("alive_mean_s" in r for r in lt.values())
    cols = ["class", "created", "freed", "alive", "freed: mean s", "p50 s", "max s"]
    if ages:
        cols += ["alive: mean age s", "p50 s", "max s"]
    for col in cols:
        t.add_column(col, justify="left" if col == "class" else "right")
    for cls, r in sorted(lt.items(), key=lambda kv: (-(kv[1].get("created") or 0), kv[0])):
        freed = bool(r.get("freed"))
        row = [
            cls,
            fmt_int(r.get("created")),
            fmt_int(r.get("freed")),
            fmt_int(r.get("alive")),
            _f3(r.get("mean_s")) if freed else "-",
            _f3(r.get("p50_s")) if freed else "-",
            _f3(r.get("max_s")) if freed else "-",
        ]
        if ages:
            alive = bool(r.get("alive"))
            row += [
                _f3(r.get("alive_mean_s")) if alive else "-",
                _f3(r.get("alive_p50_s")) if alive else "-",
                _f3(r.get("alive_max_s")) if alive else "-",
            ]
        t.add_row(*row)
    console.print(t)
    console.print()
    return True


def _render_monitor(profile: Profile, console: Console) -> bool:
    m = tables.monitor_summary(profile)
    if m is None:
        return False
    _heading(console, "Memory monitor")
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_column(style="dim")
    hwm = profile.meta.get("peak_rss")
    if isinstance(hwm, (int, float)):  # the same figure as the Run section's, so the two agree
        t.add_row("peak RSS", fmt_bytes(hwm), f"{int(hwm):,} bytes, the kernel's high-water mark (as in Run)")
    t.add_row(
        "highest sampled RSS",
        fmt_bytes(m["peak_rss"]),
        f"{m['peak_rss']:,} bytes, the largest of the samples below (misses peaks between samples)",
    )
    t.add_row("highest sampled anon", fmt_bytes(m["peak_rss_anon"]), f"{m['peak_rss_anon']:,} bytes")
    t.add_row("highest sampled file", fmt_bytes(m["peak_rss_file"]), f"{m['peak_rss_file']:,} bytes")
    t.add_row("samples", f"{m['samples']:,}", f"every {m['interval_s']} s over {m['duration_s']:.2f} s")
    t.add_row(
        "monitor cost",
        f"{m['cost_cpu_s']:.3f} s CPU",
        f"{m['cost_samples']:,} samples, {fmt_bytes(m['cost_self_bytes'])} own memory",
    )
    console.print(t)
    if m["marks"]:
        console.print("[dim]phase marks: " + ", ".join(f"{name} @ {t_:.2f} s" for t_, name in m["marks"]) + "[/dim]")
    console.print()
    return True


def _render_snapshots(profile: Profile, console: Console) -> bool:
    snaps = profile.sections.get("snapshots") or []
    if not snaps:
        return False
    _heading(console, "Snapshots")
    classes: list[str] = []
    for s in snaps:
        for cls in s.get("counts") or {}:
            if cls not in classes:
                classes.append(cls)
    has_bytes = any(s.get("bytes") for s in snaps)
    t = Table(box=None, header_style="bold cyan")
    t.add_column("snapshot")
    t.add_column("t s", justify="right")
    t.add_column("RSS", justify="right")
    for cls in classes:
        t.add_column(cls, justify="right")
    for s in snaps:
        cells = [str(s.get("label")), _f3(s.get("t")), fmt_bytes(s.get("rss"))]
        for cls in classes:
            n = (s.get("counts") or {}).get(cls)
            b = (s.get("bytes") or {}).get(cls) if has_bytes else None
            cells.append("-" if n is None else (f"{n:,}" + (f" ({fmt_bytes(b)})" if b is not None else "")))
        t.add_row(*cells)
    console.print(t)
    console.print()
    return True


def _render_cycles(profile: Profile, console: Console) -> bool:
    cy = profile.sections.get("cycles")
    if not cy:
        return False
    _heading(console, "Reference cycles (garbage collector)")
    console.print(
        f"collections {fmt_int(cy.get('collections'))}, collected {fmt_int(cy.get('collected'))}, "
        f"unreachable cycles {fmt_int(cy.get('unreachable_cycles'))}, "
        f"objects in them at the final check {fmt_int(cy.get('garbage'))}, "
        f"uncollectable {fmt_int(cy.get('uncollectable', 0))}"
    )
    if not (cy.get("by_class") or {}):
        console.print("no tracked class was found in an unreachable cycle")
    by = cy.get("by_class") or {}
    if by:
        t = Table(box=None, header_style="bold cyan")
        t.add_column("class in cycles")
        t.add_column("objects", justify="right")
        for cls, n in sorted(by.items(), key=lambda kv: (-kv[1], kv[0])):
            t.add_row(cls, fmt_int(n))
        console.print(t)
    for ex in (cy.get("examples") or [])[:5]:
        console.print(
            f"  [bold]{ex.get('cls')}[/bold]: " + " -> ".join(str(x) for x in ex.get("chain") or []), soft_wrap=True
        )
    console.print()
    return True


def findings_table(findings: list[dict[str, Any]], title: str | None = None) -> Table:
    """The findings as one table, for the report and the demo alike (bytes exact and human, kind, where, advice)."""
    t = Table(box=None, header_style="bold cyan", title=title, title_justify="left")
    for col in ("bytes", "", "kind", "where", "advice"):
        t.add_column(col, justify="right" if col in ("bytes", "") else "left", no_wrap=col != "advice", overflow="fold")
    for f in findings:
        where = "all candidates" if f["cls"] == "*" else f["cls"] + (f".{f['attr']}" if f.get("attr") else "")
        t.add_row(fmt_int(f["bytes"]), fmt_bytes(f["bytes"]), f["kind"], where, f["message"])
    return t


def _render_findings(profile: Profile, console: Console, limit: int = 30) -> bool:
    from dagprof.analyze import estimated_saving, findings_of

    found = findings_of(profile)
    _heading(console, "Findings (estimated bytes saved)")
    if not found:
        console.print("[dim]no findings[/dim]\n")
        return True
    console.print(findings_table(found[:limit]))
    if len(found) > limit:
        rest = found[limit:]
        console.print(
            f"[dim]… {len(rest)} more findings ({fmt_bytes(sum(f['bytes'] for f in rest))}); "
            "the JSON report lists them all[/dim]"
        )
    once = estimated_saving(found)
    console.print(
        f"all findings together: {fmt_int(once)} bytes ({fmt_bytes(once)}), each byte counted once "
        "(findings on one attribute overlap; --budget compares this figure)"
    )
    spill = next(
        (f["spill"] for f in found if f["kind"] == "spill_candidate" and f.get("attr") is None and f.get("spill")), None
    )
    if spill:
        console.print(
            "\nto spill them: [bold]dagprof build --store lmdb --spill " + spill + " -- <scons args>[/bold]",
            soft_wrap=True,
        )
    console.print()
    return True


def _render_store(profile: Profile, console: Console) -> bool:
    st = profile.sections.get("store")
    if not st:
        return False
    _heading(console, f"Node store ({st.get('backend', '?')})")
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(justify="right")
    rows = [
        ("path", st.get("path")),
        ("attributes spilled", fmt_int(st.get("spilled_attrs"))),
        ("bytes spilled", f"{fmt_int(st.get('spilled_bytes'))} ({fmt_bytes(st.get('spilled_bytes'))})"),
        ("reloads", fmt_int(st.get("reloads"))),
        ("reuse hits", fmt_int(st.get("reuse_hits"))),
        ("refused", fmt_int(st.get("refused"))),
        ("spill time", f"{_f3(st.get('spill_time_s'))} s"),
        ("reload time", f"{_f3(st.get('reload_time_s'))} s"),
        ("stopped", st.get("stopped")),
    ]
    if st.get("collapsed") is not None:
        rows.insert(3, ("empty containers collapsed", fmt_int(st.get("collapsed"))))
    if st.get("memo_evicted") is not None:
        rows.insert(4, ("memo entries evicted", fmt_int(st.get("memo_evicted"))))
    if st.get("reuse_stale"):
        rows.insert(6, ("reuse refused (file changed)", fmt_int(st.get("reuse_stale"))))
    own = st.get("own_memory") or {}
    own_text = ""
    if own:
        own_text = (
            f"{fmt_int(own.get('bytes'))} ({fmt_bytes(own.get('bytes'))}) at the end of the build: "
            f"{fmt_int(own.get('node_refs'))} node references, {fmt_int(own.get('pending_entries'))} pending "
            f"values, {fmt_int(own.get('tried_reuse'))} objects awaiting their safe point"
        )
    plan = st.get("plan") or {}
    if plan.get("line"):  # the plan, why each attribute is in it, and what became of it at the safe points
        plan_text = plan["line"].removeprefix("dagstore: spill plan ")
    elif plan.get("source"):
        plan_text = f"{plan.get('spill') or '(collapse and reuse only)'} ({plan['source']})"
    else:
        plan_text = ""
    for k, v in rows:
        if v not in (None, ""):
            t.add_row(k, Text(str(v)))
    console.print(t)
    # long lines below the table, as plain text: the plan's reasons are in [brackets], which are not markup
    for label, text in (("store's own memory", own_text), ("spill plan", plan_text)):
        if text:
            console.print(Text.assemble((label, "bold"), "  ", text))
    per = st.get("per_attr") or {}
    spilled = [(k, v) for k, v in per.items() if v.get("spilled") or v.get("reloads")]
    if spilled:
        pt = Table(box=None, header_style="bold cyan")
        for col in ("attribute", "spilled", "bytes", "reloads"):
            pt.add_column(col, justify="left" if col == "attribute" else "right")
        for k, v in sorted(spilled, key=lambda kv: (-(kv[1].get("bytes") or 0), kv[0])):
            pt.add_row(k, fmt_int(v.get("spilled")), fmt_int(v.get("bytes")), fmt_int(v.get("reloads")))
        console.print(pt)
    console.print()
    return True

"""Two recorded profiles side by side, and the memory-regression gate over that comparison.

Why: a profile is one measurement; the loop "change the build or SCons, measure again, refuse a
regression" needs the difference of two. This module is the data model of that difference (plain
dicts, no SCons, no rich): `diff_profiles` computes every number once, and the text, JSON and HTML
renderers in dagprof.report.diff lay the same rows out, as dagprof.report.tables does for one profile.

What is compared, and when (docs/usage.md, `dagprof diff`):

- run: peak RSS and wall time (meta), node bytes, sized nodes and node bytes per node (the "sizes"
  section: the sum of every sized class's exclusive bytes over the sum of their instances).
- per class (sizes): bytes, instances, bytes per instance; per attribute (sizes and access rows):
  bytes, bytes per instance of its class, instances holding it, reads and writes in total and per
  phase (phases are matched by name).
- a section is compared only when both profiles have it; otherwise its numbers are None and one
  note says so. What "appeared" or "disappeared" is judged only on the sections both profiles have,
  so a profile from `dagprof build -o` (access counts, no sizes) never makes every size "appear".

Each change is {"old", "new", "delta", "rel"}: delta = new - old, rel = delta / old (None when old is
0 or unknown). Missing values inside a compared section count as 0 (an attribute that appeared adds
its bytes), so rows sort by the bytes they changed.

The gate (`gate`) fails when peak RSS, node bytes per node or any class's bytes per instance grew by
more than `max_growth` (a fraction). Peak RSS is noisy (allocator, page cache, the monitor thread),
so it fails only when it grew by more than max(max_growth x old, `rss_floor` bytes); node bytes are
deterministic for the same build and need no floor.
"""

from __future__ import annotations

import re
from typing import Any

from dagprof.profile import Profile

RSS_FLOOR = 4 * 1024 * 1024  # bytes of peak-RSS growth always tolerated (noise of two identical small builds: <1 MiB)
TOP_CAUSES = 3


def parse_growth(text: str) -> float:
    """`5%`, `5 %` or `0.05` -> 0.05; ValueError with one line for anything else (negative, empty, words)."""
    s = str(text).strip()
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)", s)
    if not m:
        raise ValueError(f"--max-growth {text!r}: expected a percentage such as 5% (or a fraction such as 0.05)")
    value = float(m.group(1))
    return value / 100.0 if m.group(2) else value


def change(old: float | None, new: float | None) -> dict[str, Any]:
    """One compared number: both values, the difference and the relative difference."""
    delta = (new - old) if old is not None and new is not None else None
    rel = (delta / old) if delta is not None and old else None
    return {"old": old, "new": new, "delta": delta, "rel": rel}


def _num(v: Any) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _sizes(p: Profile) -> dict[str, Any]:
    return (p.sections.get("sizes") or {}).get("classes") or {}


def has_access(p: Profile) -> bool:
    """Whether the run counted attribute access (`dagprof build` counts only when its store asks)."""
    counted = p.meta.get("access_counted")
    return bool(p.access) or counted is True


def _versions(p: Profile) -> str:
    m = p.meta
    return (
        f"dagprof {m.get('tool_version', '?')}, SCons {m.get('scons_version', '?')}, "
        f"Python {m.get('python_version', '?')}"
    )


def _describe(p: Profile, source: str) -> dict[str, Any]:
    m = p.meta
    return {
        "source": source,
        "argv": m.get("argv"),
        "started": m.get("started"),
        "tool_version": m.get("tool_version"),
        "scons_version": m.get("scons_version"),
        "python_version": m.get("python_version"),
        "sizes": bool(_sizes(p)),
        "access": has_access(p),
    }


def _node_totals(p: Profile) -> tuple[int | None, int | None, float | None]:
    classes = _sizes(p)
    if not classes:
        return None, None, None
    nbytes = sum(int(c.get("total") or 0) for c in classes.values())
    nodes = sum(int(c.get("count") or 0) for c in classes.values())
    return nbytes, nodes, (nbytes / nodes if nodes else None)


def _by_key(rows: list[dict], *keys: str) -> list[dict]:
    """Biggest absolute byte change first, then biggest read change, then by name: stable output."""

    def mag(r: dict, k: str) -> float:
        d = r[k]["delta"]
        return abs(d) if d is not None else -1.0

    return sorted(rows, key=lambda r: tuple(-mag(r, k) for k in keys) + (r.get("cls", ""), r.get("attr", "")))


def _status(in_old: bool, in_new: bool) -> str:
    return "both" if in_old and in_new else ("appeared" if in_new else "disappeared")


def diff_profiles(old: Profile, new: Profile, old_source: str = "OLD", new_source: str = "NEW") -> dict[str, Any]:
    """Every number of the comparison, computed once; renderers only lay it out."""
    notes: list[str] = []
    sized = bool(_sizes(old)) and bool(_sizes(new))
    counted = has_access(old) and has_access(new)
    if _versions(old) != _versions(new):
        notes.append(
            f"recorded by different versions (OLD: {_versions(old)}; NEW: {_versions(new)}); "
            "compared field by field where both have it"
        )
    for name, ok, a, b in (
        ("sizes", sized, bool(_sizes(old)), bool(_sizes(new))),
        ("access counts", counted, has_access(old), has_access(new)),
    ):
        if not ok:
            missing = " and ".join(w for w, have in (("OLD", a), ("NEW", b)) if not have)
            what = "bytes not compared" if name == "sizes" else "reads/writes not compared"
            notes.append(f"{name}: not in {missing}; {what}")
    if old.meta.get("argv") != new.meta.get("argv"):
        notes.append(
            f"different SCons arguments (OLD: {' '.join(map(str, old.meta.get('argv') or []))!r}; "
            f"NEW: {' '.join(map(str, new.meta.get('argv') or []))!r})"
        )
    phases = old.phase_names() + [ph for ph in new.phase_names() if ph not in old.phase_names()]
    if counted and old.phase_names() != new.phase_names():
        notes.append(
            "phase names differ (OLD: "
            + ", ".join(old.phase_names())
            + "; NEW: "
            + ", ".join(new.phase_names())
            + "); per-phase counts are matched by name"
        )

    ob, on, opn = _node_totals(old)
    nb, nn, npn = _node_totals(new)
    run = [
        {
            "key": "peak_rss",
            "label": "peak RSS",
            "unit": "bytes",
            **change(_num(old.meta.get("peak_rss")), _num(new.meta.get("peak_rss"))),
        },
        {
            "key": "wall_s",
            "label": "wall time",
            "unit": "s",
            **change(_num(old.meta.get("wall_s")), _num(new.meta.get("wall_s"))),
        },
        {"key": "node_bytes", "label": "node bytes", "unit": "bytes", **change(ob, nb)},
        {"key": "nodes", "label": "nodes sized", "unit": "count", **change(on, nn)},
        {"key": "node_bytes_per_node", "label": "node bytes per node", "unit": "bytes", **change(opn, npn)},
    ]

    classes: list[dict] = []
    so, sn = _sizes(old), _sizes(new)
    if sized:
        for cls in list(so) + [c for c in sn if c not in so]:
            co, cn = so.get(cls) or {}, sn.get(cls) or {}
            cnt_o, cnt_n = int(co.get("count") or 0), int(cn.get("count") or 0)
            tot_o, tot_n = int(co.get("total") or 0), int(cn.get("total") or 0)
            classes.append(
                {
                    "cls": cls,
                    "status": _status(cls in so, cls in sn),
                    "bytes": change(tot_o, tot_n),
                    "count": change(cnt_o, cnt_n),
                    "per_instance": change(tot_o / cnt_o if cnt_o else None, tot_n / cnt_n if cnt_n else None),
                }
            )
    classes = _by_key(classes, "bytes")

    def seen(p: Profile) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        if sized:
            out |= {(c, a) for c, v in _sizes(p).items() for a in (v.get("attrs") or {})}
        if counted:
            out |= {(r.cls, r.attr) for r in p.access}
        return out

    seen_o, seen_n = seen(old), seen(new)
    acc_o, acc_n = old.access_totals(), new.access_totals()
    cell_o = {(r.cls, r.attr, r.phase): r for r in old.access}
    cell_n = {(r.cls, r.attr, r.phase): r for r in new.access}
    attrs: list[dict] = []
    for key in sorted(seen_o | seen_n):
        cls, attr = key
        row: dict[str, Any] = {"cls": cls, "attr": attr, "status": _status(key in seen_o, key in seen_n)}
        if sized:
            ao = ((so.get(cls) or {}).get("attrs") or {}).get(attr) or {}
            an = ((sn.get(cls) or {}).get("attrs") or {}).get(attr) or {}
            bo, bn = int(ao.get("bytes") or 0), int(an.get("bytes") or 0)
            co, cn = int((so.get(cls) or {}).get("count") or 0), int((sn.get(cls) or {}).get("count") or 0)
            row["bytes"] = change(bo, bn)
            row["per_instance"] = change(bo / co if co else None, bn / cn if cn else None)
            row["set"] = change(int(ao.get("set") or 0), int(an.get("set") or 0))
        else:
            row["bytes"] = row["per_instance"] = row["set"] = change(None, None)
        if counted:
            to, tn = acc_o.get(key), acc_n.get(key)
            row["reads"] = change(to.reads if to else 0, tn.reads if tn else 0)
            row["writes"] = change(to.writes if to else 0, tn.writes if tn else 0)
            row["phases"] = {}
            for ph in phases:
                xo, xn = cell_o.get((cls, attr, ph)), cell_n.get((cls, attr, ph))
                row["phases"][ph] = {
                    "reads": change(xo.reads if xo else 0, xn.reads if xn else 0),
                    "writes": change(xo.writes if xo else 0, xn.writes if xn else 0),
                }
        else:
            row["reads"] = row["writes"] = change(None, None)
            row["phases"] = {}
        attrs.append(row)
    attrs = _by_key(attrs, "bytes", "reads")

    def names(rows: list[dict], status: str, attr: bool) -> list[str]:
        return [f"{r['cls']}.{r['attr']}" if attr else r["cls"] for r in rows if r["status"] == status]

    return {
        "old": _describe(old, old_source),
        "new": _describe(new, new_source),
        "compared": {
            "sizes": sized,
            "access": counted,
            "peak_rss": run[0]["delta"] is not None,
            "wall_s": run[1]["delta"] is not None,
        },
        "phases": phases if counted else [],
        "run": run,
        "classes": classes,
        "attrs": attrs,
        "appeared": {"classes": names(classes, "appeared", False), "attrs": names(attrs, "appeared", True)},
        "disappeared": {"classes": names(classes, "disappeared", False), "attrs": names(attrs, "disappeared", True)},
        "notes": notes,
    }


def run_row(d: dict[str, Any], key: str) -> dict[str, Any]:
    """One row of the run table by key ("peak_rss", "node_bytes_per_node", ...)."""
    return next(r for r in d["run"] if r["key"] == key)


def gate(d: dict[str, Any], max_growth: float, rss_floor: int = RSS_FLOOR) -> dict[str, Any]:
    """The regression verdict over a diff: which limits were checked, which broke, the largest causes first.

    A cause's `bytes` is the memory the growth adds (peak RSS: its growth; node bytes per node and a
    class's bytes per instance: the per-unit growth times NEW's count), which orders the causes.
    """
    checked: list[str] = []
    not_compared: list[str] = []
    causes: list[dict[str, Any]] = []
    pct = f"{max_growth * 100:g}%"

    rss = run_row(d, "peak_rss")
    if rss["delta"] is None:
        not_compared.append("peak RSS (not recorded in both profiles)")
    else:
        checked.append("peak RSS")
        allowed = max(max_growth * rss["old"], rss_floor)
        if rss["delta"] > allowed:
            causes.append(
                {
                    "what": "peak RSS",
                    "bytes": int(rss["delta"]),
                    **_pick(rss),
                    "limit": f"{pct} and at least {rss_floor} bytes",
                    "attrs": [],
                }
            )
    if not d["compared"]["sizes"]:
        not_compared.append(
            "node bytes per node and bytes per instance (no sizes in "
            + " and ".join(w.upper() for w in ("old", "new") if not d[w]["sizes"])
            + "; record them with `dagprof profile` or `dagprof build --sizes`)"
        )
    else:
        npn = run_row(d, "node_bytes_per_node")
        checked.append("node bytes per node")
        if npn["rel"] is not None and npn["rel"] > max_growth:
            nodes = run_row(d, "nodes")["new"] or 0
            causes.append(
                {
                    "what": "node bytes per node",
                    "bytes": int(npn["delta"] * nodes),
                    **_pick(npn),
                    "limit": pct,
                    "attrs": _top_attrs(d, None),
                }
            )
        grown = 0
        for c in d["classes"]:
            pi = c["per_instance"]
            if c["status"] != "both" or pi["rel"] is None:
                continue
            grown += 1
            if pi["rel"] > max_growth:
                causes.append(
                    {
                        "what": f"{c['cls']} bytes per instance",
                        "cls": c["cls"],
                        "bytes": int(pi["delta"] * (c["count"]["new"] or 0)),
                        **_pick(pi),
                        "limit": pct,
                        "attrs": _top_attrs(d, c["cls"]),
                    }
                )
        checked.append(f"bytes per instance of {grown} classes")
    causes.sort(key=lambda c: (-c["bytes"], c["what"]))
    return {
        "max_growth": max_growth,
        "rss_floor": rss_floor,
        "checked": checked,
        "not_compared": not_compared,
        "causes": causes,
        "failed": bool(causes),
    }


def _pick(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("old", "new", "delta", "rel")}


def _top_attrs(d: dict[str, Any], cls: str | None, n: int = TOP_CAUSES) -> list[dict[str, Any]]:
    """The attributes whose bytes grew most (of one class, or of all): what to look at first."""
    rows = [a for a in d["attrs"] if (cls is None or a["cls"] == cls) and (a["bytes"]["delta"] or 0) > 0]
    rows.sort(key=lambda a: (-a["bytes"]["delta"], a["cls"], a["attr"]))
    return [{"name": f"{a['cls']}.{a['attr']}", **_pick(a["bytes"])} for a in rows[:n]]

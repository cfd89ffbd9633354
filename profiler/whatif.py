"""What-if from a recorded profile: the bytes a set of code changes would save, before making them.

Why: changing SCons (spill an attribute, create a container lazily, intern values, drop a field) costs
a day; the profile already knows each attribute's bytes, empty containers, duplicate values and reads.
`dagprof report FILE --what-if SPEC` asks this module. Plain data in, plain data out (no SCons, no rich);
dagprof.report.whatif renders it.

SPEC: changes joined by `;`, each `KIND=Class.attr[,Class.attr...]`:

    spill=File.includes,File.implicit_set;lazy=File.waiting_parents;intern=File.contentsig;drop=File.scanner_paths

An attribute's exclusive bytes (docs/profile-format.md, "sizes") split into three disjoint parts:
*empty* (empty_bytes: empty containers), *duplicate* (dup_bytes - empty_bytes: non-empty values equal to
one held before) and the *rest*. Each change claims parts:

| kind | claims | why |
|---|---|---|
| `drop` | empty + duplicate + rest | the attribute is no longer stored |
| `spill` | empty + duplicate + rest | values leave memory for the store (empties are collapsed) |
| `lazy` | empty | the container is created on first write |
| `intern` | empty + duplicate | equal values (empty ones too) become one shared object |

Each byte is counted once: a part already claimed by an earlier change in SPEC (the same attribute named
twice, or drop and intern of one attribute) adds nothing to a later one, which lists the attribute under
`shared`. The total is therefore never more than the attribute's bytes.

For spills, `reloads` is what the recorded access counts predict: the reads of the attribute from the
phase the store starts spilling in (`SPILL_PHASE`, the build's evaluate phase: values are spilled when
their node's task is finished) to the end; an upper bound, since reads during a node's own task come
before its spill. Their time is reloads x the reload latency measured in the profile's store section
(reload_time_s / reloads) when it has one, else `DEFAULT_RELOAD_S` (27 us, the mean LMDB get + decode
measured in docs/benchmarks.md).
"""
from __future__ import annotations

from typing import Any

from dagprof.analyze import parse_attr_names
from dagprof.profile import Profile

KINDS = ("spill", "lazy", "intern", "drop")
CLAIMS = {"drop": ("empty", "duplicate", "rest"), "spill": ("empty", "duplicate", "rest"),
          "lazy": ("empty",), "intern": ("empty", "duplicate")}
SPILL_PHASE = "evaluate/build"
DEFAULT_RELOAD_S = 27e-6


class SpecError(ValueError):
    """A --what-if SPEC that cannot be read; the message is one line for the user."""


def parse_spec(spec: str) -> list[tuple[str, list[str]]]:
    """`spill=A.x,A.y;lazy=B.z` -> [("spill", ["A.x", "A.y"]), ("lazy", ["B.z"])], or SpecError."""
    out: list[tuple[str, list[str]]] = []
    for part in (p.strip() for p in str(spec).split(";")):
        if not part:
            continue
        kind, eq, targets = part.partition("=")
        kind = kind.strip()
        if not eq:
            raise SpecError(f"--what-if: {part!r} is not KIND=Class.attr[,...] (KIND: {', '.join(KINDS)})")
        if kind not in KINDS:
            raise SpecError(f"--what-if: unknown change {kind!r}; known: {', '.join(KINDS)}")
        try:
            names = parse_attr_names(targets, f"--what-if: {kind}")
        except ValueError as e:
            raise SpecError(str(e)) from None
        out.append((kind, names))
    if not out:
        raise SpecError("--what-if: empty; expected e.g. spill=File.includes;lazy=File.waiting_parents")
    return out


def attr_parts(a: dict[str, Any]) -> dict[str, int]:
    """An attribute's bytes as disjoint parts (empty, duplicate, rest) that sum to its bytes."""
    total = max(0, int(a.get("bytes") or 0))
    empty = min(total, max(0, int(a.get("empty_bytes") or 0)))
    dup = min(total - empty, max(0, int(a.get("dup_bytes") or 0) - empty))
    return {"empty": empty, "duplicate": dup, "rest": total - empty - dup}


def reload_latency(profile: Profile) -> tuple[float, str]:
    """Seconds per reload and where the figure comes from (the store section, else the documented default)."""
    st = profile.sections.get("store") or {}
    n, t = st.get("reloads"), st.get("reload_time_s")
    if isinstance(n, int) and n > 0 and isinstance(t, (int, float)) and t > 0:
        return float(t) / n, f"measured: {n:,} reloads in this profile's store section"
    return DEFAULT_RELOAD_S, "default (no reloads measured in this profile; docs/benchmarks.md)"


def _reads_after_spill(profile: Profile, cls: str, attr: str) -> int:
    phases = profile.phase_names()
    start = phases.index(SPILL_PHASE) if SPILL_PHASE in phases else 0
    later = set(phases[start:])
    return sum(r.reads for r in profile.access if r.cls == cls and r.attr == attr and r.phase in later)


def estimate(profile: Profile, changes: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """Bytes saved per change and in total (each byte once), and the reloads spills would cost."""
    classes = (profile.sections.get("sizes") or {}).get("classes") or {}
    latency, latency_source = reload_latency(profile)
    claimed: dict[str, set[str]] = {}
    unknown: list[str] = []
    rows = []
    for kind, names in changes:
        per_attr: dict[str, int] = {}
        shared: list[str] = []
        reloads = 0
        for name in dict.fromkeys(names):
            cls, attr = name.split(".", 1)
            a = ((classes.get(cls) or {}).get("attrs") or {}).get(attr)
            if a is None:
                if name not in unknown:
                    unknown.append(name)
                continue
            parts = attr_parts(a)
            taken = claimed.setdefault(name, set())
            mine = [p for p in CLAIMS[kind] if p not in taken]
            if len(mine) < len(CLAIMS[kind]) and any(parts[p] for p in CLAIMS[kind] if p in taken):
                shared.append(name)
            taken.update(mine)
            per_attr[name] = sum(parts[p] for p in mine)
            if kind == "spill" and "rest" in mine:  # a value still held when the earlier change left some
                reloads += _reads_after_spill(profile, cls, attr)
        row: dict[str, Any] = {"kind": kind, "targets": list(dict.fromkeys(names)), "bytes": sum(per_attr.values()),
                               "per_attr": per_attr, "shared": shared}
        if kind == "spill":
            row["reloads"] = reloads
            row["reload_time_s"] = reloads * latency
        rows.append(row)
    total = sum(r["bytes"] for r in rows)
    before = sum(int(c.get("total") or 0) for c in classes.values())
    peak = profile.meta.get("peak_rss")
    peak = peak if isinstance(peak, int) and not isinstance(peak, bool) else None
    notes = []
    if not classes:
        notes.append("this profile has no sizes (e.g. `dagprof build -o` without --sizes): no bytes can be "
                     "estimated; record one with `dagprof profile` or `dagprof build --sizes -o`")
    elif unknown:
        notes.append("not sized in this profile (0 bytes): " + ", ".join(unknown))
    if any(r["kind"] == "spill" for r in rows) and not profile.access:
        notes.append("no access counts in this profile: reloads cannot be predicted (shown as 0)")
    spills = [r for r in rows if r["kind"] == "spill"]
    return {
        "changes": rows,
        "bytes": total,
        "unknown": unknown,
        "reloads": sum(r["reloads"] for r in spills),
        "reload_time_s": sum(r["reload_time_s"] for r in spills),
        "reload_latency_s": latency,
        "reload_latency_source": latency_source,
        "node_bytes_before": before,
        "node_bytes_after": before - total,
        "peak_rss": peak,
        "peak_rss_after_estimate": (peak - total) if peak is not None else None,
        "notes": notes,
    }

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

A spill frees what the store's own rule would free (`spill_outcome`; the rule is dagstore.policy's and
dagstore.spill's, restated on the recorded sizes; docs/dagstore.md, "What is cold"):

* values are spilled at their object's safe point (a finished task); empty containers are collapsed
  there (the *empty* part is claimed only for attributes that no plan collapses anyway: the empties of
  those the adapter collapses under every plan, `--spill none` included (meta "spill_collapse"), are not
  the spill's doing, and stay for a `lazy` change to claim);
* a value whose encoding is under the store's floor (`STORE_MIN_BYTES`, 64 B) stays in memory: an
  attribute whose distinct values average less than the floor plus a str header (`SMALL_VALUE_BYTES`)
  is predicted to spill nothing (hashes such as File.contentsig);
* each spilled value leaves a marker in its slot (`marker_bytes()`), except reusable attributes
  (meta "spill_reuse": File.includes), which share one marker;
* an equal value held by several objects is one object: it is counted once (the sizes' `distinct`),
  for one marker, where it stays alive;
* an attribute whose values stay alive elsewhere (the adapter's `spill_keep` attributes that are not
  reusable: File.binfo, whose lists live on in the .sconsign entry) frees nothing;
* when the profile's store section recorded this attribute's spills (`dagprof build -o`), the recorded
  counts replace the guesses: values spilled, kept (too small, refused) and reloaded.

`reloads`: a value read only before its safe point is never reloaded, and a reloaded value stays in
memory, so a spilled value reloads at most once: the predicted reloads are the recorded reads in the
phases after the safe points' phase (meta "late_phases"[0], the build: `.sconsign` writing), at most one
per spilled value. A reusable attribute is spilled right after each scan, so its reads in the build phase
beyond one per value (other targets' scans) reload too. `reloads_upper` is the old upper bound (every read
from the build phase on). Their time is reloads x the reload latency measured in the profile's store
section (reload_time_s / reloads) when it has one, else `DEFAULT_RELOAD_S` (27 us, the mean LMDB get +
decode measured in docs/benchmarks.md). A spill that frees nothing predicts no reloads.
"""

from __future__ import annotations

import sys
from typing import Any

from dagprof.analyze import parse_attr_names
from dagprof.profile import Profile

KINDS = ("spill", "lazy", "intern", "drop")
CLAIMS = {
    "drop": ("empty", "duplicate", "rest"),
    "spill": ("empty", "duplicate", "rest"),
    "lazy": ("empty",),
    "intern": ("empty", "duplicate"),
}
SPILL_PHASE = "evaluate/build"  # the safe points' phase when the profile's meta has no "late_phases"
DEFAULT_RELOAD_S = 27e-6
STORE_MIN_BYTES = 64  # the store's floor: StoreHooks' Spiller(min_bytes=64) (tests/test_diff.py pins it)
SMALL_VALUE_BYTES = STORE_MIN_BYTES + sys.getsizeof("")  # a str this large in memory encodes to the floor


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


def marker_bytes() -> int:
    """What a spilled value leaves in its slot: a dagstore.spill.Marker and its sequence number."""
    from dagstore.spill import Marker

    seq = 1 << 20
    return sys.getsizeof(Marker("spilled", seq)) + sys.getsizeof(seq)


def store_rules(profile: Profile) -> dict[str, Any]:
    """The adapter's store rules the estimate needs, as the profile's meta records them (profiles written
    before they were recorded get none: nothing collapsed anyway, nothing reusable; "old_meta" says so)."""
    meta = profile.meta
    collapse, reuse, keep = meta.get("spill_collapse"), meta.get("spill_reuse"), meta.get("spill_keep")
    late = meta.get("late_phases") or [SPILL_PHASE]

    def names(by_class: Any) -> set[str]:
        return {f"{c}.{a}" for c, attrs in by_class.items() for a in attrs} if isinstance(by_class, dict) else set()

    return {
        "collapse": names(collapse),
        "reuse": names(reuse),
        "keep": dict(keep) if isinstance(keep, dict) else {},
        "safe_phase": late[0],
        "old_meta": not (isinstance(collapse, dict) and isinstance(reuse, dict)),
    }


def _has(rule: set[str], cls: str, attr: str) -> bool:
    return f"{cls}.{attr}" in rule


def _reads(profile: Profile, cls: str, attr: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in profile.access:
        if r.cls == cls and r.attr == attr:
            out[r.phase] = out.get(r.phase, 0) + r.reads
    return out


def spill_outcome(
    profile: Profile, cls: str, attr: str, a: dict[str, Any], claimed: dict[str, int], rules: dict[str, Any]
) -> dict[str, Any]:
    """What spilling Cls.attr frees by the store's rule (module docstring), given the parts this change claims.

    Returns bytes freed, values spilled, reloads predicted (and their upper bound) and why, in one word."""
    name = f"{cls}.{attr}"
    reusable = _has(rules["reuse"], cls, attr)
    empty = claimed.get("empty", 0)  # (estimate() claims no empties of an attribute collapsed anyway)
    nonempty = claimed.get("duplicate", 0) + claimed.get("rest", 0)
    phases = profile.phase_names()
    safe = rules["safe_phase"]
    start = phases.index(safe) if safe in phases else 0
    reads = _reads(profile, cls, attr)
    in_build = reads.get(phases[start], 0) if phases else 0
    after = sum(reads.get(ph, 0) for ph in phases[start + 1 :])
    upper = in_build + after

    def outcome(freed: int = 0, values: int = 0, reloads: int = 0, why: str = "spilled") -> dict[str, Any]:
        if freed <= 0:  # nothing spilled: nothing to reload
            values, reloads, upper_ = 0, 0, 0
        else:
            upper_ = upper
        return {
            "bytes": empty + max(0, freed),
            "values": values,
            "reloads": reloads,
            "reloads_upper": upper_,
            "why": why,
        }

    if attr in rules["keep"] and not reusable:
        return outcome(why="stays alive elsewhere: " + str(rules["keep"][attr]))
    n_empty = int(a.get("empty") or 0)
    held = max(0, int(a.get("set") or 0) - n_empty)
    distinct = a.get("distinct")
    if isinstance(distinct, int) and distinct >= 0:  # equal values held by several objects: one object each
        held = min(held, max(0, distinct - (1 if n_empty else 0)))
    own = max(0, int(a.get("bytes") or 0) - max(int(a.get("dup_bytes") or 0), int(a.get("empty_bytes") or 0)))
    if nonempty <= 0 or held <= 0:
        return outcome(why="nothing left to spill" if held else "no non-empty value")
    rec = ((profile.sections.get("store") or {}).get("per_attr") or {}).get(name)
    if isinstance(rec, dict) and any(rec.get(k) for k in ("spilled", "small", "refused")):
        spilled, reloads = int(rec.get("spilled") or 0), int(rec.get("reloads") or 0)
        kept = int(rec.get("small") or 0) + int(rec.get("refused") or 0)
        values = spilled if reusable else max(0, spilled - reloads)  # a reusable value is spilled again after a scan
        frac = values / (spilled + kept) if spilled + kept else 0.0
        why = "recorded spills"
    else:
        if not reusable and own / held < SMALL_VALUE_BYTES:  # the reusable marker is shared: size does not matter
            return outcome(why="too small")
        values, frac, why = held, 1.0, "spilled"
        reloads = min(held, after) + (max(0, in_build - held) if reusable else 0)
    markers = 0 if reusable else values * marker_bytes()
    freed = int(nonempty * frac) - markers
    return outcome(freed, values, reloads, why if freed > 0 else "frees less than its markers")


def estimate(profile: Profile, changes: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """Bytes saved per change and in total (each byte once), and the reloads spills would cost."""
    classes = (profile.sections.get("sizes") or {}).get("classes") or {}
    latency, latency_source = reload_latency(profile)
    rules = store_rules(profile)
    claimed: dict[str, set[str]] = {}
    unknown: list[str] = []
    rows = []
    for kind, names in changes:
        per_attr: dict[str, int] = {}
        detail: dict[str, dict[str, Any]] = {}
        shared: list[str] = []
        for name in dict.fromkeys(names):
            cls, attr = name.split(".", 1)
            a = ((classes.get(cls) or {}).get("attrs") or {}).get(attr)
            if a is None:
                if name not in unknown:
                    unknown.append(name)
                continue
            parts = attr_parts(a)
            taken = claimed.setdefault(name, set())
            claims = CLAIMS[kind]
            if kind == "spill" and _has(rules["collapse"], cls, attr):  # its empties go under every plan anyway
                claims = tuple(p for p in claims if p != "empty")
            mine = [p for p in claims if p not in taken]
            if len(mine) < len(claims) and any(parts[p] for p in claims if p in taken):
                shared.append(name)
            taken.update(mine)
            if kind == "spill":
                detail[name] = spill_outcome(profile, cls, attr, a, {p: parts[p] for p in mine}, rules)
                per_attr[name] = detail[name]["bytes"]
            else:
                per_attr[name] = sum(parts[p] for p in mine)
        row: dict[str, Any] = {
            "kind": kind,
            "targets": list(dict.fromkeys(names)),
            "bytes": sum(per_attr.values()),
            "per_attr": per_attr,
            "shared": shared,
        }
        if kind == "spill":
            row["spill"] = detail
            row["reloads"] = sum(d["reloads"] for d in detail.values())
            row["reloads_upper"] = sum(d["reloads_upper"] for d in detail.values())
            row["values"] = sum(d["values"] for d in detail.values())
            row["reload_time_s"] = row["reloads"] * latency
        rows.append(row)
    total = sum(r["bytes"] for r in rows)
    before = sum(int(c.get("total") or 0) for c in classes.values())
    peak = profile.meta.get("peak_rss")
    peak = peak if isinstance(peak, int) and not isinstance(peak, bool) else None
    notes = []
    if not classes:
        notes.append(
            "this profile has no sizes (e.g. `dagprof build -o` without --sizes): no bytes can be "
            "estimated; record one with `dagprof profile` or `dagprof build --sizes -o`"
        )
    elif unknown:
        notes.append("not sized in this profile (0 bytes): " + ", ".join(unknown))
    if any(r["kind"] == "spill" for r in rows) and rules["old_meta"]:
        notes.append(
            "this profile does not record the store's collapse and reuse lists (an older dagprof): "
            "spills estimated as if nothing were collapsed anyway or reused; record it again for these"
        )
    if any(r["kind"] == "spill" for r in rows) and not profile.access:
        notes.append("no access counts in this profile: reloads cannot be predicted (shown as 0)")
    spills = [r for r in rows if r["kind"] == "spill"]
    return {
        "changes": rows,
        "bytes": total,
        "unknown": unknown,
        "reloads": sum(r["reloads"] for r in spills),
        "reloads_upper": sum(r["reloads_upper"] for r in spills),
        "reload_time_s": sum(r["reload_time_s"] for r in spills),
        "reload_latency_s": latency,
        "reload_latency_source": latency_source,
        "node_bytes_before": before,
        "node_bytes_after": before - total,
        "peak_rss": peak,
        "peak_rss_after_estimate": (peak - total) if peak is not None else None,
        "notes": notes,
    }

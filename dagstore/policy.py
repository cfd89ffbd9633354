"""What to spill: the cold (class, attribute) pairs, chosen from access statistics.

The store meets the profiler only through `AccessStats`: rows of
(class, attribute, phase, reads, writes, deletes). They come from this run's counters or, for
`--spill auto`, from the previous build's access table kept in the store's metadata.

"Cold" has ONE definition, `cold_attributes()`, used by `--spill auto` (through `choose`) and by the
report's advice (dagprof.analyze, on the recorded profile), so the `--spill` list a report recommends
is the list `--spill auto` picks from the same profile (docs/dagstore.md, "What is cold"):

1. only attributes the adapter declares safe to spill are considered;
2. an attribute is cold when it was written at least once and read at most
   MAX_LATE_READS_PER_WRITE (2) times per write in the late phases (after objects reach their safe
   points: SCons' build and .sconsign phases; all phases when the rows carry no such phase). Two
   reads per write keep values read once when built and once when .sconsign is written, and
   exclude memo caches read thousands of times. An attribute with no rows is not cold: unknown is
   not cold;
3. what the last build's spills taught (reloads per spilled value, `history`) overrides that:
   at most KEEP_BELOW (0.1) reloads per spill makes an attribute cold, more than DROP_ABOVE (0.5)
   makes it hot.

Sizes play no part in steps 1-3: `--spill auto` has no sizes (a build does not size its nodes).

4. the cost model (`spill_verdict`), applied whenever the last build spilled the attribute: a spilled
   value costs SPILL_US once (encode + write; measured: the last build's spill time per spilled value)
   and RELOAD_US per reload (measured: its reload time per reload), and frees its bytes only while it
   stays out (expected freed = encoded bytes per value x (1 - reload rate)). It is spilled only when
   the share of the build's peak RSS it frees is at least the share of the build's wall time it costs:
   when it frees at least peak RSS / wall time bytes per microsecond it costs (`exchange_rate`: the
   last build's; never under BYTES_PER_US = 2, the rate when the build's figures are unknown), and never when more than
   DROP_ABOVE (0.5) of its spills were reloaded (an attribute reloaded on most nodes is not cold,
   whatever it frees). Encoded bytes under-count a value's memory (a list of 3 names is ~80 bytes of
   Python objects for ~30 encoded), so the rule errs on the side of not spilling.
5. attributes the adapter declares `keep` are never chosen by `auto` (SCons: `binfo`, whose lists
   live on in the .sconsign entry it was merged into, so spilling it frees little; `includes`, which
   the scanners read again for every target depending on the file, so it would be reloaded).

Reuse is not spilling: attributes the adapter declares reusable (SCons: `File.includes`) are written
under a stable key for the next build and stay in memory (`Spiller.record`), under every plan,
`none` included; they are spilled only when the plan names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class AccessStats(Protocol):
    """One access-table row; dagprof.profile.AccessRow satisfies it."""

    cls: str
    attr: str
    phase: str
    reads: int
    writes: int
    deletes: int


class PolicyError(ValueError):
    """A --spill value that names nothing spillable; one line for the user."""


@dataclass
class Candidates:
    """What the adapter declares safe: attributes that may be spilled after an object's safe point."""

    spill: dict[str, tuple[str, ...]]  # class name -> attributes safe to spill
    collapse: dict[str, tuple[str, ...]]  # class name -> attributes whose empty containers collapse
    reuse: dict[str, tuple[str, ...]]  # class name -> content-derived attributes reused across builds
    default_cold: dict[str, tuple[str, ...]]  # what `auto` spills when no previous profile exists
    all_attrs: dict[str, tuple[str, ...]]  # every attribute of every class (to validate --spill)
    late_phases: tuple[str, ...] = ()  # phases after objects reach their safe points
    keep: dict[str, str] = field(default_factory=dict)  # attribute -> why `auto` never spills it (shared, re-read)


@dataclass
class Plan:
    """The decision: per class name, the attributes to spill, collapse and reuse; and why."""

    spill: dict[str, tuple[str, ...]] = field(default_factory=dict)
    collapse: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reuse: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "none"
    why: dict[str, str] = field(default_factory=dict)  # "Cls.attr" in the plan -> why it is there
    dropped: dict[str, str] = field(default_factory=dict)  # "Cls.attr" left out by the cost model -> why
    reuse_note: str = ""  # the measured cost of reuse against the scans it saves (reuse_verdict)

    def spill_spec(self) -> str:
        """The exact `--spill` argument that reproduces this plan."""
        return spill_spec(self.spill)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "spill": self.spill_spec(),
            "why": dict(self.why),
            "dropped": dict(self.dropped),
            "reuse": spill_spec(self.reuse),
            "reuse_note": self.reuse_note,
        }


def spill_spec(spill: Mapping[str, Sequence[str]]) -> str:
    """`Cls.attr,...` in one order (classes sorted, attributes as given): the report's and the plan's."""
    return ",".join(f"{c}.{a}" for c, attrs in sorted(spill.items()) for a in attrs)


def parse_spill(spec: str, candidates: Candidates) -> dict[str, tuple[str, ...]]:
    """Validate `Cls.attr,Cls.attr` against the real classes; unknown names are a usage error."""
    out: dict[str, list[str]] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        cls, dot, attr = item.partition(".")
        if not dot or not cls or not attr:
            raise PolicyError(f"--spill: {item!r} is not of the form Class.attribute")
        if cls not in candidates.all_attrs:
            known = ", ".join(sorted(candidates.all_attrs))
            raise PolicyError(f"--spill: unknown class {cls!r} (known: {known})")
        if attr not in candidates.all_attrs[cls]:
            raise PolicyError(f"--spill: {cls} has no attribute {attr!r}")
        if attr not in candidates.spill.get(cls, ()):
            safe = ", ".join(candidates.spill.get(cls, ())) or "none"
            raise PolicyError(f"--spill: {cls}.{attr} is not safe to spill (spillable on {cls}: {safe})")
        out.setdefault(cls, [])
        if attr not in out[cls]:
            out[cls].append(attr)
    if not out:
        raise PolicyError("--spill: empty list (use 'auto' or 'none')")
    return {c: tuple(a) for c, a in out.items()}


MAX_LATE_READS_PER_WRITE = 2.0
KEEP_BELOW = 0.1
DROP_ABOVE = 0.5
BYTES_PER_US = 2.0  # the least a spill must free per microsecond it costs (exchange_rate: the build's rate when known)
SPILL_US = 20.0  # cost of spilling one value when not measured (bench/store_micro.py: encode 14-18 + put 4)
RELOAD_US = 10.0  # cost of one reload when not measured (bench/store_micro.py: get + decode ~7)


def latency(
    spill_time_s: float = 0.0,
    spilled: int = 0,
    reload_time_s: float = 0.0,
    reloads: int = 0,
    build_wall_s: float = 0.0,
    build_peak_rss: int = 0,
) -> dict[str, float]:
    """Measured per-value costs of a build's store ({"spill_us", "reload_us"}); defaults where nothing was
    measured. With the build's wall time and peak RSS, also its exchange rate ("build_bytes_per_us", see
    `spill_verdict`)."""
    out = {
        "spill_us": 1e6 * spill_time_s / spilled if spilled and spill_time_s > 0 else SPILL_US,
        "reload_us": 1e6 * reload_time_s / reloads if reloads and reload_time_s > 0 else RELOAD_US,
    }
    if build_wall_s > 0 and build_peak_rss > 0:
        out["build_bytes_per_us"] = build_peak_rss / (1e6 * build_wall_s)
    return out


def latency_of_section(sec: Mapping | None) -> dict[str, float]:
    """`latency()` from a profile's store section (or the store's "store_latency" meta record)."""
    sec = sec or {}
    if "spill_us" in sec:
        out = {"spill_us": float(sec["spill_us"]), "reload_us": float(sec.get("reload_us") or RELOAD_US)}
        if sec.get("build_bytes_per_us"):
            out["build_bytes_per_us"] = float(sec["build_bytes_per_us"])
        return out
    return latency(
        float(sec.get("spill_time_s") or 0),
        int(sec.get("spilled_attrs") or 0),
        float(sec.get("reload_time_s") or 0),
        int(sec.get("reloads") or 0),
    )


def history_of(per_attr: Mapping[str, Mapping]) -> dict[str, list[int]]:
    """One build's spill history entries, {"Cls.attr": [spilled, reloads, encoded bytes, kept]}, for the
    attributes it met at safe points (spilled, too small or refused)."""
    return {
        k: [
            int(v.get("spilled") or 0),
            int(v.get("reloads") or 0),
            int(v.get("bytes") or 0),
            int(v.get("small") or 0) + int(v.get("refused") or 0),
        ]
        for k, v in per_attr.items()
        if isinstance(v, Mapping) and (v.get("spilled") or v.get("small") or v.get("refused"))
    }


def next_history(old: Mapping | None, per_attr: Mapping[str, Mapping]) -> dict[str, list[int]]:
    """The history the next build's plan weighs: this build's entries, and the last known ones of the
    attributes it did not meet. An attribute the plan left out keeps the figures that left it out; without
    them the next plan would spill it again and the one after drop it again (every other build)."""
    out = {k: list(v) for k, v in (old or {}).items() if isinstance(v, (list, tuple))}
    out.update(history_of(per_attr))
    return out


def next_latency(old: Mapping | None, now: Mapping[str, float], spilled: int, reloads: int) -> dict[str, float]:
    """The latency record the next build weighs: this build's per-value costs where it measured them (it
    spilled, it reloaded), the last known ones otherwise, and this build's exchange rate."""
    out = dict(latency_of_section(old)) if old else latency()
    if spilled:
        out["spill_us"] = now["spill_us"]
    if reloads:
        out["reload_us"] = now["reload_us"]
    if "build_bytes_per_us" in now:
        out["build_bytes_per_us"] = now["build_bytes_per_us"]
    return out


def exchange_rate(lat: Mapping[str, float] | None) -> float:
    """Bytes a spill must free per microsecond it costs: the build's peak RSS over its wall time (freeing that
    share of the peak costs the same share of the time), never under BYTES_PER_US."""
    return max(BYTES_PER_US, float((lat or {}).get("build_bytes_per_us") or 0.0))


def spill_verdict(
    spilled: int, reloads: int, nbytes: int | None, lat: Mapping[str, float] | None = None
) -> tuple[bool, str]:
    """The cost model (module docstring, step 4): (worth spilling, one-line reason) from the last build's spills."""
    lat = lat or latency()
    rate = reloads / spilled if spilled else 0.0
    if rate > DROP_ABOVE:
        return False, f"reloaded {rate:.0%} of {spilled:,} spills"
    cost = lat["spill_us"] + rate * lat["reload_us"]
    if nbytes is None:  # an old record without bytes: only the reload rate speaks
        return True, f"reloaded {rate:.0%}"
    freed = nbytes / spilled * (1 - rate)
    need = exchange_rate(lat)
    if freed < need * cost:
        return False, f"frees {freed:.0f} B/value for {cost:.0f} us, under {need:.0f} B/us (reloaded {rate:.0%})"
    return True, f"reloaded {rate:.0%}, frees {freed:.0f} B/value for {cost:.0f} us"


def expected_fraction(entry: Sequence[int] | Mapping | None, held: int = 0) -> float:
    """Of an attribute's values, the share a spill keeps out of memory: spilled and not reloaded, among
    the values met at safe points (spilled + too small + refused) or, when larger, `held` (how many values
    the attribute held: values on objects that never reach a safe point stay); 1.0 when nothing was recorded."""
    if not entry:
        return 1.0
    if isinstance(entry, Mapping):
        spilled, reloads = int(entry.get("spilled") or 0), int(entry.get("reloads") or 0)
        kept = int(entry.get("small") or 0) + int(entry.get("refused") or 0)
    else:
        spilled, reloads = int(entry[0]), int(entry[1])
        kept = int(entry[3]) if len(entry) > 3 else 0
    seen = max(spilled + kept, held)
    if seen <= 0:
        return 1.0
    return max(0.0, spilled - reloads) / seen


def cold_attributes(
    rows: Iterable[AccessStats],
    spillable: Mapping[str, Sequence[str]] | None,
    late_phases: Sequence[str] = (),
    history: Mapping[str, Sequence[int]] | None = None,
    max_reads_per_write: float = MAX_LATE_READS_PER_WRITE,
    lat: Mapping[str, float] | None = None,
    keep: Mapping[str, str] | None = None,
    why: dict[str, str] | None = None,
    dropped: dict[str, str] | None = None,
) -> dict[str, tuple[str, ...]]:
    """THE rule for "cold" (module docstring): per class, the attributes to spill, in `spillable`'s order.

    spillable: class -> attributes safe to spill; None means every attribute in the rows (a profile
    from another tool). history: {"Cls.attr": [spilled, reloads]} of the previous build.
    """
    late = set(late_phases)
    reads: dict[tuple[str, str], int] = {}
    writes: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.cls, row.attr)
        writes[key] = writes.get(key, 0) + row.writes
        if not late or row.phase in late:
            reads[key] = reads.get(key, 0) + row.reads
    if spillable is None:
        order: dict[str, list[str]] = {}
        for cls, attr in writes:
            order.setdefault(cls, []).append(attr)
        spillable = {c: sorted(a) for c, a in order.items()}
    keep = keep or {}
    why = {} if why is None else why
    dropped = {} if dropped is None else dropped
    out: dict[str, tuple[str, ...]] = {}
    for cls, attrs in spillable.items():
        cold = []
        for a in attrs:
            w, r = writes.get((cls, a), 0), reads.get((cls, a), 0)
            if w > 0 and r <= max_reads_per_write * w:
                if a in keep:
                    dropped[f"{cls}.{a}"] = keep[a]
                    continue
                cold.append(a)
                why[f"{cls}.{a}"] = f"measured cold: {r:,} late reads for {w:,} writes"
        if cold:
            out[cls] = tuple(cold)
    spillable = {c: tuple(a for a in attrs if a not in keep) for c, attrs in spillable.items()}
    return adjust_with_history(out, history, spillable, lat=lat, why=why, dropped=dropped)


def cold_from_stats(
    rows: Iterable[AccessStats], candidates: Candidates, max_reads_per_write: float = MAX_LATE_READS_PER_WRITE
) -> dict[str, tuple[str, ...]]:
    """`cold_attributes` over what the adapter declares safe, without history."""
    return cold_attributes(rows, candidates.spill, candidates.late_phases, None, max_reads_per_write)


def adjust_with_history(
    cold: dict[str, tuple[str, ...]],
    history: Mapping[str, Sequence[int]] | None,
    candidates: Candidates | Mapping[str, Sequence[str]],
    keep_below: float = KEEP_BELOW,
    drop_above: float = DROP_ABOVE,
    lat: Mapping[str, float] | None = None,
    why: dict[str, str] | None = None,
    dropped: dict[str, str] | None = None,
) -> dict[str, tuple[str, ...]]:
    """What the last build's spills taught, through the cost model (`spill_verdict`): an attribute that
    was rarely reloaded and freed more than it cost stays (or becomes) cold; one that did not is dropped.

    history: {"Cls.attr": [spilled, reloads, encoded bytes, kept]} from the previous build's store statistics
    (older records have only the first two). lat: the measured per-value costs (`latency()`).
    candidates: the Candidates, or just their `spill` mapping (class -> safe attributes).
    why / dropped: filled with one reason per attribute kept / left out.
    """
    spillable = candidates.spill if isinstance(candidates, Candidates) else candidates
    why = {} if why is None else why
    dropped = {} if dropped is None else dropped
    if not history:
        return cold
    out = {c: list(a) for c, a in cold.items()}
    for label, entry in sorted(history.items()):
        cls, _, attr = label.partition(".")
        if not isinstance(entry, (list, tuple)) or len(entry) < 2:
            continue
        spilled, reloads = int(entry[0]), int(entry[1])
        nbytes = int(entry[2]) if len(entry) > 2 else None
        kept = int(entry[3]) if len(entry) > 3 else 0
        if attr not in spillable.get(cls, ()):
            continue
        if spilled <= 0:  # met at safe points, never spilled: every value too small or refused (encoding wasted)
            if kept > 0 and attr in out.get(cls, ()):
                out[cls].remove(attr)
                why.pop(label, None)
                dropped[label] = f"none of {kept:,} values spilled (too small or refused)"
            continue
        rate = reloads / spilled
        ok, reason = spill_verdict(spilled, reloads, nbytes, lat)
        ok = ok and rate <= drop_above
        attrs = out.setdefault(cls, [])
        if not ok:
            if attr in attrs:
                attrs.remove(attr)
            why.pop(label, None)
            dropped[label] = reason
        elif attr in attrs or rate <= keep_below:
            if attr not in attrs:
                attrs.append(attr)
            why[label] = f"measured cold: {reason}"
            dropped.pop(label, None)
    return {c: tuple(a) for c, a in out.items() if a}


REUSE_MIN_SAMPLES = 64  # lookups or scans a build must have timed before its figure replaces the last one


def robust_total(samples: Sequence[float], count: int, total: float) -> float:
    """The time of `count` timed calls as their median times `count` (`samples`: the first of their times),
    so that a collector pause inside one lookup (0.1-0.3 s with a large node graph: more than all the
    lookups of a build) does not decide whether reuse pays. The plain total below REUSE_MIN_SAMPLES."""
    if len(samples) < REUSE_MIN_SAMPLES or count <= 0:
        return total
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * count


def reuse_cost(old: Mapping | None, hits: int, lookup_s: float, scans: int, scan_s: float) -> dict[str, float]:
    """The figures reuse_verdict weighs, from one build's timings: a figure with too few samples keeps the
    previous build's (a build that reuses everything times no scan; one with reuse off, no lookup)."""
    out = {k: float(v) for k, v in (old or {}).items() if k in ("hit_us", "scan_us") and isinstance(v, (int, float))}
    if hits >= REUSE_MIN_SAMPLES:
        out["hit_us"] = 1e6 * lookup_s / hits
    if scans >= REUSE_MIN_SAMPLES:
        out["scan_us"] = 1e6 * scan_s / scans
    return out


def reuse_verdict(cost: Mapping | None) -> tuple[bool, str]:
    """(keep reusing, one-line reason): a reuse hit must cost less than the scan it replaces. Its cost is
    every lookup and every recording of the build divided by its hits; the scan's is the reading and
    matching of the file that SCons skips on a hit (not the header lookups, which it still does)."""
    hit_us, scan_us = (cost or {}).get("hit_us"), (cost or {}).get("scan_us")
    if hit_us is None or scan_us is None:
        return True, ""
    said = f"a reuse hit costs {hit_us:.0f} us, the scan it saves {scan_us:.0f} us"
    return hit_us < scan_us, said


def choose(
    spec: str,
    candidates: Candidates,
    previous: Sequence[AccessStats] | None = None,
    history: dict[str, Sequence[int]] | None = None,
    lat: Mapping[str, float] | None = None,
    reuse: Mapping | None = None,
) -> Plan:
    """Turn `--spill none|auto|Cls.attr,...` into a Plan (empty containers always collapse; reusable
    attributes are recorded for the next build, `none` included: recording is not spilling, unless the
    measured `reuse` cost (reuse_cost) says a hit costs more than the scan it saves)."""
    spec = (spec or "auto").strip()
    keep, note = reuse_verdict(reuse)
    plan = Plan(
        collapse=dict(candidates.collapse),
        reuse={c: a for c, a in candidates.reuse.items() if a} if keep else {},
        reuse_note=note,
    )
    if spec == "none":
        plan.source = "none"
        return plan
    if spec == "auto":
        if previous:
            plan.spill = cold_attributes(
                previous,
                candidates.spill,
                candidates.late_phases,
                history,
                lat=lat,
                keep=candidates.keep,
                why=plan.why,
                dropped=plan.dropped,
            )
            plan.source = "auto: previous build's access profile" + (" and reload rates" if history else "")
        else:
            plan.spill = dict(candidates.default_cold)
            plan.source = "auto: built-in defaults (no previous profile in the store)"
            plan.why = {f"{c}.{a}": "declared safe default" for c, attrs in plan.spill.items() for a in attrs}
    else:
        plan.spill = parse_spill(spec, candidates)
        plan.source = "explicit --spill"
        plan.why = {
            f"{c}.{a}": "explicit" + (f"; {candidates.keep[a]}" if a in candidates.keep else "")
            for c, attrs in plan.spill.items()
            for a in attrs
        }
    return plan


def plan_line(plan: Mapping, per_attr: Mapping[str, Mapping[str, int]] | None = None) -> str:
    """The plan in one line (a profile's store section "plan", see Plan.as_dict), with what became of each
    attribute at the safe points: spilled, or why not (too small, refused by the codec, no value held)."""
    per_attr = per_attr or {}
    parts, idle = [], []
    for label in (plan.get("spill") or "").split(","):
        if not label:
            continue
        st = per_attr.get(label) or {}
        if not any(st.get(k) for k in ("spilled", "small", "refused", "collapsed")):
            idle.append(label)
            continue
        why = (plan.get("why") or {}).get(label, "")
        done = [f"{st.get('spilled', 0):,} spilled"]
        for key, what in (("small", "too small"), ("refused", "refused by the codec"), ("collapsed", "empty")):
            if st.get(key):
                done.append(f"{st[key]:,} {what}")
        if st.get("small_assumed"):
            done.append(f"{st['small_assumed']:,} of those not encoded after 256 too small in a row")
        parts.append(f"{label} [{why}]: {', '.join(done)}")
    if idle:
        parts.append("held no value at any safe point: " + ", ".join(idle))
    text = "; ".join(parts) if parts else "nothing spilled"
    dropped = plan.get("dropped") or {}
    if dropped:
        text += "; not spilled: " + "; ".join(f"{k} [{v}]" for k, v in sorted(dropped.items()))
    if not plan.get("reuse") and plan.get("reuse_note"):
        text += f"; reuse off: {plan['reuse_note']}"
    reuse = [
        k
        for k in (plan.get("reuse") or "").split(",")
        if (per_attr.get(k) or {}).get("recorded") or (per_attr.get(k) or {}).get("reuse_hits")
    ]
    if reuse:
        rec = sum(int(per_attr[k].get("recorded") or 0) for k in reuse)
        hits = sum(int(per_attr[k].get("reuse_hits") or 0) for k in reuse)
        text += f"; reuse: {','.join(reuse)} kept in memory, {rec:,} recorded for the next build, {hits:,} reused"
    return f"dagstore: spill plan ({plan.get('source')}): {text}"

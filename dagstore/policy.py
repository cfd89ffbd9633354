"""What to spill: the cold (class, attribute) pairs, chosen from access statistics.

The store meets the profiler only through `AccessStats`: rows of
(class, attribute, phase, reads, writes, deletes). They come from this run's counters or, for
`--spill auto`, from the previous build's access table kept in the store's metadata.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence


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

    spill: dict[str, tuple[str, ...]]          # class name -> attributes safe to spill
    collapse: dict[str, tuple[str, ...]]       # class name -> attributes whose empty containers collapse
    reuse: dict[str, tuple[str, ...]]          # class name -> content-derived attributes reused across builds
    default_cold: dict[str, tuple[str, ...]]   # what `auto` spills when no previous profile exists
    all_attrs: dict[str, tuple[str, ...]]      # every attribute of every class (to validate --spill)
    late_phases: tuple[str, ...] = ()          # phases after objects reach their safe points


@dataclass
class Plan:
    """The decision: per class name, the attributes to spill, collapse and reuse; and why."""

    spill: dict[str, tuple[str, ...]] = field(default_factory=dict)
    collapse: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reuse: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "none"

    def spill_spec(self) -> str:
        """The exact `--spill` argument that reproduces this plan."""
        return ",".join(f"{c}.{a}" for c, attrs in sorted(self.spill.items()) for a in attrs)


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


def cold_from_stats(rows: Iterable[AccessStats], candidates: Candidates,
                    max_reads_per_write: float = 2.0) -> dict[str, tuple[str, ...]]:
    """Safe attributes read at most `max_reads_per_write` times per write once objects are done."""
    late = set(candidates.late_phases)
    reads: dict[tuple[str, str], int] = {}
    writes: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.cls, r.attr)
        writes[key] = writes.get(key, 0) + r.writes
        if not late or r.phase in late:
            reads[key] = reads.get(key, 0) + r.reads
    out: dict[str, tuple[str, ...]] = {}
    for cls, attrs in candidates.spill.items():
        cold = tuple(a for a in attrs
                     if writes.get((cls, a), 0) > 0 and reads.get((cls, a), 0) <= max_reads_per_write * writes[(cls, a)])
        if cold:
            out[cls] = cold
    return out


def adjust_with_history(cold: dict[str, tuple[str, ...]], history: dict[str, Sequence[int]] | None,
                        candidates: Candidates, keep_below: float = 0.1,
                        drop_above: float = 0.5) -> dict[str, tuple[str, ...]]:
    """What the last build's spills taught: rarely reloaded stays (or becomes) cold, often reloaded is hot.

    history: {"Cls.attr": [spilled, reloads]} from the previous build's store statistics.
    """
    if not history:
        return cold
    out = {c: list(a) for c, a in cold.items()}
    for label, (spilled, reloads) in sorted(history.items()):
        cls, _, attr = label.partition(".")
        if spilled <= 0 or attr not in candidates.spill.get(cls, ()):
            continue
        rate = reloads / spilled
        attrs = out.setdefault(cls, [])
        if rate <= keep_below and attr not in attrs:
            attrs.append(attr)
        elif rate > drop_above and attr in attrs:
            attrs.remove(attr)
    return {c: tuple(a) for c, a in out.items() if a}


def choose(spec: str, candidates: Candidates, previous: Sequence[AccessStats] | None = None,
           history: dict[str, Sequence[int]] | None = None) -> Plan:
    """Turn `--spill none|auto|Cls.attr,...` into a Plan (empty containers always collapse)."""
    spec = (spec or "auto").strip()
    plan = Plan(collapse=dict(candidates.collapse), reuse={})
    if spec == "none":
        plan.source = "none"
        return plan
    if spec == "auto":
        if previous:
            plan.spill = adjust_with_history(cold_from_stats(previous, candidates), history, candidates)
            plan.source = "auto: previous build's access profile" + (" and reload rates" if history else "")
        else:
            plan.spill = dict(candidates.default_cold)
            plan.source = "auto: built-in defaults (no previous profile in the store)"
    else:
        plan.spill = parse_spill(spec, candidates)
        plan.source = "explicit --spill"
    plan.reuse = {c: tuple(a for a in candidates.reuse.get(c, ()) if a in attrs) for c, attrs in plan.spill.items()}
    plan.reuse = {c: a for c, a in plan.reuse.items() if a}
    return plan

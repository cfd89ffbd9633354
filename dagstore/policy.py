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

Sizes play no part: `--spill auto` has no sizes (a build does not size its nodes), and an
attribute's bytes decide how much a spill saves, not whether its values are read again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Protocol, Sequence


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
        return spill_spec(self.spill)


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


def cold_attributes(rows: Iterable[AccessStats], spillable: Mapping[str, Sequence[str]] | None,
                    late_phases: Sequence[str] = (), history: Mapping[str, Sequence[int]] | None = None,
                    max_reads_per_write: float = MAX_LATE_READS_PER_WRITE) -> dict[str, tuple[str, ...]]:
    """THE rule for "cold" (module docstring): per class, the attributes to spill, in `spillable`'s order.

    spillable: class -> attributes safe to spill; None means every attribute in the rows (a profile
    from another tool). history: {"Cls.attr": [spilled, reloads]} of the previous build.
    """
    late = set(late_phases)
    reads: dict[tuple[str, str], int] = {}
    writes: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.cls, r.attr)
        writes[key] = writes.get(key, 0) + r.writes
        if not late or r.phase in late:
            reads[key] = reads.get(key, 0) + r.reads
    if spillable is None:
        order: dict[str, list[str]] = {}
        for cls, attr in writes:
            order.setdefault(cls, []).append(attr)
        spillable = {c: sorted(a) for c, a in order.items()}
    out: dict[str, tuple[str, ...]] = {}
    for cls, attrs in spillable.items():
        cold = tuple(a for a in attrs
                     if writes.get((cls, a), 0) > 0 and reads.get((cls, a), 0) <= max_reads_per_write * writes[(cls, a)])
        if cold:
            out[cls] = cold
    return adjust_with_history(out, history, spillable)


def cold_from_stats(rows: Iterable[AccessStats], candidates: Candidates,
                    max_reads_per_write: float = MAX_LATE_READS_PER_WRITE) -> dict[str, tuple[str, ...]]:
    """`cold_attributes` over what the adapter declares safe, without history."""
    return cold_attributes(rows, candidates.spill, candidates.late_phases, None, max_reads_per_write)


def adjust_with_history(cold: dict[str, tuple[str, ...]], history: Mapping[str, Sequence[int]] | None,
                        candidates: Candidates | Mapping[str, Sequence[str]], keep_below: float = KEEP_BELOW,
                        drop_above: float = DROP_ABOVE) -> dict[str, tuple[str, ...]]:
    """What the last build's spills taught: rarely reloaded stays (or becomes) cold, often reloaded is hot.

    history: {"Cls.attr": [spilled, reloads]} from the previous build's store statistics.
    candidates: the Candidates, or just their `spill` mapping (class -> safe attributes).
    """
    spillable = candidates.spill if isinstance(candidates, Candidates) else candidates
    if not history:
        return cold
    out = {c: list(a) for c, a in cold.items()}
    for label, (spilled, reloads) in sorted(history.items()):
        cls, _, attr = label.partition(".")
        if spilled <= 0 or attr not in spillable.get(cls, ()):
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
            plan.spill = cold_attributes(previous, candidates.spill, candidates.late_phases, history)
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

"""Findings with estimated bytes saved, from a recorded Profile (what-if estimates: dagprof.whatif).

Everything here reads only the agreed plain-data sections (access rows, "sizes", "counts",
"cycles"), so it works on a profile file long after the run, and never touches live objects.

Heuristics (thresholds are keyword arguments; defaults below):

- never_read: an attribute written (writes > 0) but read 0 times over the whole run. Saving = its
  exclusive bytes from "sizes". Never-read attributes under `min_bytes` (or of a class that was
  not sized) are grouped into one finding per class (attr None) listing them, so a profile
  without sizes still shows them without flooding the report. Counters cannot tell "read
  before the last write" from "read after", so "never read" means never read at all, in this
  build: the advice says "never read in this build". An attribute the adapter declares read by
  the build tool's own code in some builds (meta "scons_reads": e.g. File.waiting_s_e, read by
  SCons' Taskmaster when SideEffect() is used) is never advised away: its finding says "keep it",
  names the reader (`read_by`) and saves 0 bytes.
- empty_container: instances whose attribute is an empty container (sizes "empty"), at least
  `min_instances` of them. Saving = "empty_bytes": creating the container lazily (or sharing one
  immutable empty value) frees all of it.
- duplicate_values: equal values held by many instances (sizes "dup_bytes"), fixed by interning or
  a flyweight. Saving = dup_bytes minus the bytes the empty_container finding already claims for
  the same attribute, so the two findings never count the same bytes twice.
- spill_candidate: the attributes `--spill auto` would spill after this run, decided by the one
  rule for "cold", dagstore.policy.cold_attributes (documented there and in docs/dagstore.md):
  safe to spill (the adapter's list in meta "spillable"), written, read at most 2 times per write
  in the late phases (meta "late_phases"), adjusted by the reloads of this run's spills (the
  "store" section's per_attr). One finding per attribute whose non-empty bytes (bytes minus
  empty_bytes) reach `min_bytes`, and one summary finding (cls "*", attr None) with the whole
  `--spill` list, which is exactly what `--spill auto` picks from this profile, and the bytes known.
  Bytes are what the store would free by the same rule (`expected_bytes`): non-empty bytes times
  the share of values the recorded spills kept out of memory (spilled, not reloaded, among the values
  the attribute held: too small and refused values, and values on objects that never reached a safe
  point, stay), and nothing for an attribute the adapter keeps (meta "spill_keep").
- cycle: classes whose instances the garbage collector found in unreachable reference cycles.
  Saving = objects in cycles x average bytes per instance ("counts" avg_bytes, else sizes
  total/count): memory that lingers until a full collection instead of being freed at once.

Only findings saving at least `min_bytes` (default 16 KiB) are reported, except cycles, which
are always reported when present (they matter for lifetime even when small).

Findings overlap: the summary spill finding repeats its candidates, and one attribute can be
never_read (all its bytes), empty_container (its empty part), duplicate_values and spill_candidate
(both within its non-empty part). `estimated_saving()` counts each byte once: per attribute the most
one fix can free, max(never_read, empty + max(duplicates, spill)); plus the grouped never_read
findings (disjoint from the rest: each of their attributes is under `min_bytes`) and the cycles.
`--budget` and the report's total use it.
"""

from __future__ import annotations

from typing import Any

from dagprof.profile import Profile

MIN_BYTES = 16 * 1024
MIN_INSTANCES = 2

KINDS = ("never_read", "empty_container", "duplicate_values", "spill_candidate", "cycle")


def _size_classes(profile: Profile) -> dict[str, Any]:
    return (profile.sections.get("sizes") or {}).get("classes") or {}


def _finding(kind: str, cls: str, attr: str | None, nbytes: int, message: str, spill: str | None = None) -> dict:
    return {"kind": kind, "cls": cls, "attr": attr, "bytes": int(nbytes), "message": message, "spill": spill}


def _kib(n: int) -> str:
    from dagstore.units import fmt_bytes

    return fmt_bytes(n)


def _times(n: int) -> str:
    return f"{n:,} time" + ("" if n == 1 else "s")


def _sort(findings: list[dict]) -> list[dict]:
    """Biggest saving first; a stable tie order so two runs over one profile print the same list."""
    return sorted(
        findings,
        key=lambda f: (-f["bytes"], KINDS.index(f["kind"]) if f["kind"] in KINDS else 99, f["cls"], f["attr"] or ""),
    )


def spill_plan(profile: Profile) -> dict[str, tuple[str, ...]]:
    """What `--spill auto` would spill after this run: dagstore.policy.cold_attributes on the profile."""
    from dagstore.policy import cold_attributes, history_of, latency_of_section

    spillable = profile.meta.get("spillable")
    st = profile.sections.get("store") or {}
    # what the store recorded for the next plan (this build's figures and the last known ones), else this build's
    recorded = st.get("spill_history")
    history = recorded if isinstance(recorded, dict) else history_of(st.get("per_attr") or {})
    return cold_attributes(
        profile.access,
        spillable,
        profile.meta.get("late_phases") or (),
        history or None,
        lat=latency_of_section(st) if st else None,
        keep=profile.meta.get("spill_keep") or None,
    )


def expected_bytes(profile: Profile, name: str) -> int:
    """What spilling `name` frees by the policy's rule: its non-empty bytes, times the share of its values
    the last build's spills kept out of memory (spilled and not reloaded, among those met at safe points;
    all of them when this profile recorded no spills of it). Nothing for an attribute `auto` keeps."""
    from dagstore.policy import expected_fraction

    attr = name.split(".", 1)[1]
    if attr in (profile.meta.get("spill_keep") or {}):
        return 0
    per = ((profile.sections.get("store") or {}).get("per_attr") or {}).get(name)
    return int(max(0, _nonempty_bytes(profile, name)) * expected_fraction(per, _held(profile, name)))


def _held(profile: Profile, name: str) -> int:
    """How many non-empty values the attribute held when sized (0: not sized)."""
    cls, attr = name.split(".", 1)
    a = ((_size_classes(profile).get(cls) or {}).get("attrs") or {}).get(attr) or {}
    return max(0, int(a.get("set") or 0) - int(a.get("empty") or 0))


def spill_candidates(profile: Profile) -> list[str]:
    """The "Cls.attr" list the report recommends: the same list, in the same order, as `--spill auto`."""
    from dagstore.policy import spill_spec

    spec = spill_spec(spill_plan(profile))
    return spec.split(",") if spec else []


def _nonempty_bytes(profile: Profile, name: str) -> int:
    cls, attr = name.split(".", 1)
    a = ((_size_classes(profile).get(cls) or {}).get("attrs") or {}).get(attr) or {}
    return int(a.get("bytes") or 0) - int(a.get("empty_bytes") or 0)


def analyze(profile: Profile, min_bytes: int = MIN_BYTES, min_instances: int = MIN_INSTANCES) -> list[dict]:
    """All findings of a profile in the agreed "findings" shape, biggest estimated saving first."""
    out: list[dict] = []
    sizes = _size_classes(profile)
    totals = profile.access_totals()

    def attr_size(cls: str, attr: str) -> dict:
        return ((sizes.get(cls) or {}).get("attrs") or {}).get(attr) or {}

    small: dict[str, list[tuple[str, int]]] = {}
    reads_by_code = profile.meta.get("scons_reads") or {}  # the adapter's list: read by the build tool's code
    for (cls, attr), t in sorted(totals.items()):
        if t.writes > 0 and t.reads == 0:
            b = int(attr_size(cls, attr).get("bytes") or 0)
            reader = reads_by_code.get(attr)
            if reader:  # read by the tool's own code in other builds: never advise removing it (no saving)
                if b >= min_bytes:
                    f = _finding(
                        "never_read",
                        cls,
                        attr,
                        0,
                        f"{cls}.{attr} is written {_times(t.writes)} and never read in this build "
                        f"({_kib(b)}); keep it: {reader} reads it",
                    )
                    f["read_by"] = reader
                    out.append(f)
            elif b >= min_bytes:
                out.append(
                    _finding(
                        "never_read",
                        cls,
                        attr,
                        b,
                        f"{cls}.{attr} is written {_times(t.writes)} and never read in this build; "
                        "if no build reads it, it need not be stored",
                    )
                )
            else:
                small.setdefault(cls, []).append((attr, b))
    for cls, attrs in small.items():
        b = sum(n for _a, n in attrs)
        listed = ", ".join(a for a, _n in attrs[:12]) + (f", … ({len(attrs) - 12} more)" if len(attrs) > 12 else "")
        why = "sizes not recorded" if cls not in sizes else f"each under {_kib(min_bytes)}"
        out.append(
            _finding(
                "never_read",
                cls,
                None,
                b,
                f"{cls}: {len(attrs)} attributes are written and never read in this build ({why}): {listed}",
            )
        )

    for cls, c in sizes.items():
        count = int(c.get("count") or 0)
        for attr, a in (c.get("attrs") or {}).items():
            empty, empty_b = int(a.get("empty") or 0), int(a.get("empty_bytes") or 0)
            if empty >= min_instances and empty_b >= min_bytes:
                of = f" of {count:,}" if count else ""
                out.append(
                    _finding(
                        "empty_container",
                        cls,
                        attr,
                        empty_b,
                        f"{empty:,}{of} {cls} instances hold an empty {attr}; "
                        f"create it lazily or share one immutable empty value",
                    )
                )
            dup = int(a.get("dup_bytes") or 0) - (empty_b if empty >= min_instances else 0)
            if dup >= min_bytes:
                distinct = int(a.get("distinct") if a.get("distinct") is not None else -1)
                held = int(a.get("set") or 0)
                detail = f"{held:,} values, {distinct:,} distinct" if distinct >= 0 and held else "repeated values"
                out.append(
                    _finding(
                        "duplicate_values",
                        cls,
                        attr,
                        dup,
                        f"{cls}.{attr} holds equal values many times ({detail}); intern them or use a flyweight",
                    )
                )

    names = spill_candidates(profile)
    reads_by = {}
    for (cls, attr), t in totals.items():
        reads_by[f"{cls}.{attr}"] = (t.reads, t.writes)
    for name in names:
        b = expected_bytes(profile, name)
        if b >= min_bytes:
            cls, attr = name.split(".", 1)
            r, w = reads_by.get(name, (0, 0))
            out.append(
                _finding(
                    "spill_candidate",
                    cls,
                    attr,
                    b,
                    f"{name} is cold (read {r:,} times for {w:,} writes); spill it to disk",
                    spill=name,
                )
            )
    if names:
        total = sum(expected_bytes(profile, n) for n in names)
        out.append(
            _finding(
                "spill_candidate",
                "*",
                None,
                total,
                f"--spill auto picks {len(names)} cold attribute"
                + ("s" if len(names) > 1 else "")
                + f" ({_kib(total)} known): --spill {','.join(names)}",
                spill=",".join(names),
            )
        )

    counts = profile.sections.get("counts") or {}
    cycles = profile.sections.get("cycles") or {}
    for cls, n in (cycles.get("by_class") or {}).items():
        if not n:
            continue
        avg = int((counts.get(cls) or {}).get("avg_bytes") or 0)
        if not avg and (sizes.get(cls) or {}).get("count"):
            avg = int(sizes[cls].get("total") or 0) // int(sizes[cls]["count"])
        b = int(n) * avg
        out.append(
            _finding(
                "cycle",
                cls,
                None,
                b,
                f"{int(n):,} {cls} objects were found in reference cycles; they wait for the cyclic "
                f"garbage collector; break the cycle when they are released",
            )
        )
    return _sort(out)


def estimated_saving(findings: list[dict]) -> int:
    """The findings' estimated savings with each byte counted once (see the module docstring)."""
    per_attr: dict[tuple[str, str], dict[str, int]] = {}
    total = 0
    for f in findings:
        b = int(f.get("bytes") or 0)
        if f.get("attr") is None:
            if f.get("cls") != "*":  # "*": the summary of the spill candidates, counted with them
                total += b
            continue
        kinds = per_attr.setdefault((f["cls"], f["attr"]), {})
        kinds[f["kind"]] = max(kinds.get(f["kind"], 0), b)
    for k in per_attr.values():  # (a never_read finding for what the tool's code reads carries 0 bytes)
        total += max(
            k.get("never_read", 0),
            k.get("empty_container", 0) + max(k.get("duplicate_values", 0), k.get("spill_candidate", 0)),
        )
    return total


def findings_of(profile: Profile) -> list[dict]:
    """The findings a report shows: the recorded ones when the run stored them, else computed now."""
    stored = profile.sections.get("findings")
    if isinstance(stored, list) and stored:
        return _sort([dict(f) for f in stored])
    return analyze(profile)


def parse_attr_names(spec: str | list[str], what: str) -> list[str]:
    """Validate "Cls.attr,Cls.attr" (for --spill, --what-if), raising ValueError with one clear line."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        cls, dot, attr = item.partition(".")
        if not dot or not cls or not attr or "." in attr:
            raise ValueError(f"{what}: {item!r} is not of the form Class.attribute")
        out.append(item)
    if not out:
        raise ValueError(f"{what}: empty list; expected Class.attribute[,Class.attribute...]")
    return out

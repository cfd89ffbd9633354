"""How a quantity is written for people: the one byte formatter, used by the store's summary line, dagprof's
core, its renderers and the benches.

Why here: dagstore is the lowest layer (it imports no dagprof), so the store's own summary line and every
dagprof module can use the one formatter. Why not in dagprof's report/: the analyzer (profiler core) words
its findings with it, and the core must not depend on a renderer.
"""

from __future__ import annotations


def fmt_bytes(n: float | None) -> str:
    """Human bytes with binary units ('-' for unknown); exact bytes stay in JSON."""
    if n is None:
        return "-"
    n = float(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    return f"{sign}{n:.1f} GiB"  # pragma: no cover

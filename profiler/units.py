"""How dagprof writes a quantity for people: the one byte formatter, used by the core, renderers and benches.

Why not in report/: the analyzer (profiler core) words its findings with it, and the core must not
depend on a renderer.
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

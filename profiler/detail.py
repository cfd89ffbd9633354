"""Per-instance detail for classes the user names: every attribute of a few sampled instances.

Why: class totals say *which* attribute is big; a handful of concrete instances show *why* (what
the value looks like, its type, its size). Attributes are read the same way as in sizing (no user
code), and repr is only ever called on builtin scalars: any other object shows as "<ClassName>".
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import Any

from .sizing import Sizer, read_attrs

__all__ = ["safe_repr", "detail_section"]

_MAX_REPR = 80
_SCALARS = (str, bytes, int, float, bool, complex, type(None))
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def safe_repr(v: Any, limit: int = _MAX_REPR, depth: int = 2) -> str:
    """A short repr that runs no user code: builtin scalars and containers of them, else <ClassName>."""
    s = _safe(v, depth, 8)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _safe(v: Any, depth: int, width: int) -> str:
    t = type(v)
    if t in _SCALARS:
        return _short.repr(v)
    if t in (list, tuple, set, frozenset) and depth > 0:
        items = [_safe(x, depth - 1, width) for x in list(v)[:width]]
        if len(v) > width:
            items.append("...")
        if t is list:
            return "[" + ", ".join(items) + "]"
        if t is tuple:
            return "(" + ", ".join(items) + ("," if len(v) == 1 else "") + ")"
        if not v:
            return f"{t.__name__}()"
        body = "{" + ", ".join(items) + "}"
        return body if t is set else f"frozenset({body})"
    if t is dict and depth > 0:
        items = [f"{_safe(k, depth - 1, width)}: {_safe(x, depth - 1, width)}" for k, x in list(v.items())[:width]]
        if len(v) > width:
            items.append("...")
        return "{" + ", ".join(items) + "}"
    if t in (list, tuple, set, frozenset, dict):
        return f"<{t.__name__} of {len(v)}>"
    return f"<{t.__name__}>"


def _sample(objs: list[Any], n: int) -> list[Any]:
    """n instances spread evenly over the list (deterministic, so two runs show comparable nodes)."""
    if len(objs) <= n:
        return objs
    step = len(objs) / n
    return [objs[int(i * step)] for i in range(n)]


def detail_section(
    objects: Iterable[Any], names: Iterable[str], n: int = 5, boundary: tuple[type, ...] = (), stop: Iterable[Any] = ()
) -> dict[str, list[dict[str, Any]]]:
    """The "detail" section: for each named class, n sampled instances with every attribute's type, size, repr.

    Sizes are per instance (what this attribute alone holds), stopping at boundary types and at the
    `stop` objects (the other tracked instances), so they do not add up to the class totals exactly
    when values are shared.
    """
    wanted = set(names)
    if not wanted or n <= 0:
        return {}
    by_class: dict[str, list[Any]] = {}
    for o in objects:
        name = type(o).__name__
        if name in wanted:
            by_class.setdefault(name, []).append(o)
    base = Sizer(boundary, dup_stats=False)
    base.claim(stop)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, objs in by_class.items():
        rows = []
        for o in _sample(objs, n):
            attrs: dict[str, dict[str, Any]] = {}
            for attr, v in read_attrs(o):
                sizer = Sizer(boundary, dup_stats=False)
                sizer.seen = base.seen.copy()  # each attribute sized on its own
                sizer.seen.add(id(o))
                attrs[attr] = {"type": type(v).__name__, "bytes": sizer.exclusive(v), "repr": safe_repr(v)}
            rows.append({"id": hex(id(o)), "type": name, "attrs": attrs})
        out[name] = rows
    return out

"""Machine-readable report (`--json`): the profile's plain data plus the computed tables.

Numbers are the same rows the text report prints (dagprof.report.tables), so a script can
check any figure a user saw on the terminal.
"""

from __future__ import annotations

import json
from typing import Any

from dagprof.analyze import findings_of
from dagprof.profile import Profile
from dagprof.report import tables


def to_dict(profile: Profile) -> dict[str, Any]:
    """The JSON document as plain data, for callers that embed it (e.g. the HTML report)."""
    data = profile.to_dict()
    data["access_totals"] = [
        {
            "cls": t.cls,
            "attr": t.attr,
            "reads": t.reads,
            "writes": t.writes,
            "deletes": t.deletes,
            "readers": t.instances,
        }
        for t in sorted(profile.access_totals().values(), key=lambda t: (t.cls, -t.reads, t.attr))
    ]
    data["access_summary"] = tables.access_summary(profile)
    data["findings"] = findings_of(profile)
    return data


def to_json(profile: Profile) -> str:
    """Stable, indented JSON: sorted keys, so two reports of one profile are byte-identical and diff well."""
    return json.dumps(to_dict(profile), indent=2, sort_keys=True, ensure_ascii=False, default=_default) + "\n"


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")

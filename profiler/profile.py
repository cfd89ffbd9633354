"""The recorded data model of one profiled run, and its versioned msgpack file format.

Renderers (dagprof.report.*) and the analyzer read a Profile; nothing in here knows SCons.

File layout (msgpack map):
    {"format": "dagprof-profile", "version": 1,
     "meta": {...}, "phases": [...], "access": [...], "sections": {...}}

`access` rows are [class, attribute, phase, reads, writes, deletes, instances]
(`instances` is the number of distinct instances that read the attribute, or -1 when not counted).
`sections` holds the optional parts, each owned by one module and documented in docs/profile-format.md:
"sizes", "counts", "lifetimes", "monitor", "cycles", "detail", "findings", "store", "snapshots".
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

FORMAT = "dagprof-profile"
VERSION = 1


class ProfileError(Exception):
    """A profile file that cannot be used; the message is one line meant for the user."""


@dataclass
class AccessRow:
    """One (class, attribute, phase) cell of the access table."""

    cls: str
    attr: str
    phase: str
    reads: int = 0
    writes: int = 0
    deletes: int = 0
    instances: int = -1

    def as_list(self) -> list:
        return [self.cls, self.attr, self.phase, self.reads, self.writes, self.deletes, self.instances]


@dataclass
class Profile:
    """Everything one run recorded; the single input of every report and of the analyzer."""

    meta: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)
    access: list[AccessRow] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)

    # ---- queries used by several renderers -------------------------------------------------
    def phase_names(self) -> list[str]:
        """Phase names in the order they happened, so tables read like the build did."""
        names = [p["name"] for p in self.phases]
        for row in self.access:
            if row.phase not in names:
                names.append(row.phase)
        return names

    def access_totals(self) -> dict[tuple[str, str], AccessRow]:
        """Per (class, attribute) totals over all phases, for hot/cold ranking."""
        out: dict[tuple[str, str], AccessRow] = {}
        for r in self.access:
            t = out.get((r.cls, r.attr))
            if t is None:
                t = out[(r.cls, r.attr)] = AccessRow(r.cls, r.attr, "*", 0, 0, 0, -1)
            t.reads += r.reads
            t.writes += r.writes
            t.deletes += r.deletes
            t.instances = max(t.instances, r.instances)
        return out

    # ---- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data, the same shape as the file and as `report --json`."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "meta": self.meta,
            "phases": self.phases,
            "access": [r.as_list() for r in self.access],
            "sections": self.sections,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "profile") -> Profile:
        """Validate the envelope so a foreign or newer file fails with one clear line."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProfileError(f"{source}: not a dagprof profile file")
        version = data.get("version")
        if version != VERSION:
            raise ProfileError(
                f"{source}: profile format version {version!r} is not supported (this dagprof reads version {VERSION})"
            )
        try:
            access = [AccessRow(*row) for row in data.get("access", [])]
            meta = dict(data.get("meta", {}))
            phases = list(data.get("phases", []))
            sections = dict(data.get("sections", {}))
        except (TypeError, ValueError) as e:
            raise ProfileError(f"{source}: damaged profile file ({e})") from None
        return cls(meta=meta, phases=phases, access=access, sections=sections)

    # msgpack is imported where a profile is written or read, not with this module: `dagprof profile` imports
    # this module before the build it measures, and writes the file only once the build is done
    def dumps(self) -> bytes:
        import msgpack

        return msgpack.packb(self.to_dict(), use_bin_type=True, default=_default)

    @classmethod
    def loads(cls, blob: bytes, source: str = "profile") -> Profile:
        import msgpack

        try:
            data = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        except msgpack.ExtraData:
            raise ProfileError(f"{source}: not a dagprof profile file") from None
        except Exception as e:  # msgpack raises several unrelated types for damaged input
            raise ProfileError(f"{source}: damaged or truncated profile file ({type(e).__name__})") from None
        return cls.from_dict(data, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically, so an interrupted run never leaves half a profile behind."""
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ProfileError(f"{path}: is a directory, not a profile file")
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".dagprof-", dir=d)
        try:
            os.fchmod(fd, 0o666 & ~umask())  # a file the user asked for: the mode open() would give (not 0600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.dumps())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike) -> Profile:
    """Read a profile file, turning every way it can be unusable into a ProfileError."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ProfileError(f"{path}: is a directory, not a profile file")
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise ProfileError(f"{path}: cannot read ({e.strerror})") from None
    if not blob:
        raise ProfileError(f"{path}: empty file, not a dagprof profile")
    return Profile.loads(blob, source=path)


def _default(obj: Any) -> Any:
    """Sections may carry tuples/sets; store them as lists rather than failing the whole save."""
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a profile")

"""Attributes set on classes (descriptors, wrapped methods), undone exactly, newest first.

The counters, the tracker's hooks and the SCons adapter all put things into class dicts; undoing
must restore what the class's OWN __dict__ held (or remove the entry when it held nothing), so an
inherited attribute is never copied down into a subclass.
"""

from __future__ import annotations

from typing import Any

_ABSENT = object()


class ClassPatches:
    """A stack of (class or module, name, previous own value) with an exact undo()."""

    def __init__(self) -> None:
        self._saved: list[tuple[type, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        """Put `value` in `owner.__dict__[name]` (a class, or a module), remembering its own entry."""
        self._saved.append((owner, name, owner.__dict__.get(name, _ABSENT)))
        setattr(owner, name, value)

    def undo(self) -> None:
        """Restore every class dict entry, newest first, so stacked wrappers unwind cleanly."""
        while self._saved:
            owner, name, old = self._saved.pop()
            if old is _ABSENT:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
            else:
                setattr(owner, name, old)

    def __len__(self) -> int:
        return len(self._saved)

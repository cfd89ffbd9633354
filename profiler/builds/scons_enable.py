"""enable_store(): the one line for an SConstruct run by plain `scons` (`import dagprof; dagprof.enable_store()`)."""

from __future__ import annotations

import sys

from .scons_nodes import PHASE_READ, PHASE_SCONSIGN
from .scons_store import StoreHooks
from .scons_wrap import hook_safe_points

_enabled: StoreHooks | None = None


def enable_store(store: str = "lmdb", path: str | None = None, spill: str = "auto") -> StoreHooks | None:
    """The one line for an SConstruct run by plain `scons`: spill cold node data to a store for this build.

        import dagprof; dagprof.enable_store()

    First in the SConstruct, after its `from __future__` imports (Python wants those first); or in
    site_scons/site_init.py, which SCons runs before the SConstruct (no edit of the SConstruct).
    """
    global _enabled
    if _enabled is not None or store == "none":
        return _enabled
    import atexit

    from ..classpatch import ClassPatches

    hooks = StoreHooks(kind=store, path=path, spill=spill, restore_at_close=False)  # closed at process exit
    hooks.install()
    hooks.on_phase(PHASE_READ)  # SCons has already changed to the top directory: open the store there
    if hooks.store is None:
        return None
    # never undone: they serve this build until the process exits
    hook_safe_points(ClassPatches(), lambda: hooks.on_phase(PHASE_SCONSIGN), hooks.on_node_done)

    def finish() -> None:
        from dagstore.spill import has_problem, summary_line

        try:
            hooks.on_finish()
        finally:
            hooks.close()
        sec = hooks.profile_sections()["store"]
        if sys.stderr.isatty() or has_problem(sec):  # as `dagprof build`: never a routine line into a pipe
            print(summary_line(sec), file=sys.stderr)
            if sys.stderr.isatty() and (sec.get("plan") or {}).get("line"):
                print(sec["plan"]["line"], file=sys.stderr)

    atexit.register(finish)
    _enabled = hooks
    return hooks

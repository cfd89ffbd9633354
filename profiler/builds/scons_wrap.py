"""dagprof's wrappers inside SCons: code that SCons' stack walks take for its own, the script frame plain
`scons` runs main() from, and the two safe points every component needs (a finished task, the .sconsign
write). File locations matter here: see WRAPPER_FILE."""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..classpatch import ClassPatches

# SCons names the deepest frame whose file is not under a `SCons` directory as the place of a warning or
# error (SCons.Script.Main.find_deepest_user_frame). dagprof's wrappers sit between SCons' own frames, so
# their code says it is from such a directory (a file that does not exist: no source line is shown).
WRAPPER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SCons", "dagprof-wrapper")


def hidden(fn: Callable) -> Callable:
    """`fn` with its code re-labelled as SCons' own, for SCons' stack walks (closures and defaults kept)."""
    code = fn.__code__.replace(co_filename=WRAPPER_FILE)
    out = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    out.__qualname__, out.__doc__, out.__kwdefaults__ = fn.__qualname__, fn.__doc__, fn.__kwdefaults__
    return out


def call_as_script(argv0: str, main: Callable[[], Any]) -> None:
    """Call `main` from a frame that looks like the line of `argv0` (the scons script) that calls it.

    Plain `scons` reports a warning raised under SCons' own frames at that line of its script.
    """
    line = 1
    try:
        with open(argv0, encoding="utf-8", errors="replace") as f:
            for i, text in enumerate(f, 1):
                t = text.strip()
                if "main()" in t and not t.startswith(("#", "def ", "from ", "import ")):
                    line = i
                    break
    except OSError:
        pass
    exec(compile("\n" * (line - 1) + "_dagprof_main()\n", argv0, "exec"), {"_dagprof_main": main})  # noqa: S102


def hook_safe_points(
    patches: ClassPatches, before_sconsign: Callable[[], None], on_node_done: Callable[[list[object]], None] | None
) -> None:
    """Wrap the two SCons points every component needs: a finished task, and the .sconsign write."""
    import SCons.SConsign as SConsign
    import SCons.Taskmaster as Taskmaster

    orig_write = SConsign.write

    def write_sconsign(*a, **kw):
        before_sconsign()
        return orig_write(*a, **kw)

    patches.set(SConsign, "write", hidden(write_sconsign))
    if on_node_done is not None:
        orig_postprocess = Taskmaster.Task.postprocess

        def postprocess(self):
            orig_postprocess(self)
            on_node_done(self.targets)  # the task is finished: its targets are a safe point

        patches.set(Taskmaster.Task, "postprocess", hidden(postprocess))

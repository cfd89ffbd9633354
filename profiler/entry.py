"""The `dagprof` console entry: an up-to-date `dagprof build` is answered here, before the command line
(argparse, the command modules, the profiler) is imported; everything else is cli.main's. After
`dagprof build` or `dagprof profile` ran SCons in this process, the process may end without teardown."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """`dagprof ARGS`: the DAG cache's fast path first, then the whole command line."""
    process = argv is None  # the console script or `python -m dagprof`: this process ends with the command
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["build"]:
        from .commands.fast import answer_from_dag_cache

        code = answer_from_dag_cache(argv)
        if code is not None:
            return code
    # what the process holds before the command (not on the DAG cache's answer path, which writes nothing)
    ends = process and argv[:1] in (["build"], ["profile"])  # the commands that run SCons in this process
    inherited = _descriptors() if ends else None
    from .cli import main as cli_main

    code = cli_main(argv)
    command = sys.modules.get(f"{__package__}.commands.{argv[0]}") if ends else None
    if inherited is not None and command is not None and getattr(command, "RAN_SCONS", False):
        exit_without_teardown(code, inherited)
    return code


def exit_without_teardown(code: int, inherited: dict[str, str] | None) -> None:
    """After an in-process SCons build, end the process without freeing its node graph object by object
    (interpreter teardown: ~0.6 s of a 5k-file build, which plain `scons` pays too). Only when teardown
    has nothing left to do for the build's files: exit handlers run first (SCons' own close config.log
    and remove temp files), stdout/stderr are flushed, and no file is left open for writing (an unclosed
    one may hold buffered bytes that teardown would flush; descriptors inherited, as they were, do not
    count). Otherwise, and while a non-daemon thread runs, it returns and the process exits normally."""
    import atexit
    import os
    import threading

    main = threading.main_thread()
    if any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()
    if _open_for_writing(inherited):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # a closed pipe: let the normal exit report it as it would
    os._exit(code)


def _descriptors() -> dict[str, str] | None:
    """This process's open descriptors and what they point at; None where /proc cannot tell (not Linux)."""
    import os

    out = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        try:
            out[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the listing's own descriptor, closed meanwhile
    return out


def _open_for_writing(inherited: dict[str, str] | None) -> bool:
    """Whether this process opened a descriptor above 2 for writing and still holds it (True when /proc
    cannot tell)."""
    import os

    now = _descriptors()
    if now is None or inherited is None:
        return True
    for name, target in now.items():
        if int(name) <= 2 or inherited.get(name) == target:
            continue
        try:
            with open(f"/proc/self/fdinfo/{name}", encoding="ascii") as f:
                flags = next((int(line.split()[1], 8) for line in f if line.startswith("flags:")), None)
        except (OSError, ValueError, IndexError):
            continue  # closed meanwhile (the listing's own descriptor)
        if flags is None or flags & os.O_ACCMODE != os.O_RDONLY:
            return True
    return False

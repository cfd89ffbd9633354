"""The DAG cache's fast path: `dagprof build [options] -- ARGS` answered before anything heavy is imported.

Called by the console entry (entry.py) before argparse, the command modules or the profiler load: an
up-to-date build costs the interpreter, lmdb and msgpack, and the check itself. Only a command line
this parser fully understands is answered; anything else (an unknown or bad option, --output, --sizes,
another store, --dag-cache other than on) returns None and goes the normal way, which reports errors.
"""

from __future__ import annotations

import os

VALUED = ("--store", "--store-path", "--dag-cache", "--spill", "--store-wait")
FLAGS = ("--summary", "--quiet-store")
TRIED = False  # the cache was asked in this process: `dagprof build` does not ask it again


def _parse(ours: list[str]) -> dict[str, str | bool] | None:
    """dagprof's own build options, or None when any of them is not one this path may answer."""
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(ours):
        a = ours[i]
        i += 1
        name, eq, value = a.partition("=")
        if name in FLAGS and not eq:
            opts[name] = True
        elif name in VALUED:
            if not eq:
                if i >= len(ours):
                    return None
                value = ours[i]
                i += 1
            opts[name] = value
        else:
            return None
    return opts


def answer_from_dag_cache(argv: list[str]) -> int | None:
    """0 when the DAG cache answered `dagprof build ...` (its output replayed); None: run the build."""
    global TRIED
    if argv[:1] != ["build"]:
        return None
    rest = argv[1:]
    ours, scons_args = (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
    opts = _parse(ours)
    if opts is None or opts.get("--store", "lmdb") != "lmdb" or opts.get("--dag-cache", "on") != "on":
        return None
    spill = opts.get("--spill", "auto")
    if spill not in ("auto", "none"):
        return None  # an explicit list is validated by the normal path (a bad one is a usage error)
    try:
        if float(str(opts.get("--store-wait", "0"))) < 0:
            return None
    except ValueError:
        return None
    store_path = str(opts.get("--store-path") or ".dagstore")
    if os.path.exists(store_path) and not os.path.isdir(store_path):
        return None
    from ..builds.scons_dag import try_answer

    TRIED = True
    return try_answer(scons_args, store_path, bool(opts.get("--summary")))

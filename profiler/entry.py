"""The `dagprof` console entry: an up-to-date `dagprof build` is answered here, before the command line
(argparse, the command modules, the profiler) is imported; everything else is cli.main's."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """`dagprof ARGS`: the DAG cache's fast path first, then the whole command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["build"]:
        from .commands.fast import answer_from_dag_cache

        code = answer_from_dag_cache(argv)
        if code is not None:
            return code
    from .cli import main as cli_main

    return cli_main(argv)

"""One-file edit builds: plain SCons vs `dagprof build` variants, alternated, wall and peak RSS ratios.

Why: a store or DAG-cache choice that costs time shows on the edit-compile loop; this puts any set of
`dagprof build` options side by side with plain SCons on the same edit (bench/scaling.py measures the
default only).
Usage: python bench/edit.py [--files 1000] [--runs 8] [--dir DIR] [--file SRC] NAME='OPTIONS' ...
  e.g. store='--store lmdb --dag-cache off' none='--store lmdb --dag-cache off --spill none'
Each variant gets its own store directory (.dagstore-NAME), so variants never share what a build left.
Every build appends a comment line to the same .c file (a new edit every time: SCons recompiles one object).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time

from _common import (
    alternate,
    bench_env,
    bytecode_note,
    fmt_bytes,
    median,
    print_header,
    print_table,
    run_measured,
    scons_command,
)

from dagprof.synthetic import generate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--dir", help="project directory (default: a temporary one; kept when given)")
    ap.add_argument("--file", help="the .c file to edit (default: the project's middle one)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs for the initial full build")
    ap.add_argument("variants", nargs="+", metavar="NAME='OPTIONS'", help="dagprof build options per variant")
    a = ap.parse_args()

    commands = {"plain": scons_command("-Q")}
    for spec in a.variants:
        name, sep, opts = spec.partition("=")
        if not sep or not name or name == "plain":
            print(f"edit: a variant is NAME='OPTIONS' (not {spec!r}; 'plain' is always measured)", file=sys.stderr)
            return 2
        store = ["--store-path", f".dagstore-{name}"] if "--store-path" not in opts else []
        commands[name] = [sys.executable, "-m", "dagprof", "build", *shlex.split(opts), *store, "--", "-Q"]
    root = a.dir or tempfile.mkdtemp(prefix="dagprof-edit-")
    env = bench_env()
    if not os.path.exists(os.path.join(root, "SConstruct")):
        generate(root, files=a.files)
        if run_measured(scons_command("-Q", f"-j{a.jobs}"), cwd=root, env=env)["exit_code"]:
            print("edit: the initial full build failed", file=sys.stderr)
            return 1
    sources = sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs if f.endswith(".c")
    )
    edit = a.file or (sources[len(sources) // 2] if sources else None)
    if edit is None or not os.path.isfile(os.path.join(root, edit)):
        print(f"edit: no .c file to edit in {root} (--file)", file=sys.stderr)
        return 1

    def variant(cmd: list[str]):
        def run() -> dict:
            with open(os.path.join(root, edit), "a", encoding="utf-8") as f:
                f.write(f"/* dagprof bench edit {time.time_ns()} */\n")
            r = run_measured(cmd, cwd=root, env=env, capture=True)
            if r["exit_code"] != 0:
                raise SystemExit(f"edit: {' '.join(cmd)} exited {r['exit_code']}: {r['output'][-400:]}")
            return r

        return run

    where = f" --dir {shlex.quote(a.dir)}" if a.dir else ""
    print_header(
        f"one-file edit ({edit}), a project of {len(sources)} C sources, {a.runs} alternating rounds",
        f"python bench/edit.py --files {a.files} --runs {a.runs}{where} "
        + " ".join(shlex.quote(v) for v in a.variants),
    )
    print(bytecode_note(env))
    runs = {k: variant(c) for k, c in commands.items()}
    for run in runs.values():  # unmeasured: byte code written, each store as a round leaves it
        run()
    res = alternate(a.runs, runs)
    wall = {k: median(r["wall_s"] for r in v) for k, v in res.items()}
    cpu = {k: median(r["user_s"] + r["sys_s"] for r in v) for k, v in res.items()}
    rss = {k: median(r["peak_rss"] for r in v) for k, v in res.items()}
    rows = [
        [
            k,
            round(wall[k], 3),
            f"{wall[k] / wall['plain']:.3f}x",
            f"{cpu[k] / cpu['plain']:.3f}x",
            fmt_bytes(rss[k]),
            f"{rss[k] / rss['plain']:.3f}x",
            " ".join(f"{r['wall_s']:.2f}" for r in res[k]),
        ]
        for k in commands
    ]
    print_table(rows, ["variant", "wall s", "wall ratio", "cpu ratio", "peak RSS", "RSS ratio", "runs (wall s)"])
    for k, c in commands.items():
        print(f"{k}: {' '.join(c)}")
    print(f"load after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

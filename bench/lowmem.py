"""Which SCons settings change a null build's peak RSS: the figures behind docs/low-memory-scons.md.

Why: recommendations for SCons users must come with numbers. Each variant changes one thing in the
synthetic project's SConstruct or command line, is warmed up once (its own .sconsign state), then
its null build is measured `--runs` times against the baseline, alternately (median).

Usage: python bench/lowmem.py [--files 5000] [--runs 3] [--dir DIR] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from _common import IMPORT_PATH, fmt_bytes, fmt_ratio, median, print_header, print_table, run_measured, scons_command

from dagprof.synthetic import generate

# name -> (line appended to the SConstruct, extra scons args, rewrite src/SConscript as one library?)
VARIANTS: dict[str, tuple[str, list[str], bool]] = {
    "baseline": ("", [], False),
    "--implicit-cache": ("", ["--implicit-cache"], False),
    "-j2": ("", ["-j2"], False),
    "Decider('timestamp-match')": ("Decider('timestamp-match')\n", [], False),
    "Decider('content-timestamp')": ("Decider('content-timestamp')\n", [], False),
    "--max-drift=0": ("", ["--max-drift=0"], False),
    "SConsignFile(None) (one per dir)": ("SConsignFile(None)\n", [], False),
    "one library for all sources": ("", [], True),
}

ONE_LIB = """# bench/lowmem.py: every source in ONE static library (the anti-pattern measured against one per directory)
Import('env')
srcs = Split('''{sources}''')
lib = env.StaticLibrary('#build/lib/all', srcs)
prog = env.Program('prog', ['main.c'], LIBS=['all'], LIBPATH=['#build/lib'])
Return('prog')
"""


def configure(root: str, proj, name: str, originals: dict[str, str]) -> list[str]:
    """Rewrite the project for one variant (from the saved originals) and return its scons args."""
    line, args, one_lib = VARIANTS[name]
    for rel, text in originals.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    if line:
        with open(os.path.join(root, "SConstruct"), "a") as f:
            f.write(line)
    if one_lib:
        with open(os.path.join(root, "src", "SConscript"), "w") as f:
            f.write(ONE_LIB.format(sources="\n".join(p[len("src/") :] for p in proj.files)))
    # the signature state is kept: the warm-up run records what a variant needs (SConsignFile(None)
    # finds no per-directory files and rebuilds everything once; the others rebuild nothing)
    return ["-Q", *args]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="project directory (default: a temporary one)")
    ap.add_argument("--only", help="comma-separated variant names (baseline is always measured)")
    a = ap.parse_args()
    names = list(VARIANTS)
    if a.only:
        wanted = {n.strip() for n in a.only.split(",")}
        unknown = wanted - set(VARIANTS)
        if unknown:
            ap.error(f"unknown variants: {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
        names = ["baseline"] + [n for n in names if n in wanted and n != "baseline"]
    root = a.dir or tempfile.mkdtemp(prefix="dagprof-lowmem-")
    env = dict(os.environ, PYTHONPATH=IMPORT_PATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SCONSFLAGS", None)
    proj = generate(root, files=a.files)
    originals = {rel: open(os.path.join(root, rel)).read() for rel in ("SConstruct", "src/SConscript")}
    print_header(
        f"null build of a {a.files}-file synthetic project ({proj.nodes_estimate:,} nodes est.; stand-in "
        f"compiler), one setting changed per variant, median of {a.runs} runs, each after a warm-up build",
        scons_command("-Q", "[variant args]"),
    )
    results = {}
    for name in names:
        args = configure(root, proj, name, originals)
        warm = run_measured(scons_command(*args, "-j2"), cwd=root, env=env, capture=True)  # builds what differs
        if warm["exit_code"] != 0:
            print(f"{name}: warm-up failed: {warm['output'][-300:]}", file=sys.stderr)
            continue
        # a second warm-up settles state that only the first null build records (e.g. implicit deps)
        run_measured(scons_command(*args), cwd=root, env=env)
        runs = [run_measured(scons_command(*args), cwd=root, env=env, capture=True) for _ in range(a.runs)]
        bad = [r for r in runs if r["exit_code"] != 0 or "up to date" not in r["output"]]
        if bad:
            print(f"{name}: null build did work or failed: {bad[0]['output'][-300:]}", file=sys.stderr)
        results[name] = {
            "peak": median(r["peak_rss"] for r in runs),
            "wall": median(r["wall_s"] for r in runs),
            "warm_wall": warm["wall_s"],
            "warm_peak": warm["peak_rss"],
        }
        print(f"  {name}: {fmt_bytes(results[name]['peak'])}, {results[name]['wall']:.2f} s", file=sys.stderr)
    base = results["baseline"]
    rows = [
        [
            n,
            fmt_bytes(r["peak"]),
            fmt_ratio(r["peak"], base["peak"]),
            round(r["wall"], 2),
            fmt_ratio(r["wall"], base["wall"]),
        ]
        for n, r in results.items()
    ]
    print_table(rows, ["variant", "peak RSS", "ratio", "wall s", "ratio"])
    if not a.dir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

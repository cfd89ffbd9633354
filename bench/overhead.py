"""Cost of access profiling: plain SCons vs `dagprof profile` on the same null build, run alternately.

Why: the counters sit on every node slot read (millions per build); this says what that costs.
Usage: python bench/overhead.py [--files 5000] [--runs 5] [--dir DIR] [--introspect | --breakdown]

--breakdown: plain SCons, the access counters alone (--no-introspect), then the counters plus one
introspection component at a time (tracker hooks, cycle watch, monitor, sizing without and with
duplicate statistics), then the default `dagprof profile`; all alternating, each as a ratio to plain.
With introspection, the end also prints what the last run's profile says its components cost in-process
(sizing, cycle check, monitor, tracker: time and own memory).
--teardown: also the last dagprof variant run through dagprof.cli.main, i.e. with the interpreter teardown
that `dagprof profile` skips (entry.exit_without_teardown) and plain scons pays: the profiler's own cost.
--baseline CHECKOUT: also the last dagprof variant from another checkout (its build/import-names, which its
tests/conftest.py makes), alternating with the others: before/after figures under the same load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import (
    alternate,
    bench_env,
    bytecode_note,
    fmt_bytes,
    fmt_ratio,
    median,
    print_header,
    print_table,
    run_measured,
    scons_command,
)

from dagprof.profile import load
from dagprof.synthetic import generate

FEATURES = """
# added by bench/overhead.py --features: what real SConscripts have besides compiling C
def _generate(target, source, env):  # a Python function action
    text = source[0].get_text_contents()
    with open(str(target[0]), "w") as f:
        f.write("/* generated from %s */\\nint gen_{d}(void) {{ return %d; }}\\n" % (text, len(text)))
    return None

version = env.Value("{d}-1.0")  # a Value node
generated = env.Command("gen_{d}.c", version, _generate)  # a generated source, compiled into the library
"""
LIST_END = "'''))"


def add_features(root: str) -> int:
    """Per library directory: a Value node, a Python function action and the source it generates."""
    n = 0
    src = os.path.join(root, "src")
    for d in sorted(os.listdir(src)):
        path = os.path.join(src, d, "SConscript")
        if not (d.startswith("d") and os.path.isfile(path)):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        head, sep, rest = text.partition("lib = env.StaticLibrary(")
        if not sep or LIST_END not in rest or "gen_" in text:
            continue
        rest = rest.replace(LIST_END, LIST_END[:-1] + " + generated)", 1)
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + FEATURES.format(d=d) + "\n" + sep + rest)
        n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", help="project directory (default: a temporary one)")
    ap.add_argument("--introspect", action="store_true", help="also size/monitor (default: access counts only)")
    ap.add_argument("--breakdown", action="store_true", help="one variant per introspection component")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs for the initial full build")
    ap.add_argument("--teardown", action="store_true", help="also the last variant with interpreter teardown")
    ap.add_argument("--baseline", metavar="CHECKOUT", help="also the last variant from another checkout")
    ap.add_argument("--from-source", action="store_true", help="no cached byte code (see _common.bench_env)")
    ap.add_argument(
        "--features",
        action="store_true",
        help="a new project's SConscripts also get a Value node, a Python function action and a generated source each",
    )
    a = ap.parse_args()

    root = a.dir or tempfile.mkdtemp(prefix="dagprof-overhead-")
    env = bench_env(from_source=a.from_source)
    if not os.path.exists(os.path.join(root, "SConstruct")):  # an existing project is reused as it is
        generate(root, files=a.files)
        if a.features:
            print(f"features added to {add_features(root)} SConscripts", file=sys.stderr)
    full = run_measured(scons_command("-Q", f"-j{a.jobs}"), cwd=root, env=env)
    if full["exit_code"] != 0:
        print(f"full build failed (exit {full['exit_code']})", file=sys.stderr)
        return 1
    prof_out = os.path.join(root, "overhead.dagprof")
    dagprof = [sys.executable, "-m", "dagprof", "profile", "-o", prof_out]
    if not a.introspect:
        dagprof.append("--no-introspect")
    if a.breakdown:
        base = [sys.executable, "-m", "dagprof", "profile", "-o", prof_out]
        off = ["--no-tracker", "--no-cycles", "--no-monitor", "--no-sizes", "--no-dup-stats"]

        def only(*keep: str) -> list[str]:
            return [*base, *[o for o in off if o not in keep], "--", "-Q"]

        cmds = {
            "plain": scons_command("-Q"),
            "counters": [*base, "--no-introspect", "--", "-Q"],
            "+tracker": only("--no-tracker"),
            "+cycles": only("--no-cycles"),
            "+monitor": only("--no-monitor"),
            "+sizes": only("--no-sizes"),
            "+sizes+dup": only("--no-sizes", "--no-dup-stats"),
            "default": [*base[:-1], os.path.join(root, "overhead-default.dagprof"), "--", "-Q"],
        }
    else:
        cmds = {"plain": scons_command("-Q"), "dagprof": [*dagprof, "--", "-Q"]}
    envs = {k: env for k in cmds}
    last_name, last_cmd = list(cmds.items())[-1]

    def writing(name: str) -> list[str]:  # the last variant's command, writing a profile of its own
        i = last_cmd.index("-o") + 1
        return [*last_cmd[:i], os.path.join(root, f"overhead-{name}.dagprof"), *last_cmd[i + 1 :]]

    if a.baseline:
        view = os.path.join(os.path.abspath(a.baseline), "build", "import-names")
        if not os.path.isdir(view):
            print(f"{view} missing: run the baseline's tests/conftest.py once", file=sys.stderr)
            return 1
        cmds["baseline"] = writing("baseline")
        envs["baseline"] = dict(env, PYTHONPATH=view + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if a.teardown:
        cli = "import sys; from dagprof.cli import main; sys.exit(main(sys.argv[1:]))"
        cmds[f"{last_name}, with teardown"] = [sys.executable, "-c", cli, *writing("teardown")[3:]]
        envs[f"{last_name}, with teardown"] = env
    print_header(
        f"access-profiling overhead, {a.files}-file synthetic project, null build, {a.runs} alternating runs",
        " | ".join(" ".join(c) for c in cmds.values()),
    )
    print(bytecode_note(env))
    if not a.from_source:  # unmeasured: each variant's byte code written once
        for k, c in cmds.items():
            run_measured(c, cwd=root, env=envs[k])
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = alternate(a.runs, {k: (lambda c=c, e=envs[k]: run_measured(c, cwd=root, env=e)) for k, c in cmds.items()})
    for name, runs in results.items():
        bad = [r for r in runs if r["exit_code"] != 0]
        if bad:
            print(f"{name}: exit {bad[0]['exit_code']}", file=sys.stderr)
            return 1
    wall = {k: median(r["wall_s"] for r in v) for k, v in results.items()}
    rss = {k: median(r["peak_rss"] for r in v) for k, v in results.items()}
    cpu = {k: median(r["user_s"] + r["sys_s"] for r in v) for k, v in results.items()}
    rows = [
        [
            k,
            wall[k],
            fmt_ratio(wall[k], wall["plain"]),
            fmt_ratio(cpu[k], cpu["plain"]),
            fmt_bytes(rss[k]),
            fmt_bytes(rss[k] - rss["plain"]),
            " ".join(f"{r['wall_s']:.2f}" for r in results[k]),
        ]
        for k in cmds
    ]
    print_table(
        rows, ["variant", "median wall s", "wall/plain", "cpu/plain", "median peak RSS", "RSS - plain", "runs (wall s)"]
    )
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if a.breakdown:  # the default variant writes a profile of its own (the runs rotate: none is always last)
        print_own_costs(os.path.join(root, "overhead-default.dagprof"), "default")
    elif a.introspect:
        print_own_costs(prof_out, "dagprof")
    last = last_name
    print(f"wall ratio {last}/plain: {wall[last] / wall['plain']:.3f}")
    print(f"peak RSS ratio {last}/plain: {rss[last] / rss['plain']:.3f}")
    return 0


def print_own_costs(path: str, variant: str) -> None:
    """The components' own time and memory, as the last run's profile records them."""
    sec = load(path).sections
    sizes, cycles, cost = sec.get("sizes") or {}, sec.get("cycles") or {}, (sec.get("monitor") or {}).get("cost", {})
    parts = []
    if sizes:
        parts.append(f"sizing {sizes['elapsed_s']:.3f} s, own memory {fmt_bytes(sizes['self_bytes'])}")
    if cycles:
        parts.append(f"cycle check {cycles.get('check_s', 0.0):.3f} s")
    if cost:
        parts.append(
            f"monitor {cost['cpu_s']:.3f} s CPU, {cost['samples']} samples, {fmt_bytes(cost['monitor_bytes'])}"
        )
        parts.append(f"tracker tables {fmt_bytes(cost['tracker_bytes'])}")
        parts.append(f"finish() {cost['finish_s']:.3f} s in all")
    print(f"in-process, last {variant} run (its profile): " + "; ".join(parts))


if __name__ == "__main__":
    sys.exit(main())

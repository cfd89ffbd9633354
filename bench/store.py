"""Node store vs plain SCons on the same null build: peak RSS and wall ratios, first and second build.

Why: the store exists to lower peak RSS; this measures what it reaches and what it costs, side by side.
Usage: python bench/store.py [--files 5000] [--runs 3] [--dir DIR] [--spill auto] [--pad-kb]
--pad-kb: C sources of realistic size (10-50 KB of code after the includes, headers 2-5 KB), where scanning
costs and a reuse hit saves the scan (issue 13).
"first" = a store build starting from an empty store; "second" = the next one (values reused).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

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

from dagprof.profile import load
from dagprof.synthetic import generate


def pad(root: str, proj) -> None:
    """Grow every C file to 10-50 KB and every header to 2-5 KB of plain code (same includes, deterministic)."""
    for i, rel in enumerate(list(proj.files) + list(proj.headers)):
        path = os.path.join(root, rel)
        header = rel.endswith(".h")
        want = (2 + (i * 7919) % 4 if header else 10 + (i * 7919) % 41) * 1024
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if header:  # inside the include guard: before the last #endif
            head, _, tail = text.rpartition("#endif")
        else:
            head, tail = text, ""
        lines, size, k = [], len(text), 0
        while size < want:
            line = f"static inline int pad_{i}_{k}(int x) {{ /* filler */ return x * {k} + {i}; }}\n"
            lines.append(line)
            size += len(line)
            k += 1
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + "".join(lines) + ("#endif" + tail if header else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="project directory (default: a temporary one)")
    ap.add_argument("--spill", default="auto")
    ap.add_argument("--pad-kb", action="store_true", help="sources of 10-50 KB, headers of 2-5 KB")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs for the initial full build")
    ap.add_argument("--from-source", action="store_true", help="no cached byte code (see _common.bench_env)")
    a = ap.parse_args()

    root = a.dir or tempfile.mkdtemp(prefix="dagprof-store-")
    env = bench_env(from_source=a.from_source)
    if not os.path.exists(os.path.join(root, "SConstruct")):
        proj = generate(root, files=a.files)
        if a.pad_kb:
            pad(root, proj)
        full = run_measured(scons_command("-Q", f"-j{a.jobs}"), cwd=root, env=env)
        if full["exit_code"] != 0:
            print(f"full build failed (exit {full['exit_code']})", file=sys.stderr)
            return 1
    store_dir = os.path.join(root, ".dagstore")
    prof = os.path.join(root, "bench-store.dagprof")

    def build_cmd(spill):  # the DAG cache would answer a null build without SCons: off, to measure the store
        return [
            sys.executable,
            "-m",
            "dagprof",
            "build",
            "--store",
            "lmdb",
            "--dag-cache",
            "off",
            "--spill",
            spill,
            "-o",
            prof,
            "--",
            "-Q",
        ]

    build = build_cmd(a.spill)
    stats: dict[str, list[dict]] = {"first": [], "second": [], "none": []}

    def plain():
        return run_measured(scons_command("-Q"), cwd=root, env=env)

    def store(which: str):
        if which == "first":
            shutil.rmtree(store_dir, ignore_errors=True)
        r = run_measured(build_cmd("none") if which == "none" else build, cwd=root, env=env)
        p = load(prof)
        r["store"] = p.sections.get("store", {})
        r["meta"] = p.meta
        stats[which].append(r["store"])
        return r

    print_header(
        f"node store vs plain SCons, {a.files}-file synthetic project, null build, {a.runs} alternating "
        f"rounds (plain, store first build, store second build)",
        " ".join(scons_command("-Q")) + " | " + " ".join(build),
    )
    print(bytecode_note(env))
    plain(), store("second"), store("none")  # unmeasured: byte code written, the store as a round leaves it
    for v in stats.values():
        v.clear()
    # a round is: plain, first (empty store), second (warm store): "second" always follows a "first"
    # "none": a warm store, --spill none (collapse and reuse only): the plan's measured saving is none - second
    rounds = alternate(
        a.runs,
        {
            "round": lambda: {
                "plain": plain(),
                "first": store("first"),
                "second": store("second"),
                "none": store("none"),
            }
        },
    )["round"]
    res = {k: [r[k] for r in rounds] for k in ("plain", "first", "second", "none")}
    for name, runs in res.items():
        bad = [r for r in runs if r["exit_code"] != 0]
        if bad:
            print(f"{name}: exit {bad[0]['exit_code']}", file=sys.stderr)
            return 1
    wall = {k: median(r["wall_s"] for r in v) for k, v in res.items()}
    rss = {k: median(r["peak_rss"] for r in v) for k, v in res.items()}
    rows = []
    for k in ("plain", "first", "second", "none"):
        anon = median(r["meta"].get("peak_rss_anon", 0) for r in res[k]) if k != "plain" else None
        filer = median(r["meta"].get("peak_rss_file", 0) for r in res[k]) if k != "plain" else None
        rows.append(
            [
                k,
                fmt_bytes(rss[k]),
                f"{rss[k] / rss['plain']:.3f}",
                fmt_bytes(anon),
                fmt_bytes(filer),
                wall[k],
                f"{wall[k] / wall['plain']:.3f}",
                " ".join(f"{r['wall_s']:.1f}" for r in res[k]),
            ]
        )
    print_table(
        rows, ["variant", "peak RSS", "RSS ratio", "peak anon", "peak file", "wall s", "wall ratio", "runs (wall s)"]
    )
    for which in ("first", "second"):
        s = stats[which][-1]
        tput = s["spilled_attrs"] / s["spill_time_s"] if s.get("spill_time_s") else 0
        reload_us = 1e6 * s["reload_time_s"] / s["reloads"] if s.get("reloads") else 0
        print(
            f"{which}: spilled {s['spilled_attrs']} values ({fmt_bytes(s['spilled_bytes'])}), collapsed "
            f"{s['collapsed']}, reloads {s['reloads']} (mean {reload_us:.1f} us), reuse hits {s['reuse_hits']}, "
            f"refused {s['refused']}, spill throughput {tput:,.0f} attrs/s (incl. safe-point walk)"
        )
    print(
        f"peak RSS ratio store/plain: first {rss['first'] / rss['plain']:.3f}, second "
        f"{rss['second'] / rss['plain']:.3f}"
    )
    print(
        f"wall ratio store/plain: first {wall['first'] / wall['plain']:.3f}, second "
        f"{wall['second'] / wall['plain']:.3f}"
    )
    sec = stats["second"][-1]
    per = sec.get("per_attr") or {}
    predicted = sum(
        v.get("bytes", 0) * max(0, v.get("spilled", 0) - v.get("reloads", 0)) / v["spilled"]
        for v in per.values()
        if v.get("spilled")
    )
    print(f"plan (second build): {(sec.get('plan') or {}).get('line')}")
    print(
        f"warm vs fresh store peak RSS: {fmt_bytes(rss['second'])} vs {fmt_bytes(rss['first'])} "
        f"(ratio {rss['second'] / rss['first']:.3f})"
    )
    measured = rss["none"] - rss["second"]
    print(
        f"plan's saving: measured {fmt_bytes(measured)} (peak RSS --spill none minus the plan, warm store both); "
        f"encoded bytes spilled and not reloaded {fmt_bytes(int(predicted))}"
    )
    spec = (sec.get("plan") or {}).get("spill")
    if spec:  # the report's estimate (dagprof.whatif): a sized --spill none profile + the plan's spill counts
        from dagprof.whatif import estimate, parse_spec

        sized = os.path.join(root, "bench-store-sized.dagprof")
        r = run_measured(build_cmd("none")[:-4] + ["--sizes", "-o", sized, "--", "-Q"], cwd=root, env=env)
        if r["exit_code"] == 0:
            p = load(sized)
            p.sections.setdefault("store", {})["per_attr"] = per
            w = estimate(p, parse_spec(f"spill={spec}"))
            ratio = f"; measured/predicted {measured / w['bytes']:.2f}" if w["bytes"] else ""
            print(
                f"plan's saving predicted by the report's rule: {fmt_bytes(w['bytes'])} ("
                + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in w["changes"][0]["per_attr"].items())
                + ")"
                + ratio
            )
    print("reload p50 latency and raw spill throughput of the store itself: python bench/store_micro.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())

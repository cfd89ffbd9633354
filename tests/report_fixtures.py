"""Hand-built profiles in the agreed section shapes, so report tests never depend on a producer."""

from __future__ import annotations

import math

from dagprof.profile import AccessRow, Profile

PHASES = [
    {"name": "read SConscripts", "start_s": 0.0, "end_s": 1.0},
    {"name": "evaluate/build", "start_s": 1.0, "end_s": 4.0},
    {"name": "write .sconsign", "start_s": 4.0, "end_s": 4.5},
]
R, E, W = (p["name"] for p in PHASES)

N_FILES = 10_000
N_DIRS = 100
EMPTY_SET = 216  # sys.getsizeof(set())
EMPTY_LIST = 56  # sys.getsizeof([])


def _attr(nbytes: int, set_: int, empty: int = 0, empty_bytes: int = 0, distinct: int = -1, dup_bytes: int = 0) -> dict:
    return {
        "bytes": nbytes,
        "set": set_,
        "empty": empty,
        "empty_bytes": empty_bytes,
        "distinct": distinct,
        "dup_bytes": dup_bytes,
    }


def full_profile() -> Profile:
    """A 10k-File, 100-Dir null build shaped like the DESIGN.md measurements, with every section."""
    access = [
        AccessRow("File", "_memo", R, 20_000, 10_000, 0, 10_000),
        AccessRow("File", "_memo", E, 1_500_000, 30_000, 0, 10_000),
        AccessRow("File", "ninfo", E, 400_000, 10_000, 0, 10_000),
        AccessRow("File", "ninfo", W, 10_000, 0, 0, 10_000),
        AccessRow("File", "binfo", E, 2_000, 10_000, 0, 2_000),  # 0.2 reads per instance: cold and big
        AccessRow("File", "name", R, 50_000, 10_000, 0, 10_000),
        AccessRow("File", "name", E, 300_000, 0, 0, 10_000),
        AccessRow("File", "waiting_parents", R, 0, 10_000, 0, 0),
        AccessRow("File", "waiting_parents", E, 12_000, 0, 0, 9_000),
        AccessRow("File", "waiting_s_e", R, 0, 10_000, 0, 0),
        AccessRow("File", "waiting_s_e", E, 9_000, 0, 0, 8_000),
        AccessRow("File", "includes", E, 30_000, 10_000, 0, 10_000),
        AccessRow("File", "cached_sig", R, 0, 10_000, 0, 0),  # written, never read
        AccessRow("File", "cached_sig", E, 0, 5_000, 2_500, 0),
        AccessRow("Dir", "_sconsign", W, 150, 100, 0, 100),
        AccessRow("Dir", "entries", R, 40_000, 200, 0, 100),
        AccessRow("Dir", "entries", E, 60_000, 0, 0, 100),
        AccessRow("Dir", "srcdir", R, 0, 100, 0, 0),
    ]
    file_attrs = {
        "_memo": _attr(10_700_000, 10_000),
        "binfo": _attr(3_500_000, 10_000, distinct=10_000),
        "includes": _attr(3_600_000, 10_000, distinct=2_500, dup_bytes=1_200_000),
        "ninfo": _attr(2_400_000, 10_000, distinct=10_000),
        "waiting_parents": _attr(N_FILES * EMPTY_SET, N_FILES, empty=N_FILES, empty_bytes=N_FILES * EMPTY_SET),
        "waiting_s_e": _attr(N_FILES * EMPTY_SET, N_FILES, empty=N_FILES, empty_bytes=N_FILES * EMPTY_SET),
        "side_effects": _attr(N_FILES * EMPTY_LIST, N_FILES, empty=N_FILES, empty_bytes=N_FILES * EMPTY_LIST),
        "name": _attr(700_000, 10_000, distinct=9_000, dup_bytes=20_000),
        "cached_sig": _attr(400_000, 7_500, distinct=7_500),
    }
    dir_attrs = {
        "_sconsign": _attr(11_000_000, 100, distinct=100),
        "entries": _attr(900_000, 100, distinct=100),
        "srcdir": _attr(0, 0),
    }
    file_total = sum(a["bytes"] for a in file_attrs.values()) + 2_000_000
    dir_total = sum(a["bytes"] for a in dir_attrs.values()) + 30_000
    sizes = {
        "elapsed_s": 0.84,
        "objects": 412_345,
        "boundary": ["Environment", "Executor"],
        "classes": {
            "File": {"count": N_FILES, "total": file_total, "shallow": 2_000_000, "attrs": file_attrs},
            "Dir": {"count": N_DIRS, "total": dir_total, "shallow": 30_000, "attrs": dir_attrs},
        },
    }
    counts = {
        "File": {
            "now": 10_000,
            "peak": 10_050,
            "created": 10_200,
            "avg_bytes": file_total // N_FILES,
            "total_bytes": file_total,
        },
        "Dir": {"now": 100, "peak": 100, "created": 100, "avg_bytes": dir_total // N_DIRS, "total_bytes": dir_total},
        "Executor": {"now": 0, "peak": 120, "created": 120, "avg_bytes": 1_000, "total_bytes": 0},
    }
    lifetimes = {
        "File": {"created": 10_200, "freed": 200, "alive": 10_000, "mean_s": 0.12, "p50_s": 0.08, "max_s": 2.5},
        "Executor": {"created": 120, "freed": 120, "alive": 0, "mean_s": 1.5, "p50_s": 1.4, "max_s": 3.9},
    }
    samples = []
    for i in range(46):
        t = i * 0.1
        anon = int(30e6 + 60e6 * (1 - math.exp(-t)) + (8e6 if t > 4.0 else 0))
        file_b = int(12e6 + 1e6 * t)
        samples.append([round(t, 3), anon + file_b, anon, file_b, {"File": min(10_000, int(t * 4000)), "Dir": 100}])
    monitor = {
        "interval_s": 0.1,
        "t0": 1_700_000_000.0,
        "samples": samples,
        "marks": [[0.0, R], [1.0, E], [4.0, W]],
        "cost": {"cpu_s": 0.031, "samples": len(samples), "self_bytes": 48_000},
    }
    snapshots = [
        {
            "label": f"end of {R}",
            "t": 1.0,
            "rss": 70_000_000,
            "counts": {"File": 4_000, "Dir": 100},
            "bytes": {"File": 9_000_000, "Dir": 11_000_000},
        },
        {"label": f"end of {E}", "t": 4.0, "rss": 102_000_000, "counts": {"File": 10_000, "Dir": 100}},
    ]
    cycles = {
        "collections": 41,
        "collected": 3_400,
        "unreachable_cycles": 12,
        "by_class": {"Executor": 120},
        "examples": [{"cls": "Executor", "chain": ["Executor", "dict", "Builder", "Executor"]}],
        "garbage": 0,
    }
    store = {
        "backend": "lmdb",
        "path": "/tmp/x.lmdb",
        "spilled_attrs": 20_100,
        "spilled_bytes": 14_500_000,
        "reloads": 2_300,
        "reuse_hits": 100,
        "refused": 4,
        "spill_time_s": 0.4,
        "reload_time_s": 0.05,
        "stopped": None,
        "per_attr": {
            "File.binfo": {"spilled": 10_000, "bytes": 3_500_000, "reloads": 2_000},
            "Dir._sconsign": {"spilled": 100, "bytes": 11_000_000, "reloads": 30},
        },
    }
    meta = {
        "tool_version": "0.1.0",
        "scons_version": "4.11.1",
        "python_version": "3.11.2",
        "argv": ["dagprof", "profile", "--", "-Q"],
        "cwd": "/tmp/proj",
        "wall_s": 4.5,
        "peak_rss": 102_000_000,
        "exit_code": 0,
        "started": "2025-01-01T12:00:00",
        "machine": "test box",
        "store": "lmdb",
        # what the SCons adapter declares safe to spill, and its late phases (dagstore.policy)
        "spillable": {"File": ["_memo", "ninfo", "binfo", "includes", "cached_sig"], "Dir": ["_sconsign", "entries"]},
        "late_phases": [E, W],
    }
    return Profile(
        meta=meta,
        phases=list(PHASES),
        access=access,
        sections={
            "sizes": sizes,
            "counts": counts,
            "lifetimes": lifetimes,
            "monitor": monitor,
            "snapshots": snapshots,
            "cycles": cycles,
            "store": store,
        },
    )


def comparison() -> dict:
    """A `dagprof compare` result in the agreed shape (3 runs per variant)."""

    def variant(peak, anon, file_, wall, nb, spilled, sbytes, reloads, reuse):
        v = {
            "peak_rss": peak,
            "peak_rss_anon": anon,
            "peak_rss_file": file_,
            "wall_s": wall,
            "node_bytes": nb,
            "nodes": [10_100] * 3,
            "spilled_attrs": spilled,
            "spilled_bytes": sbytes,
            "reloads": reloads,
            "reuse_hits": reuse,
        }
        v["median"] = {k: sorted(vals)[1] for k, vals in v.items()}
        return v

    plain = variant(
        [102_000_000, 101_000_000, 103_000_000],
        [90_000_000, 89_000_000, 91_000_000],
        [12_000_000] * 3,
        [4.4, 4.5, 4.6],
        [40_000_000] * 3,
        [0] * 3,
        [0] * 3,
        [0] * 3,
        [0] * 3,
    )
    store = variant(
        [80_000_000, 81_000_000, 79_000_000],
        [62_000_000, 63_000_000, 61_000_000],
        [18_000_000] * 3,
        [4.9, 5.0, 5.1],
        [25_500_000] * 3,
        [20_100] * 3,
        [14_500_000] * 3,
        [2_300] * 3,
        [100] * 3,
    )
    ratios = {k: (store["median"][k] / plain["median"][k]) if plain["median"][k] else None for k in plain["median"]}
    return {
        "argv": ["-Q"],
        "runs": 3,
        "machine": "test box",
        "variants": {"plain": plain, "store": store},
        "ratios": ratios,
    }

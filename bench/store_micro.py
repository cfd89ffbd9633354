"""Micro-figures of the dagstore: spill throughput and reload latency, LMDBStore vs MemoryStore.

Why: the spill layer's cost per value is codec + store; these figures say which of the two to work
on and what a build with the store will pay per spilled attribute and per reload.

    python bench/store_micro.py [--values 100000] [--batch 1000] [--reloads 20000] [--rounds 3]

Values are shaped like SCons node attributes: lists of include paths, _memo dicts, FileNodeInfo
objects (real SCons class, registered with the codec), tuples and sets of strings, lists of node
references. Rounds alternate the backends; figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

from _common import fmt_bytes, print_header, print_table  # noqa: E402  (sets sys.path to the repo)

from dagstore import Codec, LMDBStore, MemoryStore


class FakeNode:
    """A node stand-in: identity is what the codec must preserve."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def make_values(n: int, rng: random.Random) -> tuple[list[tuple[bytes, object]], dict[str, FakeNode], Codec]:
    """(key, value) pairs shaped like SCons node attributes, the node table and a codec for them."""
    nodes = {f"src/d{i // 50}/f{i}.c": None for i in range(5000)}
    for p in nodes:
        nodes[p] = FakeNode(p)
    paths = list(nodes)
    codec = Codec(resolve_node=nodes.__getitem__, node_key=lambda o: o.path if type(o) is FakeNode else None)
    ninfo = None
    try:
        import SCons.Node.FS as FS

        codec.register(FS.FileNodeInfo)
        ninfo = FS.FileNodeInfo
    except ImportError:
        pass

    def one(i: int) -> tuple[str, object]:
        kind = i % 6
        if kind == 0:
            return "includes", [
                f"include/sub{rng.randrange(40)}/header{rng.randrange(500)}.h" for _ in range(rng.randrange(3, 20))
            ]
        if kind == 1:
            return "_memo", {
                "get_contents": None,
                "stat": (33188, 1700000000 + i, 4096 + i),
                "get_found_includes": {f"k{j}": [f"inc{j}.h"] for j in range(3)},
                "exists": True,
                "rexists": True,
            }
        if kind == 2 and ninfo is not None:
            ni = ninfo()
            ni.csig, ni.timestamp, ni.size = f"{rng.getrandbits(128):032x}", 1700000000 + i, 1000 + i
            return "ninfo", ni
        if kind == 3:
            return "implicit_set", {f"build/obj{rng.randrange(10000)}.o" for _ in range(rng.randrange(1, 10))}
        if kind == 4:
            return "depends", [nodes[rng.choice(paths)] for _ in range(rng.randrange(1, 8))]
        return "cwd_key", (f"src/d{i % 100}", "SConscript", i)

    pairs = []
    for i in range(n):
        attr, value = one(i)
        pairs.append((f"File\0src/d{i // 50}/f{i}.c\0{attr}".encode(), value))
    return pairs, nodes, codec


def spill(store, codec: Codec, pairs, batch: int) -> dict[str, float]:
    """Encode and put_many in batches, as the spill layer does at safe points."""
    t_enc = t_put = 0.0
    nbytes = 0
    for start in range(0, len(pairs), batch):
        t0 = time.perf_counter()
        items = [(k, codec.encode(v)) for k, v in pairs[start : start + batch]]
        t1 = time.perf_counter()
        nbytes += store.put_many(items)
        t_put += time.perf_counter() - t1
        t_enc += t1 - t0
    return {"encode_s": t_enc, "put_s": t_put, "bytes": nbytes}


def reload(store, codec: Codec, keys: list[bytes]) -> tuple[list[int], list[int]]:
    """Per-call ns of get+decode for random keys; also get alone, to split the two."""
    both, get_only = [], []
    clock = time.perf_counter_ns
    for k in keys:
        t0 = clock()
        codec.decode(store.get(k))
        t1 = clock()
        store.get(k)
        t2 = clock()
        both.append(t1 - t0)
        get_only.append(t2 - t1)
    return both, get_only


def pct(values: list[int], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def print_kinds(pairs, codec: Codec) -> None:
    """Per value kind: encode (with and without the native-type check), decode, size; where time goes."""
    fast = Codec(codec.resolve_node, codec.node_key, check_native=False)
    for tag, cls in codec.registered().items():
        fast.register(cls, tag)
    by_kind: dict[str, list] = {}
    for k, v in pairs:
        by_kind.setdefault(k.rsplit(b"\0", 1)[-1].decode(), []).append(v)
    rows = []
    for kind, values in by_kind.items():
        runs = {"check": [], "nocheck": [], "decode": []}
        blobs = [codec.encode(v) for v in values]
        for _ in range(3):  # alternate, keep the best: the host is shared
            for name, fn, items in (
                ("check", codec.encode, values),
                ("nocheck", fast.encode, values),
                ("decode", codec.decode, blobs),
            ):
                t0 = time.perf_counter()
                for x in items:
                    fn(x)
                runs[name].append((time.perf_counter() - t0) / len(items) * 1e6)
        rows.append(
            [
                kind,
                len(values),
                round(min(runs["check"]), 2),
                round(min(runs["nocheck"]), 2),
                round(min(runs["decode"]), 2),
                round(sum(map(len, blobs)) / len(blobs), 1),
            ]
        )
    print_table(rows, ["value kind", "count", "encode us", "encode us (check_native=False)", "decode us", "mean bytes"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--reloads", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the LMDB store is made (default: a temp dir)")
    args = ap.parse_args()
    print_header("dagstore micro: spill throughput and reload latency", [sys.executable, *sys.argv])
    rng = random.Random(42)
    pairs, _nodes, codec = make_values(args.values, rng)
    keys = [pairs[rng.randrange(len(pairs))][0] for _ in range(args.reloads)]

    results: dict[str, list[dict]] = {"memory": [], "lmdb": []}
    for rnd in range(args.rounds):
        for name in ("memory", "lmdb") if rnd % 2 else ("lmdb", "memory"):  # alternate who goes first
            tmp = tempfile.mkdtemp(prefix="dagstore-bench-", dir=args.dir)
            store = MemoryStore() if name == "memory" else LMDBStore(os.path.join(tmp, ".dagstore"))
            try:
                r = spill(store, codec, pairs, args.batch)
                both, get_only = reload(store, codec, keys)
                st = store.stats()
                r.update(
                    p50=pct(both, 0.5),
                    p99=pct(both, 0.99),
                    get_p50=pct(get_only, 0.5),
                    get_p99=pct(get_only, 0.99),
                    file_bytes=st["file_bytes"],
                    used=st["used_bytes"],
                    grows=st.get("map_grows", 0),
                )
                results[name].append(r)
            finally:
                store.close()
                shutil.rmtree(tmp, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    n = len(pairs)
    rows = []
    for label, key, fmt in [
        ("spill values/s (encode+put_many)", None, lambda nm: n / (med(nm, "encode_s") + med(nm, "put_s"))),
        (
            "spill MB/s (encoded bytes)",
            None,
            lambda nm: med(nm, "bytes") / 1e6 / (med(nm, "encode_s") + med(nm, "put_s")),
        ),
        ("  encode s (all values)", "encode_s", None),
        ("  put_many s (all batches)", "put_s", None),
        ("reload p50 us (get+decode)", "p50", None),
        ("reload p99 us (get+decode)", "p99", None),
        ("  get p50 us", "get_p50", None),
        ("  get p99 us", "get_p99", None),
    ]:
        mem = fmt("memory") if fmt else med("memory", key)
        lm = fmt("lmdb") if fmt else med("lmdb", key)
        rows.append([label, round(mem, 2), round(lm, 2), round(lm / mem, 2) if mem else None])
    print(
        f"values: {n} ({fmt_bytes(med('lmdb', 'bytes'))} encoded, mean {med('lmdb', 'bytes') / n:.0f} B "
        f"incl. key), batch {args.batch}, reloads {len(keys)}, rounds {args.rounds} (medians)"
    )
    print_table(rows, ["figure", "MemoryStore", "LMDBStore", "lmdb/memory"])
    print()
    print_kinds(pairs, codec)
    print(
        f"LMDB data.mdb {fmt_bytes(med('lmdb', 'file_bytes'))}, map grown {int(med('lmdb', 'grows'))} times "
        f"from 64 MiB; reloads read pages already in the page cache (warm)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

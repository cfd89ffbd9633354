"""`dagprof compare` with real processes: plain SCons vs the store on a tiny generated project."""

import hashlib
import json
import os

import pytest

from dagprof.compare import BuildState, summarize
from dagprof.exitcodes import BUILD_FAILED, USAGE
from dagprof.synthetic import generate


def _outputs(root) -> dict:
    """Content hash and mtime of every build output: a null-build comparison must leave them alone."""
    out = {}
    for dirpath, _dirs, files in os.walk(os.path.join(root, "build")):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = (hashlib.sha1(fh.read()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tests.conftest import run_scons

    info = generate(tmp_path_factory.mktemp("cmp"), files=30, files_per_dir=10, seed=5)
    r = run_scons(["-Q"], cwd=info.root)
    assert r.returncode == 0, r.stderr
    return info


def test_compare_json_all_variants_and_outputs_unchanged(built, dagprof, tmp_path):
    os.makedirs(built.root / ".dagstore")
    (built.root / ".dagstore" / "mine").write_text("user's store")  # must survive the comparison
    before = _outputs(built.root)
    html = tmp_path / "cmp.html"
    p = dagprof(["compare", "--runs", "2", "--make", "--json", "--html", str(html), "--", "-Q"], cwd=built.root)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert set(data["variants"]) == {"plain", "store", "dagcache", "make"}
    # the dagcache runs really were answered from the DAG snapshot (SCons never ran), the store runs never were
    dag = data["variants"]["dagcache"]
    assert dag["answered"] == [True, True]
    assert len(dag["peak_rss"]) == 2 and dag["wall_s"][0] > 0 and dag["peak_rss_anon"][0] > 0
    assert "--dag-cache off" in data["commands"]["store"] and "--summary" in data["commands"]["dagcache"]
    assert data["commands"]["make"] == "make" and len(data["variants"]["make"]["wall_s"]) == 2
    for name in ("dagcache", "make"):
        assert data["ratios_by_variant"][name]["peak_rss"] == pytest.approx(
            data["variants"][name]["median"]["peak_rss"] / data["variants"]["plain"]["median"]["peak_rss"]
        )
    assert data["ratios_by_variant"]["store"] == data["ratios"]
    rows = {row["key"]: row for row in data["table"]}
    assert rows["wall_s"]["dagcache"] == dag["median"]["wall_s"] and rows["wall_s"]["ratios"]["dagcache"] > 0
    assert any("no dependency (.d) files" in n for n in data["notes"])  # the tree was built by SCons only
    for name in ("plain", "store"):
        v = data["variants"][name]
        assert len(v["peak_rss"]) == 2 and v["peak_rss"][0] > 5 * 2**20
        assert len(v["wall_s"]) == 2 and v["wall_s"][0] > 0
        assert v["median"]["peak_rss"] == pytest.approx(sum(v["peak_rss"]) / 2)
        assert v["nodes"][0] > 30 and v["node_bytes"][0] > 0  # from the sizing pass
        assert v["peak_rss_anon"][0] > 0 and v["peak_rss_file"][0] > 0
    store = data["variants"]["store"]
    assert store["spilled_attrs"][0] > 0
    assert data["variants"]["plain"]["nodes"] == store["nodes"]  # same DAG on both sides
    r = data["ratios"]
    assert r["peak_rss"] == pytest.approx(store["median"]["peak_rss"] / data["variants"]["plain"]["median"]["peak_rss"])
    assert {"wall_s", "node_bytes", "bytes_per_node"} <= set(r)
    assert data["runs"] == 2 and data["argv"] == ["-Q"] and data["machine"] and data["state"] == "null"
    assert {row["key"] for row in data["table"]} >= {"peak_rss", "wall_s", "spilled_attrs"}
    page = html.read_text()
    assert "table-compare" in page and "ratio dagcache/plain" in page and "ratio make/plain" in page
    assert "answered from the cache: 2 of 2 runs" in page
    assert _outputs(built.root) == before  # null builds only: nothing rebuilt, nothing touched
    assert (built.root / ".dagstore" / "mine").read_text() == "user's store"
    assert sorted(os.listdir(built.root / ".dagstore")) == ["mine"]
    assert os.path.exists(built.root / ".sconsign.dblite")


def test_compare_second_state_reuses_the_store(built, dagprof):
    # an explicit plan: `auto` weighs measured spill/reload latencies, which a loaded machine can tip
    p = dagprof(
        [
            "compare",
            "--runs",
            "1",
            "--state",
            "second",
            "--no-sizes",
            "--json",
            "--spill",
            "File.implicit_set,File.implicit",
            "--",
            "-Q",
        ],
        cwd=built.root,
    )
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["state"] == "second"
    assert "node_bytes" not in data["variants"]["plain"]  # --no-sizes: no sizing pass
    store = data["variants"]["store"]
    # the warmed store: values spilled again, and include lists reused from the warm-up build
    assert store["spilled_attrs"][0] > 0 and store["spilled_bytes"][0] > 0
    assert store["reuse_hits"][0] > 0
    assert store["refused"][0] == 0


def test_compare_text_table(built, dagprof):
    p = dagprof(["compare", "--runs", "1", "--no-sizes", "--store", "memory", "--", "-Q"], cwd=built.root)
    assert p.returncode == 0, p.stderr
    assert "peak RSS" in p.stdout and "ratio store/plain" in p.stdout and "scons -Q" in p.stdout
    assert "dagcache" not in p.stdout  # the memory store has no DAG cache


def test_make_needs_a_makefile(tmp_path, dagprof):
    (tmp_path / "SConstruct").write_text("Command('out', [], 'echo > $TARGET')\n")
    p = dagprof(["compare", "--make", "--", "-Q"], cwd=tmp_path)
    assert p.returncode == USAGE and "no Makefile" in p.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["compare", "--store", "disk", "--", "-Q"], "invalid choice"),
        (["compare", "--runs", "0", "--", "-Q"], "--runs must be >= 1"),
        (["compare", "--state", "second", "--store", "memory", "--", "-Q"], "outlives the process"),
        (["compare", "--spill", "Nope.attr", "--", "-Q"], "Nope"),
        (["demo", "--files", "0"], "--files must be >= 1"),
    ],
)
def test_bad_input_one_line_exit_usage(built, dagprof, args, needle):
    p = dagprof(args, cwd=built.root)
    assert p.returncode == USAGE
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in p.stderr


def test_no_sconstruct_is_a_usage_error(tmp_path, dagprof):
    p = dagprof(["compare", "--", "-Q"], cwd=tmp_path)
    assert p.returncode == USAGE and "no SConstruct" in p.stderr


def test_failing_build_stops_with_one_line(tmp_path, dagprof):
    (tmp_path / "SConstruct").write_text("Command('out', [], 'exit 3')\n")
    p = dagprof(["compare", "--runs", "1", "--", "-Q"], cwd=tmp_path)
    assert p.returncode == BUILD_FAILED
    assert "failed (exit 2)" in p.stderr and "Traceback" not in p.stderr


def test_build_state_restore_round_trip(tmp_path):
    (tmp_path / ".sconsign.dblite").write_bytes(b"v1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".sconsign").write_bytes(b"d1")
    st = BuildState(str(tmp_path))
    try:
        st.save("built")
        (tmp_path / ".sconsign.dblite").write_bytes(b"v2")
        (tmp_path / "sub" / ".sconsign").unlink()
        (tmp_path / "new.sconsign").write_bytes(b"x")  # not a .sconsign* name: left alone
        (tmp_path / "sub" / ".sconsign.tmp").write_bytes(b"stray")
        (tmp_path / ".dagstore").mkdir()
        st.restore("built", store=False)
        assert (tmp_path / ".sconsign.dblite").read_bytes() == b"v1"
        assert (tmp_path / "sub" / ".sconsign").read_bytes() == b"d1"
        assert not (tmp_path / "sub" / ".sconsign.tmp").exists()
        assert not (tmp_path / ".dagstore").exists()
    finally:
        st.close()
    assert not os.path.exists(st.tmp)


def test_summarize_medians_and_ratios():
    variants = {
        "plain": {"peak_rss": [100, 300, 200], "wall_s": [1.0, 2.0, 3.0], "node_bytes": [1000], "nodes": [10]},
        "store": {
            "peak_rss": [50, 70, 60],
            "wall_s": [2.0, 2.0, 2.0],
            "node_bytes": [400],
            "nodes": [10],
            "reloads": [1, None, 3],
        },
    }
    ratios = summarize(variants)
    assert variants["plain"]["median"]["peak_rss"] == 200 and variants["store"]["median"]["reloads"] == 2
    assert ratios["peak_rss"] == pytest.approx(0.3) and ratios["wall_s"] == pytest.approx(1.0)
    assert ratios["bytes_per_node"] == pytest.approx(0.4) and "reloads" not in ratios


def test_demo_tells_the_three_parts(tmp_path, dagprof):
    """The demo on a small project: findings, the store's saving, the DAG-cache null build beside SCons and Make."""
    root = tmp_path / "demo"
    p = dagprof(["demo", "--files", "200", "--dir", str(root)], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "1. where the memory goes" in out and "findings (estimated bytes saved)" in out
    assert "2. what the attribute store saves" in out and "node data at end" in out
    assert "3. null build: the DAG cache vs plain SCons vs GNU Make" in out
    assert "ratio dagcache/plain" in out and "ratio make/plain" in out
    assert "answered without SCons in 1 of 1 runs" in out  # the dagcache row really came from the cache
    assert "full build (from clean): GNU Make" in out and "demo took" in out
    page = (root / "demo-report.html").read_text()
    for needle in (
        'id="memory"',
        'id="table-findings"',
        'id="table-compare-store"',
        'id="table-compare-null"',
        'data-variant="dagcache"',
        'data-variant="make"',
        "answered from the cache: 1 of 1 runs",
    ):
        assert needle in page, needle
    assert (root / "demo-profile.html").exists()
    assert not (root / ".dagstore").exists()  # the comparison's stores are gone, the tree as plain SCons left it

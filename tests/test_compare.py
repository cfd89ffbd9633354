"""`dagprof compare` with real processes: plain SCons vs the store on a tiny generated project."""
import hashlib
import json
import os

import pytest

from dagprof.builds.synthetic import generate
from dagprof.compare import BuildState, summarize
from dagprof.exitcodes import BUILD_FAILED, USAGE


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


def test_compare_json_both_variants_and_outputs_unchanged(built, dagprof, tmp_path):
    os.makedirs(built.root / ".dagstore")
    (built.root / ".dagstore" / "mine").write_text("user's store")  # must survive the comparison
    before = _outputs(built.root)
    html = tmp_path / "cmp.html"
    p = dagprof(["compare", "--runs", "1", "--json", "--html", str(html), "--", "-Q"], cwd=built.root)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert set(data["variants"]) == {"plain", "store"}
    for name in ("plain", "store"):
        v = data["variants"][name]
        assert len(v["peak_rss"]) == 1 and v["peak_rss"][0] > 5 * 2**20
        assert len(v["wall_s"]) == 1 and v["wall_s"][0] > 0
        assert v["median"]["peak_rss"] == v["peak_rss"][0]
        assert v["nodes"][0] > 30 and v["node_bytes"][0] > 0  # from the sizing pass
        assert v["peak_rss_anon"][0] > 0 and v["peak_rss_file"][0] > 0
    store = data["variants"]["store"]
    assert store["spilled_attrs"][0] > 0
    assert data["variants"]["plain"]["nodes"] == store["nodes"]  # same DAG on both sides
    r = data["ratios"]
    assert r["peak_rss"] == pytest.approx(store["peak_rss"][0] / data["variants"]["plain"]["peak_rss"][0])
    assert {"wall_s", "node_bytes", "bytes_per_node"} <= set(r)
    assert data["runs"] == 1 and data["argv"] == ["-Q"] and data["machine"] and data["state"] == "null"
    assert {row["key"] for row in data["table"]} >= {"peak_rss", "wall_s", "spilled_attrs"}
    assert "table-compare" in html.read_text()
    assert _outputs(built.root) == before  # null builds only: nothing rebuilt, nothing touched
    assert (built.root / ".dagstore" / "mine").read_text() == "user's store"
    assert sorted(os.listdir(built.root / ".dagstore")) == ["mine"]
    assert os.path.exists(built.root / ".sconsign.dblite")


def test_compare_second_state_reuses_the_store(built, dagprof):
    p = dagprof(["compare", "--runs", "1", "--state", "second", "--no-sizes", "--json", "--", "-Q"], cwd=built.root)
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


@pytest.mark.parametrize("args, needle", [
    (["compare", "--store", "disk", "--", "-Q"], "invalid choice"),
    (["compare", "--runs", "0", "--", "-Q"], "--runs must be >= 1"),
    (["compare", "--state", "second", "--store", "memory", "--", "-Q"], "outlives the process"),
    (["compare", "--spill", "Nope.attr", "--", "-Q"], "Nope"),
    (["demo", "--files", "0"], "--files must be >= 1"),
])
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
    variants = {"plain": {"peak_rss": [100, 300, 200], "wall_s": [1.0, 2.0, 3.0], "node_bytes": [1000], "nodes": [10]},
                "store": {"peak_rss": [50, 70, 60], "wall_s": [2.0, 2.0, 2.0], "node_bytes": [400], "nodes": [10],
                          "reloads": [1, None, 3]}}
    ratios = summarize(variants)
    assert variants["plain"]["median"]["peak_rss"] == 200 and variants["store"]["median"]["reloads"] == 2
    assert ratios["peak_rss"] == pytest.approx(0.3) and ratios["wall_s"] == pytest.approx(1.0)
    assert ratios["bytes_per_node"] == pytest.approx(0.4) and "reloads" not in ratios

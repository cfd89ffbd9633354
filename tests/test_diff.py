"""`dagprof diff`, the memory-regression gate and `report --what-if`, on profiles of real SCons builds.

The regression is a project edit that adds attribute values per node: the same synthetic project
regenerated with 12 instead of 3 includes per C file (File.includes holds 4x the names; nodes stay the
same). Its node bytes per node grow by about 7.5%, File's bytes per instance by about 9%, so a 5% gate
must fail on it and pass on two profiles of one unchanged null build (sizes are deterministic there;
peak RSS moves well under the 4 MiB floor).
"""

import json
import subprocess
import sys

import pytest

from dagprof.diff import change, parse_growth
from dagprof.exitcodes import BAD_INPUT, OK, REGRESSION, USAGE
from dagprof.profile import load
from dagprof.synthetic import generate
from dagprof.whatif import SpecError, attr_parts, estimate, parse_spec


@pytest.fixture(scope="module")
def profiles(tmp_path_factory, request):
    """Null-build profiles: base twice, regressed once; `dagprof build -o` twice on base (one with --sizes)."""
    from conftest import run_dagprof, run_scons

    top = tmp_path_factory.mktemp("diff")
    base = generate(top / "base", files=40, files_per_dir=10, seed=3).root
    more = generate(top / "more", files=40, files_per_dir=10, seed=3, includes_per_file=12).root
    for root in (base, more):
        assert run_scons(["-Q"], root).returncode == 0
    out = {"dir": top, "base_root": base, "more_root": more}
    for name, root in (("base1", base), ("base2", base), ("more", more)):
        out[name] = top / f"{name}.dagprof"
        run_dagprof(["profile", "-o", str(out[name]), "--", "-Q"], root, check=True)
    out["build1"] = top / "build1.dagprof"
    run_dagprof(["build", "-o", str(out["build1"]), "--", "-Q"], base, check=True)
    out["build2"] = top / "build2.dagprof"
    run_dagprof(["build", "--sizes", "-o", str(out["build2"]), "--", "-Q"], base, check=True)
    out["build3"] = top / "build3.dagprof"  # a second, separate run of the unchanged build
    run_dagprof(["build", "-o", str(out["build3"]), "--", "-Q"], base, check=True)
    # the regression on purpose: more includes per file, and an SConstruct edit that adds an Alias and a Value
    # node (classes only the new build has), release notes on the top Dir (Dir bytes per instance) and 64 MiB
    # held while SCons builds (peak RSS): four limits broken at once
    worse = generate(top / "worse", files=40, files_per_dir=10, seed=3, includes_per_file=12).root
    with open(f"{worse}/SConstruct", "a", encoding="utf-8") as f:
        f.write(WORSE_EDIT)
    assert run_scons(["-Q"], worse).returncode == 0
    out["worse_root"] = worse
    out["worse"] = top / "worse.dagprof"
    run_dagprof(["profile", "-o", str(out["worse"]), "--", "-Q"], worse, check=True)
    out["worse_build"] = top / "worse-build.dagprof"
    run_dagprof(["build", "-o", str(out["worse_build"]), "--", "-Q"], worse, check=True)
    return out


WORSE_EDIT = """
Alias("everything", [prog, Value("release 2")])
Dir("#").attributes.release_notes = ["note %d" % i for i in range(2000)]
ballast = b"x" * (64 << 20)
"""


def diff_json(dagprof, profiles, old, new, *extra):
    p = dagprof(["diff", str(profiles[old]), str(profiles[new]), "--json", *extra], profiles["dir"])
    return p, json.loads(p.stdout)


def test_diff_shows_added_values_with_sign_and_order(dagprof, profiles):
    p, d = diff_json(dagprof, profiles, "base1", "more")
    assert p.returncode == OK, p.stderr
    # File.includes holds the added include names: the largest byte change of all, positive
    top = d["attrs"][0]
    assert (top["cls"], top["attr"]) == ("File", "includes"), [(a["cls"], a["attr"]) for a in d["attrs"][:5]]
    assert top["bytes"]["delta"] > 0 and top["bytes"]["rel"] > 0.5
    deltas = [abs(a["bytes"]["delta"]) for a in d["attrs"] if a["bytes"]["delta"] is not None]
    assert deltas == sorted(deltas, reverse=True)
    assert d["classes"][0]["cls"] == "File" and d["classes"][0]["per_instance"]["rel"] > 0.05
    run = {r["key"]: r for r in d["run"]}
    assert run["nodes"]["delta"] == 0 and run["node_bytes_per_node"]["delta"] > 0
    assert {"peak_rss", "wall_s"} <= {k for k, r in run.items() if r["delta"] is not None}
    assert set(d["attrs"][0]["phases"]) == set(d["phases"]) and "evaluate/build" in d["phases"]
    assert d["appeared"] == {"classes": [], "attrs": []} and d["notes"] == []
    # the other way round: the same rows with the opposite sign
    _p, back = diff_json(dagprof, profiles, "more", "base1")
    assert (back["attrs"][0]["cls"], back["attrs"][0]["attr"]) == ("File", "includes")
    assert back["attrs"][0]["bytes"]["delta"] == -top["bytes"]["delta"]
    # the text report shows the same first row
    t = dagprof(["diff", str(profiles["base1"]), str(profiles["more"])], profiles["dir"])
    lines = [ln for ln in t.stdout.splitlines() if ln.startswith(("File.", "Dir.", "RootDir."))]
    assert lines[0].startswith("File.includes") and "+" in lines[0]


def gated_profile(dagprof, profiles, name, root):
    """`dagprof profile` of the project at root, gated on the base profile (5%), writing NAME.dagprof."""
    out = profiles["dir"] / f"{name}.dagprof"
    return dagprof(
        ["profile", "--baseline", str(profiles["base1"]), "--max-growth", "5%", "-o", str(out), "--", "-Q"], root
    )


def test_gate_passes_on_unchanged_build(dagprof, profiles):
    p, d = diff_json(dagprof, profiles, "base1", "base2", "--max-growth", "5%")
    assert p.returncode == OK, d["gate"]
    assert not d["gate"]["failed"] and "node bytes per node" in d["gate"]["checked"]
    assert {r["key"]: r for r in d["run"]}["node_bytes_per_node"]["delta"] == 0  # deterministic
    # and in one step, from the build itself
    g = gated_profile(dagprof, profiles, "again", profiles["base_root"])
    assert g.returncode == OK, g.stderr
    assert "no memory regression beyond 5%" in g.stderr


def test_gate_fails_with_its_code_on_the_regression(dagprof, profiles):
    p, d = diff_json(dagprof, profiles, "base1", "more", "--max-growth", "5%")
    assert p.returncode == REGRESSION
    whats = [c["what"] for c in d["gate"]["causes"]]
    assert "File bytes per instance" in whats and "node bytes per node" in whats
    assert all(c["rel"] > 0.05 for c in d["gate"]["causes"])
    g = gated_profile(dagprof, profiles, "more2", profiles["more_root"])
    assert g.returncode == REGRESSION, g.stderr
    assert "memory regression" in g.stderr and "File.includes" in g.stderr
    causes = [ln for ln in g.stderr.splitlines() if ln.startswith("dagprof:   ")]
    assert 1 <= len(causes) <= 3
    # a limit above the growth passes
    assert (
        dagprof(
            ["diff", str(profiles["base1"]), str(profiles["more"]), "--max-growth", "20%"], profiles["dir"]
        ).returncode
        == OK
    )


def test_gate_on_build_profiles_says_what_was_not_compared(dagprof, profiles):
    p, d = diff_json(dagprof, profiles, "build1", "build1", "--max-growth", "5%")
    assert p.returncode == OK
    assert d["gate"]["checked"] == ["peak RSS"]
    assert any("no sizes" in w for w in d["gate"]["not_compared"])
    assert any(n.startswith("sizes: not in OLD and NEW") for n in d["notes"])
    # a build profile with --sizes against a `profile` one: sizes compared; the second build's access
    # counters were off (the store only refreshes its profile now and then): said in one note
    p, d = diff_json(dagprof, profiles, "base1", "build2", "--max-growth", "50%")
    assert d["compared"]["sizes"] and "node bytes per node" in d["gate"]["checked"]
    if not d["compared"]["access"]:
        assert any(n.startswith("access counts: not in NEW") for n in d["notes"])
        assert all(a["reads"]["delta"] is None for a in d["attrs"])


def test_diff_shows_what_appeared_and_disappeared(dagprof, profiles):
    p, d = diff_json(dagprof, profiles, "base1", "worse")
    assert p.returncode == OK, p.stderr
    assert d["appeared"]["classes"] == ["Alias", "Value"] and d["disappeared"] == {"classes": [], "attrs": []}
    assert {"Alias.sources", "Value.value"} <= set(d["appeared"]["attrs"])
    rows = {c["cls"]: c for c in d["classes"]}
    assert rows["Alias"]["status"] == "appeared" and rows["Alias"]["count"]["old"] in (0, None)
    assert rows["Alias"]["count"]["new"] >= 1 and rows["File"]["status"] == "both"
    # the other way round, they disappeared
    _p, back = diff_json(dagprof, profiles, "worse", "base1")
    assert back["disappeared"]["classes"] == ["Alias", "Value"] and back["appeared"] == {"classes": [], "attrs": []}
    assert set(back["disappeared"]["attrs"]) == set(d["appeared"]["attrs"])
    t = dagprof(["diff", str(profiles["base1"]), str(profiles["worse"])], profiles["dir"])
    assert any(ln.startswith("appeared") and "Alias" in ln for ln in t.stdout.splitlines()), t.stdout


def test_diff_of_an_older_versions_profile_says_so_in_one_line(dagprof, profiles):
    old = load(profiles["base1"])
    old.meta["tool_version"], old.meta["scons_version"] = "0.1.0", "4.0.0"
    path = profiles["dir"] / "older.dagprof"
    old.save(path)
    p, d = diff_json(dagprof, profiles, "base1", "base1")
    assert d["notes"] == []
    p = dagprof(["diff", str(path), str(profiles["base1"]), "--json"], profiles["dir"])
    d = json.loads(p.stdout)
    notes = [n for n in d["notes"] if n.startswith("recorded by different versions")]
    assert len(notes) == 1 and "dagprof 0.1.0, SCons 4.0.0" in notes[0] and len(d["notes"]) == 1
    # compared field by field all the same: the same build, so nothing changed
    assert d["compared"] == {"sizes": True, "access": True} or d["compared"]["sizes"]
    assert all(a["bytes"]["delta"] == 0 for a in d["attrs"])
    t = dagprof(["diff", str(path), str(profiles["base1"])], profiles["dir"])
    lines = [ln for ln in t.stdout.splitlines() if "different versions" in ln]
    assert len(lines) == 1 and lines[0].startswith("note: recorded by different versions")
    assert lines[0].rstrip().endswith("compared field by field where both have it")


def test_gate_on_build_o_profiles(dagprof, profiles):
    """`dagprof build -o` (counters only, no sizes): the gate checks peak RSS, passes on two runs of the
    unchanged build and fails with its code on the build that holds 64 MiB more."""
    p, d = diff_json(dagprof, profiles, "build1", "build3", "--max-growth", "5%")
    assert p.returncode == OK, d["gate"]
    assert d["gate"]["checked"] == ["peak RSS"] and not d["gate"]["failed"]
    p, d = diff_json(dagprof, profiles, "build1", "worse_build", "--max-growth", "5%")
    assert p.returncode == REGRESSION, d["gate"]
    assert [c["what"] for c in d["gate"]["causes"]] == ["peak RSS"] and d["gate"]["causes"][0]["delta"] > 48 << 20
    assert d["appeared"]["classes"] == [] and "Alias.sources" in d["appeared"]["attrs"]  # from the access counts


def test_gate_prints_the_three_largest_causes(dagprof, profiles):
    p, d = diff_json(dagprof, profiles, "base1", "worse", "--max-growth", "5%")
    assert p.returncode == REGRESSION
    causes = d["gate"]["causes"]
    assert len(causes) >= 4 and [c["bytes"] for c in causes] == sorted((c["bytes"] for c in causes), reverse=True)
    assert {"peak RSS", "node bytes per node", "Dir bytes per instance", "File bytes per instance"} <= {
        c["what"] for c in causes
    }
    t = dagprof(["diff", str(profiles["base1"]), str(profiles["worse"]), "--max-growth", "5%"], profiles["dir"])
    assert t.returncode == REGRESSION
    verdict = t.stdout[t.stdout.index("memory regression:") :].splitlines()[1:]
    shown = [ln for ln in verdict if ln.startswith("  ") and not ln.startswith("  …")]
    assert [ln.split(":")[0].strip() for ln in shown] == [c["what"] for c in causes[:3]]
    assert f"… and {len(causes) - 3} more" in t.stdout
    g = gated_profile(dagprof, profiles, "worse2", profiles["worse_root"])
    assert g.returncode == REGRESSION, g.stderr
    lines = [ln for ln in g.stderr.splitlines() if ln.startswith("dagprof:   ")]
    assert len(lines) == 4 and lines[-1].startswith("dagprof:   … and ")


def test_diff_tables_are_never_cut_in_a_pipe(dagprof, profiles):
    """stdout is a pipe here, as in a CI log: every cell is printed in full, every row on one line."""
    _p, d = diff_json(dagprof, profiles, "build1", "worse_build")
    t = dagprof(["diff", str(profiles["build1"]), str(profiles["worse_build"]), "--top", "1000"], profiles["dir"])
    lines = t.stdout.splitlines()
    rows = {ln.split()[0]: ln for ln in lines if ln and ln.split()[0].count(".") == 1}
    checked = 0
    for a in d["attrs"]:
        name = f"{a['cls']}.{a['attr']}"
        if name not in rows or a["reads"]["new"] is None:
            continue
        assert f" {a['reads']['new']:,} " in rows[name] + " ", (name, rows[name])
        checked += 1
    assert checked >= 20
    assert not [ln for ln in lines if "…" in ln and not ln.startswith(("  …", "appeared", "disappeared"))]
    assert "File.changed_since_last_build " in t.stdout


def recipe_blocks() -> list[str]:
    """The shell blocks of docs/usage.md's CI recipe (indented code), in order: baseline, then every change."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text(encoding="utf-8")
    section = text[text.index("### CI recipe") :]
    section = section[: section.index("\n## ")]
    blocks: list[list[str]] = []
    prev_code = False
    for line in section.splitlines():
        code = line.startswith("    ")
        if code and not prev_code:
            blocks.append([])
        if code:
            blocks[-1].append(line[4:])
        prev_code = code or (prev_code and not line.strip())
    return ["\n".join(b) for b in blocks]


def run_recipe(block: str, cwd) -> subprocess.CompletedProcess[str]:
    from conftest import _env

    script = (
        f'set -eu\nscons() {{ "{sys.executable}" -c "import SCons.Script; SCons.Script.main()" "$@"; }}\n'
        f'dagprof() {{ "{sys.executable}" -m dagprof "$@"; }}\n{block}\n'
    )
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)


def test_ci_recipe_keeps_the_diff_of_a_regression(profiles):
    """docs/usage.md's recipe under `set -e`: exit 68 on the regressed build, and diff.html written anyway."""
    import shutil

    baseline, change = recipe_blocks()
    assert "dagprof profile -o baseline.dagprof" in baseline and "--baseline baseline.dagprof" in change
    base, worse = profiles["base_root"], profiles["worse_root"]
    p = run_recipe(baseline, base)
    assert p.returncode == 0, p.stderr
    shutil.copy(f"{base}/baseline.dagprof", f"{worse}/baseline.dagprof")
    for root, want in ((base, OK), (worse, REGRESSION)):
        for out in ("diff.html", "report.html"):
            (root / out).unlink(missing_ok=True)
        p = run_recipe(change, root)
        assert p.returncode == want, (root, p.returncode, p.stderr)
        assert (root / "diff.html").exists() and (root / "report.html").exists()
    assert "memory regression" in p.stderr


def test_diff_html_uses_the_report_charts(dagprof, profiles):
    out = profiles["dir"] / "diff.html"
    p = dagprof(["diff", str(profiles["base1"]), str(profiles["more"]), "--html", str(out)], profiles["dir"])
    assert p.returncode == OK and out.exists()
    html = out.read_text()
    for chart in ("chart-memory", "chart-class-bytes", "chart-attr-bytes", "chart-access-heat"):
        assert html.count(f'id="{chart}"') == 1, chart
    assert 'data-label="File.includes OLD"' in html and 'data-label="File.includes NEW"' in html
    assert "OLD RSS" in html and "NEW RSS" in html and "http://" not in html.replace("http://www.w3.org", "")


def test_bad_gate_arguments(dagprof, profiles):
    base = str(profiles["base1"])
    for args in (
        ["diff", base, base, "--max-growth", "lots"],
        ["diff", base, base, "--max-growth", "-5%"],
        ["profile", "--max-growth", "5%", "--", "-Q"],
    ):
        p = dagprof(args, profiles["base_root"])
        assert p.returncode == USAGE, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("dagprof: ")
    missing = dagprof(["profile", "--baseline", "nope.dagprof", "--", "-Q"], profiles["base_root"])
    assert missing.returncode == BAD_INPUT and "nope.dagprof" in missing.stderr
    assert "scons:" not in missing.stdout  # refused before the build ran


def test_what_if_counts_each_byte_once(dagprof, profiles):
    prof = load(profiles["base1"])
    attrs = prof.sections["sizes"]["classes"]["File"]["attrs"]
    # an attribute where two findings overlap: empty containers are also equal values (dup_bytes)
    name = next(
        a
        for a, v in sorted(attrs.items(), key=lambda kv: -kv[1]["bytes"])
        if v["empty_bytes"] > 0 and v["dup_bytes"] >= v["empty_bytes"]
    )
    a = attrs[name]
    parts = attr_parts(a)
    assert sum(parts.values()) == a["bytes"]
    est = estimate(prof, parse_spec(f"lazy=File.{name};intern=File.{name}"))
    assert est["bytes"] == parts["empty"] + parts["duplicate"] <= a["bytes"]
    assert est["changes"][0]["bytes"] == a["empty_bytes"]
    assert f"File.{name}" in est["changes"][1]["shared"]
    # naming one attribute in two changes, and twice in one, never exceeds its bytes
    inc = attrs["includes"]["bytes"]
    est = estimate(prof, parse_spec("spill=File.includes,File.includes;drop=File.includes;lazy=File.includes"))
    assert est["bytes"] == inc and [c["bytes"] for c in est["changes"]] == [inc, 0, 0]
    # File.implicit's empty lists are collapsed under every plan (--spill none too): not the spill's bytes,
    # they stay for `lazy`, and the total still counts each byte once
    imp = attrs["implicit"]
    assert "File" in prof.meta["spill_collapse"] and "implicit" in prof.meta["spill_collapse"]["File"]
    est = estimate(prof, parse_spec("spill=File.implicit;lazy=File.implicit"))
    assert est["changes"][1]["bytes"] == imp["empty_bytes"] > 0
    assert est["bytes"] <= imp["bytes"]
    # the example through the command line, JSON: total = sum of the changes
    spec = (
        "spill=File.includes,File.implicit_set;lazy=File.waiting_parents;intern=File.contentsig;drop=File.scanner_paths"
    )
    p = dagprof(["report", str(profiles["base1"]), "--what-if", spec, "--json"], profiles["dir"])
    assert p.returncode == OK, p.stderr
    w = json.loads(p.stdout)["what_if"]
    assert w["bytes"] == sum(c["bytes"] for c in w["changes"]) > 0
    assert w["node_bytes_after"] == w["node_bytes_before"] - w["bytes"]
    t = dagprof(["report", str(profiles["base1"]), "--what-if", spec], profiles["dir"])
    assert "What if" in t.stdout and "total" in t.stdout and f"{w['bytes']:,} B" in t.stdout


def test_what_if_spill_reloads_and_latency(profiles):
    prof = load(profiles["base1"])
    est = estimate(prof, parse_spec("spill=File.includes"))
    later = {"evaluate/build", "write .sconsign"}
    reads = sum(r.reads for r in prof.access if (r.cls, r.attr) == ("File", "includes") and r.phase in later)
    # every read from the build phase on is only the upper bound; a reusable value (spilled right after each
    # scan) reloads on the reads beyond one per value, a value read only before its safe point never reloads
    values = est["changes"][0]["spill"]["File.includes"]["values"]
    assert est["reloads_upper"] == reads and est["reloads"] == max(0, reads - values) < reads
    assert est["reload_latency_source"].startswith("default")
    assert est["reload_time_s"] == pytest.approx(est["reloads"] * 27e-6)
    sconsign = sum(
        r.reads for r in prof.access if (r.cls, r.attr) == ("File", "implicit_set") and r.phase == "write .sconsign"
    )
    est = estimate(prof, parse_spec("spill=File.implicit_set"))
    assert est["reloads"] == min(sconsign, est["changes"][0]["values"])
    # a `dagprof build --sizes` profile carries the store's measured reload latency
    built = load(profiles["build2"])
    est = estimate(built, parse_spec("spill=File.includes"))
    st = built.sections["store"]
    if st["reloads"] and st["reload_time_s"]:
        assert est["reload_latency_source"].startswith("measured")
        assert est["reload_latency_s"] == pytest.approx(st["reload_time_s"] / st["reloads"])
    # a name the profile did not size: 0 bytes and a note, not an error
    est = estimate(prof, parse_spec("drop=File.no_such_attr"))
    assert est["bytes"] == 0 and est["unknown"] == ["File.no_such_attr"] and est["notes"]


def test_what_if_spill_of_nothing_predicts_no_reloads(dagprof, profiles):
    """lazy and intern leave nothing of File.waiting_parents to spill (all its values are empty lists)."""
    prof = load(profiles["base1"])
    a = prof.sections["sizes"]["classes"]["File"]["attrs"]["waiting_parents"]
    assert a["bytes"] and attr_parts(a)["rest"] == 0
    assert (
        sum(
            r.reads
            for r in prof.access
            if (r.cls, r.attr) == ("File", "waiting_parents") and r.phase in ("evaluate/build", "write .sconsign")
        )
        > 0
    )  # read late: the old rule's reloads
    spec = "lazy=File.waiting_parents;intern=File.waiting_parents;spill=File.waiting_parents"
    p = dagprof(["report", str(profiles["base1"]), "--what-if", spec, "--json"], profiles["dir"])
    spill = json.loads(p.stdout)["what_if"]["changes"][2]
    assert (spill["bytes"], spill["reloads"], spill["reload_time_s"]) == (0, 0, 0)


@pytest.mark.parametrize(
    "spec",
    ["", "spill", "spil=File.includes", "spill=includes", "spill=File.a.b", "lazy=", "spill=File.includes;;drop"],
)
def test_what_if_bad_spec(dagprof, profiles, spec):
    with pytest.raises(SpecError):
        parse_spec(spec)
    p = dagprof(["report", str(profiles["base1"]), "--what-if", spec], profiles["dir"])
    assert p.returncode == USAGE
    assert p.stderr.startswith("dagprof: --what-if") and len(p.stderr.strip().splitlines()) == 1


def test_parse_growth_and_change():
    assert parse_growth("5%") == pytest.approx(0.05) and parse_growth("0.05") == 0.05
    assert parse_growth("12.5 %") == pytest.approx(0.125)
    for bad in ("", "%", "-1%", "five", "5%%"):
        with pytest.raises(ValueError):
            parse_growth(bad)
    assert change(100, 110) == {"old": 100, "new": 110, "delta": 10, "rel": 0.1}
    assert change(0, 5)["rel"] is None and change(None, 5)["delta"] is None

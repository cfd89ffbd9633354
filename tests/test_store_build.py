"""The node store on real SCons builds with real LMDB: identical outputs and rebuilds, exact reuse."""

import re
from pathlib import Path

import pytest

from dagprof.profile import load
from dagprof.synthetic import generate

WIDE = "File.includes,File.implicit_set,File.implicit,File.binfo,File.contentsig,Dir.on_disk_entries"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "build").rglob("*")) if p.is_file()}


def commands(stdout: str, root: Path | None = None) -> list[str]:
    lines = [line for line in stdout.splitlines() if "stub" in line]
    if root is not None:
        lines = [line.replace(str(root), "<root>") for line in lines]
    return sorted(lines)


def sequence(tmp_path_factory, runner):
    """Full, null, edit .c, edit header, add a file, remove a file: (exit, commands, outputs) per step."""
    proj = generate(tmp_path_factory.mktemp("p"), files=40, files_per_dir=10, seed=7)
    root = proj.root
    steps = []
    for step in ("full", "null", "edit-c", "edit-header", "add", "remove"):
        if step == "edit-c":
            proj.edit_c(3)
        elif step == "edit-header":
            proj.edit_header(1)
        elif step == "add":
            proj.add_file(2)
        elif step == "remove":
            proj.remove_file(proj.files[11])
        p = runner(root)
        steps.append((step, p.returncode, commands(p.stdout, root), snapshot(root), p))
    return proj, steps


@pytest.fixture(scope="module")
def plain_steps(tmp_path_factory):
    from conftest import run_scons

    return sequence(tmp_path_factory, lambda root: run_scons(["-Q"], root))[1]


@pytest.mark.parametrize("spill", ["auto", WIDE])
@pytest.mark.parametrize("store", ["lmdb", "memory"])
def test_store_builds_identical_to_plain(tmp_path_factory, plain_steps, spill, store):
    from conftest import run_dagprof

    def runner(root):
        return run_dagprof(
            ["build", "--store", store, "--spill", spill, "-o", str(root / "b.dagprof"), "--", "-Q"], root
        )

    proj, steps = sequence(tmp_path_factory, runner)
    for (step, rc1, cmds1, files1, _), (_, rc2, cmds2, files2, p) in zip(plain_steps, steps):
        assert rc1 == rc2 == 0, (step, p.stderr)
        assert cmds1 == cmds2, f"{step}: a different set of targets was rebuilt"
        assert files1 == files2, f"{step}: outputs differ"
        assert "Traceback" not in p.stderr
    assert steps[1][2] == []  # the null build built nothing
    assert len(steps[2][2]) >= 2  # an edited .c rebuilds its object, library, program
    st = load(proj.root / "b.dagprof").sections["store"]
    assert st["backend"] == store and st["stopped"] is None
    assert st["collapsed"] > 0
    if spill == "auto":
        # auto weighs the reload and spill latencies measured by the previous builds on this machine, so
        # under load it may spill nothing; then the plan must say, per attribute, why not
        plan = st["plan"]
        assert st["spilled_attrs"] > 0 or (plan["dropped"] and all(plan["dropped"].values())), plan
        assert st["spilled_attrs"] == sum(int(v.get("spilled") or 0) for v in st["per_attr"].values())
    else:
        assert st["spilled_attrs"] > 0
        assert st["per_attr"]["File.implicit_set"]["spilled"] > 0


def test_reuse_skips_rescans_and_edits_are_rescanned(tmp_path, dagprof):
    proj = generate(tmp_path / "p", files=30, files_per_dir=10, seed=11)
    root = proj.root

    def build():
        p = dagprof(["build", "--store", "lmdb", "-o", str(root / "b.dagprof"), "--", "-Q"], root, check=True)
        return p, load(root / "b.dagprof").sections["store"]

    _, first = build()
    assert first["reuse_hits"] == 0
    _, second = build()
    # every C file's include list comes from the store instead of a rescan
    assert second["reuse_hits"] >= len(proj.files)
    assert second["reuse_stale"] == 0

    # give one file a new #include of a header it did not reach before: it must be rescanned...
    target = proj.files[4]
    reached = proj.reached(target)
    header = next(h for h in proj.headers if h.startswith("include/") and h not in reached)
    src = root / target
    name = header.split("/", 1)[1]
    src.write_text(f'#include "{name}"\n' + src.read_text())
    p, third = build()
    assert third["reuse_stale"] >= 1
    assert proj.object_of(target) in p.stdout
    # ... and the new dependency is real: editing that header now rebuilds the object
    proj.edit_header(proj.headers.index(header))
    p, _ = build()
    assert proj.object_of(target) in p.stdout
    rebuilt = set(re.findall(r"-o (build/\S+\.o)", p.stdout))
    assert proj.object_of(target) in rebuilt


def test_spilled_scons_values_reload_equal_and_identical_nodes():
    """Real SCons nodes, NodeInfo/BuildInfo and node lists through the real codec and LMDB-free MemoryStore."""
    import SCons.Node.FS as FS

    from dagprof.builds.scons import make_codec
    from dagstore.backends import MemoryStore
    from dagstore.spill import Marker, Spiller

    fs = FS.FS()
    a, b, c = fs.File("a.c"), fs.File("b.h"), fs.File("c.h")
    a.implicit = [b, c]
    a.implicit_set = {b, c}
    bi = FS.FileBuildInfo()
    ni = FS.FileNodeInfo()
    ni.csig, ni.timestamp, ni.size = "0123abcd" * 4, 1700000000, 42
    bi.bsourcesigs, bi.bimplicitsigs, bi.bactsig = [ni], [ni, ni], "f" * 32
    bi.bsources, bi.bimplicit, bi.bact = ["a.c"], ["b.h", "c.h"], "$CC -c $SOURCES"
    a.binfo = bi
    before = {k: v for k, v in bi.__getstate__().items()}
    sp = Spiller(MemoryStore(), make_codec())
    try:
        sp.guard(FS.File, spill=("implicit", "implicit_set", "binfo"))
        assert sp.spill([a]) == 3
        raw = FS.File.__dict__["binfo"].raw(a)
        assert type(raw) is Marker
        sp.flush()
        assert a.implicit[0] is b and a.implicit[1] is c
        assert a.implicit_set == {b, c}
        after = a.binfo.__getstate__()
        assert after.keys() == before.keys()
        for k in before:
            if k in ("bsourcesigs", "bimplicitsigs"):
                assert [x.__getstate__() for x in after[k]] == [x.__getstate__() for x in before[k]]
            else:
                assert after[k] == before[k]
        assert sp.stats.reloads == 3
    finally:
        sp.reload_all([a, b, c])
        sp.restore()


def test_sconstruct_one_liner_with_plain_scons(tmp_path, scons):
    """`import dagprof; dagprof.enable_store()` in an SConstruct, run by plain scons."""
    proj = generate(tmp_path / "p", files=20, files_per_dir=10, seed=5)
    root = proj.root
    ref = generate(tmp_path / "ref", files=20, files_per_dir=10, seed=5)
    sconstruct = root / "SConstruct"
    sconstruct.write_text("import dagprof; dagprof.enable_store()\n" + sconstruct.read_text())
    for step in ("full", "null", "edit"):
        if step == "edit":
            proj.edit_header(0)
            ref.edit_header(0)
        a, b = scons(["-Q"], ref.root), scons(["-Q"], root)
        assert a.returncode == b.returncode == 0, b.stderr
        assert commands(a.stdout, ref.root) == commands(b.stdout, root), step
        assert snapshot(ref.root) == snapshot(root), step
    assert (root / ".dagstore" / "data.mdb").exists()
    from dagstore.backends import LMDBStore

    st = LMDBStore(str(root / ".dagstore"))
    try:
        assert any(k.startswith(b"rF:") for k, _ in st.items(b"r"))  # include lists kept for reuse
    finally:
        st.close()


def test_auto_counts_accesses_only_when_the_stored_profile_is_missing_or_old(tmp_path, dagprof, monkeypatch):
    proj = generate(tmp_path / "p", files=10, files_per_dir=10, seed=2)
    root = proj.root
    counted = []
    for _ in range(3):
        dagprof(["build", "--store", "lmdb", "-o", str(root / "b.dagprof"), "--", "-Q"], root, check=True)
        p = load(root / "b.dagprof")
        counted.append((p.meta["access_counted"], bool(p.access)))
    assert counted == [(True, True), (False, False), (False, False)]
    from dagstore.backends import LMDBStore

    st = LMDBStore(str(root / ".dagstore"))
    try:
        assert st.get_meta("profile_age") == 2
        assert st.get_meta("access_profile")  # the first build's table is still the advice
        st.set_meta("profile_age", 9)  # ... until it is PROFILE_REFRESH builds old
    finally:
        st.close()
    dagprof(["build", "--store", "lmdb", "-o", str(root / "b.dagprof"), "--", "-Q"], root, check=True)
    assert load(root / "b.dagprof").meta["access_counted"] is True


def test_parallel_build_with_store_is_equivalent(tmp_path):
    """-j2: workers may reload values while the main thread spills at safe points."""
    import json
    import subprocess
    import sys

    from conftest import _env

    generate(tmp_path / "p", files=60, files_per_dir=15, seed=9)
    edits = tmp_path / "edits.json"
    edits.write_text(
        json.dumps(
            [
                {"edit": "src/d000/f00001.c", "append": "\nint extra_j2(void) { return 2; }\n"},
                {"edit": "include/d001/h1.h", "append": "\n#define J2_EXTRA 1\n"},
            ]
        )
    )
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagprof.equivalence",
            str(tmp_path / "p"),
            "--edits",
            str(edits),
            "--store",
            "lmdb",
            "--",
            "-Q",
            "-j2",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "EQUIVALENT" in p.stdout


@pytest.mark.parametrize("where", ["after __future__", "site_scons/site_init.py"])
def test_enable_store_in_an_sconstruct_that_starts_with_future_imports(tmp_path, scons, where):
    """gpsd's SConstruct starts with `from __future__ import ...`: the line goes after those imports
    (docs/usage.md), or into site_scons/site_init.py, which needs no edit of the SConstruct."""
    proj = generate(tmp_path / "p", files=10, files_per_dir=10, seed=3)
    ref = generate(tmp_path / "ref", files=10, files_per_dir=10, seed=3)
    future = "from __future__ import annotations, division\n"
    one_line = "import dagprof; dagprof.enable_store()\n"
    for p in (proj, ref):
        sc = p.root / "SConstruct"
        sc.write_text(future + sc.read_text())
    if where == "after __future__":
        sc = proj.root / "SConstruct"
        text = sc.read_text()
        sc.write_text(text.replace(future, future + one_line, 1))
    else:
        (proj.root / "site_scons").mkdir()
        (proj.root / "site_scons" / "site_init.py").write_text(one_line)
    for step in ("full", "null"):
        a, b = scons(["-Q"], ref.root), scons(["-Q"], proj.root)
        assert a.returncode == b.returncode == 0, b.stderr
        assert a.stderr == b.stderr == ""
        assert commands(a.stdout, ref.root) == commands(b.stdout, proj.root), step
    assert (proj.root / ".dagstore" / "data.mdb").exists()
    from dagstore.backends import LMDBStore

    st = LMDBStore(str(proj.root / ".dagstore"))
    try:
        assert any(k.startswith(b"rF:") for k, _ in st.items(b"r"))
    finally:
        st.close()


def test_usage_docs_say_where_the_one_line_goes():
    text = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    assert "from __future__" in text and "site_scons/site_init.py" in text and "dagprof build" in text


def test_a_profile_asked_for_is_written_even_when_the_dag_cache_could_answer(tmp_path, dagprof):
    """`dagprof build -o FILE` on an up-to-date tree runs the build: the DAG cache would write no profile."""
    proj = generate(tmp_path / "p", files=10, files_per_dir=10, seed=4)
    dagprof(["build", "--", "-Q"], proj.root, check=True)
    dagprof(["build", "--", "-Q"], proj.root, check=True)  # the snapshot is confirmed by a null build
    for name in ("a.dagprof", "b.dagprof"):
        dagprof(["build", "-o", name, "--", "-Q"], proj.root, check=True)
        assert load(str(proj.root / name)).sections["store"]["backend"] == "lmdb"

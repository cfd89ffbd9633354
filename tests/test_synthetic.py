"""The synthetic project builds with real SCons and real Make, and both rebuild exactly what changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagprof.synthetic import ProjectInfo, _macro, generate

SMALL = dict(files=40, files_per_dir=10, headers_per_dir=5, includes_per_file=3, seed=7)


# sha256 over every generated file (path, executable bit, bytes) of generate(**SMALL): the same seed writes
# the same tree, byte for byte, as it did when the stub tools were strings in profiler/builds/synthetic.py.
# A deliberate change to the generated files changes it: update it then (benchmarks compare like with like).
SMALL_DIGEST = "08a44ca70245dc990756d44e79bbd095fa6e262a762c8c76adbe659f87c5725f"


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                h.update(
                    os.path.relpath(p, root).encode()
                    + b"\0"
                    + str(os.access(p, os.X_OK)).encode()
                    + b"\0"
                    + f.read()
                    + b"\0"
                )
    return h.hexdigest()


def test_the_same_seed_writes_the_same_tree(tmp_path):
    generate(tmp_path / "p", **SMALL)
    assert tree_digest(tmp_path / "p") == SMALL_DIGEST


def scons(info: ProjectInfo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=info.root, capture_output=True, text=True)


def make(info: ProjectInfo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=info.root, capture_output=True, text=True)


def build(tool, info: ProjectInfo, *args: str) -> subprocess.CompletedProcess:
    done = tool(info, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def outputs_on_disk(info: ProjectInfo) -> dict[str, bytes]:
    build_dir = info.root / "build"
    return {
        str(p.relative_to(info.root)): p.read_bytes() for p in build_dir.rglob("*") if p.is_file() and p.suffix != ".d"
    }


def object_mtimes(info: ProjectInfo) -> dict[str, int]:
    return {str(p.relative_to(info.root)): p.stat().st_mtime_ns for p in (info.root / "build").rglob("*.o")}


def rebuilt(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {p for p, t in after.items() if before.get(p) != t}


@pytest.fixture
def pair(tmp_path: Path) -> tuple[ProjectInfo, ProjectInfo]:
    """Two identical stub projects: one built by SCons, one by Make."""
    return generate(tmp_path / "scons", **SMALL), generate(tmp_path / "make", **SMALL)


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_generation_is_deterministic_and_seeded(tmp_path: Path) -> None:
    a, b = generate(tmp_path / "a", **SMALL), generate(tmp_path / "b", **SMALL)
    c = generate(tmp_path / "c", **{**SMALL, "seed": 8})
    assert tree(a.root) == tree(b.root)
    assert a.includes == b.includes
    assert a.includes != c.includes
    assert len(a.files) == 40 and a.dirs == ["d000", "d001", "d002", "d003"]
    assert len(a.headers) == 4 * 5
    # includes cross directories, and headers include headers
    assert any(_dir_of(h) != _dir_of(f) for f in a.files for h in a.includes[f])
    assert any(a.includes[h] for h in a.headers)


def _dir_of(path: str) -> str:
    return Path(path).parent.name


def test_bad_arguments_are_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compiler must be one of"):
        generate(tmp_path / "x", files=4, compiler="clang")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate(tmp_path / "full", files=4)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


@needs_make
def test_scons_and_make_build_the_same_outputs(pair) -> None:
    by_scons, by_make = pair
    build(scons, by_scons)
    build(make, by_make)
    scons_out, make_out = outputs_on_disk(by_scons), outputs_on_disk(by_make)
    assert set(scons_out) == by_scons.outputs()
    assert scons_out == make_out  # same stubs, same command lines: byte-identical trees
    # the stub really followed includes: an object carries every header its source reaches
    src = by_scons.files[5]
    obj = scons_out[by_scons.object_of(src)].decode()
    assert {h for h in by_scons.reached(src)} == {line[3:] for line in obj.splitlines() if line.startswith("== ")} - {
        src
    }


@needs_make
def test_null_build_rebuilds_nothing(pair) -> None:
    by_scons, by_make = pair
    build(scons, by_scons)
    build(make, by_make)
    before = object_mtimes(by_scons)
    assert scons(by_scons, "--question").returncode == 0
    again = build(scons, by_scons)
    assert "stubcc" not in again.stdout and "up to date" in again.stdout
    assert object_mtimes(by_scons) == before
    assert make(by_make, "-q").returncode == 0
    assert "Nothing to be done" in build(make, by_make).stdout


def _headers_with_indirect_dependents(info: ProjectInfo) -> list[str]:
    """Headers some source reaches only through another header (the C scanner must recurse)."""
    direct = {h for f in info.files for h in info.includes[f]}
    return [h for h in info.headers if info.dependents(h) and h not in direct] or [
        h for h in info.headers if any(h in info.includes[o] for o in info.headers)
    ]


@needs_make
@pytest.mark.parametrize("which", ["private", "indirect"])
def test_header_edit_rebuilds_exactly_its_dependents(pair, which: str) -> None:
    by_scons, by_make = pair
    build(scons, by_scons)
    build(make, by_make)
    if which == "private":
        header = next(h for h in by_scons.headers if h.startswith("src/") and by_scons.dependents(h))
    else:
        header = _headers_with_indirect_dependents(by_scons)[0]
    index = by_scons.headers.index(header)
    expected = {by_scons.object_of(f) for f in by_scons.dependents(header)}
    assert expected and len(expected) < len(by_scons.files)
    for info, tool in ((by_scons, scons), (by_make, make)):
        before = object_mtimes(info)
        prog_before = (info.root / "build/prog").read_bytes()
        assert info.edit_header(index) == header
        build(tool, info)
        assert rebuilt(before, object_mtimes(info)) == expected, tool.__name__
        assert (info.root / "build/prog").read_bytes() != prog_before
    assert outputs_on_disk(by_scons) == outputs_on_disk(by_make)


@needs_make
def test_source_edit_rebuilds_one_object(pair) -> None:
    for info, tool in zip(pair, (scons, make)):
        build(tool, info)
        before = object_mtimes(info)
        path = info.edit_c(12)
        build(tool, info)
        assert rebuilt(before, object_mtimes(info)) == {info.object_of(path)}


@needs_make
def test_add_and_remove_files_update_both_build_descriptions(pair) -> None:
    for info, tool in zip(pair, (scons, make)):
        build(tool, info)
        added = info.add_file("d001")
        assert added in info.files
        assert f"    {Path(added).name}\n" in (info.root / "src/d001/SConscript").read_text()
        assert info.object_of(added) in (info.root / "src/d001/module.mk").read_text()
        before = object_mtimes(info)
        build(tool, info)
        assert rebuilt(before, object_mtimes(info)) == {info.object_of(added)}
        assert info.object_of(added) in (info.root / info.library_of("d001")).read_text()

        gone = info.files[3]
        info.remove_file(gone)
        assert not (info.root / gone).exists()
        build(tool, info)
        archive = (info.root / info.library_of("d000")).read_text()
        assert info.object_of(gone) not in archive
        assert info.object_of(info.files[0]) in archive
        assert set(outputs_on_disk(info)) >= info.outputs()
    assert outputs_on_disk(pair[0])["build/prog"] == outputs_on_disk(pair[1])["build/prog"]


def test_remove_refuses_unknown_and_last_file(tmp_path: Path) -> None:
    info = generate(tmp_path / "p", files=3, files_per_dir=2)
    with pytest.raises(ValueError, match="not a source"):
        info.remove_file("src/d000/nope.c")
    with pytest.raises(ValueError, match="last source"):
        info.remove_file("src/d001/f00002.c")


def test_reset_build_forces_a_full_build(tmp_path: Path) -> None:
    info = generate(tmp_path / "p", **SMALL)
    build(scons, info)
    (info.root / ".dagstore").mkdir()
    info.reset_build()
    assert not (info.root / "build").exists()
    assert not list(info.root.glob(".sconsign*")) and not (info.root / ".dagstore").exists()
    full = build(scons, info)
    assert full.stdout.count("stubcc -o build/") == len(info.files) + 2  # objects, main.o, prog


def _expected_sum(info: ProjectInfo) -> int:
    """What build/prog prints: main calls each library's first function with x=1."""

    def value(h: str) -> int:
        return len(_macro(h)) + sum(value(i) for i in info.includes[h])

    firsts = {}
    for f in info.files:
        firsts.setdefault(_dir_of(f), f)
    return sum(1 + sum(value(h) for h in info.includes[f]) for f in firsts.values())


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="needs gcc and make")
def test_gcc_project_compiles_links_and_runs(tmp_path: Path) -> None:
    tiny = dict(files=8, files_per_dir=4, headers_per_dir=3, includes_per_file=2, seed=3, compiler="gcc")
    by_scons, by_make = generate(tmp_path / "s", **tiny), generate(tmp_path / "m", **tiny)
    build(scons, by_scons)
    build(make, by_make)
    expected = str(_expected_sum(by_scons))
    for info in (by_scons, by_make):
        run = subprocess.run([str(info.root / "build/prog")], capture_output=True, text=True)
        assert run.returncode == 0 and run.stdout.strip() == expected
    # a header edit changes the program's behaviour after an incremental build
    header = next(h for h in by_scons.headers if by_scons.dependents(h) & set(by_scons.files[::4]))
    by_scons.edit_header(by_scons.headers.index(header))
    build(scons, by_scons)
    run = subprocess.run([str(by_scons.root / "build/prog")], capture_output=True, text=True)
    assert int(run.stdout) > int(expected)


def test_stub_compiler_fails_on_a_missing_include(tmp_path: Path) -> None:
    info = generate(tmp_path / "p", files=2, files_per_dir=2)
    src = info.root / info.files[0]
    src.write_text('#include "nowhere.h"\n' + src.read_text())
    done = scons(info)
    assert done.returncode != 0
    assert "stubcc: src/d000/f00000.c: 'nowhere.h' not found" in done.stderr

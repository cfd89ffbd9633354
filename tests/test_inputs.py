"""dagstore.inputs: what a phase read is recorded, and check() tells exactly when it changed."""

import glob
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagstore.inputs import RACY_NS, InputRecorder, check, file_state, same_file

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_phase(fn, ignore=()):
    """Run fn() as the recorded phase and return the recorder (stopped)."""
    rec = InputRecorder(ignore_prefixes=ignore)
    rec.start()
    try:
        fn()
    finally:
        rec.stop()
    return rec


def changes(records):
    """The reasons check() gives, one per changed record."""
    return [r for r in (check(rec) for rec in records) if r is not None]


def find(records, tag, key):
    """The records of one kind about one path or name."""
    return [r for r in records if r[0] == tag and r[1] == key]


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_file_read_edit_and_touch(tmp_path):
    src = tmp_path / "SConstruct"
    write(src, "env = 1\n")
    records = run_phase(lambda: read(src)).records()
    (rec,) = find(records, "f", str(src))
    assert rec[2][:6] == file_state(str(src), "md5")
    assert rec[2][5] == hashlib.md5(b"env = 1\n").hexdigest()
    assert check(rec) is None
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns - 10 * RACY_NS))  # touch: same content
    assert check(rec) is None
    write(src, "env = 2\n")
    assert check(rec) == f"{src} changed"
    os.remove(src)
    assert check(rec) == f"{src} deleted"


def test_file_missing_when_read_then_created(tmp_path):
    ghost = tmp_path / "local.py"

    def phase():
        try:
            read(ghost)
        except FileNotFoundError:
            pass

    records = run_phase(phase).records()
    (rec,) = find(records, "f", str(ghost))
    assert rec[2][0] == "missing"
    assert check(rec) is None
    write(ghost, "x = 1\n")
    assert check(rec) == f"{ghost} created"


def test_racily_clean_content_change_is_detected(tmp_path):
    src = tmp_path / "racy.txt"
    write(src, "aaaa")
    records = run_phase(lambda: read(src)).records()
    (rec,) = find(records, "f", str(src))
    state = rec[2]
    write(src, "bbbb")  # same length
    os.utime(src, ns=(state[2], state[2]))  # mtime back to the recorded one
    assert os.stat(src).st_mtime_ns == state[2] and os.stat(src).st_size == state[1]
    assert check(rec) == f"{src} changed"


def test_racy_rule_decides_when_stat_matches(tmp_path):
    """A coarse file system can keep size, mtime, ino and ctime across a rewrite: only the racy rule
    then forces the re-hash. Simulated by recording the stat of the rewritten file with the old digest."""
    src = tmp_path / "racy.txt"
    write(src, "aaaa")
    old_digest = file_state(str(src), "md5")[5]
    write(src, "bbbb")
    st = os.stat(src)
    stale = ["file", st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, old_digest]
    recorded_now = time.time_ns()
    assert not same_file(str(src), stale, "md5", recorded_now)  # racy: re-hashed
    assert check(["f", str(src), stale + [recorded_now]]) == f"{src} changed"
    long_after = st.st_mtime_ns + 10 * RACY_NS
    assert same_file(str(src), stale, "md5", long_after)  # stat trusted
    assert check(["f", str(src), stale + [long_after]]) is None


def test_listed_dir_gets_a_new_file(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "a.c").write_text("")
    g = tmp_path / "g"
    g.mkdir()
    (g / "b.c").write_text("")
    records = run_phase(lambda: (os.listdir(d), glob.glob(str(g / "*.c")))).records()
    assert len(find(records, "d", str(d))) == 1
    assert len(find(records, "d", str(g))) == 1
    assert changes(records) == []
    (d / "new.c").write_text("")
    (g / "other.c").write_text("")
    assert sorted(changes(records)) == sorted([f"dir {d} listing changed", f"dir {g} listing changed"])


def test_probes_record_kind_only(tmp_path):
    missing = tmp_path / "config.local"
    present = tmp_path / "present.txt"
    write(present, "x")
    link = tmp_path / "link"
    link.symlink_to(present)
    seen = {}

    def phase():
        seen["exists"] = os.path.exists(missing)
        seen["mtime"] = os.path.getmtime(present)
        seen["islink"] = os.path.islink(link)
        seen["isdir"] = pathlib.Path(tmp_path / "nodir").is_dir()
        seen["access"] = os.access(present, os.R_OK, effective_ids=False)

    records = run_phase(phase).records()
    assert seen == {"exists": False, "mtime": os.path.getmtime(present), "islink": True, "isdir": False, "access": True}
    assert find(records, "p", str(missing)) == [["p", str(missing), "missing"]]
    assert find(records, "p", str(present)) == [["p", str(present), "file"]]
    assert find(records, "p", str(link)) == [["p", str(link), "link"]]
    assert find(records, "p", str(tmp_path / "nodir")) == [["p", str(tmp_path / "nodir"), "missing"]]
    assert changes(records) == []
    os.utime(present, ns=(1, 1))  # the phase read an mtime: still not a change
    assert changes(records) == []
    write(missing, "")
    assert changes(records) == [f"{missing} changed (missing -> file)"]


def test_probe_of_a_read_file_is_not_duplicated(tmp_path):
    src = tmp_path / "f.txt"
    write(src, "x")
    records = run_phase(lambda: (os.path.isfile(src), read(src))).records()
    assert [r[0] for r in records if r[1] == str(src)] == ["f"]


def test_forget_probe_drops_stat_probes_only(tmp_path):
    """A caller that checks a path's stat kind itself (the DAG cache's node records) drops the stat probe;
    an lstat probe stays (a link replacing the file changes what lstat says, not what stat says)."""
    a, b = tmp_path / "a.h", tmp_path / "b.h"
    write(a, "x")
    write(b, "y")
    rec = run_phase(lambda: (os.path.exists(a), os.path.islink(b), os.path.isfile(b)))
    assert rec.forget_probe(str(a)) is True
    assert rec.forget_probe(str(b)) is False  # lstat'ed too
    assert rec.forget_probe(str(tmp_path / "never")) is False
    records = rec.records()
    assert find(records, "p", str(a)) == []
    assert find(records, "p", str(b)) == [["p", str(b), "file"]]


def test_env_read_then_changed(monkeypatch):
    monkeypatch.setenv("DAGPROF_T_CC", "gcc")
    monkeypatch.setenv("DAGPROF_T_OPT", "-O2")
    monkeypatch.delenv("DAGPROF_T_NONE", raising=False)
    monkeypatch.setenv("DAGPROF_T_UNRELATED", "a")
    seen = []

    def phase():
        seen.append(os.environ["DAGPROF_T_CC"])
        seen.append(os.getenv("DAGPROF_T_OPT"))
        seen.append("DAGPROF_T_NONE" in os.environ)
        seen.append(os.environ.get("DAGPROF_T_NONE", "dflt"))

    records = run_phase(phase).records()
    assert seen == ["gcc", "-O2", False, "dflt"]
    assert [r for r in records if r[0] in "eE"] == [
        ["e", "DAGPROF_T_CC", "gcc"],
        ["e", "DAGPROF_T_NONE", None],
        ["e", "DAGPROF_T_OPT", "-O2"],
    ]
    assert changes(records) == []
    monkeypatch.setenv("DAGPROF_T_UNRELATED", "b")
    assert changes(records) == []
    monkeypatch.setenv("DAGPROF_T_CC", "clang")
    assert changes(records) == ["env DAGPROF_T_CC changed"]
    monkeypatch.setenv("DAGPROF_T_CC", "gcc")
    monkeypatch.setenv("DAGPROF_T_NONE", "")
    assert changes(records) == ["env DAGPROF_T_NONE changed"]


def test_env_set_by_the_phase_is_not_an_input(monkeypatch):
    monkeypatch.delenv("DAGPROF_T_OWN", raising=False)

    def phase():
        os.environ["DAGPROF_T_OWN"] = "mine"
        assert os.environ["DAGPROF_T_OWN"] == "mine"
        del os.environ["DAGPROF_T_OWN"]
        assert os.environ.get("DAGPROF_T_OWN") is None

    records = run_phase(phase).records()
    assert [r for r in records if r[0] in "eE"] == []


@pytest.mark.parametrize("how", ["dict", "copy", "items"])
def test_whole_environment(monkeypatch, how):
    monkeypatch.setenv("DAGPROF_T_A", "1")

    def phase():
        if how == "dict":
            dict(os.environ)
        elif how == "copy":
            os.environ.copy()
        else:
            list(os.environ.items())

    records = run_phase(phase).records()
    assert [r[0] for r in records if r[0] in "eE"] == ["E"]
    assert changes(records) == []
    monkeypatch.setenv("DAGPROF_T_SOMETHING_ELSE", "x")
    assert changes(records) == ["environment changed"]


def test_subprocess_tool_script_is_an_input(tmp_path):
    tool = tmp_path / "tool.py"
    write(tool, "print('v1')\n")
    out = []
    records = run_phase(
        lambda: out.append(
            subprocess.run([sys.executable, "tool.py"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        )
    ).records()
    assert out == ["v1\n"]
    assert find(records, "x", [sys.executable, "tool.py"]) == [["x", [sys.executable, "tool.py"], sys.executable]]
    assert len(find(records, "f", str(tool))) == 1
    assert len(find(records, "f", sys.executable)) == 1
    assert changes(records) == []
    write(tool, "print('v2')\n")
    assert changes(records) == [f"{tool} changed"]


def test_os_system_records_the_command_and_its_executable(tmp_path):
    import shutil

    true = shutil.which("true")
    records = run_phase(lambda: os.system("true")).records()
    (x,) = [r for r in records if r[0] == "x"]
    assert x == ["x", ["sh", "-c", "true"], "/bin/sh"]
    assert len(find(records, "f", "/bin/sh")) == 1
    assert len(find(records, "f", os.path.abspath(true))) == 1
    assert changes(records) == []


def test_temp_file_written_and_deleted_is_no_record(tmp_path):
    tmp = tmp_path / "conftest.py"

    def phase():
        write(tmp, "print('hi')\n")
        subprocess.run([sys.executable, str(tmp)], capture_output=True, check=True)
        read(tmp)
        os.remove(tmp)

    records = run_phase(phase).records()
    assert [r for r in records if r[0] in "fo" and r[1] == str(tmp)] == []
    assert changes(records) == []


def test_output_written_by_the_phase(tmp_path):
    out = tmp_path / "config.h"
    both = tmp_path / "cache.txt"
    write(both, "old")

    def phase():
        write(out, "#define X 1\n")
        read(both)
        with open(both, "a") as f:
            f.write("+")

    records = run_phase(phase).records()
    (o,) = find(records, "o", str(out))
    assert o[2][5] == hashlib.md5(b"#define X 1\n").hexdigest()
    assert len(find(records, "o", str(both))) == 1 and find(records, "f", str(both)) == []
    assert changes(records) == []
    write(out, "#define X 2\n")
    assert changes(records) == [f"{out} changed"]
    os.remove(out)
    assert changes(records) == [f"{out} deleted"]


def test_imported_module_source_is_an_input(tmp_path, monkeypatch):
    mod = tmp_path / "dagprof_t_site_mod.py"
    write(mod, "VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for _ in range(2):  # second time: loaded from the pyc written the first time
        sys.modules.pop("dagprof_t_site_mod", None)
        records = run_phase(lambda: __import__("dagprof_t_site_mod")).records()
        assert len(find(records, "f", str(mod))) == 1
    sys.modules.pop("dagprof_t_site_mod", None)
    assert changes(records) == []
    write(mod, "VALUE = 2\n")
    assert f"{mod} changed" in changes(records)


def test_stop_restores_the_exact_objects():
    originals = (os.stat, os.lstat, os.access)
    env_type = type(os.environ)
    env_methods = {
        k: env_type.__dict__[k] for k in ("__getitem__", "__setitem__", "__delitem__", "__iter__", "__len__")
    }
    assert "__contains__" not in env_type.__dict__
    supports = [
        set(s) for s in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks, os.supports_effective_ids)
    ]
    rec = InputRecorder()
    rec.start()
    try:
        assert os.stat is not originals[0]
        assert os.stat in os.supports_dir_fd and os.stat in os.supports_follow_symlinks
        assert os.access in os.supports_effective_ids or originals[2] not in os.supports_effective_ids
    finally:
        rec.stop()
    assert (os.stat, os.lstat, os.access) == originals
    assert all(a is b for a, b in zip((os.stat, os.lstat, os.access), originals, strict=True))
    assert all(env_type.__dict__[k] is v for k, v in env_methods.items())
    assert "__contains__" not in env_type.__dict__
    assert supports == [
        set(s) for s in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks, os.supports_effective_ids)
    ]


def test_wrappers_do_not_change_behaviour(tmp_path):
    f = tmp_path / "f"
    write(f, "x")
    link = tmp_path / "l"
    link.symlink_to(f)
    got = {}
    dfd_for_fd = os.open(f, os.O_RDONLY)

    def phase():
        with pytest.raises(FileNotFoundError) as e:
            os.stat(tmp_path / "nope")
        got["errno"] = e.value.filename
        with pytest.raises(TypeError):
            os.stat()
        got["lstat"] = os.stat(path=link, follow_symlinks=False).st_mode
        dfd = os.open(tmp_path, os.O_RDONLY)
        try:
            got["dir_fd"] = os.stat("f", dir_fd=dfd).st_size
            got["access_dir_fd"] = os.access("f", os.R_OK, dir_fd=dfd)
        finally:
            os.close(dfd)
        got["fd"] = os.stat(dfd_for_fd).st_ino

    records = run_phase(phase).records()
    with pytest.raises(FileNotFoundError) as e:
        os.stat(tmp_path / "nope")
    assert got["errno"] == e.value.filename
    assert got["lstat"] == os.lstat(link).st_mode
    assert got["dir_fd"] == 1 and got["access_dir_fd"] is True
    assert got["fd"] == os.stat(f).st_ino
    os.close(dfd_for_fd)
    assert find(records, "p", str(link)) == [["p", str(link), "link"]]
    assert find(records, "p", os.path.join(os.getcwd(), "f")) == []  # dir_fd calls skipped


def test_ignore_prefixes(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "data.mdb").write_text("x")
    lookalike = tmp_path / "store2"
    lookalike.mkdir()
    (lookalike / "y").write_text("y")

    def phase():
        read(store / "data.mdb")
        os.listdir(store)
        os.path.exists(store / "lock.mdb")
        read(lookalike / "y")

    records = run_phase(phase, ignore=[str(store)]).records()
    assert [r for r in records if str(r[1]).startswith(str(store) + os.sep) or r[1] == str(store)] == []
    assert len(find(records, "f", str(lookalike / "y"))) == 1


def test_one_recorder_at_a_time():
    a, b = InputRecorder(), InputRecorder()
    a.start()
    try:
        with pytest.raises(RuntimeError):
            b.start()
        with pytest.raises(RuntimeError):
            a.start()
    finally:
        a.stop()
    b.start()
    b.stop()


def test_nothing_recorded_after_stop(tmp_path, monkeypatch):
    src = tmp_path / "late.txt"
    write(src, "x")
    rec = run_phase(lambda: None)
    before = rec.summary()
    monkeypatch.setenv("DAGPROF_T_LATE", "1")
    read(src)
    os.listdir(tmp_path)
    os.path.exists(src)
    os.environ.get("DAGPROF_T_LATE")
    dict(os.environ)
    subprocess.run(["true"], check=True)
    assert rec.summary() == before
    assert [r for r in rec.records() if r[1] == str(src)] == []


def test_records_and_check_are_not_recorded(tmp_path):
    """The recorder's own hashing, listing and stat never become inputs, even while recording."""
    src = tmp_path / "a.txt"
    write(src, "x")
    d = tmp_path / "d"
    d.mkdir()
    rec = InputRecorder()
    rec.start()
    try:
        check(["f", str(src), file_state(str(src), "md5") + [0]])
        check(["d", str(d), None])
        check(["p", str(tmp_path / "p"), "missing"])
        check(["e", "DAGPROF_T_X", None])
        check(["E", ""])
        rec.records()
        assert rec.summary() == {"f": 0, "o": 0, "d": 0, "p": 0, "e": 0, "E": 0, "x": 0, "!": 0}
    finally:
        rec.stop()


def test_threads_are_recorded(tmp_path):
    files = [tmp_path / f"t{i}.txt" for i in range(8)]
    for f in files:
        write(f, f.name)

    def phase():
        threads = [threading.Thread(target=read, args=(f,)) for f in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    records = run_phase(phase).records()
    assert all(len(find(records, "f", str(f))) == 1 for f in files)


def test_summary_counts_each_path_once(tmp_path):
    src = tmp_path / "a.txt"
    write(src, "x")

    def phase():
        for _ in range(100):
            read(src)
            os.path.exists(tmp_path / "nope")
            os.listdir(tmp_path)

    rec = run_phase(phase)
    s = rec.summary()
    assert (s["f"], s["p"], s["d"]) == (1, 1, 1)


def test_checker_process_imports_nothing_heavy(tmp_path):
    """A fresh process checks a recording with the standard library and this module only."""
    src = tmp_path / "SConstruct"
    write(src, "x")
    records = run_phase(lambda: read(src)).records()
    code = textwrap.dedent(f"""
        import sys, json
        from dagstore.inputs import check
        records = json.loads({json.dumps(records)!r})
        print([check(r) for r in records])
        heavy = [m for m in ("SCons", "rich", "psutil", "profiler", "pympler", "jinja2") if m in sys.modules]
        print(heavy)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert p.stdout.splitlines() == [str([None] * len(records)), "[]"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(["", ".", "..", "a", "b.c", ".h", "x..y", "/", "//"]), min_size=1, max_size=6),
    st.booleans(),
)
def test_abs_is_normpath_of_the_absolute_path(parts, absolute):
    """The recorder's shortcut for already normal paths names every file exactly as os.path.normpath would."""
    path = ("/" if absolute else "") + "/".join(parts)
    rec = InputRecorder()
    expect = os.path.normpath(os.path.join("/base", path)) if path else None
    assert rec._abs(path, cwd="/base") == expect


_SAME_EVENTS_PHASE = """
import json, os, subprocess, sys
from dagstore import inputs
from dagstore.inputs import InputRecorder
d = sys.argv[1]
rec = InputRecorder()
rec.start()
open(os.path.join(d, "read.txt")).read()
with open(os.path.join(d, "out.txt"), "w") as f:
    f.write("o")
os.listdir(d)
list(os.scandir(d))
os.path.exists(os.path.join(d, "nothere"))
os.stat(os.path.join(d, "read.txt"))  # a read file's probe: its "f" record covers it
os.path.isdir(os.path.join(d, "sub"))  # a plain absolute path: the C probe sink, where built
os.lstat(os.path.join(d, "link"))
os.stat(os.path.join(d, "both"))  # stat through C and lstat through Python: both bits
os.stat(os.path.join(d, "both"), follow_symlinks=False)  # a keyword: the Python recorder
os.stat(d + "/./dotted")  # not normalised: the Python recorder
os.access(os.path.join(d, "acc"), os.R_OK)
os.environ.get("DAGPROF_T_VAR")
subprocess.run([sys.executable, "-c", "pass"], check=True)
os.system("true")
rec.stop()
os.stat(os.path.join(d, "after-stop"))  # not recorded
rec.forget_probes([os.path.join(d, "sub"), os.path.join(d, "both"), os.path.join(d, "link")])
open(os.path.join(d, "after.txt"), "w").close()  # not recorded: no recorder is active
late = InputRecorder()
late.start(opens_only=True)
open(os.path.join(d, "read.txt")).read()
open(os.path.join(d, "read.txt"), "rb").read()  # the same path again
os.listdir(d)  # not recorded: opens only
with open(os.path.join(d, "late-out.txt"), "w") as f:  # written, then read: both bits
    f.write("x")
open(os.path.join(d, "late-out.txt")).read()
os.close(os.open(os.path.join(d, "flags.txt"), os.O_WRONLY | os.O_CREAT))  # os.open: the flags say written
os.close(os.open(os.path.join(d, "read.txt"), os.O_RDONLY))
open(d + "/./dot.txt", "w").close()  # not normalised: through the Python handler
os.chdir(d)
open("rel.txt", "w").close()  # relative: through the Python handler
open(os.path.join(d, "__pycache__", "mod.cpython-311.pyc"), "rb").read()  # a .pyc: its source is an input too
with inputs._Quiet():
    open(os.path.join(d, "quiet.txt"), "w").close()  # the recorder's own access: not an input
late.forget_files([os.path.join(d, "flags.txt")])
summary = late.summary()
late.stop()
open(os.path.join(d, "after-late.txt"), "w").close()  # not recorded: stopped
strip = lambda rs: sorted(json.dumps(r[:2]) for r in rs)
print(json.dumps([strip(rec.records()), strip(late.records()), summary, inputs._CHOOK is not None]))
"""


def test_c_and_python_audit_hooks_record_the_same(tmp_path):
    """The C hook passes on exactly the events the Python one handles, in both modes and not after stop()."""
    write(tmp_path / "read.txt", "r")
    (tmp_path / "__pycache__").mkdir()
    write(tmp_path / "__pycache__" / "mod.cpython-311.pyc", "c")
    write(tmp_path / "mod.py", "m")
    for name in ("both", "dotted", "acc", "after-stop"):
        write(tmp_path / name, name)
    (tmp_path / "link").symlink_to(tmp_path / "read.txt")
    out = {}
    for no_c in ("0", "1"):
        env = dict(os.environ, DAGPROF_NO_C=no_c, DAGPROF_T_VAR="v")
        p = subprocess.run(
            [sys.executable, "-c", _SAME_EVENTS_PHASE, str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        out[no_c] = json.loads(p.stdout)
    full, late, summary, c_used = out["0"]
    if not c_used:
        pytest.skip("dagstore._fastaudit is not built")
    assert out["1"] == [full, late, summary, False]
    assert json.dumps(["e", "DAGPROF_T_VAR"]) in full and json.dumps(["d", str(tmp_path)]) in full
    assert any('"x"' in r for r in full)  # the subprocesses
    probes = sorted(r for r in full if r.startswith('["p"'))
    # forgotten: sub (a stat only); kept: both (stat and lstat), link (lstat), the rest never forgotten
    assert probes == sorted(
        json.dumps(["p", str(tmp_path / name)]) for name in ("nothere", "link", "both", "dotted", "acc")
    )
    # opens only: the C hook's own sink (plain absolute paths) and the Python handler (the rest) as one
    assert late == sorted(
        json.dumps(r)
        for r in (
            ["f", str(tmp_path / "read.txt")],
            ["o", str(tmp_path / "late-out.txt")],
            ["o", str(tmp_path / "dot.txt")],
            ["o", str(tmp_path / "rel.txt")],
            ["f", str(tmp_path / "__pycache__" / "mod.cpython-311.pyc")],
            ["f", str(tmp_path / "mod.py")],
        )
    )
    assert summary["f"] == 3 and summary["o"] == 3  # flags.txt forgotten; quiet.txt never recorded


def test_c_hook_calls_back_only_for_its_events_while_on():
    """The runtime hook never calls Python for other events (builtins.id) nor while its mode is 0."""
    code = textwrap.dedent("""
        import os
        from dagstore import _fastaudit
        seen = []
        _fastaudit.install(lambda ev, args: seen.append(ev), ("open", "os.listdir"))
        x = object()
        def work():
            id(x)
            open(os.devnull).close()
            os.listdir(".")
        work()
        off = len(seen)
        _fastaudit.set_mode(1)
        work()
        opens = list(seen)
        _fastaudit.set_mode(2)
        work()
        _fastaudit.set_mode(0)
        work()
        print(off, opens, seen[len(opens):])
    """)
    try:
        import dagstore._fastaudit  # noqa: F401
    except ImportError:
        pytest.skip("dagstore._fastaudit is not built")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.split("\n")[0] == "0 ['open'] ['open', 'os.listdir']"


def test_file_state_reuses_a_known_digest_only_under_the_check_rule(tmp_path):
    """A digest from an earlier recording is taken only for the same stat recorded outside the racy window;
    otherwise the file is read again (the fake digest "known" proves which happened)."""
    src = tmp_path / "SConscript"
    write(src, "x = 1\n")
    old = time.time_ns() - 10 * RACY_NS
    os.utime(src, ns=(old, old))
    real = file_state(str(src), "md5")
    now = time.time_ns()
    assert file_state(str(src), "md5", [*real[:5], "known", now]) == [*real[:5], "known"]
    # racy when recorded: the stat then could not tell an edit in the same tick, so read again
    assert file_state(str(src), "md5", [*real[:5], "known", old + RACY_NS // 2]) == real
    # another stamp, no digest, another kind, a malformed state: read again
    for known in (
        ["file", real[1] + 1, *real[2:5], "known", now],
        ["file", *real[1:5], None, now],
        ["missing", *real[1:5], "known", now],
        ["file", *real[1:5], "known"],
        ["file", *real[1:5], "known", "soon"],
    ):
        assert file_state(str(src), "md5", known) == real, known
    rec = InputRecorder()
    rec.start()
    read(src)
    rec.stop()
    (r,) = find(rec.records("md5", {str(src): [*real[:5], "known", now]}), "f", str(src))
    assert r[2][5] == "known"
    (r,) = find(rec.records("md5", {str(src): [*real[:5], "known", old]}), "f", str(src))
    assert r[2][5] == real[5]


def test_recorder_callbacks_are_not_traced():
    """As CPython does for a Python audit hook, the recorder's own code runs with tracing off: a profiler
    (sys.setprofile, cProfile, scons --profile) or a debugger never sees it, with either hook."""
    code = textwrap.dedent("""
        import sys
        from dagstore.inputs import InputRecorder
        seen = set()
        def prof(frame, event, arg):
            if frame.f_code.co_filename.endswith("inputs.py"):
                seen.add(frame.f_code.co_name)
        rec = InputRecorder()
        rec.start()
        sys.setprofile(prof)
        open(sys.executable, "rb").close()
        sys.setprofile(None)
        rec.stop()
        print(sorted(seen), len(rec.file_paths()))
    """)
    for no_c in ("0", "1"):
        env = dict(os.environ, DAGPROF_NO_C=no_c, PYTHONPATH=str(ROOT))
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert p.stdout.split() == ["[]", "1"], no_c


def test_a_subinterpreter_records_with_its_own_hook(tmp_path):
    """The C hook's state is per process: a second interpreter's recorder uses the Python hook, and neither
    recorder loses an event to the other."""
    pytest.importorskip("_xxsubinterpreters")
    code = textwrap.dedent("""
        import sys
        import _xxsubinterpreters as interp
        from dagstore.inputs import InputRecorder
        a, b, c = sys.argv[1:4]
        rec = InputRecorder()
        rec.start()
        open(a).close()
        sub = interp.create()
        interp.run_string(sub, f'''
        from dagstore.inputs import InputRecorder
        r = InputRecorder()
        r.start()
        open({b!r}).close()
        r.stop()
        assert {b!r} in r.file_paths(), sorted(r.file_paths())
        ''')
        open(c).close()
        rec.stop()
        print(sorted(p for p in rec.file_paths() if p in (a, b, c)) == sorted([a, c]))
    """)
    paths = [str(tmp_path / n) for n in "abc"]
    for p in paths:
        write(p, "x")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "True"

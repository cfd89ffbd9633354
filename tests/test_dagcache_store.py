"""dagstore.dagcache without SCons: the snapshot's trust rules, streaming in chunks, racy stamps, damage."""

from __future__ import annotations

import os
import time

import pytest

from dagstore import dagcache
from dagstore.dagcache import DagCache, SnapshotDamaged, node_record

INV = {"args": ["-Q"], "cwd": "/x"}


def _files(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / "src" / f"f{i:04d}.c"
        p.parent.mkdir(exist_ok=True)
        p.write_text(f"int f{i};\n")
        old = time.time_ns() - 10_000_000_000  # well outside the racy window
        os.utime(p, ns=(old, old))
        paths.append(str(p))
    return paths


def _append(path, text):
    with open(path, "a") as f:
        f.write(text)


def assert_miss_at(ans, path, nodes_checked):
    """The answer is a miss naming `path`, found after streaming exactly `nodes_checked` node records."""
    assert not ans.up_to_date and path in ans.reason and ans.nodes_checked == nodes_checked


def _nodes(paths):
    return [node_record(p, dagcache.file_digest(p, "md5")) for p in paths]


def _record(
    cache,
    nodes,
    *,
    built_nothing=True,
    dag="d1",
    targets=None,
    inputs=(),
    answerable=True,
    output=((1, b"scons: `.' is up to date.\n"),),
    **extra,
):
    return cache.record(
        INV,
        list(inputs),
        nodes,
        hash_name="md5",
        recorded_at_ns=time.time_ns(),
        dag_digest=dag,
        dag_targets={"out": b"1"} if targets is None else targets,
        built_nothing=built_nothing,
        answerable=answerable,
        reason="" if answerable else "no",
        output=list(output),
        **extra,
    )


def test_trust_needs_a_confirming_build(tmp_path):
    paths = _files(tmp_path, 3)
    cache = DagCache(str(tmp_path / "store"))
    h = _record(cache, _nodes(paths), built_nothing=False)
    assert not h["answerable"] and "not yet confirmed" in h["reason"]
    assert not cache.answer(INV).up_to_date
    _record(cache, _nodes(paths), built_nothing=True)
    ans = cache.answer(INV)
    assert ans.up_to_date and ans.output == [(1, b"scons: `.' is up to date.\n")] and ans.nodes_checked == 3
    # a later build that rebuilt things with the same inputs answers at once, with the confirmed output
    h = _record(cache, _nodes(paths), built_nothing=False, output=((1, b"gcc ...\n"),))
    assert h["answerable"] and cache.answer(INV).output == [(1, b"scons: `.' is up to date.\n")]
    assert not cache.answer({**INV, "args": ["-Q", "-j2"]}).up_to_date


def test_same_inputs_different_graph_turns_the_cache_off(tmp_path):
    paths = _files(tmp_path, 2)
    cache = DagCache(str(tmp_path / "store"))
    _record(cache, _nodes(paths), built_nothing=True, dag="a", targets={"when.txt": b"1", "x": b"2"})
    h = _record(cache, _nodes(paths), built_nothing=False, dag="b", targets={"when.txt": b"9", "x": b"2"})
    assert h["off"]["target"] == "when.txt" and not h["answerable"]
    ans = cache.answer(INV)
    assert not ans.up_to_date and "off for this project" in ans.reason and "when.txt" in ans.reason
    cache.reset()
    assert cache.disabled() is None


def test_invalidate_then_no_answer(tmp_path):
    paths = _files(tmp_path, 2)
    cache = DagCache(str(tmp_path / "store"))
    _record(cache, _nodes(paths))
    assert cache.answer(INV).up_to_date
    cache.invalidate()
    assert cache.answer(INV).reason == "the last build did not finish"


def test_streams_in_chunks_and_stops_at_the_first_change(tmp_path, monkeypatch):
    monkeypatch.setattr(dagcache._Reader, "CHUNK", 300)  # a reopening every few records
    paths = _files(tmp_path, 200)
    cache = DagCache(str(tmp_path / "store"))
    _record(cache, _nodes(paths))
    ans = cache.answer(INV)
    assert ans.up_to_date and ans.nodes_checked == 200
    _append(paths[150], "/* edit */\n")
    assert_miss_at(cache.answer(INV), paths[150], 151)


def test_hot_nodes_are_checked_first_and_never_decide_up_to_date(tmp_path):
    """The recorded hot list finds an edit of a hot file before streaming; a hot list that does not name the
    changed file (or names it unchanged) still ends in the full stream's verdict."""
    paths = _files(tmp_path, 200)
    cache = DagCache(str(tmp_path / "store"))
    nodes = _nodes(paths)
    _record(cache, nodes, hot=[nodes[150], nodes[7]])
    assert cache.header()["hot"] == [nodes[150], nodes[7]]
    ans = cache.answer(INV)
    assert ans.up_to_date and ans.nodes_checked == 200
    _append(paths[150], "/* edit */\n")
    assert_miss_at(cache.answer(INV), paths[150], 0)
    _record(cache, _nodes(paths), hot=[nodes[7]])
    _append(paths[150], "/* edit 2 */\n")
    assert_miss_at(cache.answer(INV), paths[150], 151)


def test_a_malformed_hot_list_is_damage(tmp_path):
    paths = _files(tmp_path, 1)
    cache = DagCache(str(tmp_path / "store"))
    for hot in (7, [["x"]]):
        header = _record(cache, _nodes(paths))
        env = dagcache._open_env(cache.path, readonly=False)
        with env.begin(write=True) as txn:
            txn.put(b"H", dagcache._pack({**header, "hot": hot}))
        env.close()
        with pytest.raises(SnapshotDamaged):
            cache.answer(INV)


def test_file_states_of_the_stored_inputs(tmp_path):
    """A recording reads the last snapshot's file input states (to reuse their digests); only with the same
    hash function, and nothing from a damaged store."""
    paths = _files(tmp_path, 2)
    cache = DagCache(str(tmp_path / "store"))
    assert len(cache.file_states("md5")) == 0
    states = {p: ["file", 1, 2, 3, 4, "d" + p, 5] for p in paths}
    inputs = [["e", "CC", "gcc"], ["f", paths[0], states[paths[0]]], [dagcache.BUILD_FILE, paths[1], states[paths[1]]]]
    _record(cache, _nodes(paths), inputs=inputs)
    stored = cache.file_states("md5")
    assert len(stored) == 2 and {p: stored.get(p) for p in paths} == states
    assert stored.get("/elsewhere") is None and stored.get("/elsewhere", ["x"]) == ["x"]
    assert len(cache.file_states("sha256")) == 0
    with open(os.path.join(cache.path, "data.mdb"), "r+b") as f:
        f.write(os.urandom(8192))
    assert len(cache.file_states("md5")) == 0


def test_rerecording_in_write_chunks_replaces_every_record(tmp_path, monkeypatch):
    """Records are written in several transactions (bounded dirty pages); a smaller snapshot recorded over a
    larger one leaves none of the old records behind, and the targets still name a differing one."""
    monkeypatch.setattr(dagcache, "WRITE_CHUNK", 7)
    for i in range(20):
        monkeypatch.setenv(f"V{i}", "x")
    paths = _files(tmp_path, 40)
    cache = DagCache(str(tmp_path / "store"))
    many = {f"t{i:02d}": b"1" for i in range(30)}
    _record(cache, _nodes(paths), inputs=[["e", f"V{i}", "x"] for i in range(20)], targets=many)
    _record(cache, _nodes(paths), inputs=[["e", f"V{i}", "x"] for i in range(20)], targets=many)
    assert cache.answer(INV).nodes_checked == 40
    _record(cache, _nodes(paths[:9]), targets={"t00": b"1"})
    _record(cache, _nodes(paths[:9]), targets={"t00": b"1"})
    ans = cache.answer(INV)
    assert ans.up_to_date and ans.nodes_checked == 9
    env = dagcache._open_env(cache.path, readonly=True)
    with env.begin() as txn:
        keys = [k for k, _ in txn.cursor()]
    env.close()
    assert sum(k[:1] == b"n" for k in keys) == 9 and sum(k[:1] == b"t" for k in keys) == 1
    assert sum(k[:1] == b"i" for k in keys) == 0
    h = _record(cache, _nodes(paths[:9]), built_nothing=False, dag="other", targets={"t00": b"2"})
    assert h["off"]["target"] == "t00"


def test_a_write_stopped_between_chunks_never_answers(tmp_path, monkeypatch):
    """As a kill between two of the write's transactions: the records are part old, part new, the header says
    `building`, so the snapshot does not answer; the next complete recording does."""
    monkeypatch.setattr(dagcache, "WRITE_CHUNK", 3)
    paths = _files(tmp_path, 10)
    cache = DagCache(str(tmp_path / "store"))
    _record(cache, _nodes(paths))
    _record(cache, _nodes(paths))
    assert cache.answer(INV).up_to_date
    real = DagCache._put_chunked

    def dies_in_the_nodes(env, prefix, blobs):
        if prefix == b"n":
            blobs = iter(blobs)
            real(env, prefix, (next(blobs) for _ in range(4)))  # one chunk committed, then "killed"
            raise KeyboardInterrupt
        return real(env, prefix, blobs)

    monkeypatch.setattr(DagCache, "_put_chunked", staticmethod(dies_in_the_nodes))
    with pytest.raises(KeyboardInterrupt):
        _record(cache, _nodes(paths))
    ans = cache.answer(INV)
    assert not ans.up_to_date and ans.reason == "the last build did not finish"
    monkeypatch.setattr(DagCache, "_put_chunked", staticmethod(real))
    _record(cache, _nodes(paths))
    assert cache.answer(INV).up_to_date and cache.answer(INV).nodes_checked == 10


def test_touch_is_not_a_change_and_a_racy_stamp_is_rehashed(tmp_path):
    paths = _files(tmp_path, 1)
    cache = DagCache(str(tmp_path / "store"))
    _record(cache, _nodes(paths))
    now = time.time_ns()
    os.utime(paths[0], ns=(now, now))
    assert cache.answer(INV).up_to_date  # same content, new stamp
    # racily clean: stamp recorded within RACY_NS of the recording, then the content changes but the
    # stamp is put back: only re-hashing sees it
    p = tmp_path / "src" / "f0000.c"
    p.write_text("int A;\n")
    st = p.stat()
    _record(cache, _nodes(paths))
    p.write_text("int B;\n")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    st2 = p.stat()
    assert (st2.st_size, st2.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert not cache.answer(INV).up_to_date


def test_timestamp_deciders_do_not_rehash(tmp_path):
    paths = _files(tmp_path, 1)
    cache = DagCache(str(tmp_path / "store"))
    _record(cache, _nodes(paths), dag="d", targets={}, output=(), rehash=False)
    assert cache.answer(INV).up_to_date
    now = time.time_ns()
    os.utime(paths[0], ns=(now, now))
    assert not cache.answer(INV).up_to_date


def test_missing_path_that_appears_and_relative_paths(tmp_path):
    cache = DagCache(str(tmp_path / "store"))
    rec = node_record(str(tmp_path / "later.h"), None)
    rec[0] = "later.h"
    _record(cache, [rec], dag="d", targets={}, output=(), root=str(tmp_path) + "/")
    assert cache.answer(INV).up_to_date
    (tmp_path / "later.h").write_text("x")
    ans = cache.answer(INV)
    assert not ans.up_to_date and "later.h appeared" in ans.reason


def test_garbage_is_damage_and_is_set_aside(tmp_path):
    paths = _files(tmp_path, 1)
    cache = DagCache(str(tmp_path / "store"))
    _record(cache, _nodes(paths))
    data = os.path.join(cache.path, "data.mdb")
    with open(data, "r+b") as f:
        f.write(os.urandom(8192))
    with pytest.raises(SnapshotDamaged):
        cache.answer(INV)
    where = cache.set_aside("test")
    assert where and os.path.exists(os.path.join(where, "data.mdb")) and not os.path.exists(cache.path)
    assert open(os.path.join(where, "WHY")).read() == "test\n"


@pytest.mark.parametrize(
    "argv, answered",
    [
        (["build", "--", "-Q"], True),
        (["build", "--summary", "--store-path=.dagstore", "--", "-Q"], True),
        (["build", "--store", "lmdb", "--dag-cache", "on", "--spill", "none", "--", "-Q"], True),
        (["build", "--dag-cache", "verify", "--", "-Q"], False),
        (["build", "--store", "memory", "--", "-Q"], False),
        (["build", "-o", "x.dagprof", "--", "-Q"], False),
        (["build", "--sizes", "--", "-Q"], False),
        (["build", "--spill", "File.includes", "--", "-Q"], False),  # validated by the normal path
        (["build", "--store-wait", "-1", "--", "-Q"], False),
        (["build", "--bogus", "--", "-Q"], False),  # the normal path says what is wrong
        (["build", "--store-path"], False),
        (["profile", "--", "-Q"], False),
    ],
)
def test_fast_path_answers_only_command_lines_it_understands(tmp_path, monkeypatch, argv, answered):
    from dagprof.builds import scons_dag
    from dagprof.commands import fast

    asked = []
    monkeypatch.setattr(scons_dag, "try_answer", lambda args, path, summary: asked.append((args, path)) or 0)
    monkeypatch.chdir(tmp_path)
    assert (fast.answer_from_dag_cache(argv) == 0) == answered
    assert bool(asked) == answered
    if answered:
        assert asked[0] == (["-Q"], ".dagstore")

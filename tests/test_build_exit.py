"""`dagprof build` ends its process without interpreter teardown (entry.exit_without_teardown) only when
teardown has nothing left to do for the build's files: what SCons and the SConstruct leave to exit time
happens as under plain scons."""
from __future__ import annotations

import os

from dagprof.entry import _descriptors, _open_for_writing

SCONSTRUCT = """\
import atexit
left_open = open('left-open.txt', 'w')      # never closed nor flushed: teardown writes it
left_open.write('x' * 100)
def at_exit():
    with open('atexit.txt', 'w') as f:
        f.write('ran')
atexit.register(at_exit)
env = Environment(tools=[])
env.Command('out.txt', 'in.txt', Copy('$TARGET', '$SOURCE'))
"""


def _project(root):
    root.mkdir()
    (root / "SConstruct").write_text(SCONSTRUCT)
    (root / "in.txt").write_text("in\n")
    return root


def test_exit_handlers_and_unclosed_files_as_under_plain_scons(tmp_path, dagprof, scons):
    plain, ours = _project(tmp_path / "plain"), _project(tmp_path / "ours")
    p = scons(["-Q"], plain)
    d = dagprof(["build", "--", "-Q"], ours)
    assert p.returncode == d.returncode == 0, d.stderr
    for name in ("left-open.txt", "atexit.txt", "out.txt"):
        assert (ours / name).read_bytes() == (plain / name).read_bytes(), name
    assert (ours / "left-open.txt").read_text() == "x" * 100 and (ours / "atexit.txt").read_text() == "ran"
    assert d.stdout == p.stdout and d.stderr == p.stderr


def test_failed_build_keeps_scons_exit_code(tmp_path, dagprof, scons):
    root = tmp_path / "p"
    root.mkdir()
    (root / "SConstruct").write_text("Command('out.txt', [], 'exit 3')\n")
    p, d = scons(["-Q"], root), dagprof(["build", "--", "-Q"], root)
    assert p.returncode == d.returncode == 2 and "Error 3" in d.stderr


def test_a_file_left_open_for_writing_is_seen(tmp_path):
    before = _descriptors()
    assert not _open_for_writing(before)
    f = open(tmp_path / "w.txt", "w")
    try:
        assert _open_for_writing(before)
        assert not _open_for_writing(_descriptors())      # one the process had at start does not count
    finally:
        f.close()
    with open(tmp_path / "w.txt") as r:                    # read-only: nothing to flush
        assert not _open_for_writing(before) and r.readable()
    assert os.path.exists(tmp_path / "w.txt")

"""`dagprof build` and `dagprof profile` end their process without interpreter teardown
(entry.exit_without_teardown) only when teardown has nothing left to do for the build's files: what SCons
and the SConstruct leave to exit time happens as under plain scons."""

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
        assert not _open_for_writing(_descriptors())  # one the process had at start does not count
    finally:
        f.close()
    with open(tmp_path / "w.txt") as r:  # read-only: nothing to flush
        assert not _open_for_writing(before) and r.readable()
    assert os.path.exists(tmp_path / "w.txt")


EXIT_SCRIPT = """\
import atexit, sys
from dagprof.entry import _descriptors, exit_without_teardown
inherited = _descriptors()
atexit.register(print, "exit handler ran")
class Teardown:
    def __del__(self):
        print("teardown ran")
keep = Teardown()
if sys.argv[1] == "open":
    left = open(sys.argv[2], "w")
    left.write("buffered")
exit_without_teardown(3, inherited)
print("returned: a normal exit follows")
"""


def test_exit_without_teardown_ends_the_process_only_when_nothing_is_left_to_flush(tmp_path):
    import subprocess
    import sys

    from conftest import _env

    def run(*args):
        return subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, *args], env=_env(), capture_output=True, text=True, timeout=60
        )

    p = run("closed")
    assert p.returncode == 3 and p.stdout == "exit handler ran\n", p.stdout + p.stderr  # no teardown
    p = run("open", str(tmp_path / "left.txt"))
    assert p.returncode == 0 and p.stdout.startswith("exit handler ran\nreturned: a normal exit follows\n")
    assert p.stdout.count("exit handler ran") == 1  # the handlers ran once, before the check
    assert (tmp_path / "left.txt").read_text() == "buffered"


PROFILE_SCRIPT = """\
import sys
import dagprof.entry as entry
def fast(code, inherited):
    print("ended without teardown", code, inherited is not None)
    sys.stdout.flush()
entry.exit_without_teardown = fast
sys.argv = ["dagprof", "profile", "-o", "p.dagprof", "--", "-Q"]
entry.main()
"""


def test_profile_ends_without_teardown_too_and_leaves_files_as_plain_scons(tmp_path, scons):
    """`dagprof profile` takes the same exit (~0.6 s of a 5k-file build); what the SConstruct leaves
    to exit time (an unclosed file, an exit handler) still happens as under plain scons."""
    import subprocess
    import sys

    from conftest import _env

    from dagprof.profile import load

    plain, ours = _project(tmp_path / "plain"), _project(tmp_path / "ours")
    assert scons(["-Q"], plain).returncode == 0
    p = subprocess.run(
        [sys.executable, "-m", "dagprof", "profile", "-o", "p.dagprof", "--", "-Q"],
        cwd=ours,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    for name in ("left-open.txt", "atexit.txt", "out.txt"):
        assert (ours / name).read_bytes() == (plain / name).read_bytes(), name
    assert load(str(ours / "p.dagprof")).sections["sizes"]["objects"] > 0
    assert p.stdout.rstrip().endswith(f"profile written to {'p.dagprof'}")
    (ours / "SConstruct").write_text("Command('out.txt', 'in.txt', Copy('$TARGET', '$SOURCE'))\n")
    q = subprocess.run(
        [sys.executable, "-c", PROFILE_SCRIPT], cwd=ours, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert q.returncode == 0 and "ended without teardown 0 True" in q.stdout, q.stdout + q.stderr

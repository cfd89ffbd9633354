"""`dagprof build` runs SCons in-process: to the SConstruct and to SCons' messages it must look like `scons`."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import _env

SCONS_SCRIPT = os.path.join(os.path.dirname(sys.executable), "scons")


def real_scons(args, cwd):
    """Plain `scons` the way a user starts it: the console script (its sys.argv[0] is that script)."""
    return subprocess.run([sys.executable, SCONS_SCRIPT, *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)


def _project(root: Path, sconstruct: str) -> Path:
    root.mkdir(parents=True)
    (root / "SConstruct").write_text(sconstruct)
    (root / "in.txt").write_text("x\n")
    return root


RERUN = r'''
import subprocess, sys
p = subprocess.run([sys.executable, sys.argv[0], '--version'], capture_output=True, text=True)
if p.returncode != 0 or 'SCons' not in p.stdout:
    print('re-running scons failed:', sys.argv[0], p.returncode, p.stderr)
    Exit(3)
env = Environment(tools=[])
env.Command('out.txt', 'in.txt', Copy('$TARGET', '$SOURCE'))
'''


def test_sconstruct_can_rerun_scons_through_argv0(tmp_path, dagprof):
    root = _project(tmp_path / "p", RERUN)
    p = real_scons(["-Q"], root)
    assert p.returncode == 0, p.stdout
    for store in ("lmdb", "none"):
        p = dagprof(["build", "--store", store, "--", "-Q"], root)
        assert p.returncode == 0, p.stdout + p.stderr

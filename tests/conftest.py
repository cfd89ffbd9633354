"""Test helpers shared across files: run dagprof/SCons as real subprocesses from this checkout."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SCONSFLAGS", None)
    return env


def run_dagprof(args, cwd, check=False, timeout=600):
    """Run `dagprof ARGS` as a real process (the way users run it)."""
    p = subprocess.run([sys.executable, "-m", "profiler", *args], cwd=cwd, env=_env(),
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"dagprof {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_scons(args, cwd, timeout=600):
    """Run plain SCons as a real process, the baseline every store/profiler run is compared with."""
    return subprocess.run([sys.executable, "-c", "import SCons.Script; SCons.Script.main()", *args],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def dagprof():
    return run_dagprof


@pytest.fixture
def scons():
    return run_scons

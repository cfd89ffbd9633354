"""Test helpers shared across files: run dagprof/SCons as real subprocesses from this checkout.

The tests import this checkout under the installed import names: `dagprof` is the folder profiler/,
`dagstore` is dagstore/ (pyproject's [tool.setuptools] package-dir). `import_view()` makes a
directory of symlinks with those names and puts it first on sys.path and on the PYTHONPATH of every
process started here, so the tests need no install (CI installs with `pip install -e` anyway, for
the dependencies and the C fast paths) and `import profiler` fails in those processes as it would
for a user. tests/test_public_face.py checks the installed package itself.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def import_view(root: Path = ROOT) -> Path:
    """`build/import-names/` in the checkout: one symlink per import name, to its folder."""
    with open(root / "pyproject.toml", "rb") as f:
        names = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    view = root / "build" / "import-names"
    view.mkdir(parents=True, exist_ok=True)
    for name, folder in names.items():
        link, target = view / name, str(root / folder)
        if not (link.is_symlink() and os.readlink(link) == target):
            tmp = view / f".{name}.{os.getpid()}"
            os.symlink(target, tmp)
            os.replace(tmp, link)  # atomic: concurrent sessions never see a missing name
    return view


IMPORT_PATH = str(import_view())
if sys.path[:1] != [IMPORT_PATH]:
    sys.path.insert(0, IMPORT_PATH)


def _env() -> dict:
    env = dict(os.environ)
    # no empty entry when PYTHONPATH is unset: Python reads one as the current directory, and a process
    # started in the checkout would then import `profiler` (the folder), which no user can
    env["PYTHONPATH"] = os.pathsep.join(p for p in (IMPORT_PATH, env.get("PYTHONPATH")) if p)
    env.pop("SCONSFLAGS", None)
    return env


def run_dagprof(args, cwd, check=False, timeout=600):
    """Run `dagprof ARGS` as a real process (the way users run it)."""
    p = subprocess.run(
        [sys.executable, "-m", "dagprof", *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and p.returncode != 0:
        raise AssertionError(f"dagprof {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_python(script, *args, timeout=300):
    """Run a Python script in a fresh interpreter that imports this checkout; fails the test on a non-zero exit."""
    p = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, env=_env(), timeout=timeout
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def run_scons(args, cwd, timeout=600):
    """Run plain SCons as a real process, the baseline every store/profiler run is compared with."""
    return subprocess.run(
        [sys.executable, "-c", "import SCons.Script; SCons.Script.main()", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def dagprof():
    return run_dagprof


@pytest.fixture
def scons():
    return run_scons

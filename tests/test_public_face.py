"""The installed face: `import dagprof` and `dagprof --version` from a real `pip install`, next to
PyPI's unrelated `profiler` package; `import dagprof` stays cheap; pyproject lists every package."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, _env

HEAVY = ("SCons", "rich", "jinja2", "psutil", "pympler", "lmdb", "msgpack", "profiler")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_every_package_folder_is_listed_under_its_import_name():
    """An explicit packages list (needed for the dagprof -> profiler/ mapping) must not miss a folder."""
    st = _pyproject()["tool"]["setuptools"]
    folders = {name: Path(ROOT / folder) for name, folder in st["package-dir"].items()}
    assert folders == {"dagprof": ROOT / "profiler", "dagstore": ROOT / "dagstore"}
    expected = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            expected.add(".".join((name, *rel)))
    assert set(st["packages"]) == expected


def test_import_dagprof_loads_nothing_heavy(tmp_path):
    code = (
        f"import sys, dagprof; heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}); "
        "print(dagprof.__version__); print(heavy)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, check=False
    )
    assert p.returncode == 0, p.stderr
    version, heavy = p.stdout.splitlines()
    assert heavy == "[]"
    assert version.count(".") == 2


def test_the_checkout_is_not_importable_as_profiler(tmp_path):
    """Processes the tests start see the import names only, as an installed dagprof would give them."""
    p = subprocess.run(
        [sys.executable, "-c", "import profiler"], cwd=tmp_path, env=_env(), capture_output=True, text=True, check=False
    )
    assert p.returncode == 1 and "No module named 'profiler'" in p.stderr


def test_a_process_started_in_the_checkout_cannot_import_profiler(tmp_path, monkeypatch):
    """Started from the checkout (as the tests' own processes are) with PYTHONPATH unset: the folder
    profiler/ must not be importable through the test environment (only `python -c`'s own current
    directory, here moved away, could find it)."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    code = f"import os; os.chdir({str(tmp_path)!r}); import profiler"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
    assert p.returncode == 1 and "No module named 'profiler'" in p.stderr, p.stderr


def _copy_checkout(dst: Path) -> Path:
    """The sources only: no build/, compiled extensions, caches or VCS data."""
    shutil.copytree(
        ROOT,
        dst,
        ignore=shutil.ignore_patterns(
            ".git",
            "build",
            "*.so",
            "__pycache__",
            "*.egg-info",
            ".pytest_cache",
            ".hypothesis",
            ".venv",
            "venv",
            ".dagstore",
        ),
    )
    return dst


@pytest.mark.slow
def test_pip_install_gives_dagprof_and_survives_pypi_profiler(tmp_path):
    """`pip install .` in a fresh venv; then PyPI's `profiler` next to it overwrites none of our files."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies (and pip itself) come from the test environment, so nothing but the build
    # backend is downloaded; the new venv's own site-packages comes first on its sys.path
    (site / "_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(*args, cwd=tmp_path):
        p = subprocess.run(
            [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert p.returncode == 0, f"{args}: {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return p.stdout

    src = _copy_checkout(tmp_path / "src")
    run(py, "-m", "pip", "install", "-q", "--no-deps", "--no-cache-dir", src)
    version = run(py, "-c", "import dagprof; print(dagprof.__version__)").strip()
    dagprof = venv / "bin" / "dagprof"
    assert run(dagprof, "--version").strip() == f"dagprof {version}"
    assert run(py, "-m", "dagprof", "--version").strip() == f"dagprof {version}"
    out = run(py, "-c", "import dagprof, dagstore, dagprof.cli, dagprof.report.html; print(dagprof.__file__)")
    assert str(site) in out  # the installed copy, not the source tree
    gen = tmp_path / "generated"  # the stub tools are package data: the installed generator finds them
    run(py, "-c", f"from dagprof.synthetic import generate; generate({str(gen)!r}, files=3)")
    assert os.access(gen / "tools" / "stubcc", os.X_OK) and (gen / "tools" / "stubcc.awk").is_file()
    p = subprocess.run(
        [py, "-c", "import profiler"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert p.returncode == 1, "dagprof must not install a top-level `profiler`"

    run(py, "-m", "pip", "install", "-q", "--no-deps", "--no-cache-dir", "profiler")
    assert run(dagprof, "--version").strip() == f"dagprof {version}"
    run(py, "-c", "import dagprof, dagstore, dagprof.cli, dagprof.report.html, profiler")
    files = {}
    for dist in ("dagprof", "profiler"):
        shown = run(py, "-m", "pip", "show", "-f", dist).split("Files:", 1)[1].split()
        files[dist] = {f for f in shown if not f.startswith(("..", dist + "-"))}
    assert files["dagprof"] and files["profiler"]
    assert not files["dagprof"] & files["profiler"]

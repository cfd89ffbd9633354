"""The DAG cache on the synthetic project (a library per directory, VariantDir, header scanning):
the same rebuilt commands as plain scons on an identical copy through edits, and answered when
nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import _env
from dagcache_project import MODULE, _strip_importtime

from dagprof.synthetic import generate

pytestmark = pytest.mark.slow


def _run(cmd, root):
    p = subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True, timeout=300)
    p.stderr, imported = _strip_importtime(p.stderr)
    return p, not imported


def test_synthetic_project_edits(tmp_path):
    a = generate(tmp_path / "plain", files=40, files_per_dir=10, seed=3).root
    b = generate(tmp_path / "cached", files=40, files_per_dir=10, seed=3).root

    def step():
        plain, _ = _run([sys.executable, "-c", "import SCons.Script; SCons.Script.main()", "-Q"], a)
        ours, answered = _run([sys.executable, "-X", "importtime", "-m", MODULE, "build", "--", "-Q"], b)
        assert ours.returncode == plain.returncode == 0, ours.stderr
        assert ours.stdout.replace(str(b), "ROOT") == plain.stdout.replace(str(a), "ROOT")
        assert ours.stderr == plain.stderr
        return ours.stdout, answered

    def edit(rel, text=None):
        now = time.time_ns()
        for root in (a, b):
            p = root / rel
            if text is None:
                p.unlink()
            else:
                p.write_text(text)
                os.utime(p, ns=(now, now))

    out, answered = step()
    assert not answered and "stubcc" in out
    step()
    out, answered = step()
    assert answered and "up to date" in out
    header = sorted((a / "include").rglob("*.h"))[0].relative_to(a)
    edit(header, (a / header).read_text() + "/* edited */\n")
    out, answered = step()
    assert not answered and "stubcc" in out
    out, answered = step()
    assert answered  # the SConscripts read the same inputs as a confirmed build: answered at once
    src = sorted((a / "src").rglob("*.c"))[1].relative_to(a)  # built through build/ (VariantDir)
    edit(src, (a / src).read_text() + "/* edited */\n")
    out, answered = step()
    assert not answered and src.name in out
    obj = sorted((b / "build").rglob("*.o"))[0].relative_to(b)
    (b / obj).unlink()
    (a / obj).unlink()
    out, answered = step()
    assert not answered and str(obj.name) in out

"""Small SCons projects that several tests build (one definition each)."""

from __future__ import annotations

from pathlib import Path


def command_sconstruct(n: int) -> str:
    """n Command() targets with a Python function action; their sources are Entry nodes that become File
    (a morph); one target over all of them and a Value node."""
    return f"""\
env = Environment()
def cat(target, source, env):
    with open(str(target[0]), "w") as f:
        for s in source:
            f.write(s.get_text_contents())
for i in range({n}):
    env.Command("out/o%02d.txt" % i, ["src/s%02d.txt" % i, "src/common.txt"], cat)
env.Command("out/all.txt", ["out/o%02d.txt" % i for i in range({n})] + [Value("v1")], cat)
"""


def write_command_project(root: Path, n: int) -> Path:
    """The project of command_sconstruct(n) with its sources, written under root."""
    (root / "src").mkdir()
    (root / "SConstruct").write_text(command_sconstruct(n))
    (root / "src" / "common.txt").write_text("common\n")
    for i in range(n):
        (root / "src" / f"s{i:02d}.txt").write_text(f"source {i}\n")
    return root

"""Small SCons projects that several tests build (one definition each)."""

from __future__ import annotations


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

"""The DAG cache on the SCons features whose up-to-date decision is not just "same file contents":
VariantDir (duplicate on and off), Repository, timestamp and Python-function Deciders, a directory as
a dependency, SideEffect, -j2, ARGUMENTS into a Value. Every step: plain scons and `dagprof build` on
identical copies, same exit code and bytes; whether the cache answered is asserted where it matters.
"""

from __future__ import annotations

import pytest
from dagcache_project import Twins

pytestmark = pytest.mark.slow

COPY = "env.Command('{out}', '{src}', Copy('$TARGET', '$SOURCE'))\n"


def _twins(tmp_path, sconstruct: str, files: dict[str, str], env: dict | None = None) -> Twins:
    return Twins(tmp_path, env=env, files={"SConstruct": sconstruct, **files})


def _settle(tw: Twins, args: list[str]) -> None:
    tw.both(args, any_order=True)
    tw.both(args)
    _, answered = tw.both(args)
    assert answered


@pytest.mark.parametrize("duplicate", [0, 1])
def test_variant_dir(tmp_path, duplicate):
    tw = _twins(
        tmp_path,
        f"SConscript('src/SConscript', variant_dir='build', duplicate={duplicate})\n",
        {
            "src/SConscript": (
                "env = Environment(tools=[])\nenv.Command('out.txt', 'in.txt', 'cat $SOURCE > $TARGET')\n"
            ),
            "src/in.txt": "one\n",
        },
    )
    _settle(tw, ["-Q"])
    tw.write("src/in.txt", "two\n")
    p, answered = tw.both(["-Q"])
    assert not answered and "cat" in p.stdout
    assert (tw.cached / "build/out.txt").read_text() == "two\n"
    tw.both(["-Q"])
    tw.touch("src/in.txt")
    p, answered = tw.both(["-Q"])
    assert answered


@pytest.mark.parametrize("duplicate", [0, 1])
def test_variant_dir_compiled_source_edit(tmp_path, duplicate):
    """The object is built from build/main.c; with duplicate=0 that file never exists and SCons reads
    src/main.c through it, a node SCons itself never evaluates: its edit must still be seen."""
    tw = _twins(
        tmp_path,
        f"SConscript('src/SConscript', variant_dir='build', duplicate={duplicate})\n",
        {
            "src/SConscript": "env = Environment()\nenv.Program('prog', ['main.c'])\n",
            "src/main.c": "int main(void) { return 0; }\n",
        },
    )
    _settle(tw, ["-Q"])
    tw.append("src/main.c", "/* a comment changes the content */\n")
    p, answered = tw.both(["-Q"])
    assert not answered and "main.c" in p.stdout
    tw.touch("src/main.c")
    tw.both(["-Q"])


def test_repository(tmp_path):
    repo_files = {"repo/in.txt": "from the repository\n"}
    tw = _twins(
        tmp_path,
        "Repository('repo')\nenv = Environment(tools=[])\nenv.Command('out.txt', 'in.txt', 'cat $SOURCE > $TARGET')\n",
        repo_files,
    )
    _settle(tw, ["-Q"])
    tw.write("repo/in.txt", "changed in the repository\n")
    p, answered = tw.both(["-Q"])
    assert not answered and "cat" in p.stdout
    tw.both(["-Q"])
    tw.write("in.txt", "a local file now shadows the repository\n")  # a new file at a path SCons looked at
    p, answered = tw.both(["-Q"])
    assert not answered and "cat" in p.stdout
    assert (tw.cached / "out.txt").read_text() == "a local file now shadows the repository\n"


@pytest.mark.parametrize(
    "decider",
    ["'timestamp-match'", "'timestamp-newer'", "lambda d, t, p, r=None: p is None or d.get_timestamp() != p.timestamp"],
)
def test_timestamp_deciders_rebuild_on_touch(tmp_path, decider):
    sconstruct = f"env = Environment(tools=[])\nenv.Decider({decider})\n" + COPY.format(out="out.txt", src="in.txt")
    tw = _twins(tmp_path, sconstruct, {"in.txt": "x\n"})
    _settle(tw, ["-Q"])
    tw.touch("in.txt")  # same content, new time: these Deciders rebuild, so the cache must not answer
    p, answered = tw.both(["-Q"])
    assert not answered


def test_directory_as_dependency(tmp_path):
    tw = _twins(
        tmp_path,
        "env = Environment(tools=[])\nenv.Command('list.txt', Dir('data'), 'ls $SOURCE > $TARGET')\n",
        {"data/a": "a\n"},
    )
    _settle(tw, ["-Q"])
    # whatever SCons decides for a directory source (it rebuilds on a changed entry, not on a new
    # file it never looked up), the cache decides the same: both() compares every byte printed
    for step in (
        lambda: tw.write("data/b", "b\n"),
        lambda: tw.write("data/a", "changed\n"),
        lambda: tw.remove("data/b"),
    ):
        step()
        tw.both(["-Q"])
        tw.both(["-Q"])
        assert (tw.cached / "list.txt").read_text() == (tw.plain / "list.txt").read_text()


def test_side_effect_and_parallel(tmp_path):
    tw = _twins(
        tmp_path,
        "env = Environment(tools=[])\n"
        "for i in range(4):\n"
        "    t = env.Command('out%d.txt' % i, 'in.txt',\n"
        "                    'cat $SOURCE > $TARGET; echo %d >> log.txt' % i)\n"
        "    env.SideEffect('log.txt', t)\n",
        {"in.txt": "x\n"},
    )
    _settle(tw, ["-Q", "-j2"])
    tw.write("in.txt", "y\n")
    p, answered = tw.both(["-Q", "-j2"], any_order=True)  # -j2: commands finish in either order
    assert not answered and p.stdout.count("cat") == 4
    p, answered = tw.both(["-Q", "-j2"])
    assert answered
    p, answered = tw.both(["-Q", "-j4"])  # other arguments: SCons decides
    assert not answered


def test_arguments_into_a_value(tmp_path):
    tw = _twins(
        tmp_path,
        "env = Environment(tools=[])\n"
        "def w(target, source, env):\n"
        "    open(str(target[0]), 'w').write(source[0].read())\n"
        "env.Command('v.txt', env.Value(ARGUMENTS.get('v', 'none')), w)\n",
        {},
    )
    _settle(tw, ["-Q", "v=1"])
    p, answered = tw.both(["-Q", "v=2"])
    assert not answered and "w(" in p.stdout
    assert (tw.cached / "v.txt").read_text() == "2"
    _, answered = tw.both(["-Q", "v=2"])
    assert not answered  # first time with these arguments: SCons confirms
    _, answered = tw.both(["-Q", "v=1"])
    assert not answered  # (v.txt holds 2: SCons rebuilds)


def test_a_file_the_build_reads_that_is_not_a_node(tmp_path):
    """A custom scanner reads a list file during the build (not while SConscripts are read, and not a
    node): editing it changes SCons' decision, so the cache must see it too."""
    sconstruct = (
        "import SCons.Scanner\n"
        "def deps(node, env, path):\n"
        "    return [env.File(n) for n in open('deps.list').read().split()]\n"
        "scan = SCons.Scanner.ScannerBase(deps, skeys=['.in'])\n"
        "env = Environment(tools=[], SCANNERS=[scan])\n"
        "env.Command('out.txt', 'main.in', 'cat $SOURCE > $TARGET')\n"
    )
    tw = _twins(tmp_path, sconstruct, {"main.in": "x\n", "a.h": "a\n", "b.h": "b\n", "deps.list": "a.h\n"})
    _settle(tw, ["-Q"])
    tw.write("deps.list", "a.h b.h\n")
    p, answered = tw.both(["-Q"])
    assert not answered and "cat main.in" in p.stdout
    tw.touch("deps.list")
    tw.both(["-Q"])
    _, answered = tw.both(["-Q"])
    assert answered


def test_verify_catches_what_the_cache_cannot_see(tmp_path):
    """A documented limit (docs/dagstore.md, "What is assumed"): an environment variable read during the
    build (here by a Decider), not while SConscripts are read. Changing it changes SCons' decision but not
    the snapshot: `--dag-cache verify` runs SCons and exits 67 saying so."""
    sconstruct = (
        "import os\n"
        "env = Environment(tools=[])\n"
        "env.Decider(lambda d, t, p, r=None: os.environ.get('REBUILD_ALL') == '1' or d.changed_content(t, p, r))\n"
        "env.Command('out.txt', 'in.txt', 'cat $SOURCE > $TARGET')\n"
    )
    tw = _twins(tmp_path, sconstruct, {"in.txt": "x\n"})
    _settle(tw, ["-Q"])
    tw.extra_env["REBUILD_ALL"] = "1"
    p, answered = tw.dagprof(["-Q"], ("--dag-cache", "verify"))
    assert p.returncode == 67 and not answered, (p.stdout, p.stderr)
    assert "would have answered 'up to date' but SCons rebuilt out.txt" in p.stderr


def test_probe_of_a_node_path(tmp_path):
    """An SConstruct that asks os.path.exists/isfile about files that are also nodes: the node records
    stand in for those probes (they check the same stat kind), so each flip of the answer is still seen."""
    sconstruct = (
        "import os\nenv = Environment(tools=[])\n"
        "srcs = [f for f in ('a.txt', 'b.txt') if os.path.exists(f)]\n"
        "env.Command('out.txt', srcs, 'cat $SOURCES > $TARGET')\n"
        "if os.path.isfile('out.txt'):\n    print('out.txt exists while reading')\n"
    )
    tw = _twins(tmp_path, sconstruct, {"a.txt": "a\n"})
    _settle(tw, ["-Q"])
    tw.write("b.txt", "b\n")  # probed, was missing and no node: a new source
    p, answered = tw.both(["-Q"])
    assert not answered and (tw.cached / "out.txt").read_text() == "a\nb\n"
    _settle(tw, ["-Q"])
    tw.remove("b.txt")  # a node now: its record notices it is gone
    p, answered = tw.both(["-Q"])
    assert not answered and (tw.cached / "out.txt").read_text() == "a\n"
    _settle(tw, ["-Q"])
    tw.remove("out.txt")  # the target the SConstruct probed
    p, answered = tw.both(["-Q"])
    assert not answered and "cat" in p.stdout

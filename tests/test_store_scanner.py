"""Include-list reuse across builds must follow the scanner: a changed scanner rescans, an opaque one is not reused."""

import shutil
from pathlib import Path

import pytest

SCONSTRUCT = r"""
import SCons.Scanner
pat = ARGUMENTS.get('pat', 'A')
regex = {'A': r'^include_a\s+(\S+)', 'B': r'^use_b\s+(\S+)'}[pat]
scan = SCons.Scanner.Classic('InScan', ['.in'], 'INPATH', regex)
env = Environment(tools=[], SCANNERS=[scan])
env.Command('out.txt', 'main.in', Copy('$TARGET', '$SOURCE'))
"""

CLOSURE = r"""
import SCons.Scanner
pat = ARGUMENTS.get('pat', 'A')
word = {'A': 'include_a', 'B': 'use_b'}[pat]
def make(word):
    def find(node, env, path):
        names = [l.split()[1] for l in node.get_text_contents().splitlines() if l.startswith(word + ' ')]
        if node.includes is None:
            node.includes = names
        return [env.File(n) for n in node.includes]
    return find
env = Environment(tools=[], SCANNERS=[Scanner(make(word), skeys=['.in'])])
env.Command('out.txt', 'main.in', Copy('$TARGET', '$SOURCE'))
"""

GLOBAL = (
    CLOSURE.replace("def make(word):\n    def find", "def find")
    .replace(
        "        return [env.File(n) for n in node.includes]\n    return find\n",
        "    return [env.File(n) for n in node.includes]\n",
    )
    .replace("Scanner(make(word)", "Scanner(find")
    .replace("\n        ", "\n    ")
)


def _project(root: Path, sconstruct: str) -> Path:
    root.mkdir()
    (root / "SConstruct").write_text(sconstruct)
    (root / "main.in").write_text("include_a a.h\nuse_b b.h\n")
    (root / "a.h").write_text("a\n")
    (root / "b.h").write_text("b\n")
    return root


@pytest.mark.parametrize(
    "sconstruct", [SCONSTRUCT, CLOSURE, GLOBAL], ids=["classic-regex", "closure-function", "global-function"]
)
def test_changed_scanner_is_not_answered_from_the_store(tmp_path, dagprof, scons, sconstruct):
    plain = _project(tmp_path / "plain", sconstruct)
    store = tmp_path / "store"
    shutil.copytree(plain, store)
    steps = [("pat=A", None), ("pat=B", None), ("pat=B", "b.h"), ("pat=A", None), ("pat=A", "a.h")]
    for pat, edit in steps:
        if edit:
            for root in (plain, store):
                (root / edit).write_text((root / edit).read_text() + "edited\n")
        args = ["-Q", "--tree=prune", "--debug=explain", pat]
        a = scons(args, plain)
        b = dagprof(["build", "--store", "lmdb", "--", *args], store)
        assert a.returncode == b.returncode == 0, b.stderr
        assert a.stdout == b.stdout, (pat, edit, a.stdout, b.stdout)
        assert (plain / "out.txt").read_bytes() == (store / "out.txt").read_bytes()


def test_scanner_signature_follows_what_decides_the_names():
    import SCons.Scanner
    import SCons.Scanner.C

    from dagprof.builds.scons import scanner_signature

    c1, c2 = scanner_signature(SCons.Scanner.C.CScanner()), scanner_signature(SCons.Scanner.C.CScanner())
    assert c1 is not None and c1 == c2  # SCons' own scanner: characterised
    classic = [scanner_signature(SCons.Scanner.Classic("S", [".in"], "P", rx)) for rx in ("a(b)", "a(c)")]
    assert None not in classic and classic[0] != classic[1]  # the regex
    assert scanner_signature(SCons.Scanner.Classic("S", [".x"], "P", "a(b)")) != classic[0]  # the skeys

    class Mine(SCons.Scanner.Classic):
        def find_include_names(self, node):
            return ["x"]

    class Other(SCons.Scanner.Classic):
        def find_include_names(self, node):
            return ["y"]

    mine, other = (scanner_signature(k("S", [".in"], "P", "a(b)")) for k in (Mine, Other))
    assert mine is not None and mine != other != classic[0]  # a user subclass: its code

    def make(word):
        return lambda node, env, path: [word]

    assert scanner_signature(SCons.Scanner.ScannerBase(make("a"))) is None  # a closure: not reused
    rec = [scanner_signature(SCons.Scanner.ScannerBase(len, recursive=r)) for r in (True, None)]
    assert rec[0] != rec[1]

"""The layout as docs/architecture.md draws it, checked from the source (ast, nothing imported): no import
circle among the project's modules, SCons imported and its internals (.sconsign, --debug=explain...) named only by
the adapter (profiler/builds/), and the command layer importing downwards only."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"dagprof": ROOT / "profiler", "dagstore": ROOT / "dagstore"}  # pyproject's package-dir
ADAPTER = "dagprof.builds"
# the profiler core: no SCons, no command line, no renderer (docs/architecture.md)
CORE = (
    "access",
    "sizing",
    "tracker",
    "cycles",
    "detail",
    "introspect",
    "rss",
    "profile",
    "analyze",
    "whatif",
    "diff",
    "classpatch",
    "gcscan",
)


def _modules() -> dict[str, Path]:
    """Every module of the project by its import name (profiler/x.py is dagprof.x)."""
    out = {}
    for name, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_main_guard(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` runs only as a script, where the module is __main__, not part of the graph."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _is_type_checking(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` imports are for the type checker only; they never run."""
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(module: str, path: Path) -> list[str]:
    """Absolute names a module imports anywhere (top level or inside functions: a lazy import is still an edge)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if _is_main_guard(node) or _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.append(target)
            names.extend(f"{target}.{a.name}" for a in node.names)  # `from pkg import submodule`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports. A module reading its own package (`from .. import
    __version__`) is no edge: the package's __init__ has always run before any of its modules."""
    return {
        m: {n for n in _imports(m, p) if n in MODULES and n != m and not m.startswith(n + ".")}
        for m, p in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_graph_sees_the_project():
    graph = _graph()
    assert "dagprof.cli" in graph and "dagstore.spill" in graph
    assert "dagprof.cmdline" in graph["dagprof.cli"]  # relative imports are resolved
    assert "dagprof.commands.build" in graph["dagprof.cli"]  # `from .commands import build`
    assert "dagprof.builds.scons" in graph["dagprof"]  # lazy imports are edges too
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    assert _cycles(_graph()) == []


def test_only_the_adapter_imports_scons():
    importers = {m for m, p in MODULES.items() if any(n.split(".")[0] == "SCons" for n in _imports(m, p))}
    assert importers and all(m.startswith(ADAPTER + ".") for m in importers), sorted(importers)


def test_the_store_imports_no_profiler():
    for m, p in MODULES.items():
        if m.startswith("dagstore"):
            assert not [n for n in _imports(m, p) if n.split(".")[0] == "dagprof"], m


def test_command_modules_import_downwards():
    graph = _graph()
    for m, deps in graph.items():
        if m.startswith("dagprof.commands."):
            assert "dagprof.cli" not in deps, m
        elif m not in ("dagprof.cli", "dagprof.__main__", "dagprof.entry"):  # the entry points
            assert not {d for d in deps if d.startswith("dagprof.commands") or d == "dagprof.cli"}, m


def test_the_core_imports_no_renderer_and_no_command_line():
    graph = _graph()
    for name in CORE:
        upward = {
            d
            for d in graph[f"dagprof.{name}"]
            if d.startswith(("dagprof.report", "dagprof.commands", "dagprof.builds"))
            or d in ("dagprof.cli", "dagprof.cmdline")
        }
        assert not upward, (name, upward)


def test_the_type_check_covers_every_module():
    """pyproject's mypy file list names every module: a new module is checked from the start."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        files = tomllib.load(f)["tool"]["mypy"]["files"]
    checked = set()
    for path in files:
        parts = list(Path(path).relative_to("build/import-names").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        checked.add(".".join(parts))
    assert checked <= set(MODULES), sorted(checked - set(MODULES))
    assert checked == set(MODULES), sorted(set(MODULES) - checked)


def test_one_reader_of_the_peak_rss():
    """The process's peak RSS is read by profiler/rss.py only (own_hwm); nothing else calls getrusage or reads
    ru_maxrss (measure.py's trampoline is a string run in another process, not code of this one)."""
    readers = set()
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.Attribute) and node.attr in ("getrusage", "ru_maxrss"):
                readers.add(m)
    assert readers == {"dagprof.rss"}, sorted(readers)


# What only the adapter may spell out: SCons' files, options, environment, modules and message formats. Searched in
# the string literals of every module outside it (docstrings and comments may explain what the adapter does).
SCONS_INTERNALS = {
    ".sconsign": r"\.sconsign",
    "--debug=": r"--debug=",
    "SCONSFLAGS": r"SCONSFLAGS",
    "SCons.": r"\bSCons\.\w",
    "scons: ": r"\bscons: ",
    "SConstruct.py": r"SConstruct\.py",
}
# (module, what) a module outside the adapter may still name, each with its reason
NAMES_ALLOWED = {
    ("dagprof.synthetic", ".sconsign"): "a tool for tests and benches (which the rule leaves aside) that writes "
    "SCons projects and resets their build state",
    ("dagstore.dagcache", "SCONSFLAGS"): "a user-facing reason: the cached invocation includes the variable the "
    "user sets",
}


def _string_literals(path: Path) -> list[str]:
    """Every string constant of a module except docstrings (f-strings' literal parts included)."""
    tree = ast.parse(path.read_text(), str(path))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_only_the_adapter_names_scons_internals():
    found = set()
    for m, p in MODULES.items():
        if m == ADAPTER or m.startswith(ADAPTER + "."):
            continue
        for text in _string_literals(p):
            found |= {(m, word) for word, pattern in SCONS_INTERNALS.items() if re.search(pattern, text)}
    assert not found - set(NAMES_ALLOWED), sorted(found - set(NAMES_ALLOWED))


def test_the_internals_scan_sees_strings_not_docstrings(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('"""About .sconsign files."""\ndef f():\n    """--debug=explain"""\n    return f"{1}.sconsign"\n')
    assert [s for s in _string_literals(src) if ".sconsign" in s or "--debug=" in s] == [".sconsign"]
    assert not re.search(SCONS_INTERNALS["SCons."], "ratios to plain SCons. ")
    assert re.search(SCONS_INTERNALS["SCons."], "import SCons.Script")

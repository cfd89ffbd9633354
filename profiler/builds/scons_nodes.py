"""SCons' nodes as dagprof sees them: the node classes to watch, the shared objects sizing stops at,
stable node keys, the live nodes, and the names of the build phases."""

from __future__ import annotations

from collections.abc import Iterable

PHASE_STARTUP = "startup"
PHASE_READ = "read SConscripts"
PHASE_BUILD = "evaluate/build"
PHASE_SCONSIGN = "write .sconsign"

# (module, class) of every SCons Node class the issue names; resolved lazily so importing this
# module does not import SCons.
NODE_CLASS_NAMES = (
    ("SCons.Node", "Node"),
    ("SCons.Node.FS", "Base"),
    ("SCons.Node.FS", "File"),
    ("SCons.Node.FS", "Dir"),
    ("SCons.Node.FS", "Entry"),
    ("SCons.Node.FS", "RootDir"),
    ("SCons.Node.Alias", "Alias"),
    ("SCons.Node.Python", "Value"),
)

# Objects that sizing must not walk into from a node: they are shared by many nodes.
BOUNDARY_CLASS_NAMES = (
    ("SCons.Environment", "Base"),
    ("SCons.Environment", "SubstitutionEnvironment"),
    ("SCons.Executor", "Executor"),
    ("SCons.Executor", "Null"),
    ("SCons.Node.FS", "FS"),
    ("SCons.Builder", "BuilderBase"),
    ("SCons.Scanner", "ScannerBase"),
    ("SCons.Action", "ActionBase"),
)


def load_classes(pairs: Iterable[tuple[str, str]]) -> list[type]:
    import importlib

    out = []
    for mod, name in pairs:
        try:
            out.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            continue  # a class renamed in another SCons release: watch what exists
    return out


def node_classes() -> list[type]:
    """The SCons Node classes to instrument, most derived first (so each gets its own counters)."""
    classes = load_classes(NODE_CLASS_NAMES)
    return sorted(classes, key=lambda c: -len(c.__mro__))


def boundary_classes() -> tuple[type, ...]:
    """Shared SCons objects where per-node sizing stops."""
    return tuple(load_classes(BOUNDARY_CLASS_NAMES))


def scons_version() -> str:
    import SCons

    return getattr(SCons, "__version__", "unknown")


def live_nodes() -> list[object]:
    """Every SCons node alive now, found through the garbage collector (nodes are gc-tracked); the same
    list, in the same order, as filtering gc.get_objects() with isinstance, without listing the heap."""
    import SCons.Node

    from ..gcscan import instances_of, subclasses

    return instances_of(subclasses(SCons.Node.Node))


def node_key(node: object) -> str | None:
    """A stable key for a node, valid across builds of the same tree (None: no stable key)."""
    import SCons.Node.Alias
    import SCons.Node.FS

    if isinstance(node, SCons.Node.FS.Base):
        return "F:" + node.get_abspath()
    if isinstance(node, SCons.Node.Alias.Alias):
        return "A:" + node.name
    return None

"""dagprof: where an SCons build's memory goes, and a node store that gives it back.

The one line an SConstruct needs (run by plain `scons`):

    import dagprof; dagprof.enable_store()

`import dagprof` itself imports nothing else (no SCons, rich or jinja2): `enable_store` is loaded on
first use, from the SCons adapter. This folder is profiler/; pyproject maps the import name
`dagprof` onto it (docs/architecture.md, "Import names").
"""

__version__ = "0.1.0"
__all__ = ["__version__", "enable_store"]

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing alone costs ~9 ms
if TYPE_CHECKING:
    from .builds.scons import enable_store as enable_store


def __getattr__(name: str) -> object:
    """Loads the public functions on first use, so `import dagprof` stays cheap."""
    if name == "enable_store":
        from .builds.scons import enable_store

        return enable_store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

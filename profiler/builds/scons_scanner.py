"""What decides the include names an SCons scanner stores on a node, hashed (scanner_signature): the
store reuses a file's include names only from a scan by a scanner with the same signature."""

from __future__ import annotations

import os
import sys
from typing import Any


class _Opaque(Exception):
    """A scanner part whose effect on the scanned names cannot be told from outside: no reuse."""


_SIMPLE = (str, bytes, int, float, bool, complex, type(None))


def _scons_dir() -> str:
    import SCons

    return os.path.dirname(os.path.abspath(SCons.__file__)) + os.sep


def _code_parts(code: Any, out: list[str], names: set[str]) -> None:
    """A code object's behaviour (bytecode, constants, names), not its line numbers."""
    out.append(f"code:{code.co_argcount}:{code.co_flags}:{code.co_code.hex()}:{code.co_names}:{code.co_varnames}")
    names.update(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            _code_parts(c, out, names)
        else:
            out.append(f"const:{type(c).__name__}:{c!r}")


class _ScannerSignature:
    """Everything that decides the names a scanner finds, flattened to strings (raises _Opaque)."""

    def __init__(self) -> None:
        import SCons.Environment
        import SCons.Node
        import SCons.Node.FS

        self.scons_dir = _scons_dir()
        self.opaque = (SCons.Node.Node, SCons.Node.FS.FS, SCons.Environment.SubstitutionEnvironment)
        self.out: list[str] = []
        self.path: set[int] = set()

    def trusted(self, code: Any) -> bool:
        return os.path.abspath(code.co_filename).startswith(self.scons_dir)

    def scons_class(self, klass: type) -> bool:
        """Defined in an SCons module (a class in an SConstruct says SCons.Script but is not found there)."""
        mod = sys.modules.get(klass.__module__)
        if not os.path.abspath(getattr(mod, "__file__", None) or "/").startswith(self.scons_dir):
            return False
        found: Any = mod
        for part in klass.__qualname__.split("."):
            found = getattr(found, part, None)
        return found is klass

    def add(self, obj: Any, depth: int = 0) -> None:
        import re
        import types

        out = self.out
        if depth > 12:
            raise _Opaque("too deep")
        tp = type(obj)
        if tp in _SIMPLE:
            out.append(f"{tp.__name__}:{obj!r}")
            return
        if isinstance(obj, re.Pattern):
            out.append(f"re:{obj.pattern!r}:{obj.flags}")
            return
        if isinstance(obj, types.ModuleType):
            out.append(f"module:{obj.__name__}")
            return
        if id(obj) in self.path:
            out.append("cycle")
            return
        self.path.add(id(obj))
        try:
            self._add(obj, tp, depth + 1)
        finally:
            self.path.discard(id(obj))

    def _add(self, obj: Any, tp: type, depth: int) -> None:
        import types

        out = self.out
        if tp in (list, tuple):
            out.append(f"{tp.__name__}:{len(obj)}")
            for v in obj:
                self.add(v, depth)
        elif tp in (set, frozenset, dict):
            items = obj.items() if tp is dict else ((v, None) for v in obj)
            parts = []
            for k, v in items:
                sub = _ScannerSignature.__new__(_ScannerSignature)
                sub.__dict__.update(self.__dict__, out=[])
                sub.add(k, depth)
                sub.add(v, depth)
                parts.append("\x1e".join(sub.out))
            out.append(f"{tp.__name__}:{len(parts)}")
            out.extend(sorted(parts))
        elif isinstance(obj, types.FunctionType):
            self.function(obj, depth)
        elif isinstance(obj, types.MethodType):
            out.append("method")
            self.add(obj.__func__, depth)
            self.add(obj.__self__, depth)
        elif isinstance(obj, (staticmethod, classmethod)):
            out.append(tp.__name__)
            self.add(obj.__func__, depth)
        elif isinstance(obj, types.BuiltinFunctionType):
            owner = obj.__self__
            if owner is not None and not isinstance(owner, types.ModuleType):
                raise _Opaque(f"builtin method bound to {type(owner).__name__}")
            out.append(f"builtin:{obj.__module__}.{obj.__qualname__}")
        elif isinstance(obj, type):
            self.cls(obj, depth)
        elif isinstance(obj, self.opaque):
            raise _Opaque(tp.__name__)
        else:
            state = getattr(obj, "__dict__", None)
            slots = [n for k in tp.__mro__ for n in getattr(k, "__slots__", ()) if n not in ("__dict__", "__weakref__")]
            if state is None and not slots:
                raise _Opaque(tp.__name__)
            out.append("object")
            self.cls(tp, depth)
            self.add(dict(state or {}), depth)
            self.add({n: getattr(obj, n, None) for n in slots}, depth)

    def function(self, f: Any, depth: int) -> None:
        code = f.__code__
        self.out.append(f"function:{f.__module__}.{f.__qualname__}")
        names: set[str] = set()
        _code_parts(code, self.out, names)
        self.add(f.__defaults__, depth)
        self.add(f.__kwdefaults__, depth)
        if self.trusted(code):  # SCons' own code: its module globals are fixed by the SCons version
            for cell in f.__closure__ or ():
                self.add(cell.cell_contents, depth)
            return
        if f.__closure__:  # free variables of user code: what they hold decides the result
            raise _Opaque(f"closure {f.__qualname__}")
        g = f.__globals__
        for name in sorted(names):  # globals the user code may read (attribute names included: harmless)
            if name in g and name not in ("__builtins__",):
                self.out.append(f"global:{name}")
                self.add(g[name], depth)

    def cls(self, cls: type, depth: int) -> None:
        self.out.append(f"class:{cls.__module__}.{cls.__qualname__}")
        for klass in cls.__mro__:
            if klass.__module__ == "builtins" or self.scons_class(klass):
                continue  # SCons' own class: its name says what it does (dagprof's patches on it do not count)
            for name, v in sorted(klass.__dict__.items()):
                if name in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__slots__"):
                    continue
                self.out.append(f"member:{klass.__qualname__}.{name}")
                self.add(v, depth)


def scanner_signature(scanner: object) -> bytes | None:
    """What decides the include names `scanner` stores on a node, hashed; None: it cannot be told (no reuse).

    The scanner's class (and for classes not from SCons, the code of every method), its state (regex,
    skeys, recursive flag, path function, argument...), and for functions their code, defaults,
    closures (refused outside SCons) and the globals user code may read.
    """
    import hashlib

    sig = _ScannerSignature()
    try:
        sig.add(scanner)
    except _Opaque:
        return None
    return hashlib.blake2b("\x1f".join(sig.out).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest().encode()

"""Synthetic C projects shaped like real ones, buildable by SCons and by an equivalent Make.

Why: benchmarks and tests need big, reproducible builds whose DAG looks like a real project's
(a static library per directory, headers included across directories, one program linking them)
and that build in seconds even with 20k files, so the figures measure SCons' memory and not a
compiler or a pathological command line (see DESIGN.md on quadratic `$SOURCES`).

Layout written under ``root`` (a file index ``i`` lives in directory ``i // files_per_dir``)::

    SConstruct                    Environment + CPPPATH, SConscript('src/SConscript', variant_dir='build')
    Makefile                      equivalent non-recursive Makefile (-MMD -MP .d files, -include $(DEPS))
    src/dNNN/module.mk            that directory's Make rules, included by the Makefile
    src/SConscript                one SConscript per directory, then Program('prog', 'main.c', LIBS=...)
    src/main.c                    calls one function of every library
    src/dNNN/SConscript           Import('env'); StaticLibrary('#build/lib/dNNN', [sources])
    src/dNNN/fNNNNN.c             one function each; #include "..." of headers chosen at random
    src/dNNN/dNNN_local.h         the directory's private header (found next to the includer)
    include/dNNN/hK.h             public headers, with include guards; may include lower-numbered ones
    tools/stubcc, stubcc.awk,     stand-in compiler/linker, archiver and ranlib (compiler="stub")
    tools/stubar, stubranlib
    build/...                     outputs: build/dNNN/fNNNNN.o, build/lib/libdNNN.a, build/main.o, build/prog

The stub compiler resolves ``#include "..."`` the way gcc does (includer's directory, then -I
paths), writes an object whose content is the concatenation of the source and every header it
reached (so a header edit changes the object), and writes gcc-style -MMD/-MP dependency files for
Make. The archiver and linker write ``cksum`` of their inputs. With ``compiler="gcc"`` the same
trees build with gcc/ar/ranlib and ``build/prog`` runs and prints a number.

This module only writes files; it never imports SCons.
"""

from __future__ import annotations

import glob
import os
import random
import re
import shutil
import stat
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["ProjectInfo", "generate", "COMPILERS"]

COMPILERS = ("stub", "gcc")
PROGRAM = "build/prog"
OWN_DIR_INCLUDE_P = 0.6  # share of a file's includes taken from its own directory


# ---------------------------------------------------------------------------------------------
# stub tools (POSIX sh + awk; forked once per command, so they do as little as possible): the files in
# scripts/ (package data), copied into each project's tools/; the executable ones get their x bits there

TOOLS = (("stubcc", True), ("stubcc.awk", False), ("stubar", True), ("stubranlib", True))


# ---------------------------------------------------------------------------------------------
# the project model


@dataclass
class ProjectInfo:
    """A generated project and the edits tests and benches make to it (keeps build files in sync)."""

    root: Path
    compiler: str
    seed: int
    dirs: list[str]  # directory names: "d000", ...
    files: list[str]  # C sources relative to root (main.c excluded)
    headers: list[str]  # headers relative to root (private and public)
    includes: dict[str, list[str]]  # file -> headers it includes directly (resolved paths)
    targets: list[str] = field(default_factory=lambda: [PROGRAM])
    next_index: int = 0  # index of the next file add_file() creates
    includes_per_file: int = 3  # used by add_file() for new sources

    # ---- queries -------------------------------------------------------------------------
    @property
    def nodes_estimate(self) -> int:
        """Rough SCons node count; 16,118 for the 5k default, where SCons' --debug=count saw 16,115."""
        n_files, n_dirs = len(self.files) + 1, len(self.dirs)
        return (
            3 * n_files
            + len(self.headers)  # src + variant sources, objects, headers
            + n_dirs  # private headers seen from build/dNNN
            + n_dirs
            + 1  # libs, prog
            + n_dirs
            + 3  # SConstruct + SConscripts
            + 3 * n_dirs
            + 7  # Dir nodes
            + 4
        )  # tools/

    def object_of(self, source: str) -> str:
        """Object path (relative to root) built from a source under src/."""
        if not (source.startswith("src/") and source.endswith(".c")):
            raise ValueError(f"{source} is not a C source under src/")
        return f"build/{source[4:-2]}.o"

    def library_of(self, dirname: str) -> str:
        """Archive path (relative to root) of one directory's library."""
        return f"build/lib/lib{dirname}.a"

    def outputs(self) -> set[str]:
        """Every file a full build must produce (relative to root; no .d or .sconsign files)."""
        objs = {self.object_of(f) for f in self.files} | {"build/main.o"}
        return objs | {self.library_of(d) for d in self.dirs} | set(self.targets)

    def reached(self, path: str) -> set[str]:
        """All headers a file reaches through #include, directly or through other headers."""
        seen: set[str] = set()
        todo = deque(self.includes.get(path, ()))
        while todo:
            h = todo.popleft()
            if h not in seen:
                seen.add(h)
                todo.extend(self.includes.get(h, ()))
        return seen

    def dependents(self, header: str) -> set[str]:
        """C sources that include ``header`` directly or indirectly (what an edit must rebuild)."""
        return {f for f in self.files if header in self.reached(f)}

    # ---- edits ---------------------------------------------------------------------------
    def edit_c(self, i: int) -> str:
        """Change source ``i``'s code (a constant), so its content signature and object change."""
        path = self.files[i]
        _bump(self.root / path, r"(int rev = )(\d+)(;)")
        return path

    def edit_header(self, i: int) -> str:
        """Change header ``i``'s macro value, so every file reaching it must rebuild."""
        path = self.headers[i]
        _bump(self.root / path, r"(#define \w+_REV )(\d+)()")
        return path

    def add_file(self, dirname: str | int) -> str:
        """Add a new C source to a directory and list it in that SConscript and the Makefile."""
        d = self._dir_name(dirname)
        index = self.next_index
        self.next_index += 1
        path = f"src/{d}/{_file_name(index)}"
        rng = random.Random(f"{self.seed}/{path}")
        dir_headers = [h for h in self.headers if _header_dir(h) == d]
        public = [h for h in self.headers if h.startswith("include/")]
        incs = _pick_includes(rng, dir_headers, public, self.includes_per_file)
        self.includes[path] = incs
        (self.root / path).write_text(_c_source(index, incs))
        self.files.append(path)
        self._rewrite_build_files()
        return path

    def remove_file(self, path: str) -> None:
        """Delete a C source and drop it from its SConscript and the Makefile."""
        path = str(Path(path).relative_to(self.root)) if Path(path).is_absolute() else str(path)
        if path not in self.files:
            raise ValueError(f"{path} is not a source of this project")
        d = Path(path).parent.name
        if sum(1 for f in self.files if Path(f).parent.name == d) == 1:
            raise ValueError(f"{path} is the last source of {d}; its library would be empty")
        self.files.remove(path)
        self.includes.pop(path, None)
        (self.root / path).unlink()
        self._rewrite_build_files()

    def reset_build(self) -> None:
        """Remove every build output and SCons/dagstore state, so the next build is a full one."""
        for name in ("build", ".dagstore", ".sconf_temp"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for p in glob.glob(str(self.root / ".sconsign*")) + [str(self.root / "config.log")]:
            if os.path.exists(p):
                os.remove(p)

    # ---- internals -----------------------------------------------------------------------
    def _dir_name(self, dirname: str | int) -> str:
        d = self.dirs[dirname] if isinstance(dirname, int) else Path(dirname).name
        if d not in self.dirs:
            raise ValueError(f"{dirname} is not a directory of this project")
        return d

    def _sources_by_dir(self) -> dict[str, list[str]]:
        by_dir: dict[str, list[str]] = {d: [] for d in self.dirs}
        for f in self.files:
            by_dir[f.split("/")[1]].append(f)
        return by_dir

    def _rewrite_build_files(self) -> None:
        by_dir = self._sources_by_dir()
        for d in self.dirs:
            _write_if_changed(self.root / "src" / d / "SConscript", _dir_sconscript(d, by_dir[d]))
            _write_if_changed(self.root / "src" / d / "module.mk", _module_mk(self, d, by_dir[d]))
        _write_if_changed(self.root / "src" / "main.c", _main_c(by_dir))
        _write_if_changed(self.root / "Makefile", _makefile(self))


# ---------------------------------------------------------------------------------------------
# generation


def generate(
    root: str | Path,
    files: int = 5000,
    files_per_dir: int = 50,
    headers_per_dir: int = 5,
    includes_per_file: int = 3,
    seed: int = 0,
    compiler: str = "stub",
) -> ProjectInfo:
    """Write a synthetic project under ``root`` (created if missing) and describe it."""
    if compiler not in COMPILERS:
        raise ValueError(f"compiler must be one of {', '.join(COMPILERS)}, not {compiler!r}")
    if files < 1 or files_per_dir < 1 or headers_per_dir < 0 or includes_per_file < 0:
        raise ValueError("files and files_per_dir must be >= 1; headers_per_dir and includes_per_file >= 0")
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise ValueError(f"{root} is not empty; generate into a new directory")
    rng = random.Random(seed)
    n_dirs = -(-files // files_per_dir)
    dirs = [_dir_name(d, n_dirs) for d in range(n_dirs)]

    headers: list[str] = []
    includes: dict[str, list[str]] = {}
    by_dir_headers: dict[str, list[str]] = {d: [] for d in dirs}
    public: list[str] = []
    public_of: dict[str, list[str]] = {d: [] for d in dirs}
    for d in dirs:
        has_private = headers_per_dir >= 2
        # public headers first (they only include lower-numbered public headers: no cycles),
        # then the private one, which pulls in public API headers, its own directory's first
        for k in list(range(1 if has_private else 0, headers_per_dir)) + ([0] if has_private else []):
            private = has_private and k == 0
            same = public_of[d]
            if private:
                h = f"src/{d}/{d}_local.h"
                incs = _distinct(rng, same or public, rng.randint(1, 2))
            else:
                h = f"include/{d}/h{k}.h"
                incs = []
                for _ in range(rng.randint(0, 2)):
                    pool = same if same and rng.random() < 0.7 else public
                    if pool:
                        incs.append(rng.choice(pool))
                incs = list(dict.fromkeys(incs))
            headers.append(h)
            includes[h] = incs
            by_dir_headers[d].append(h)
            if not private:
                public.append(h)
                same.append(h)
    pending = [(h, _header(h, includes[h])) for h in headers]

    sources: list[str] = []
    for i in range(files):
        d = dirs[i // files_per_dir]
        path = f"src/{d}/{_file_name(i)}"
        incs = _pick_includes(rng, by_dir_headers[d], public, includes_per_file)
        includes[path] = incs
        pending.append((path, _c_source(i, incs)))
        sources.append(path)
    _write_all(root, pending)

    info = ProjectInfo(
        root=root,
        compiler=compiler,
        seed=seed,
        dirs=dirs,
        files=sources,
        headers=headers,
        includes=includes,
        next_index=files,
        includes_per_file=includes_per_file,
    )
    (root / "SConstruct").write_text(_sconstruct(compiler, files, n_dirs))
    (root / "src" / "SConscript").write_text(_src_sconscript(dirs))
    _write_tools(root)
    info._rewrite_build_files()
    return info


# ---------------------------------------------------------------------------------------------
# file contents


def _dir_name(d: int, n_dirs: int) -> str:
    return f"d{d:0{max(3, len(str(n_dirs - 1)))}d}"


def _file_name(i: int) -> str:
    return f"f{i:05d}.c"


# Plain string operations below: pathlib costs seconds at 20k files.


def _func_name(path_or_index: str | int) -> str:
    if isinstance(path_or_index, int):
        return f"f{path_or_index:05d}"
    return path_or_index.rsplit("/", 1)[-1][:-2]


def _header_dir(h: str) -> str:
    return h.split("/")[1]  # include/dNNN/hK.h and src/dNNN/dNNN_local.h


def _macro(h: str) -> str:
    """The macro a header defines: D003_H2 for include/d003/h2.h, D003_LOCAL for the private one."""
    top, d, name = h.split("/")
    return (f"{d}_{name[:-2]}" if top == "include" else name[:-2]).upper()


def _include_spelling(h: str) -> str:
    """How a source writes the include: public headers via -Iinclude, private ones by bare name."""
    top, d, name = h.split("/")
    return f"{d}/{name}" if top == "include" else name


def _distinct(rng: random.Random, pool: list[str], n: int) -> list[str]:
    return rng.sample(pool, min(n, len(pool)))


def _pick_includes(rng: random.Random, own: list[str], public: list[str], n: int) -> list[str]:
    """Headers for one source: mostly its own directory's, some from anywhere (public only)."""
    picked: list[str] = []
    limit = len(public) + sum(1 for h in own if h.startswith("src/"))  # |own ∪ public|, cheaply
    while len(picked) < min(n, limit):
        pool = own if own and (rng.random() < OWN_DIR_INCLUDE_P or not public) else public
        h = rng.choice(pool)
        if h not in picked:
            picked.append(h)
    return picked


def _header(h: str, incs: list[str]) -> str:
    m = _macro(h)
    lines = [f"/* {h}: generated by profiler.builds.synthetic */", f"#ifndef {m}_H", f"#define {m}_H"]
    lines += [f'#include "{_include_spelling(i)}"' for i in incs]
    lines += [
        f"#define {m}_REV 0",
        f"#define {m} ({m}_REV + {len(m)}" + "".join(f" + {_macro(i)}" for i in incs) + ")",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def _c_source(i: int, incs: list[str]) -> str:
    fn = _func_name(i)
    lines = ["/* generated by profiler.builds.synthetic */"]
    lines += [f'#include "{_include_spelling(h)}"' for h in incs]
    lines += [
        "",
        f"int {fn}(int x);",
        "",
        f"int {fn}(int x)",
        "{",
        "    int rev = 0;",
        "    return x + rev" + "".join(f" + {_macro(h)}" for h in incs) + ";",
        "}",
        "",
    ]
    return "\n".join(lines)


def _main_c(by_dir: dict[str, list[str]]) -> str:
    firsts = [_func_name(srcs[0]) for srcs in by_dir.values() if srcs]
    lines = [
        "/* generated by profiler.builds.synthetic: calls one function of every library */",
        "#include <stdio.h>",
        "",
    ]
    lines += [f"int {fn}(int x);" for fn in firsts]
    lines += ["", "int main(void)", "{", "    long sum = 0;"]
    lines += [f"    sum += {fn}(1);" for fn in firsts]
    lines += ['    printf("%ld\\n", sum);', "    return 0;", "}", ""]
    return "\n".join(lines)


def _sconstruct(compiler: str, files: int, n_dirs: int) -> str:
    return f"""# Generated by profiler.builds.synthetic: {files} C files in {n_dirs} libraries, one program.
import os

COMPILER = {compiler!r}
path = {{'PATH': os.environ.get('PATH', '/usr/bin:/bin')}}
if COMPILER == 'stub':
    tools = Dir('#tools').abspath
    env = Environment(tools=['cc', 'ar', 'link'], ENV=path,
                      CC=tools + '/stubcc', LINK=tools + '/stubcc',
                      AR=tools + '/stubar', RANLIB=tools + '/stubranlib')
else:
    env = Environment(ENV=path)
env.Append(CPPPATH=['#include'])

prog = SConscript('src/SConscript', variant_dir='build', duplicate=0, exports='env')
Default(prog)
"""


def _src_sconscript(dirs: list[str]) -> str:
    listing = "\n".join(f"    {d}" for d in dirs)
    return f"""# Generated by profiler.builds.synthetic: one library per directory, one program.
Import('env')

DIRS = Split('''
{listing}
''')
libs = [SConscript(d + '/SConscript', exports='env') for d in DIRS]
prog = env.Program('prog', ['main.c'], LIBS=DIRS, LIBPATH=['#build/lib'])
Return('prog')
"""


def _dir_sconscript(d: str, sources: list[str]) -> str:
    listing = "\n".join(f"    {s.rsplit('/', 1)[-1]}" for s in sources)
    return f"""# Generated by profiler.builds.synthetic.
Import('env')

lib = env.StaticLibrary('#build/lib/{d}', Split('''
{listing}
'''))
Return('lib')
"""


def _make_list(name: str, items: list[str]) -> str:
    return f"{name} := \\\n" + " \\\n".join(f"  {i}" for i in items) + "\n"


def _makefile(info: ProjectInfo) -> str:
    """Top-level Makefile; each directory's rules live in its src/dNNN/module.mk fragment."""
    if info.compiler == "stub":
        tools = "CC := tools/stubcc\nAR := tools/stubar\nRANLIB := tools/stubranlib\n"
    else:
        tools = "CC := gcc\nAR := ar\nRANLIB := ranlib\n"
    dirs = " ".join(["build", "build/lib"] + [f"build/{d}" for d in info.dirs])
    return "".join(
        [
            "# Generated by profiler.builds.synthetic: non-recursive equivalent of the SConstruct.\n",
            "MAKEFLAGS += --no-builtin-rules\n.SUFFIXES:\n.DELETE_ON_ERROR:\n",
            tools,
            "CPPFLAGS := -Iinclude\nCFLAGS :=\n\n",
            "all: build/prog\n.PHONY: all clean\n\n",
            _make_list("DIRS", info.dirs),
            "include $(DIRS:%=src/%/module.mk)\n\n",
            "LIBS := $(DIRS:%=build/lib/lib%.a)\nLDLIBS := $(DIRS:%=-l%)\n",
            "OBJS := build/main.o $(foreach d,$(DIRS),$(OBJS_$(d)))\nDEPS := $(OBJS:.o=.d)\n\n",
            "build/prog: build/main.o $(LIBS)\n\t$(CC) -o $@ build/main.o -Lbuild/lib $(LDLIBS)\n\n",
            "build/%.o: src/%.c\n\t$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<\n\n",
            "build/main.o: | build\n\n",
            f"{dirs}:\n\tmkdir -p $@\n\n",
            "clean:\n\trm -rf build\n\n-include $(DEPS)\n",
        ]
    )


def _module_mk(info: ProjectInfo, d: str, sources: list[str]) -> str:
    """One directory's Make rules; the library depends on it, so removing a source relinks."""
    lib = info.library_of(d)
    return "".join(
        [
            f"# Generated by profiler.builds.synthetic: rules of src/{d}, included by the top Makefile.\n",
            _make_list(f"OBJS_{d}", [info.object_of(s) for s in sources]),
            f"\n$(OBJS_{d}): | build/{d}\n",
            f"{lib}: $(OBJS_{d}) src/{d}/module.mk | build/lib\n",
            f"\trm -f $@\n\t$(AR) rc $@ $(OBJS_{d})\n\t$(RANLIB) $@\n",
        ]
    )


def _write_tools(root: Path) -> None:
    tools = root / "tools"
    tools.mkdir(exist_ok=True)
    scripts = resources.files(__name__) / "scripts"
    for name, executable in TOOLS:
        p = tools / name
        p.write_text(scripts.joinpath(name).read_text())
        if executable:
            p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _write_all(root: Path, pending: list[tuple[str, str]]) -> None:
    """Create many small files; threads overlap the per-file syscall latency (2x on a VM disk)."""
    for d in {rel.rsplit("/", 1)[0] for rel, _ in pending}:
        os.makedirs(root / d, exist_ok=True)

    def write(batch: list[tuple[str, str]]) -> None:
        for rel, text in batch:
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)

    workers = 8
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(write, [pending[i::workers] for i in range(workers)]):
            pass


def _write_if_changed(path: Path, text: str) -> None:
    """Leave unchanged files alone so Make's timestamps do not trigger spurious rebuilds."""
    try:
        if path.read_text() == text:
            return
    except FileNotFoundError:
        pass
    path.write_text(text)


def _bump(path: Path, pattern: str) -> None:
    """Increment the first integer matched by ``pattern``'s second group, keeping mtime moving."""
    text = path.read_text()
    new, n = re.subn(pattern, lambda m: f"{m.group(1)}{int(m.group(2)) + 1}{m.group(3)}", text, count=1)
    if n != 1:
        raise ValueError(f"{path}: not a generated file (no revision marker)")
    before = path.stat().st_mtime_ns
    path.write_text(new)
    if path.stat().st_mtime_ns <= before:  # coarse clocks: make sure Make sees the edit
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))

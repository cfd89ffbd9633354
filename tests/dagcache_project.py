"""A small hand-written SCons project with the features the DAG cache must get right, and twin copies of it.

SConscripts in subdirectories, Glob, a Configure check, a site_scons module, an environment variable
and a file read by the SConstruct, a Value node, an Alias, an AlwaysBuild target (not a default
target), real gcc compiles with header scanning. `Twins` keeps two identical copies (one for plain
scons, one for dagprof) and applies every edit to both with the same bytes and timestamps.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conftest import _env

MODULE = "dagprof"

FILES = {
    "SConstruct": """\
import os
env = Environment(ENV={'PATH': os.environ['PATH']}, CPPPATH=['#include'])
mode = os.environ.get('DAGTEST_MODE', 'plain')
conf = Configure(env)
if not conf.CheckCHeader('stdio.h'):
    Exit(1)
env = conf.Finish()
with open('version.txt') as f:
    version = f.read().strip()
from dagtest_helpers import banner
print(banner(version, mode), SITE_GREETING)
import sys
sys.stderr.write('note: SConstructs print on stderr too\\n')
env.Append(CPPDEFINES=[('MODE', '\\\\"%s\\\\"' % mode)])
Export('env')
lib = SConscript('lib/SConscript')
prog = SConscript('app/SConscript', exports={'lib': lib})
def write_value(target, source, env):
    with open(str(target[0]), 'w') as f:
        f.write(source[0].read() + '\\n')
env.Command('gen/version.txt', env.Value(version + '/' + mode), write_value)
Alias('all', [prog, 'gen/version.txt'])
stamp = env.Command('stamp.txt', [], 'date +%s%N > $TARGET')
AlwaysBuild(stamp)
Default('all')
""",
    "site_scons/site_init.py": "SITE_GREETING = 'hello from site_init'\n",
    "site_scons/dagtest_helpers.py": """\
def banner(version, mode):
    return 'building version %s (%s)' % (version, mode)
""",
    "version.txt": "1.0\n",
    "include/common.h": "#define COMMON 1\n",
    "lib/SConscript": """\
Import('env')
lib = env.StaticLibrary('util', Glob('*.c'))
Return('lib')
""",
    "lib/a.c": '#include "common.h"\nint a(void) { return COMMON; }\n',
    "lib/b.c": '#include "b.h"\nint b(void) { return B; }\n',
    "lib/b.h": "#define B 2\n",
    "app/SConscript": """\
Import('env', 'lib')
prog = env.Program('main', ['main.c'], LIBS=[lib])
Return('prog')
""",
    "app/main.c": '#include <stdio.h>\n#include "common.h"\nint a(void); int b(void);\n'
    'int main(void) { printf("%d %s\\n", a() + b(), MODE); return 0; }\n',
}


def write_project(root: Path, files: dict[str, str] | None = None) -> None:
    for rel, text in (FILES if files is None else files).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


HEAVY = re.compile(r"\|\s*(SCons|rich|jinja2|pympler|psutil)(\.|\s*$)")


def _strip_importtime(stderr: str) -> tuple[str, bool]:
    """stderr without -X importtime's lines, and whether SCons (or rich, jinja2, pympler, psutil) was imported."""
    kept, scons = [], False
    for line in stderr.splitlines(keepends=True):
        if line.startswith("import time:"):
            if HEAVY.search(line):
                scons = True
            continue
        kept.append(line)
    return "".join(kept), scons


class Twins:
    """Two identical project copies: `plain` built by scons, `cached` by dagprof build."""

    def __init__(self, base: Path, env: dict | None = None, files: dict[str, str] | None = None) -> None:
        self.plain = base / "plain"
        self.cached = base / "cached"
        self.extra_env = dict(env or {})
        for d in (self.plain, self.cached):
            d.mkdir(parents=True)
            write_project(d, files)
        self._sync_times()

    def _sync_times(self) -> None:
        """Both copies get the same timestamps, 10 s old (as a checkout is: outside the racy window)."""
        old = time.time_ns() - 10_000_000_000
        for dirpath, _, files in os.walk(self.plain):
            for f in files:
                os.utime(os.path.join(dirpath, f), ns=(old, old))
        for dirpath, _, files in os.walk(self.plain):
            for f in files:
                src = Path(dirpath) / f
                dst = self.cached / src.relative_to(self.plain)
                if dst.exists():
                    st = src.stat()
                    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

    def env(self) -> dict:
        e = _env()
        e.update(self.extra_env)
        return e

    # -- edits, applied to both copies with the same bytes and timestamps
    def write(self, rel: str, text: str) -> None:
        now = time.time_ns()
        for d in (self.plain, self.cached):
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            os.utime(p, ns=(now, now))

    def append(self, rel: str, text: str) -> None:
        self.write(rel, (self.plain / rel).read_text() + text)

    def touch(self, rel: str) -> None:
        now = time.time_ns()
        for d in (self.plain, self.cached):
            os.utime(d / rel, ns=(now, now))

    def remove(self, rel: str) -> None:
        for d in (self.plain, self.cached):
            p = d / rel
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    # -- builds
    def scons(self, args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "import SCons.Script; SCons.Script.main()", *args],
            cwd=self.plain,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def dagprof(self, args: list[str], opts: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, bool]:
        """Run `dagprof build` on the cached copy; returns the process (stderr without importtime) and
        whether it was answered from the DAG cache (SCons never imported)."""
        p = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", MODULE, "build", *opts, "--", *args],
            cwd=self.cached,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        p.stderr, imported = _strip_importtime(p.stderr)
        return p, not imported

    def both(
        self, args: list[str], opts: tuple[str, ...] = (), any_order: bool = False
    ) -> tuple[subprocess.CompletedProcess, bool]:
        """Build both copies; assert same exit code, stdout and stderr (as sets of lines with -j, whose
        commands finish in any order); return dagprof's run."""
        plain = self.scons(args)
        cached, answered = self.dagprof(args, opts)
        assert cached.returncode == plain.returncode, (plain.stdout, plain.stderr, cached.stdout, cached.stderr)
        if any_order:
            assert sorted(cached.stdout.splitlines()) == sorted(plain.stdout.splitlines())
            assert sorted(cached.stderr.splitlines()) == sorted(plain.stderr.splitlines())
            return cached, answered
        for stream in ("stdout", "stderr"):
            a, b = getattr(plain, stream), getattr(cached, stream)
            assert b == a, f"{stream} differs (answered={answered}):\n--- plain\n{a}\n--- dagprof\n{b}"
        return cached, answered

    def outputs_equal(self) -> None:
        """Every build output is byte-identical in the two copies."""
        for rel in ("lib/libutil.a", "app/main", "gen/version.txt"):
            a, b = self.plain / rel, self.cached / rel
            assert a.exists() == b.exists(), rel
            if a.exists() and rel != "lib/libutil.a":  # ar archives embed timestamps
                assert a.read_bytes() == b.read_bytes(), rel

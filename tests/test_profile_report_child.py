"""`dagprof profile` prints its report from a fresh interpreter (`dagprof report FILE`) once the profile is
written, so the renderers never raise the peak RSS of the build being measured: the output is the one
`dagprof report FILE` gives, byte for byte, on a pipe and on a terminal; --budget and --json work as before;
the profiled process never imports rich; when the child cannot run, the report is rendered in-process."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

import pytest
from conftest import _env, run_dagprof, run_python
from small_projects import write_command_project

from dagprof.exitcodes import BUDGET

# -s: SCons prints nothing of its own, so stdout is the report and the "profile written to" line alone
QUIET = ["--", "-Q", "-s"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = write_command_project(tmp_path_factory.mktemp("child"), 8)
    run_dagprof(["profile", "-o", "first.dagprof", *QUIET], cwd=root, check=True)  # the build itself
    return root


def written(stdout: str, name: str) -> str:
    """The report part of `dagprof profile`'s stdout: without its last line, which names the profile file."""
    last = f"profile written to {name}\n"
    assert stdout.endswith(last), stdout[-300:]
    return stdout[: -len(last)]


@pytest.mark.parametrize("mode", ["text", "json", "html"])
def test_the_report_is_the_one_dagprof_report_prints_of_the_file(project, mode):
    name = f"{mode}.dagprof"
    opts = {"text": [], "json": ["--json"], "html": ["--html", f"{mode}.html"]}[mode]
    p = run_dagprof(["profile", "-o", name, *opts, *QUIET], cwd=project, check=True)
    assert p.stderr == ""
    html = (project / f"{mode}.html").read_bytes() if mode == "html" else None
    r = run_dagprof(["report", name, *opts], cwd=project, check=True)
    if mode == "json":
        assert p.stdout == r.stdout  # nothing after the JSON: `profile --json` names no file
        data = json.loads(p.stdout)
        assert data["meta"]["exit_code"] == 0 and data["sections"]["findings"] is not None
    else:
        assert written(p.stdout, name) == r.stdout
        assert "Findings" in r.stdout and "Sizes per class" in r.stdout
    if mode == "html":
        assert r.stdout.endswith(f"HTML report written to {mode}.html\n")
        assert (project / f"{mode}.html").read_bytes() == html  # the same page, rewritten


def test_budget_is_the_childs_verdict(project):
    over = run_dagprof(["profile", "-o", "b.dagprof", "--budget", "0", *QUIET], cwd=project)
    assert over.returncode == BUDGET, over.stderr
    assert re.fullmatch(r"dagprof: findings estimate [\d,]+ bytes .*over the budget of 0\n", over.stderr)
    assert "Findings" in over.stdout and over.stdout.endswith("profile written to b.dagprof\n")
    under = run_dagprof(["profile", "-o", "b.dagprof", "--json", "--budget", str(2**40), *QUIET], cwd=project)
    assert under.returncode == 0 and under.stderr == "", under.stderr
    json.loads(under.stdout)


def test_the_profiled_process_never_imports_rich(project):
    """-X importtime lists every module this process imports (on its stderr); the child is a new interpreter
    without the option, so only the profiled process's imports are listed."""
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dagprof", "profile", "-o", "i.dagprof", *QUIET],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "SCons.Script" in imported and "dagprof.builds.scons" in imported  # the listing is complete
    shown = {m for m in imported if m.split(".")[0] in ("rich", "jinja2", "markupsafe")}
    renderers = {m for m in imported if m.startswith(("dagprof.report", "dagprof.analyze"))}
    assert not shown and not renderers, (shown, renderers)
    # nor what only other commands use (every command's parser is built): ~1.3 MiB of the build's peak at 5k
    unused = imported & {"statistics", "decimal", "fractions", "ctypes", "dagprof.compare"}
    assert not unused, unused
    assert "Findings" in p.stdout  # the report was printed all the same


def test_what_only_writing_the_profile_needs_is_imported_when_it_is_written():
    """msgpack is imported when a profile is saved (after the build), not with the modules the build runs with."""
    run_python(
        "import sys\n"
        "from dagprof.cli import build_parser\n"
        "import dagprof.builds.scons, dagprof.introspect, dagprof.profile\n"
        "build_parser()\n"
        "assert 'msgpack' not in sys.modules, 'imported before the build'\n"
        "p = dagprof.profile.Profile(meta={'a': 1})\n"
        "assert dagprof.profile.Profile.loads(p.dumps()) == p and 'msgpack' in sys.modules\n"
    )


def test_on_a_terminal_the_report_is_the_terminals(project):
    """On a terminal (150 columns) the child sees the terminal the profiled process has (styles, width), so
    the output is what `dagprof report` prints on it."""

    def on_terminal(args: list[str]) -> bytes:
        import fcntl
        import struct
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 150, 0, 0))
        env = dict(_env(), TERM="xterm-256color")
        for var in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"):
            env.pop(var, None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagprof", *args], cwd=project, env=env, stdout=slave, stderr=subprocess.PIPE
        )
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other end is gone
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
        return out.replace(b"\r\n", b"\n")

    p = on_terminal(["profile", "-o", "t.dagprof", *QUIET])
    r = on_terminal(["report", "t.dagprof"])
    assert b"\x1b[" in r and b"Findings" in r  # a terminal's report: styled (on a pipe it is not)
    assert p.removesuffix(b"profile written to t.dagprof\n") == r


# the profiled process with its interpreter replaced: each program run as `sys.executable` for the report
FALLBACK = """\
import sys
sys.executable = sys.argv[1]
from dagprof.entry import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    "program, warning",
    [
        ("missing", ""),  # cannot be started: rendered here, nothing said
        ("#!/bin/sh\necho 'broken renderer' >&2\nexit 3\n", "the report process ended (exit 3)"),
        ("#!/bin/sh\nkill -9 $$\n", "the report process ended (killed by signal 9)"),
    ],
)
def test_when_the_child_cannot_render_the_report_is_rendered_in_process(project, tmp_path, program, warning):
    exe = tmp_path / "python"
    if program != "missing":
        exe.write_text(program)
        exe.chmod(0o755)
    name = str(tmp_path / "f.dagprof")
    p = subprocess.run(
        [sys.executable, "-c", FALLBACK, str(exe), "profile", "-o", name, "--budget", "0", *QUIET],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == BUDGET, p.stderr
    r = run_dagprof(["report", name, "--budget", "0"], cwd=project)
    assert written(p.stdout, name) == r.stdout
    if warning:
        assert f"dagprof: warning: {warning}; rendering the report here\n" in p.stderr
    else:
        assert "warning" not in p.stderr
    assert p.stderr.endswith(r.stderr)  # the budget verdict, once


def test_an_in_process_caller_gets_the_report_on_its_own_stdout(project):
    """dagprof.cli.main called with sys.stdout replaced (no file descriptor): the report goes there."""
    script = """\
import contextlib, io, sys
from dagprof.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    code = main(["profile", "-o", "c.dagprof", "--json", "--", "-Q", "-s"])
assert code == 0, code
sys.stdout.write(buf.getvalue())
"""
    p = subprocess.run([sys.executable, "-c", script], cwd=project, env=_env(), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    r = run_dagprof(["report", "c.dagprof", "--json"], cwd=project, check=True)
    assert p.stdout == r.stdout


def test_findings_of_the_written_profile_are_the_in_memory_ones(project):
    """What the child computes from the file is what show() computed from the profile in memory: the file
    round-trips (its bytes re-encode to themselves) and the findings, the JSON and the text are equal."""
    script = """\
import contextlib, io, os, sys
from dagprof.analyze import analyze
from dagprof.builds import scons as adapter
from dagprof.cmdline import make_introspector
from dagprof.commands.report import show
from dagprof.profile import load
from dagprof.report.jsonout import to_json
os.chdir(sys.argv[1])
profile = adapter.profile_build(["-Q", "-s"], introspector=make_introspector(adapter))
assert profile.meta["exit_code"] == 0 and profile.sections["sizes"]
profile.save("r.dagprof")
loaded = load("r.dagprof")
assert loaded.dumps() == profile.dumps()
found = analyze(profile)
assert found and analyze(loaded) == found, (found, analyze(loaded))
class Args:
    html = None
    budget = None
    top = 8
for as_json in (True, False):
    Args.json = as_json
    outs = []
    for p in (profile, loaded):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            show(p, Args)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] and "findings" in outs[0].lower(), outs
print("ok", len(found))
"""
    p = run_python(script, project)
    assert p.stdout.startswith("ok ")


def test_a_caller_that_put_dagprof_on_sys_path_itself_gets_the_same_dagprof_in_the_child(project):
    """No PYTHONPATH: the caller found this checkout through sys.path alone; the child is told where it is
    (a fresh interpreter would otherwise not find `dagprof`, and the report would be rendered in-process)."""
    from conftest import IMPORT_PATH

    script = """\
import sys
sys.path.insert(0, sys.argv[1])
from dagprof.cli import main
code = main(["profile", "-o", "s.dagprof", "--", "-Q", "-s"])
print("rich here:", "rich" in sys.modules)
sys.exit(code)
"""
    env = {k: v for k, v in _env().items() if k != "PYTHONPATH"}
    p = subprocess.run(
        [sys.executable, "-c", script, IMPORT_PATH], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.endswith("profile written to s.dagprof\nrich here: False\n") and "Findings" in p.stdout


def test_the_child_gets_the_environment_from_before_the_build(tmp_path):
    """An SConstruct runs in-process and may change os.environ (here PYTHONHOME, fatal for a new interpreter):
    the report child starts with the environment dagprof itself was started with."""
    (tmp_path / "SConstruct").write_text(
        'import os\nos.environ["PYTHONHOME"] = "/nonexistent"\nCommand("out.txt", [], "echo x > $TARGET")\n'
    )
    p = run_dagprof(["profile", "-o", "e.dagprof", *QUIET], cwd=tmp_path, check=True)
    assert p.stderr == ""
    assert written(p.stdout, "e.dagprof") == run_dagprof(["report", "e.dagprof"], cwd=tmp_path, check=True).stdout

"""The command line as people expect it: --version, `[-- SCONS_ARGS]` in usage lines, a hint for SCons
options given before `--`, `dagprof check`, one "dagprof: ..." per message, and dagprof's own exit codes
apart from SCons' (docs/usage.md). Real processes."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import _env
from report_fixtures import full_profile

from dagprof import __version__, exitcodes
from dagprof.exitcodes import BAD_INPUT, BUDGET, INTERRUPTED, NOT_EQUIVALENT, USAGE

SCONS_CODES = {0, 1, 2}  # SCons' own; 128+N for a signal


def _one_line(p) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("dagprof: ") and "error:" not in lines[0]
    assert not re.search(r"(^|\s)dagprof( \w+)?: ", lines[0][len("dagprof: ") :]), lines[0]  # the prefix once
    return lines[0]


def test_own_codes_are_distinct_and_apart_from_scons():
    codes = {k: v for k, v in vars(exitcodes).items() if k.isupper() and k not in ("OK", "INTERRUPTED")}
    assert len(set(codes.values())) == len(codes)
    assert all(64 <= c < 128 and c not in SCONS_CODES for c in codes.values()), codes


def test_version(tmp_path, dagprof):
    p = dagprof(["--version"], tmp_path)
    assert p.returncode == 0 and p.stdout == f"dagprof {__version__}\n" and p.stderr == ""


@pytest.mark.parametrize("command", ["profile", "build", "compare", "check"])
def test_usage_lines_show_scons_args(tmp_path, dagprof, command):
    p = dagprof([command, "--help"], tmp_path)
    assert p.returncode == 0, p.stderr
    usage = p.stdout.split("\n\n")[0]
    assert usage.startswith(f"usage: dagprof {command} ") and usage.endswith("[-- SCONS_ARGS]"), usage
    assert "example:  dagprof " + command in p.stdout


def test_check_help_is_the_equivalence_checker(tmp_path, dagprof):
    p = dagprof(["check", "--help"], tmp_path)
    assert p.returncode == 0
    for option in ("--edits FILE", "--store {lmdb,memory}", "--ignore GLOB", "--workdir DIR", "--json", "project"):
        assert option in p.stdout
    assert "edits.json:" in p.stdout


@pytest.mark.parametrize(
    "args,shown,usage",
    [
        (["build", "-Q"], "-Q", "dagprof build [options] -- -Q"),
        (["build", "-j2"], "-j2", "dagprof build [options] -- -j2"),
        (["build", "-j", "2", "all"], "-j 2 all", "dagprof build [options] -- -j 2 all"),  # a value, a target
        (["profile", "-Q", "-j2"], "-Q -j2", "dagprof profile [options] -- -Q -j2"),
        (["compare", "--debug=explain"], "--debug=explain", "dagprof compare [options] -- --debug=explain"),
        (["check", "p", "-j2"], "-j2", "dagprof check [options] PROJECT -- -j2"),  # its positional argument too
    ],
)
def test_scons_option_before_the_separator_gets_a_hint(tmp_path, dagprof, args, shown, usage):
    p = dagprof(args, tmp_path)
    assert p.returncode == USAGE
    assert _one_line(p) == f"dagprof: unrecognized arguments: {shown} (SCons arguments go after --: {usage})"


def test_the_check_hint_can_be_followed(tmp_path, dagprof):
    """The hint names PROJECT where `dagprof check` needs it: filled in, the command runs (and passes)."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "SConstruct").write_text("Command('out', [], 'echo hi > $TARGET')\n")
    hint = _one_line(dagprof(["check", "p", "-Q"], tmp_path)).split("SCons arguments go after --: ")[1][:-1]
    words = hint.split()
    assert words[:3] == ["dagprof", "check", "[options]"]
    followed = [("p" if w == "PROJECT" else w) for w in words[3:]]
    p = dagprof(["check", *followed], tmp_path)
    assert p.returncode == 0 and "EQUIVALENT" in p.stdout, (followed, p.stdout, p.stderr)


@pytest.mark.parametrize(
    "args,line",
    [
        (["build", "--frob"], "--frob (an option of neither dagprof build nor SCons)"),
        (["profile", "--frob", "--zork=1"], "--frob --zork=1 (options of neither dagprof profile nor SCons)"),
        (
            ["build", "-Q", "--frob"],
            "-Q --frob (--frob: an option of neither dagprof build nor SCons; "
            "SCons arguments go after --: dagprof build [options] -- -Q)",
        ),
    ],
)
def test_an_option_neither_knows_is_not_called_an_scons_option(tmp_path, dagprof, args, line):
    p = dagprof(args, tmp_path)
    assert p.returncode == USAGE and _one_line(p) == "dagprof: unrecognized arguments: " + line


def test_unknown_option_of_a_command_without_scons_args_has_no_hint(tmp_path, dagprof):
    p = dagprof(["report", "x.dagprof", "-Q"], tmp_path)
    assert p.returncode == USAGE and _one_line(p) == "dagprof: unrecognized arguments: -Q"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["build", "--store", "redis"], "argument --store: invalid choice"),
        (["nosuchcommand"], "invalid choice"),
        (["check"], "the following arguments are required: project"),
        (["check", ".", "--workdir", "nowhere"], "is not a directory"),
    ],
)
def test_usage_errors(tmp_path, dagprof, args, needle):
    p = dagprof(args, tmp_path)
    assert p.returncode == USAGE and needle in _one_line(p)


def test_no_command_prints_help_and_usage_code(tmp_path, dagprof):
    p = dagprof([], tmp_path)
    assert p.returncode == USAGE and "usage: dagprof" in p.stdout


def test_bad_profile_file(tmp_path, dagprof):
    (tmp_path / "x.dagprof").write_bytes(b"GIF89a not a profile")
    p = dagprof(["report", "x.dagprof"], tmp_path)
    assert p.returncode == BAD_INPUT and "not a dagprof profile" in _one_line(p)


def test_check_with_a_bad_edits_file(tmp_path, dagprof):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "SConstruct").write_text("Command('out', [], 'echo hi > $TARGET')\n")
    (tmp_path / "edits.json").write_text("[{")
    p = dagprof(["check", "p", "--edits", "edits.json", "--", "-Q"], tmp_path)
    assert p.returncode == BAD_INPUT and "is not valid JSON" in _one_line(p)


def test_findings_over_budget(tmp_path, dagprof):
    profile = full_profile()
    profile.save(tmp_path / "p.dagprof")
    ok = dagprof(["report", "p.dagprof", "--json", "--budget", str(10**15)], tmp_path)
    assert ok.returncode == 0, ok.stderr
    over = dagprof(["report", "p.dagprof", "--json", "--budget", "0"], tmp_path)
    assert over.returncode == BUDGET
    assert "over the budget of 0" in _one_line(over)


def test_build_failure_keeps_scons_exit_code(tmp_path, scons, dagprof):
    (tmp_path / "SConstruct").write_text("Command('out', [], 'exit 3')\n")
    plain = scons(["-Q"], tmp_path)
    store = dagprof(["build", "--store", "lmdb", "--quiet-store", "--", "-Q"], tmp_path)
    assert plain.returncode == store.returncode == 2, store.stderr
    assert "Traceback" not in store.stderr


def test_build_without_sconstruct_ends_with_scons_message(tmp_path, scons, dagprof):
    plain = scons([], tmp_path)
    p = dagprof(["build"], tmp_path)
    assert p.returncode == plain.returncode == 2
    assert "No SConstruct file found" in p.stderr and "None" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines()[-1] == plain.stderr.strip().splitlines()[-1]


def test_check_of_a_project_that_builds_differently_under_dagprof(tmp_path, dagprof):
    """`dagprof check` exits NOT_EQUIVALENT (69) when the store build differs from plain SCons.

    How the difference is made: check's own options (--store, --edits, --ignore, SCons arguments) apply to
    both sides alike, so none of them can honestly make one side differ. This SConstruct looks at the process
    that reads it and writes `dagprof` when run by `dagprof build` (SCons in-process) and `scons` otherwise: a
    deterministic difference of outputs and messages, as a real store bug would make, which check must report."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "SConstruct").write_text(
        "import sys\n"
        "runner = 'dagprof' if 'dagprof' in sys.modules else 'scons'\n"
        "Command('runner.txt', [], 'echo %s > $TARGET' % runner)\n"
    )
    p = dagprof(["check", "p", "--", "-Q"], tmp_path)
    assert p.returncode == NOT_EQUIVALENT, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert "output runner.txt: bytes differ" in p.stdout and "NOT EQUIVALENT" in p.stdout.splitlines()[-1]


def test_interrupted_compare_exits_130_with_one_line(tmp_path):
    """SIGINT (Ctrl-C) while `dagprof compare` waits for a build: exit INTERRUPTED (130), one line, no traceback."""
    started = tmp_path / "started"
    (tmp_path / "SConstruct").write_text(f"Command('out', [], 'touch {started} && sleep 60 && echo hi > $TARGET')\n")
    # SIGINT as the shell delivers it to a foreground command: handled (a background job would inherit it ignored)
    p = subprocess.Popen(
        [sys.executable, "-m", "dagprof", "compare", "--runs", "1", "--", "-Q"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists():  # the first build is running: compare is waiting for it
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # whatever it started, should anything be left
        except ProcessLookupError:
            pass
    assert p.returncode == INTERRUPTED, (out, err)
    assert err.strip() == "dagprof: interrupted" and "Traceback" not in err, err


def test_profile_without_sconstruct_says_so_in_one_line(tmp_path, scons, dagprof):
    """No report, no spill advice and no profile of a build that never started: SCons' message, one line, its code."""
    plain = scons(["-Q"], tmp_path)
    p = dagprof(["profile", "--", "-Q"], tmp_path)
    assert p.returncode == plain.returncode == 2
    assert p.stdout == "" and "No SConstruct file found" in p.stderr
    ours = [ln for ln in p.stderr.splitlines() if ln.startswith("dagprof:")]
    assert len(ours) == 1 and "exit 2" in ours[0], p.stderr
    assert not (tmp_path / "profile.dagprof").exists()


def test_budget_with_what_if_is_a_usage_error(tmp_path, dagprof):
    full_profile().save(tmp_path / "p.dagprof")
    p = dagprof(["report", "p.dagprof", "--what-if", "spill=File.binfo", "--budget", "0"], tmp_path)
    assert p.returncode == USAGE and "--budget" in _one_line(p) and "--what-if" in _one_line(p)
    assert p.stdout == ""


def test_files_the_user_asked_for_get_the_umask_mode(tmp_path, dagprof):
    """A profile and an HTML report written by one command get the same mode: what the umask leaves of 0666."""
    import os
    import stat

    full_profile().save(tmp_path / "p.dagprof")
    old = os.umask(0o027)
    try:
        p = dagprof(["report", "p.dagprof", "--html", "r.html"], tmp_path)
        assert p.returncode == 0, p.stderr
        full_profile().save(tmp_path / "q.dagprof")
    finally:
        os.umask(old)
    for name in ("r.html", "q.dagprof"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name

"""dagprof's own exit codes, in one place, apart from the codes SCons itself returns.

Why: `dagprof build` and `dagprof profile` end with the build's own exit code, and SCons uses 0
(success), 1 (error, and `-q` out of date), 2 (build failure, bad option, no SConstruct) and 128+N
(killed by signal N). A script must be able to tell "the build failed" from "dagprof refused", so
dagprof's codes are the BSD sysexits range (64+), which SCons never returns. docs/usage.md has the table.
"""

OK = 0
USAGE = 64  # bad command line: unknown option, bad value, SCons options before `--`
BAD_INPUT = 65  # an input file dagprof reads is unreadable, damaged or foreign (profile, edits file)
BUDGET = 66  # the report's findings estimate more savings than --budget
VERIFY_MISMATCH = 67  # the DAG cache check found the cache would have answered wrongly
REGRESSION = 68  # the memory-regression gate: `diff --max-growth`, `profile --baseline` (profiler/diff.py)
NOT_EQUIVALENT = 69  # `dagprof check`: the store build differed from plain SCons
BUILD_FAILED = 70  # `compare`/`demo`/`check`: a build they ran failed (`build`/`profile` return SCons' own code)
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as the shell and SCons report it

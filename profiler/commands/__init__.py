"""The `dagprof` subcommands, one module each (profile, report, build, compare, demo, check, diff).

Each module has NAME, EXAMPLE, SCONS_ARGS (whether it passes the arguments after `--` to SCons) and
`register(subparsers)`, which adds its parser and sets `handler=` with argparse's own set_defaults.
They import downwards only (cmdline.py, the engines, report/), never cli.py.
"""

"""The SCons adapter's public face: the one place that knows SCons, split by concern into

- scons_nodes.py    node classes, boundary classes, node keys, live nodes, phase names
- scons_wrap.py     dagprof's wrappers inside SCons (hidden from its stack walks), the safe points
- scons_run.py      run_scons (SCons in this process, as `scons ARGS`) and profile_build
- scons_store.py    what is safe to collapse/spill/reuse, stamps, the codec, StoreHooks
- scons_scanner.py  scanner_signature (when a file's stored include names may be reused)
- scons_enable.py   enable_store(), the one line for an SConstruct
- scons_state.py    the .sconsign layout and `--debug=explain` output, for compare and check; SCons' option names
- scons_dag.py      the DAG cache (answer without SCons; record after a build)

Callers import this module (`from dagprof.builds import scons as adapter`); the names below are the
adapter's interface to the rest of dagprof. Importing it does not import SCons.
"""

from __future__ import annotations

from .scons_enable import enable_store
from .scons_nodes import (
    BOUNDARY_CLASS_NAMES,
    NODE_CLASS_NAMES,
    PHASE_BUILD,
    PHASE_READ,
    PHASE_SCONSIGN,
    PHASE_STARTUP,
    boundary_classes,
    live_nodes,
    node_classes,
    node_key,
    scons_version,
)
from .scons_run import BuildHooks, RunResult, profile_build, run_scons, scons_argv0
from .scons_scanner import scanner_signature
from .scons_store import (
    COLLAPSE_ATTRS,
    DEFAULT_COLD,
    KEEP_ATTRS,
    MEMO_EVICT,
    PROFILE_REFRESH,
    REUSE_ATTRS,
    SCONS_READS,
    SPILL_ATTRS,
    StoreHooks,
    file_stamp,
    make_codec,
    store_candidates,
)
from .scons_wrap import WRAPPER_FILE, hook_safe_points

__all__ = [
    "BOUNDARY_CLASS_NAMES",
    "NODE_CLASS_NAMES",
    "PHASE_BUILD",
    "PHASE_READ",
    "PHASE_SCONSIGN",
    "PHASE_STARTUP",
    "boundary_classes",
    "live_nodes",
    "node_classes",
    "node_key",
    "scons_version",
    "BuildHooks",
    "RunResult",
    "profile_build",
    "run_scons",
    "scons_argv0",
    "scanner_signature",
    "COLLAPSE_ATTRS",
    "DEFAULT_COLD",
    "KEEP_ATTRS",
    "MEMO_EVICT",
    "PROFILE_REFRESH",
    "REUSE_ATTRS",
    "SCONS_READS",
    "SPILL_ATTRS",
    "StoreHooks",
    "file_stamp",
    "make_codec",
    "store_candidates",
    "WRAPPER_FILE",
    "hook_safe_points",
    "enable_store",
]

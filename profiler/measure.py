"""Measuring a build process from outside, the same way for `dagprof compare` and the bench scripts.

TRAMPOLINE is the tiny `python -S` wrapper that spawns the measured command and wait4()s it;
machine_description() is the one line naming what figures were measured on.
"""

from __future__ import annotations

import os
import platform
import sys


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_bytes() -> int | None:
    # sysconf first: the same total as psutil's (the kernel's MemTotal), without importing psutil into
    # the profiled process at its peak (~2 MiB with what psutil imports)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        return None


def _version_of(dist: str) -> str:
    # a package this process already imported says its version itself: importlib.metadata (and the email
    # package it loads) would add ~0.3 MiB to a profiled build at its peak
    loaded = sys.modules.get(dist)
    version = getattr(loaded, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_description() -> str:
    """One line naming what the figures were measured on, printed by every bench and by compare."""
    ram = _ram_bytes()
    try:
        load = f"load {os.getloadavg()[0]:.1f}"
    except OSError:
        load = "load ?"
    return " | ".join(
        [
            _cpu_model(),
            f"{os.cpu_count()} cores",
            f"{ram / 2**30:.1f} GiB RAM" if ram else "RAM ?",
            platform.platform(terse=True),
            f"Python {platform.python_version()}",
            f"SCons {_version_of('SCons')}",
            load,
        ]
    )


# The wrapper between the measuring process and the measured command. A child's ru_maxrss starts at its
# spawner's high-water mark (exec records the old, vfork-shared mm), so spawning from the measuring
# process (a bench, or `dagprof compare` with rich loaded) would put a ~25-40 MiB floor under every figure;
# this `python -S` trampoline keeps the
# floor at its own ~8-10 MiB and reports it. It prints the child's pid, then one JSON line.
TRAMPOLINE = r"""
import json, os, resource, sys, time
w = int(sys.argv[1]); cmd = sys.argv[2:]
try:  # own mm's high-water mark; ru_maxrss would include the bench process that spawned us
    floor = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
except (OSError, StopIteration):
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
except OSError as e:
    os.write(w, ("0\n" + json.dumps({"error": f"{cmd[0]}: {e.strerror}"}) + "\n").encode()); sys.exit(127)
os.write(w, f"{pid}\n".encode())
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
code = os.waitstatus_to_exitcode(status)
os.write(w, (json.dumps({"wall_s": wall, "exit_code": code, "maxrss_kib": ru.ru_maxrss, "floor_kib": floor,
                         "user_s": ru.ru_utime, "sys_s": ru.ru_stime}) + "\n").encode())
sys.exit(code if 0 <= code < 256 else 128 + (-code))
"""

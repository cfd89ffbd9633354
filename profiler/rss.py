"""Resident memory, split into anonymous and file-backed pages: the one reader and the one sampler.

LMDB pages read through the memory map count as file-backed RSS (reclaimable); node data is
anonymous. Reporting both keeps the savings report honest. Every figure dagprof samples goes through
here: the profile's monitor (tracker.Monitor) and the in-process peaks (PeakSampler) read this process,
`dagprof compare` and the benches read the measured build process from outside, all with read_status()
and one Sampler thread. /proc/PID/status is one small read, unlike psutil's memory_full_info(), which
parses smaps; the kernel keeps a high-water mark only for the total (VmHWM), so the anon/file peaks are
samples.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Self

Reading = dict[str, int]
_FIELDS = {b"VmRSS:": "rss", b"RssAnon:": "anon", b"RssFile:": "file", b"VmHWM:": "hwm"}


def parse_status(data: bytes) -> Reading:
    """rss/anon/file/hwm in bytes from the text of a /proc/PID/status file (only the fields present)."""
    out: Reading = {}
    for line in data.split(b"\n"):
        parts = line.split()
        key = _FIELDS.get(parts[0]) if len(parts) > 1 else None
        if key:
            out[key] = int(parts[1]) * 1024
    return out


def read_status(pid: int | None = None, dir_fd: int | None = None) -> Reading | None:
    """A process's rss/anon/file/hwm in bytes from /proc (this process by default); None once it is gone
    or where there is no /proc. With dir_fd (a handle on /proc/PID) a recycled pid is never read."""
    try:
        if dir_fd is not None:
            fd = os.open("status", os.O_RDONLY, dir_fd=dir_fd)
        else:
            fd = os.open(f"/proc/{'self' if pid is None else pid}/status", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 16384)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_status(data) or None  # a zombie has no memory fields: gone


def read_rss() -> tuple[int, int, int]:
    """(rss, anonymous rss, file-backed rss) of this process in bytes; anon/file are -1 where the OS does
    not say (rss then comes from psutil)."""
    s = read_status() or {}
    rss = s.get("rss", -1)
    if rss < 0:
        import psutil

        rss = psutil.Process().memory_info().rss
    return rss, s.get("anon", -1), s.get("file", -1)


def own_hwm() -> int:
    """This process's peak RSS in bytes (VmHWM, or ru_maxrss where there is no /proc)."""
    s = read_status() or {}
    return s.get("hwm") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Sampler:
    """A daemon thread taking a reading every interval_s and keeping each field's maximum.

    By default the reading is read_status(pid, dir_fd); `read` replaces it, `on_sample` sees every
    reading (the monitor keeps them all). cpu_s is the thread's own CPU time: what sampling cost.
    """

    def __init__(
        self,
        interval_s: float = 0.02,
        pid: int | None = None,
        dir_fd: int | None = None,
        read: Callable[[], Reading | None] | None = None,
        on_sample: Callable[[Reading], None] | None = None,
        name: str = "dagprof-rss",
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"sampler: interval must be > 0 seconds, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.read = read if read is not None else (lambda: read_status(pid, dir_fd))
        self.on_sample = on_sample
        self.name = name
        self.peaks: Reading = {}
        self.samples = 0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def peak(self, key: str) -> int:
        """The highest value of one field seen so far (0 when never read)."""
        return self.peaks.get(key, 0)

    def sample(self) -> Reading | None:
        """Take one reading now (also used for an exact first and last point)."""
        r = self.read()
        if r is None:
            return None
        for k, v in r.items():
            if v > self.peaks.get(k, 0):
                self.peaks[k] = v
        self.samples += 1
        if self.on_sample is not None:
            self.on_sample(r)
        return r

    def _run(self) -> None:
        c0 = time.thread_time()
        try:
            while True:
                self.sample()
                if self._stop.wait(self.interval_s):
                    break
        finally:
            self.cpu_s = time.thread_time() - c0

    def start(self) -> Self:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and join the thread; peaks and cost are final afterwards."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class PeakSampler(Sampler):
    """This process's anonymous and file-backed RSS peaks during a build (the kernel keeps only the total's)."""

    def stop(self) -> dict[str, int]:  # type: ignore[override]
        super().stop()
        self.sample()
        return {
            "peak_rss_anon": self.peak("anon"),
            "peak_rss_file": self.peak("file"),
            "peak_rss_hwm": own_hwm(),
            "rss_samples": self.samples,
        }

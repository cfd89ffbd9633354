"""Resident memory of this process, split into anonymous and file-backed pages.

LMDB pages read through the memory map count as file-backed RSS (reclaimable); node data is
anonymous. Reporting both keeps the savings report honest.
"""
from __future__ import annotations

import resource
import threading


def read_status() -> dict[str, int]:
    """VmRSS/RssAnon/RssFile/VmHWM in bytes from /proc/self/status (zeros where unavailable)."""
    out = {"rss": 0, "anon": 0, "file": 0, "hwm": 0}
    names = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "VmHWM:": "hwm"}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                parts = line.split()
                key = names.get(parts[0]) if parts else None
                if key:
                    out[key] = int(parts[1]) * 1024
    except OSError:
        out["hwm"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


class PeakSampler:
    """A daemon thread keeping the maxima of anonymous and file-backed RSS (the kernel keeps only the total)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak_anon = 0
        self.peak_file = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dagprof-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        s = read_status()
        self.peak_anon = max(self.peak_anon, s["anon"])
        self.peak_file = max(self.peak_file, s["file"])
        self.samples += 1

    def start(self) -> "PeakSampler":
        self._thread.start()
        return self

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        self.sample()
        return {"peak_rss_anon": self.peak_anon, "peak_rss_file": self.peak_file,
                "peak_rss_hwm": read_status()["hwm"], "rss_samples": self.samples}

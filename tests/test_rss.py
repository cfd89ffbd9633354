"""profiler/rss.py: the one /proc reader and the one sampler (monitor, in-process peaks, compare, benches)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import run_dagprof

from dagprof.profile import load
from dagprof.rss import PeakSampler, Sampler, parse_status, read_rss, read_status

STATUS = b"Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t   600 kB\nRssFile:\t   400 kB\nThreads:\t1\n"
linux = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")


def test_parse_status_reads_the_four_fields_in_bytes():
    assert parse_status(STATUS) == {"hwm": 2048 * 1024, "rss": 1024 * 1024, "anon": 600 * 1024, "file": 400 * 1024}
    assert parse_status(b"Name:\tzombie\nState:\tZ\n") == {}


@linux
def test_read_status_of_this_process_another_and_a_gone_one():
    own = read_status()
    assert own and own["rss"] > 0 and own["anon"] + own["file"] <= own["rss"] + 4096 and own["hwm"] >= own["rss"]
    fd = os.open("/proc/self", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_status(dir_fd=fd)["rss"] > 0
    finally:
        os.close(fd)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert read_status(p.pid) is None  # reaped: gone
    rss, anon, file_ = read_rss()
    assert rss > 0 and anon > 0 and file_ > 0


@linux
def test_sampler_keeps_the_peak_of_another_process():
    code = (
        "import time; b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.6); del b; "
        "time.sleep(0.3)"
    )
    p = subprocess.Popen([sys.executable, "-c", code])
    seen = []
    s = Sampler(0.01, pid=p.pid, on_sample=seen.append).start()
    p.wait()
    s.stop()
    assert s.peak("anon") >= 60 << 20 and s.peak("hwm") >= s.peak("anon") and s.samples == len(seen) > 5
    assert not s.running and s.cpu_s >= 0


def test_sampler_with_its_own_reading_and_a_bad_interval():
    values = iter([{"x": 3}, None, {"x": 7}, {"x": 5}])
    s = Sampler(1.0, read=lambda: next(values))
    for _ in range(4):
        s.sample()
    assert s.peak("x") == 7 and s.samples == 3 and s.peak("missing") == 0
    with pytest.raises(ValueError):
        Sampler(0)


@linux
def test_peak_sampler_reports_this_process_split():
    s = PeakSampler(0.005).start()
    time.sleep(0.05)
    out = s.stop()
    assert set(out) == {"peak_rss_anon", "peak_rss_file", "peak_rss_hwm", "rss_samples"}
    assert out["peak_rss_anon"] > 0 and out["peak_rss_hwm"] >= out["peak_rss_anon"] and out["rss_samples"] >= 2


THREADS_SCONSTRUCT = """\
import threading
print("threads:", ",".join(sorted(t.name for t in threading.enumerate() if t.name.startswith("dagprof"))))
Command("out.txt", "in.txt", Copy("$TARGET", "$SOURCE"))
"""


@linux
def test_build_samples_the_rss_split_only_for_a_profile(tmp_path):
    """`dagprof build` runs the /proc sampling thread only when it writes a profile (-o): nothing else uses
    the anon/file peaks, and its wake-ups cost the build time."""
    (tmp_path / "SConstruct").write_text(THREADS_SCONSTRUCT)
    (tmp_path / "in.txt").write_text("x\n")
    plain = run_dagprof(["build", "--store", "none", "--", "-Q"], tmp_path, check=True)
    assert "threads: \n" in plain.stdout
    prof = run_dagprof(["build", "--store", "none", "-o", "p.dagprof", "--", "-Q"], tmp_path, check=True)
    assert "threads: dagprof-rss\n" in prof.stdout
    meta = load(str(tmp_path / "p.dagprof")).meta
    assert meta["peak_rss_anon"] > 0 and meta["rss_samples"] >= 2

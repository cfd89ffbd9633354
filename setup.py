"""Builds the optional C fast paths (access counters, sizing walk, cycle index, birth records, spill guards, audit hook);
pure Python is used when they cannot be built."""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension("dagprof._fastcount", ["profiler/_fastcount.c"], optional=True),
    Extension("dagprof._fastsize", ["profiler/_fastsize.c"], optional=True),
    Extension("dagprof._fastcycles", ["profiler/_fastcycles.c"], optional=True),
    Extension("dagprof._fastbirths", ["profiler/_fastbirths.c"], optional=True),
    Extension("dagstore._fastguard", ["dagstore/_fastguard.c"], optional=True),
    Extension("dagstore._fastaudit", ["dagstore/_fastaudit.c"], optional=True),
])

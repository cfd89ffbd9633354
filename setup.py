"""Builds the optional C fast path of the access counters; pure Python is used when it cannot be built."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("profiler._fastcount", ["profiler/_fastcount.c"], optional=True)])

"""Subcommands beyond profile/report (build, compare, demo); each registers a parser and a handler."""
from __future__ import annotations

from typing import Callable

REGISTER: list[Callable] = []
HANDLERS: dict[str, Callable] = {}

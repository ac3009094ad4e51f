"""Hostile parsers for the tests of the pool's isolation; never in the default registry.

Use: ``ParsePool(registry=DEFAULT_REGISTRY.with_(HOSTILE))`` then parse with kind "t-exit" etc.
"""
from __future__ import annotations

import os
import time

from .registry import ParserSpec

PARSER_VERSION = "test"


def exit_hard(data: bytes, doc, ctx) -> None:
    os._exit(3)


def segfault(data: bytes, doc, ctx) -> None:
    import ctypes
    ctypes.string_at(0)


def hang(data: bytes, doc, ctx) -> None:
    while True:                 # never ticks the budget: only the hard limit stops it
        time.sleep(0.05)


def hog_memory(data: bytes, doc, ctx) -> None:
    blocks = []
    while True:                 # until RLIMIT_AS says no
        blocks.append(bytearray(64 * 1024 * 1024))


def slow_ticking(data: bytes, doc, ctx) -> None:
    n = 0
    while True:                 # ticks: the soft deadline cuts it with partial output
        n += 1
        ctx.budget.where = f"after line {n}"
        doc.tick()
        doc.both(f"line {n}\n")
        time.sleep(0.01)


def flood(data: bytes, doc, ctx) -> None:
    while True:
        doc.both("x" * 1000 + "\n")


def raises(data: bytes, doc, ctx) -> None:
    raise ValueError("boom from the test parser")


def echo(data: bytes, doc, ctx) -> None:
    doc.both(data.decode("utf-8", "replace"))


def _spec(fn: str) -> ParserSpec:
    return ParserSpec(f"test-{fn}", f"nexusfs.views.testing:{fn}", label="test document")


HOSTILE = {f"t-{name}": _spec(name) for name in
           ("exit_hard", "segfault", "hang", "hog_memory", "slow_ticking", "flood", "raises",
            "echo")}

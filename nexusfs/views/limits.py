"""Limits on one parse, and the budget a parser checks while it works.

A parse is bounded four ways:

* wall time: the parser stops itself at a *soft* deadline (a little before the limit) and returns
  what it has so far with a note; the pool kills the worker at the *hard* limit if the parser
  is stuck inside a library call;
* memory: RLIMIT_AS in the worker process (MemoryError, or the worker dies: either way a
  one-line explanation, and the worker is replaced);
* output: each view (text, markdown) is cut at ``max_output`` characters;
* work: ``max_cells`` spreadsheet cells, ``max_input`` bytes of document, and zip checks
  (``max_unzipped`` total declared size, ``max_ratio`` compression ratio) against zip bombs.

Everything here is pure; no I/O.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class Limits:
    time_limit: float = 30.0            # seconds of wall time per document (hard: the worker is killed)
    memory_limit: int = 1 * GiB         # RLIMIT_AS of the worker while it parses (address space)
    max_output: int = 8 * MiB           # characters per view; longer views are cut with a note
    max_input: int = 256 * MiB          # bigger documents are not parsed at all
    max_cells: int = 1_000_000          # spreadsheet cells read per document
    max_unzipped: int = 512 * MiB       # total declared uncompressed size of a zip container
    max_ratio: int = 200                # compression ratio of one big zip member (bomb check)
    max_members: int = 20_000           # members of a zip container

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Limits:
        return cls(**d)

    @property
    def soft_time(self) -> float:
        """When a parser stops by itself: leaves time to send the partial result."""
        return max(self.time_limit - min(1.0, 0.2 * self.time_limit), 0.0)


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) or v >= 10 else f"{v:.1f} {unit}"
    return f"{n} bytes"


def human_seconds(s: float) -> str:
    return f"{s:g} s"


class ParseFailure(Exception):
    """The document cannot be parsed; the message says why, in a few words, for the user."""


class Cut(Exception):
    """A limit was reached: the parser stops, keeping what it has produced so far.

    ``limit`` names the limit ("time", "output", "cells"), ``detail`` says how far the parse got.
    """

    def __init__(self, limit: str, value: str, detail: str = ""):
        super().__init__(limit, value, detail)
        self.limit = limit
        self.value = value
        self.detail = detail

    def note(self) -> str:
        where = f" {self.detail}" if self.detail else ""
        return f"[nexusfs: view cut at the {self.limit} limit ({self.value}){where}]"


class Budget:
    """What a parser may still spend: checked with :meth:`tick` in its loops."""

    def __init__(self, limits: Limits, start: float | None = None):
        self.limits = limits
        self.start = time.monotonic() if start is None else start
        self.deadline = self.start + limits.soft_time
        self.cells = 0
        self.where = ""                 # "after page 3 of 10": how far the parse got, for notes

    def tick(self) -> None:
        if time.monotonic() >= self.deadline:
            raise Cut("time", human_seconds(self.limits.time_limit), self.where)

    def add_cells(self, n: int) -> None:
        self.cells += n
        if self.cells > self.limits.max_cells:
            raise Cut("cell", f"{self.limits.max_cells:,} cells", self.where)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

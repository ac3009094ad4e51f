"""A shared/exclusive gate for trio tasks: content commits enter shared, GC's sweep exclusive.

Trio-only (no threads). Exclusive entry stops new shared entries at once and waits for the
running ones to leave, so the sweep never sees a chunk row whose extents are not yet written.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

import trio


class Gate:
    def __init__(self):
        self._shared = 0
        self._exclusive = False
        self._changed = trio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def shared(self) -> "_Shared":
        """``async with gate.shared():`` (a plain class, not a generator: every commit takes
        it, and an open gate is entered without yielding)."""
        return _Shared(self)

    @asynccontextmanager
    async def exclusive(self):
        while self._exclusive:
            await self._changed.wait()
        self._exclusive = True
        try:
            while self._shared:
                await self._changed.wait()
            yield
        finally:
            self._exclusive = False
            self._notify()


class _Shared:
    __slots__ = ("gate",)

    def __init__(self, gate: Gate):
        self.gate = gate

    async def __aenter__(self) -> None:
        gate = self.gate
        while gate._exclusive:
            await gate._changed.wait()
        gate._shared += 1

    async def __aexit__(self, *exc) -> None:
        gate = self.gate
        gate._shared -= 1
        if gate._exclusive:               # only a waiting sweep cares about the count
            gate._notify()

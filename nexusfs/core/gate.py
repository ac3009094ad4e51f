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

    @asynccontextmanager
    async def shared(self):
        while self._exclusive:
            await self._changed.wait()
        self._shared += 1
        try:
            yield
        finally:
            self._shared -= 1
            self._notify()

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

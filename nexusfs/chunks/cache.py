"""An LRU cache of decoded chunks, bounded in bytes. Thread-safe (one lock around cachetools)."""
from __future__ import annotations

import threading

from cachetools import LRUCache


class ChunkCache:
    def __init__(self, max_bytes: int):
        self._cache: LRUCache = LRUCache(maxsize=max(1, max_bytes), getsizeof=len)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, chunk_id: bytes) -> bytes | None:
        with self._lock:
            data = self._cache.get(chunk_id)
            if data is None:
                self.misses += 1
            else:
                self.hits += 1
            return data

    def put(self, chunk_id: bytes, data: bytes) -> None:
        if len(data) > self._cache.maxsize:
            return
        with self._lock:
            self._cache[chunk_id] = data

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

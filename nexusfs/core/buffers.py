"""Per-inode write buffers: dirty byte ranges over the committed content, not yet chunked.

A DirtyFile keeps written bytes in a sparse buffer (memory first, a temp file in DATA_DIR/tmp once
it grows past the spill threshold) and the set of dirty ranges. ``trunc_to`` remembers the
lowest size the file was truncated to since the last commit: committed bytes at or past it read
as zeros. Used only from the trio thread, except ``pread`` (thread-safe) during a commit.
"""
from __future__ import annotations

import bisect
import os
import tempfile
import time


class Ranges:
    """A set of disjoint, sorted half-open [start, end) ranges."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        if start >= end:
            return
        s, e = self.starts, self.ends
        if s and start >= s[-1] and start <= e[-1]:      # the common case: appending
            e[-1] = max(e[-1], end)
            return
        i = bisect.bisect_left(e, start)                 # first range ending at/after start
        j = bisect.bisect_right(s, end)                  # ranges starting at/before end
        if i < j:
            start = min(start, s[i])
            end = max(end, e[j - 1])
        s[i:j] = [start]
        e[i:j] = [end]

    def clip(self, limit: int) -> None:
        """Drop everything at or past ``limit``."""
        i = bisect.bisect_left(self.ends, limit)
        del self.starts[i + 1:], self.ends[i + 1:]
        if i < len(self.starts):
            if self.starts[i] >= limit:
                del self.starts[i], self.ends[i]
            else:
                self.ends[i] = limit

    def overlapping(self, start: int, end: int) -> list[tuple[int, int]]:
        i = bisect.bisect_right(self.ends, start)
        out = []
        while i < len(self.starts) and self.starts[i] < end:
            out.append((max(start, self.starts[i]), min(end, self.ends[i])))
            i += 1
        return out

    def __iter__(self):
        return iter(zip(self.starts, self.ends))

    def __bool__(self) -> bool:
        return bool(self.starts)

    def total(self) -> int:
        return sum(e - s for s, e in zip(self.starts, self.ends))


class SparseBuffer:
    """Bytes at arbitrary offsets: a bytearray while small, a sparse temp file beyond that."""

    def __init__(self, spill_dir: str, spill_threshold: int):
        self._mem = bytearray()
        self._fd: int | None = None
        self._spill_dir = spill_dir
        self._threshold = spill_threshold

    def pwrite(self, data, offset: int) -> None:
        end = offset + len(data)
        if self._fd is None and end > self._threshold:
            fd, path = tempfile.mkstemp(dir=self._spill_dir, prefix="spill-")
            os.unlink(path)
            if self._mem:
                os.pwrite(fd, self._mem, 0)
            self._fd, self._mem = fd, bytearray()
        if self._fd is not None:
            os.pwrite(self._fd, data, offset)
            return
        if end > len(self._mem):
            self._mem.extend(bytes(end - len(self._mem)))
        self._mem[offset:end] = data

    def pread(self, offset: int, length: int) -> bytes:
        if self._fd is not None:
            data = os.pread(self._fd, length, offset)
            return data if len(data) == length else data + bytes(length - len(data))
        return bytes(self._mem[offset:offset + length])

    def truncate(self, size: int) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, size)
        elif len(self._mem) > size:
            del self._mem[size:]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._mem = bytearray()


class DirtyFile:
    """What has been written to one inode since its last commit."""

    def __init__(self, size: int, spill_dir: str, spill_threshold: int):
        self.size = size
        self.trunc_to: int | None = None
        self.ranges = Ranges()
        self.buf = SparseBuffer(spill_dir, spill_threshold)
        self.since = time.monotonic()
        self.mtime_ns: int | None = None

    def write(self, offset: int, data) -> None:
        self.buf.pwrite(data, offset)
        self.ranges.add(offset, offset + len(data))
        if offset + len(data) > self.size:
            self.size = offset + len(data)

    def truncate(self, size: int) -> None:
        if size < self.size:
            self.ranges.clip(size)
            self.buf.truncate(size)
            self.trunc_to = size if self.trunc_to is None else min(self.trunc_to, size)
        self.size = size

    @property
    def empty(self) -> bool:
        return not self.ranges and self.trunc_to is None

    def dirty_bytes(self) -> int:
        return self.ranges.total()

    def close(self) -> None:
        self.buf.close()

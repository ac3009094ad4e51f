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

    def clip_before(self, limit: int) -> None:
        """Drop everything before ``limit``."""
        i = bisect.bisect_right(self.ends, limit)
        del self.starts[:i], self.ends[:i]
        if self.starts and self.starts[0] < limit:
            self.starts[0] = limit

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


_SMALL = 64 * 1024          # appends below this are copied into a shared part
_PART_MAX = 1 << 20         # ... which grows up to this


class SparseBuffer:
    """Bytes at arbitrary offsets: a memory window [base, end) while writes stay inside or
    extend it and it stays under the threshold; a sparse temp file (absolute offsets) after that.
    ``drop_before`` lets a streaming commit release the part of the window it has stored.

    The memory window is a list of contiguous parts: an appending write keeps the caller's
    bytes object as a part (no copy, no reallocation of a growing buffer); small appends share
    a bytearray part; a write inside the window turns only the parts it touches into one
    bytearray. Only bytearray parts change in place (reads and snapshots copy them);
    ``drop_before`` and ``truncate`` build new lists, so a worker thread's ``pread`` sees
    consistent parts while the trio thread appends."""

    def __init__(self, spill_dir: str, spill_threshold: int):
        self._parts: list = []            # bytes (or bytearray once written inside)
        self._starts: list[int] = []      # absolute offset of each part
        self._base = 0
        self._end = 0
        self._fd: int | None = None
        self._spill_dir = spill_dir
        self._threshold = spill_threshold

    @property
    def in_memory(self) -> bool:
        return self._fd is None

    def _spill(self) -> None:
        fd, path = tempfile.mkstemp(dir=self._spill_dir, prefix="spill-")
        os.unlink(path)
        for start, part in zip(self._starts, self._parts):
            os.pwrite(fd, part, start)
        self._fd, self._parts, self._starts = fd, [], []

    def _merge(self, start: int, end: int) -> bytearray:
        """The parts overlapping [start, end) (inside the window) joined into one bytearray
        part, which is returned."""
        starts, parts = self._starts, self._parts
        i = bisect.bisect_right(starts, start) - 1
        j = bisect.bisect_left(starts, end)
        if j - i == 1 and isinstance(parts[i], bytearray):
            return parts[i]
        merged = bytearray().join(parts[i:j])
        parts[i:j] = [merged]
        del starts[i + 1:j]
        return merged

    def pwrite(self, data, offset: int) -> None:
        n = len(data)
        if not n:
            return
        end = offset + n
        if self._fd is None:
            if not self._parts:
                self._base = self._end = offset
            fits = self._base <= offset <= self._end
            if not fits or end - self._base > self._threshold:
                self._spill()
        if self._fd is not None:
            os.pwrite(self._fd, data, offset)
            return
        if offset < self._end:            # (partly) inside the window
            inside = min(end, self._end) - offset
            part = self._merge(offset, offset + inside)
            i = bisect.bisect_right(self._starts, offset) - 1
            rel = offset - self._starts[i]
            with memoryview(data) as mv:
                part[rel:rel + inside] = mv[:inside]
                if inside == n:
                    return
                data = bytes(mv[inside:])
            offset += inside
        parts = self._parts
        if n < _SMALL:
            # small appends (no write-back cache, the API) fill one bytearray part instead of
            # costing an object each
            if parts and type(parts[-1]) is bytearray and len(parts[-1]) < _PART_MAX:
                parts[-1] += data
            else:
                parts.append(bytearray(data))
                self._starts.append(offset)
        else:
            parts.append(data if type(data) is bytes else bytes(data))
            self._starts.append(offset)
        self._end = end

    def _pieces(self, offset: int, length: int) -> list:
        """The window's bytes of [offset, offset+length), as parts or slices of parts."""
        parts, starts = self._parts, self._starts     # (consistent: see the class doc)
        end = min(offset + length, self._end)
        i = max(0, bisect.bisect_right(starts, offset) - 1)
        out = []
        while i < len(parts) and starts[i] < end:
            part, s = parts[i], starts[i]
            lo, hi = max(offset, s) - s, min(end, s + len(part)) - s
            if hi > lo:
                out.append(part if lo == 0 and hi == len(part) and type(part) is bytes
                           else bytes(part[lo:hi]))
            i += 1
        return out

    def pread(self, offset: int, length: int) -> bytes:
        if self._fd is not None:
            data = os.pread(self._fd, length, offset)
            return data if len(data) == length else data + bytes(length - len(data))
        pieces = self._pieces(offset, length)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def snapshot(self, offset: int, length: int) -> list[bytes]:
        """The bytes of [offset, offset+length) as a list of immutable pieces, cheap to take
        on the trio thread; ``b"".join`` them elsewhere (it releases the GIL for bytes)."""
        if self._fd is not None:
            return [self.pread(offset, length)]
        return self._pieces(offset, length)

    def drop_before(self, offset: int) -> None:
        if self._fd is None and offset > self._base:
            parts, starts = self._parts, self._starts
            i = bisect.bisect_right(starts, offset) - 1
            if i < 0:
                return
            keep_parts, keep_starts = parts[i:], starts[i:]
            head, s = keep_parts[0], keep_starts[0]
            if offset - s >= len(head):
                keep_parts, keep_starts = keep_parts[1:], keep_starts[1:]
            elif offset > s:
                keep_parts[0] = bytes(head[offset - s:])
                keep_starts[0] = offset
            self._parts, self._starts = keep_parts, keep_starts
            self._base = offset
            self._end = max(self._end, offset)

    def truncate(self, size: int) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, size)
        elif self._end > size:
            parts, starts = self._parts, self._starts
            i = bisect.bisect_left(starts, size)
            keep_parts, keep_starts = parts[:i], starts[:i]
            if keep_parts and keep_starts[-1] + len(keep_parts[-1]) > size:
                keep_parts[-1] = bytes(keep_parts[-1][:size - keep_starts[-1]])
            self._parts, self._starts = keep_parts, keep_starts
            self._end = max(self._base, size)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._parts, self._starts = [], []


class DirtyFile:
    """What has been written to one inode since its last commit."""

    def __init__(self, size: int, spill_dir: str, spill_threshold: int):
        self.size = size
        self.trunc_to: int | None = None
        self.ranges = Ranges()
        self.buf = SparseBuffer(spill_dir, spill_threshold)
        self.since = time.monotonic()
        self.mtime_ns: int | None = None
        self.stream_from: int | None = None   # where the last streaming commit ended
        self.stream_total: int | None = None  # bytes of the file's live extents, when known
        self.streaming = None                 # trio.Event while a streaming commit runs
        self.streaming_end = 0                # ... which stores bytes below this offset
        self.stream_step = None               # trio.Event set (and renewed) per window stored
        self.error = 0                        # errno of a failed background commit
        self.seq: int | None = None           # the logged write operation this buffer becomes
        self.writer = None                    # the Caller who opened the file for writing

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

    def stream_range(self) -> tuple[int, int] | None:
        """The one dirty range when writes are a sequential stream held in memory, else None."""
        if len(self.ranges.starts) == 1 and self.buf.in_memory and self.ranges.ends[0] == self.size:
            return self.ranges.starts[0], self.ranges.ends[0]
        return None

    def keep_from(self, offset: int) -> None:
        """Forget dirty bytes before ``offset`` (a streaming commit has stored them)."""
        self.ranges.clip_before(offset)
        self.buf.drop_before(offset)
        self.trunc_to = None

    def dirty_bytes(self) -> int:
        return self.ranges.total()

    def close(self) -> None:
        """Release the buffer (reads copy what they need on the trio thread first)."""
        self.buf.close()

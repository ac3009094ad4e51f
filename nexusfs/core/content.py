"""File content: reading byte ranges through extents and the chunk cache, and committing dirty
buffers as content-defined chunks.

Joins the metadata store (extents, chunk index) and the chunk layer (chunker, codec, packs,
cache). Runs on the trio thread; chunking, hashing, compression and pack I/O of anything larger
than ``_INLINE_WORK`` go to worker threads. ``fetch``/``assemble`` are thread-safe.

A commit re-chunks only the regions a write touched: each dirty range is widened to the
boundaries of the committed chunks it overlaps, so unchanged chunks keep their ids and a small
edit to a large file stores one or two new chunks. All-zero chunks are not stored: they become
holes, which read as zeros and take no space.

A sequential writer's buffer is stored ahead of its close in windows (``cut_stream`` in a worker
thread, then ``commit_stream``; files.py runs them as a pipeline: window N+1 is cut while window
N is stored). Each window's extents follow every committed one, so the cached extent map of the
file is extended in place rather than read back from the store. A sequential reader's next
chunks are loaded by a prefetch in a worker thread; each is handed to a waiting read as soon as
it is verified.
"""
from __future__ import annotations

import bisect
import logging
import threading

import trio
from cachetools import LRUCache

from ..chunks import codec
from ..chunks.cache import ChunkCache
from ..chunks.chunker import Chunker
from ..chunks.packs import PackStore
from ..config import Config, MiB
from ..meta.store import MetaStore
from ..types import ChunkLoc, Extent
from .buffers import DirtyFile, Ranges

log = logging.getLogger("nexusfs.content")

_WINDOW = 8 * MiB
_INLINE_WORK = 256 * 1024
_PREFETCH = 4 * MiB        # a sequential reader's next bytes loaded ahead of its reads
_ADVISE = 8 * MiB          # ... and the file's bytes after those, read ahead by the kernel
_SPAN_GAP = 64 * 1024      # pack bytes between two wanted chunks still read in one pread
_SPAN_MAX = 4 * MiB        # the largest single pread of a coalesced fetch
_SCAN_AHEAD = 1 * MiB      # pack bytes read ahead for a cold whole-file reader


class CorruptChunk(Exception):
    def __init__(self, chunk_id: bytes, why: str):
        super().__init__(f"chunk {chunk_id.hex()[:16]}: {why}")
        self.chunk_id = chunk_id


class ExtentMap:
    """The committed extents of one file, with their start offsets for bisection."""

    __slots__ = ("extents", "starts")

    def __init__(self, extents: list[Extent]):
        self.extents = extents
        self.starts = [e.offset for e in extents]

    def overlapping(self, start: int, end: int) -> list[Extent]:
        i = bisect.bisect_right(self.starts, start) - 1
        if i < 0 or self.extents[i].end <= start:
            i += 1
        out = []
        while i < len(self.extents) and self.extents[i].offset < end:
            out.append(self.extents[i])
            i += 1
        return out


def dirty_parts(df: DirtyFile, start: int, end: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) of the buffered writes of ``df`` inside [start, end), copied."""
    return [(s, df.buf.pread(s, e - s)) for s, e in df.ranges.overlapping(start, end)]


class ContentStore:
    def __init__(self, cfg: Config, meta: MetaStore, packs: PackStore):
        self.cfg = cfg
        self.meta = meta
        self.packs = packs
        self.cache = ChunkCache(cfg.chunk_cache_bytes)
        self.chunker = Chunker(cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max)
        self._maps: LRUCache = LRUCache(maxsize=2048)
        self._read_ends: LRUCache = LRUCache(maxsize=4096)   # ino -> where its last read ended
        self._prefetching: set[int] = set()
        self._inflight: dict[bytes, threading.Event] = {}
        self._inflight_lock = threading.Lock()
        self.bytes_written = 0
        self.bytes_deduplicated = 0

    # -- reading ------------------------------------------------------------------------------
    def extent_map(self, ino: int) -> ExtentMap:
        m = self._maps.get(ino)
        if m is None:
            m = self._maps[ino] = ExtentMap(self.meta.extents(ino))
        return m

    def forget(self, ino: int) -> None:
        self._maps.pop(ino, None)

    def new_file(self, ino: int) -> None:
        """A file just created has no extents: no need to ask the store at its first commit."""
        self._maps[ino] = ExtentMap([])

    def forget_all(self) -> None:
        """Drop every cached extent map (chunk locations moved)."""
        self._maps.clear()

    def fetch(self, loc: ChunkLoc) -> bytes:
        """The decoded bytes of a chunk, verified against its BLAKE3 id. Thread-safe; a chunk
        another thread is already loading (a read and a prefetch) is waited for, not loaded
        twice."""
        data = self.cache.get(loc.id)
        if data is not None:
            return data
        with self._inflight_lock:
            pending = self._inflight.get(loc.id)
            if pending is None:
                self._inflight[loc.id] = threading.Event()
        if pending is not None:
            pending.wait(30)
            data = self.cache.get(loc.id)
            if data is not None:
                return data
            return self._load(loc)
        try:
            return self._load(loc)
        finally:
            with self._inflight_lock:
                self._inflight.pop(loc.id).set()

    def _load(self, loc: ChunkLoc, stored=None) -> bytes:
        """Decode and verify one chunk (``stored``: its bytes if already read), and cache it."""
        try:
            if stored is None:
                stored = loc.data if loc.data is not None else \
                    self.packs.read(loc.pack, loc.offset, loc.stored_len)
            data = codec.decode(loc.codec, stored, loc.raw_len)
            if not isinstance(data, bytes):
                data = bytes(data)        # (a raw chunk sliced out of a coalesced read)
        except Exception as e:
            raise CorruptChunk(loc.id, f"unreadable: {e}") from e
        if len(data) != loc.raw_len or codec.chunk_id(data) != loc.id:
            raise CorruptChunk(loc.id, "content does not match its BLAKE3 id")
        self.cache.put(loc.id, data)
        return data

    def fetch_many(self, locs: list[ChunkLoc]) -> None:
        """Load (read, verify, cache) the chunks among ``locs`` that are neither cached nor
        being loaded by another thread, in pack order; the kernel is asked to read each run of
        chunks that lie close together in a pack in one go. Thread-safe. A chunk that fails is
        left for the reader that needs it to report."""
        mine: list[ChunkLoc] = []
        with self._inflight_lock:
            for loc in locs:
                if loc.data is None and loc.id not in self._inflight and \
                        self.cache.get(loc.id) is None:
                    self._inflight[loc.id] = threading.Event()
                    mine.append(loc)
        mine.sort(key=lambda c: (c.pack, c.offset))
        done = 0                          # chunks of ``mine`` loaded (or failed) and released
        try:
            i = 0
            while i < len(mine):
                first = mine[i]
                j = i + 1
                end = first.offset + first.stored_len
                while j < len(mine) and mine[j].pack == first.pack and \
                        0 <= mine[j].offset - end <= _SPAN_GAP and \
                        mine[j].offset + mine[j].stored_len - first.offset <= _SPAN_MAX:
                    end = mine[j].offset + mine[j].stored_len
                    j += 1
                if j - i > 1:
                    # the kernel reads the run in one go; each chunk then gets its own pread
                    # into its own bytes (slices of one large read would each be copied again)
                    self.packs.advise(first.pack, first.offset, end - first.offset)
                for loc in mine[i:j]:
                    try:
                        self._load(loc)
                    except CorruptChunk:
                        pass
                    # (a reader waiting for this chunk goes on now, not after the whole batch)
                    with self._inflight_lock:
                        self._inflight.pop(loc.id).set()
                    done += 1
                i = j
        finally:
            with self._inflight_lock:
                for loc in mine[done:]:
                    self._inflight.pop(loc.id).set()

    def assemble(self, emap: ExtentMap, df: DirtyFile | None, start: int, length: int) -> bytes:
        """Bytes [start, start+length) of a file: dirty data over committed extents over zeros.
        Thread-safe as long as ``emap`` and ``df`` are not changed meanwhile."""
        if df is None:
            return self._assemble(emap, None, (), start, length)
        return self._assemble(emap, df.trunc_to, dirty_parts(df, start, start + length), start,
                              length)

    def _assemble(self, emap: ExtentMap, limit: int | None, parts, start: int,
                  length: int) -> bytes:
        """Committed extents below ``limit`` (a truncation point), with ``parts`` ((offset,
        bytes) of buffered writes) laid over them. Thread-safe."""
        end = start + length
        if limit is None and not parts:
            # committed bytes only: join the pieces (one copy, no zero-filled buffer)
            pieces = []
            pos = start
            for ext in emap.overlapping(start, end):
                s = max(start, ext.offset)
                e = min(end, ext.end)
                if s > pos:
                    pieces.append(bytes(s - pos))             # a hole
                data = self.fetch(ext.loc)
                if s == ext.offset and e - s == len(data):
                    pieces.append(data)
                else:
                    pieces.append(memoryview(data)[s - ext.offset:e - ext.offset])
                pos = e
            if pos < end:
                pieces.append(bytes(end - pos))
            if len(pieces) == 1 and isinstance(pieces[0], bytes):
                return pieces[0]
            return b"".join(pieces)
        out = bytearray(length)
        cend = min(end, limit) if limit is not None else end
        if cend > start:
            for ext in emap.overlapping(start, cend):
                data = self.fetch(ext.loc)
                s = max(start, ext.offset)
                e = min(cend, ext.end)
                out[s - start:e - start] = data[s - ext.offset:e - ext.offset]
        for s, data in parts:
            out[s - start:s - start + len(data)] = data
        return bytes(out)

    def needs_io(self, emap: ExtentMap, start: int, end: int) -> bool:
        for ext in emap.overlapping(start, end):
            if ext.loc.data is None and self.cache.get(ext.loc.id) is None:
                return True
        return False

    async def read(self, ino: int, df: DirtyFile | None, start: int, length: int) -> bytes:
        emap = self.extent_map(ino)
        sequential = self._read_ends.get(ino) == start
        self._read_ends[ino] = start + length
        if length <= _INLINE_WORK and (not self.needs_io(emap, start, start + length) or (
                df is None and self._load_cached(emap, start, start + length))):
            if sequential:
                self._prefetch(ino, emap, start + length)
            return self.assemble(emap, df, start, length)
        if sequential:
            self._prefetch(ino, emap, start + length)
        if df is None:
            return await trio.to_thread.run_sync(self._load_and_assemble, emap, start, length)
        # Copy the buffered bytes now, together with the extent map: a commit (or a streaming
        # commit's keep_from) finishing while the worker thread runs moves bytes out of the
        # buffer into extents this map does not have, and the read would see neither.
        parts = dirty_parts(df, start, start + length)
        return await trio.to_thread.run_sync(self._assemble, emap, df.trunc_to, parts, start,
                                             length)

    def _load_cached(self, emap: ExtentMap, start: int, end: int) -> bool:
        """Load the chunks of [start, end) here when their pack bytes are in the page cache
        (no thread hop for a small read that would not wait for the disk). False when one is
        not: then a whole-file reader (starting at 0: cat, grep, diff, cp of small files) has
        the kernel read the pack past it in the background, where the files written after
        this one usually are."""
        for ext in emap.overlapping(start, end):
            loc = ext.loc
            if loc.data is None and self.cache.get(loc.id) is None:
                stored = self.packs.read_cached(loc.pack, loc.offset, loc.stored_len)
                if stored is None:
                    if start == 0:
                        self.packs.advise(loc.pack, loc.offset, _SCAN_AHEAD)
                    return False
                self._load(loc, stored)
        return True

    def _load_and_assemble(self, emap: ExtentMap, start: int, length: int) -> bytes:
        self.fetch_many([e.loc for e in emap.overlapping(start, start + length)])
        return self.assemble(emap, None, start, length)

    def _advise(self, emap: ExtentMap, start: int, end: int) -> None:
        """Have the kernel read the pack spans of file bytes [start, end) in the background."""
        spans: dict[int, list[int]] = {}
        for e in emap.overlapping(start, end):
            loc = e.loc
            if loc.data is None:
                lo_hi = spans.get(loc.pack)
                if lo_hi is None:
                    spans[loc.pack] = [loc.offset, loc.offset + loc.stored_len]
                else:
                    lo_hi[0] = min(lo_hi[0], loc.offset)
                    lo_hi[1] = max(lo_hi[1], loc.offset + loc.stored_len)
        for pack, (lo, hi) in spans.items():
            if hi - lo <= 4 * _ADVISE:    # (chunks scattered over a pack: not worth it)
                self.packs.advise(pack, lo, hi - lo)

    def _prefetch(self, ino: int, emap: ExtentMap, offset: int) -> None:
        """A sequential reader will want the next chunks: fetch (read, verify, cache) them in
        a worker thread while the kernel digests this reply, and have the kernel read the
        pack bytes after those. One prefetch per file at a time."""
        if ino in self._prefetching:
            return
        wanted = [e.loc for e in emap.overlapping(offset, offset + _PREFETCH)
                  if e.loc.data is None and self.cache.get(e.loc.id) is None]
        if not wanted:
            return
        self._prefetching.add(ino)

        def work():
            self._advise(emap, offset + _PREFETCH, offset + _PREFETCH + _ADVISE)
            self.fetch_many(wanted)

        async def run():
            try:
                await trio.to_thread.run_sync(work)
            finally:
                self._prefetching.discard(ino)
        trio.lowlevel.spawn_system_task(run)

    # -- committing ---------------------------------------------------------------------------
    def _regions(self, emap: ExtentMap, df: DirtyFile) -> Ranges:
        limit = df.trunc_to
        regions = Ranges()
        for s, e in df.ranges:
            for ext in emap.overlapping(s, e):
                if limit is None or ext.offset < limit:
                    s = min(s, ext.offset)
                    e = max(e, ext.end if limit is None else min(ext.end, limit))
            regions.add(s, e)
        if limit is not None:
            for ext in emap.overlapping(limit - 1, limit) if limit > 0 else ():
                if ext.offset < limit < ext.end:
                    regions.add(ext.offset, limit)
        return regions

    def _cut_window(self, emap, df, pos, n, carry, final):
        data = self.assemble(emap, df, pos, n)
        chunks, carry = self.chunker.cut_stream(carry, data, final)
        return [(c, codec.chunk_id(c), codec.is_zero(c)) for c in chunks], carry

    def _store_chunks(self, items: list[tuple[bytes, bytes]]) -> list[tuple[ChunkLoc, int]]:
        out = []
        records = []                      # (id, codec, raw_len, stored) for the packs
        for cid, data in items:
            kind, stored = codec.encode(data, self.cfg.compress_level)
            if len(data) <= self.cfg.inline_max:
                out.append((ChunkLoc(cid, len(data), kind, None, None, len(stored),
                                     bytes(stored)), 0))
            else:
                records.append((cid, kind, len(data), stored))
        for (cid, kind, raw_len, stored), (pack, off, gen) in \
                zip(records, self.packs.append_many(records)):
            out.append((ChunkLoc(cid, raw_len, kind, pack, off, len(stored)), gen))
        return out

    async def _run(self, small: bool, fn, *args):
        if small:
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args)

    async def _store_cut(self, small: bool, cut, pos: int, rows: list,
                         locs: dict | None = None) -> int:
        """Store the new chunks of one window's ``cut`` and append its extents (starting at file
        offset ``pos``) to ``rows``; returns the offset after the window. ``locs``: filled with
        the location of every chunk of the rows."""
        ids = [cid for _, cid, zero in cut if not zero]
        known = self.meta.known_chunks(ids)
        fresh: dict[bytes, bytes] = {}
        for data, cid, zero in cut:
            if not zero and cid not in known and cid not in fresh:
                fresh[cid] = data
        stored = await self._run(small, self._store_chunks, list(fresh.items()))
        if locs is not None:
            locs.update(known)
        self.meta.add_chunks(stored)
        for loc, _gen in stored:
            self.bytes_written += loc.raw_len
            if locs is not None:
                locs[loc.id] = loc
            if small:
                # a small commit's chunks, as just hashed: the indexer reads every written
                # file right after (and a build, git, diff often do), which then needs no
                # decompression, no verification and no pack read
                self.cache.put(loc.id, bytes(fresh[loc.id]))
        for data, cid, zero in cut:
            if not zero:
                rows.append((pos, len(data), cid))
                if cid not in fresh:
                    self.bytes_deduplicated += len(data)
            pos += len(data)
        return pos

    async def commit(self, ino: int, df: DirtyFile, seq: int) -> tuple[int | None, bool]:
        """Turn ``df`` into committed extents of ``ino`` (within the current batch), as part of
        operation ``seq``. Returns (st_blocks of the file when known without asking the store,
        whether the commit yielded to other tasks)."""
        emap = self.extent_map(ino)
        rows: list[tuple[int, int, bytes]] = []
        if not emap.extents and len(df.ranges.starts) == 1 and \
                df.ranges.ends[0] - df.ranges.starts[0] <= self.chunker.min_size:
            # the common small file: one write session on a file without committed content,
            # under the chunker's minimum size, so one chunk (no region, window or cut work)
            start, end = df.ranges.starts[0], df.ranges.ends[0]
            data = df.buf.pread(start, end - start)
            await self._store_cut(True, [(data, codec.chunk_id(data), codec.is_zero(data))],
                                  start, rows)
            self.meta.seq = seq
            self.meta.replace_extents(ino, [], None, rows)
            self._maps.pop(ino, None)
            return (sum(n for _, n, _ in rows) + 511) // 512, False
        regions = self._regions(emap, df)
        locs: dict[bytes, ChunkLoc] = {}
        waited = False
        for rstart, rend in regions:
            small = rend - rstart <= _INLINE_WORK
            waited = waited or not small
            pos = rstart                   # file offset where ``carry`` begins
            read_at = rstart
            carry = b""
            while True:
                n = min(_WINDOW, rend - read_at)
                final = read_at + n >= rend
                cut, carry = await self._run(small, self._cut_window, emap, df, read_at, n,
                                             carry, final)
                read_at += n
                pos = await self._store_cut(small, cut, pos, rows, locs)
                if final:
                    break
        self.meta.seq = seq
        if emap.extents:
            self.meta.replace_extents(ino, list(regions), df.trunc_to, rows)
            if df.trunc_to is None and regions and self._maps.get(ino) is emap and \
                    emap.extents[-1].end <= regions.starts[0]:
                # appended after every committed byte (a streamed file's tail)
                self._extend(emap, rows, locs)
                if df.stream_total is None:
                    return None, waited
                return (df.stream_total + sum(n for _, n, _ in rows) + 511) // 512, waited
            self._maps.pop(ino, None)
            return None, waited
        self._maps.pop(ino, None)
        # nothing committed before: nothing to close, and the new rows are all there is
        self.meta.replace_extents(ino, [], None, rows)
        return (sum(n for _, n, _ in rows) + 511) // 512, waited

    def streamable(self, ino: int, df: DirtyFile) -> tuple[int, int] | None:
        """The dirty range of a sequential writer that can be stored ahead of the commit: held
        in memory, past ``stream_commit`` bytes, with no committed bytes at or after it."""
        rng = df.stream_range()
        if rng is None or rng[1] - rng[0] < self.cfg.stream_commit:
            return None
        if rng[0] == df.stream_from:
            return rng                    # the previous streaming commit ended exactly here
        limit = df.trunc_to
        for ext in reversed(self.extent_map(ino).extents):
            if limit is not None and ext.offset >= limit:
                continue
            if ext.end > rng[0] or (limit is not None and ext.end > limit):
                return None
            break
        return rng

    def _cut_snapshot(self, snapshot: list[bytes]):
        data = snapshot[0] if len(snapshot) == 1 else b"".join(snapshot)
        chunks, _carry = self.chunker.cut_stream(b"", data, False)
        return [(c, codec.chunk_id(c), codec.is_zero(c)) for c in chunks]

    async def cut_stream(self, snapshot: list[bytes]) -> list:
        """The full chunks (data, id, all zero) of ``snapshot``, pieces of a sequential
        writer's dirty bytes, cut and hashed in a worker thread; its last (unfinished) chunk
        is left out: it stays dirty and begins the next window."""
        return await trio.to_thread.run_sync(self._cut_snapshot, snapshot)

    @staticmethod
    def _extend(emap: ExtentMap, rows: list[tuple[int, int, bytes]], locs: dict) -> None:
        """Add extents that follow every extent of ``emap`` to it (in place: a large file's
        map is not read back from the store after each window of a streamed write)."""
        for off, n, cid in rows:
            emap.extents.append(Extent(off, n, locs[cid]))
            emap.starts.append(off)             # (after: a reader's bisection stays valid)

    async def commit_stream(self, ino: int, df: DirtyFile, start: int, cut: list,
                            seq: int) -> int | None:
        """Store ``cut`` (from ``cut_stream``), the full chunks of a sequential writer's dirty
        bytes from file offset ``start``, and drop them from the buffer. Returns the file offset
        up to which content is now committed, or None when the file went away meanwhile."""
        if df.stream_from is None:        # the first: from nothing (or all cut off) is known
            empty = df.trunc_to == 0 or not self.extent_map(ino).extents
            df.stream_total = 0 if empty else None
        elif df.trunc_to is not None:     # cut off meanwhile: no longer known
            df.stream_total = None
        rows: list[tuple[int, int, bytes]] = []
        locs: dict[bytes, ChunkLoc] = {}
        done = await self._store_cut(False, cut, start, rows, locs)
        if self.meta.get_attr(ino) is None:
            return None
        self.meta.seq = seq
        if df.trunc_to == 0:              # every live extent is closed below
            df.stream_total = 0
        elif df.trunc_to is not None:
            df.stream_total = None
        if df.stream_total is not None:   # (st_blocks without summing every extent again)
            df.stream_total += sum(n for _, n, _ in rows)
        self.meta.replace_extents(ino, [], df.trunc_to, rows)
        emap = self._maps.get(ino)
        if emap is not None and df.trunc_to is None and \
                (not emap.extents or emap.extents[-1].end <= start):
            self._extend(emap, rows, locs)
        else:
            self._maps.pop(ino, None)
        df.keep_from(done)
        df.stream_from = done
        return done

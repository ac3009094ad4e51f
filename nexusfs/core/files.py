"""Open files: handles, reads, buffered writes, streaming and final content commits, flush,
fsync and release.

A mixin of FileSystem (fs.py). Runs on the trio thread. A write session (the writes between
two commits of one inode) is one logged operation, "write": its sequence number is taken at its
first commit (a streaming commit of a large file, or the close) and every extent it stores
carries it. A version of the file is cut when the session ends (close, fsync). Writers of one
inode are serialised by the inode's lock, which commits hold too.
"""
from __future__ import annotations

import errno
import logging
import os
import stat as st
import time
from contextlib import nullcontext

import trio

from ..types import ROOT_CALLER, Attr, Caller, FsError
from ..views import HEAD_SIZE
from .buffers import DirtyFile
from .content import CorruptChunk
from .names import now_ns

log = logging.getLogger("nexusfs.fs")


class Handle:
    __slots__ = ("ino", "writable", "append", "caller")

    def __init__(self, ino: int, writable: bool, append: bool, caller: Caller | None):
        self.ino, self.writable, self.append = ino, writable, append
        self.caller = caller or ROOT_CALLER


class _InodeLock:
    """``async with`` over an inode's trio.Lock that takes a free lock without yielding: an
    uncontended acquire costs no trip through the scheduler (trio's own acquire checkpoints
    twice), which matters on paths every small write, flush and release takes."""

    __slots__ = ("lock",)

    def __init__(self, lock: trio.Lock):
        self.lock = lock

    async def __aenter__(self) -> None:
        try:
            self.lock.acquire_nowait()
        except trio.WouldBlock:
            await self.lock.acquire()

    async def __aexit__(self, *exc) -> None:
        self.lock.release()


class FileOps:
    def _new_fh(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    def _lock(self, ino: int) -> _InodeLock:
        lock = self.locks.get(ino)
        if lock is None:
            lock = self.locks[ino] = trio.Lock()
        return _InodeLock(lock)

    def _dirty(self, ino: int, writer: Caller | None = None) -> DirtyFile:
        df = self.dirty.get(ino)
        if df is None:
            attr = self.meta.get_attr(ino)
            df = self.dirty[ino] = DirtyFile(attr.size, self._spill_dir,
                                             self.cfg.spill_threshold)
        if df.writer is None:
            df.writer = writer
        return df

    def _write_seq(self, ino: int, df: DirtyFile) -> int:
        """The write session's sequence number, taken (and logged) at its first commit."""
        if df.seq is None:
            df.seq = self._begin("write", df.writer or ROOT_CALLER, path=self.path_of(ino),
                                 ino=ino)
        return df.seq

    async def open(self, ino: int, flags: int, caller: Caller | None = None) -> int:
        attr = self._attr(ino)
        if st.S_ISDIR(attr.mode):
            raise FsError(errno.EISDIR)
        if not st.S_ISREG(attr.mode):
            raise FsError(errno.ENXIO)
        acc = flags & os.O_ACCMODE
        writable = acc in (os.O_WRONLY, os.O_RDWR)
        fh = self._new_fh()
        self.handles[fh] = Handle(ino, writable, bool(flags & os.O_APPEND), caller)
        self.opens[ino] = self.opens.get(ino, 0) + 1
        if flags & os.O_TRUNC and writable and attr.size:
            await self.truncate_buffered(ino, 0, caller)
        return fh

    async def truncate_buffered(self, ino: int, size: int, caller: Caller | None) -> None:
        """Truncate as part of the inode's write session (committed with its writes)."""
        async with self._lock(ino):
            df = self._dirty(ino, caller)
            await self._settle(df)
            df.truncate(size)
            if not self.kernel_cmtime:           # see FileSystem.kernel_cmtime
                df.mtime_ns = now_ns()

    async def create(self, parent: int, name: bytes, mode: int, flags: int,
                     caller: Caller) -> tuple[int, Attr]:
        attr = self._make("create", parent, name, st.S_IFREG | (mode & 0o7777), caller)
        self.content.new_file(attr.ino)
        fh = self._new_fh()
        self.handles[fh] = Handle(attr.ino, True, bool(flags & os.O_APPEND), caller)
        self.opens[attr.ino] = self.opens.get(attr.ino, 0) + 1
        return fh, attr

    def _handle(self, fh: int):
        h = self.handles.get(fh)
        if h is None:
            raise FsError(errno.EBADF)
        return h

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        h = self._handle(fh)
        df = self.dirty.get(h.ino)
        fsize = df.size if df is not None else self.meta.get_attr(h.ino).size
        if offset >= fsize or size <= 0:
            return b""
        size = min(size, fsize - offset)
        try:
            return await self.content.read(h.ino, df, offset, size)
        except CorruptChunk as e:
            log.error("read of %s failed: %s", self.path_of(h.ino), e)
            raise FsError(errno.EIO) from e

    def _check_space(self) -> None:
        """ENOSPC for new data once free space falls under the reserve, which is kept so that
        metadata commits (and deletes that free space) still succeed on a full disk."""
        now = time.monotonic()
        if self._space_near or now - self._space_checked > 0.25:
            s = os.statvfs(self.cfg.data_dir)
            # writers stop a little before the packs' own reserve, which keeps the metadata
            # able to commit; what is buffered meanwhile still finds room
            reserve = self.packs.reserve() + 2 * self.cfg.stream_commit
            self._space_low = s.f_bavail * s.f_frsize < reserve
            self._space_near = s.f_bavail * s.f_frsize < 8 * reserve
            self._space_checked = now
        if self._space_low:
            self.start_gc(force=True)
            raise FsError(errno.ENOSPC)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self._handle(fh)
        if not h.writable:
            raise FsError(errno.EBADF)
        if offset + len(data) > self.cfg.max_file_size:
            raise FsError(errno.EFBIG)
        self._check_space()
        async with self._lock(h.ino):
            df = self._dirty(h.ino, h.caller)
            if df.error:
                raise FsError(df.error)
            if h.append:
                offset = df.size
            if df.streaming is not None:
                await self._stream_room(df, offset, len(data))
                if df.error:
                    raise FsError(df.error)
                if h.append:
                    offset = df.size
            df.write(offset, data)
            if not self.kernel_cmtime:           # see FileSystem.kernel_cmtime
                df.mtime_ns = now_ns()
            if df.streaming is None:
                rng = self.content.streamable(h.ino, df)
                if rng is not None:
                    self._start_stream(h.ino, df, rng)
        return len(data)

    async def _stream_room(self, df: DirtyFile, offset: int, n: int) -> None:
        """Wait until a write of ``n`` bytes at ``offset`` may go into a buffer being streamed:
        never under bytes being stored (until the streaming ends); and not while the in-memory
        window (being stored, being cut, waiting) would outgrow its bound (until a window is
        stored)."""
        bound = min(4 * self.cfg.stream_commit, self.cfg.spill_threshold)
        while df.streaming is not None:
            if offset < df.streaming_end:
                await df.streaming.wait()
            elif df.dirty_bytes() + n > bound:
                await df.stream_step.wait()
            else:
                return

    def _start_stream(self, ino: int, df: DirtyFile, rng: tuple[int, int]) -> None:
        """Store a sequential writer's full chunks in the background while it keeps writing,
        so a large file never sits whole in a buffer and chunking overlaps the FUSE traffic."""
        df.streaming = trio.Event()
        df.stream_step = trio.Event()
        df.streaming_end = rng[1]
        snapshot = df.buf.snapshot(rng[0], rng[1] - rng[0])
        trio.lowlevel.spawn_system_task(self._stream_task, ino, df, rng, snapshot)

    def _next_window(self, df: DirtyFile, start: int) -> list[bytes] | None:
        """The bytes from ``start`` (where the window being stored ends) when the writer has
        added enough for another window meanwhile; marks them as being stored."""
        rng = df.stream_range()
        if rng is None or df.trunc_to is not None or df.error or not rng[0] <= start or \
                rng[1] - start < self.cfg.stream_commit:
            return None
        df.streaming_end = rng[1]
        return df.buf.snapshot(start, rng[1] - start)

    async def _stream_task(self, ino: int, df: DirtyFile, rng: tuple[int, int], snapshot) -> None:
        """A pipeline over the writer's windows: while one window's chunks are stored (pack
        writes, then metadata), the next window is already being cut and hashed."""
        try:
            seq = self._write_seq(ino, df)
            start = rng[0]
            cut = await self.content.cut_stream(snapshot)
            while cut is not None:
                following = start + sum(len(data) for data, _cid, _zero in cut)
                ahead = self._cut_ahead(self._next_window(df, following))
                try:
                    async with self.gate.shared():
                        done = await self.content.commit_stream(ino, df, start, cut, seq)
                    if done is None:
                        return
                    self.meta.seq = seq
                    if df.stream_total is not None:
                        self.meta.update_attr(ino, size=done,
                                              blocks=(df.stream_total + 511) // 512)
                    else:
                        self.meta.update_attr(ino, size=done)
                        self.meta.update_blocks(ino)
                    step, df.stream_step = df.stream_step, trio.Event()
                    step.set()
                finally:
                    await ahead[0].wait()
                if isinstance(ahead[1], Exception):
                    raise ahead[1]
                start, cut = done, ahead[1]
        except Exception as e:
            df.error = getattr(e, "errno", None) or errno.EIO
            log.error("write of %s failed: %s", self.path_of(ino), e)
        finally:
            event, df.streaming = df.streaming, None
            step, df.stream_step = df.stream_step, None
            event.set()
            step.set()

    def _cut_ahead(self, snapshot: list[bytes] | None) -> list:
        """[event, result]: the cut of ``snapshot`` runs in the background; once the event is
        set, the result is the cut, None (no snapshot) or the exception it raised."""
        out: list = [trio.Event(), None]
        if snapshot is None:
            out[0].set()
            return out

        async def run():
            try:
                out[1] = await self.content.cut_stream(snapshot)
            except Exception as e:
                out[1] = e
            finally:
                out[0].set()
        trio.lowlevel.spawn_system_task(run)
        return out

    async def _settle(self, df: DirtyFile) -> None:
        """Wait for a background streaming commit of ``df`` to end."""
        while df.streaming is not None:
            await df.streaming.wait()

    async def commit_file(self, ino: int, held: bool = False) -> None:
        """Chunk and store an inode's buffered writes into the current batch (not yet durable)
        and cut a version; then let document views know. ``held``: the caller holds the
        inode's lock already (a conditional write, nexusfs/api/service.py)."""
        committed, head = await self._commit_locked(ino, held)
        if committed:
            try:
                await self.docs.after_commit(ino, head)
            finally:
                self.search.touched(ino)      # (after: the document kind is known then)

    async def _commit_locked(self, ino: int, held: bool = False) -> tuple[bool, bytes | None]:
        """(committed, the file's first bytes when the buffer held them: kind detection then
        needs no read back from the store)."""
        async with nullcontext() if held else self._lock(ino):
            df = self.dirty.get(ino)
            if df is None:
                return False, None
            await self._settle(df)
            if df.error:
                err, df.error = df.error, 0
                if df.seq is not None:
                    self.meta.end_op(df.seq, err)
                raise FsError(err)
            attr = self.meta.get_attr(ino)
            if attr is None:
                self.dirty.pop(ino).close()
                return False, None
            head = self._head(df) if self.docs.wants_heads else None
            seq = self._write_seq(ino, df)
            try:
                async with self.gate.shared():
                    blocks, waited = await self.content.commit(ino, df, seq)
            except CorruptChunk as e:
                log.error("commit of %s failed: %s", self.path_of(ino), e)
                self.meta.end_op(seq, errno.EIO)
                raise FsError(errno.EIO) from e
            except OSError as e:
                log.error("commit of %s failed: %s", self.path_of(ino), e)
                self.meta.end_op(seq, e.errno or errno.EIO)
                raise FsError(e.errno or errno.EIO) from e
            self.garbage_hint += df.dirty_bytes() + 1
            self.meta.seq = seq
            cols = {"size": df.size}
            if df.mtime_ns is not None:       # ctime never goes back (a chmod may be later)
                if waited:                    # (another operation may have run meanwhile)
                    attr = self.meta.get_attr(ino)
                cols["mtime_ns"] = df.mtime_ns
                cols["ctime_ns"] = max(df.mtime_ns, attr.ctime_ns)
            if blocks is not None:            # known without asking the store (a new file)
                cols["blocks"] = blocks
            self.meta.update_attr(ino, **cols)
            if blocks is None:
                self.meta.update_blocks(ino)
            self._cut_version(ino, seq, df.size, cols.get("mtime_ns"))
            del self.dirty[ino]
            df.close()
            return True, head

    @staticmethod
    def _head(df: DirtyFile) -> bytes | None:
        """The first HEAD_SIZE bytes of the file as this commit leaves it, when the buffer
        holds all of them (a new or rewritten file); None otherwise."""
        n = min(df.size, HEAD_SIZE)
        if n == 0:
            return b""
        if df.stream_from is not None or df.streaming is not None:
            return None
        if df.ranges.overlapping(0, n) != [(0, n)]:
            return None
        return df.buf.pread(0, n)

    async def flush(self, fh: int) -> None:
        """close(2) of a descriptor: commit what was written (a version). A truncation with
        nothing written yet waits: a shell's `> file` closes a duplicate descriptor between
        its O_TRUNC open and the writes, and that is not a version of its own."""
        h = self._handle(fh)
        df = self.dirty.get(h.ino)
        if df is not None and (df.ranges or df.streaming is not None or df.stream_from is not None):
            await self.commit_file(h.ino)

    async def fsync(self, fh: int, datasync: bool = False) -> None:
        h = self._handle(fh)
        await self.commit_file(h.ino)
        await self.sync(durable=True)

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is None:
            return
        n = self.opens.get(h.ino, 1) - 1
        if n > 0:
            self.opens[h.ino] = n
        else:
            self.opens.pop(h.ino, None)
            if h.ino in self.dirty:
                try:
                    await self.commit_file(h.ino)
                except FsError:
                    pass                     # already logged; release cannot report errors
            self._maybe_purge(h.ino)

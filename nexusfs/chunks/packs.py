"""Append-only pack files holding encoded chunks.

Layout: DATA_DIR/packs/NNNNNNNN.pack, each a sequence of records
``MAGIC(4) | chunk id(32) | codec(1) | raw_len(4) | stored_len(4) | stored bytes``.
The SQLite chunk index names (pack, offset of the stored bytes, stored_len); the record headers
let fsck and recovery rescan a pack without the index.

Concurrency: ``append`` and ``sync`` take one lock; ``read`` is lock-free (pread on a per-pack
read descriptor). Every append gets a generation number; ``sync`` makes all appends up to the
generation it returns durable (fdatasync). The metadata layer commits a reference to a chunk only
after the chunk's generation is synced, so a power cut never leaves metadata pointing at bytes
that did not reach the disk.
"""
from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

MAGIC = b"NXC1"
# records per writev of append_many: about 1 MiB of chunks. (Whole windows in one writev were
# measured slower for a large sequential write: the page cache took them in bursts.)
_RUN_RECORDS = 16
HEADER = struct.Struct(">4s32sBII")


class PackStore:
    def __init__(self, directory: Path, max_pack_size: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_pack_size = max_pack_size
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._readers: dict[int, int] = {}
        self._retired: list[int] = []
        self._unsynced: set[int] = set()
        self.written_gen = 0
        self.synced_gen = 0
        existing = sorted(int(p.stem) for p in self.dir.glob("*.pack") if p.stem.isdigit())
        self._pack = existing[-1] if existing else 1
        self._fd = os.open(self._path(self._pack), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._reserve = self.reserve()
        self._free: int | None = None
        self._unchecked = 0
        intact = self._intact_length(self._pack)
        if intact < self._size:
            # a crash mid-append left a torn record: cut it off so later records stay scannable
            os.ftruncate(self._fd, intact)
            self._size = intact

    def _intact_length(self, pack: int) -> int:
        end = 0
        size = self._path(pack).stat().st_size
        for offset, _cid, _codec, _raw, stored_len in self.scan(pack):
            if offset + stored_len > size:
                break
            end = offset + stored_len
        return end

    @classmethod
    def reader(cls, directory: Path) -> "PackStore":
        """A read-only view (fsck, tools): no write descriptor, never appends."""
        self = cls.__new__(cls)
        self.dir = Path(directory)
        self._readers = {}
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        return self

    def close_readers(self) -> None:
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()

    def _path(self, pack: int) -> Path:
        return self.dir / f"{pack:08d}.pack"

    def packs(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.pack") if p.stem.isdigit())

    def reserve(self) -> int:
        """Bytes of the data directory's file system packs never use: the metadata's WAL must
        always find room to commit (and GC to free space) when the disk is full."""
        s = os.statvfs(self.dir)
        return max(8 << 20, min(256 << 20, s.f_blocks * s.f_frsize // 50))

    def _check_room(self, n: int) -> None:
        self._unchecked += n
        if self._free is not None and self._free - self._unchecked > 4 * self._reserve \
                and self._unchecked < (64 << 20):
            return
        s = os.statvfs(self.dir)
        self._free, self._unchecked = s.f_bavail * s.f_frsize, 0
        if self._free - n < self._reserve:
            raise OSError(28, "No space left on device (the metadata reserve is kept free)")

    def append(self, chunk_id: bytes, codec: int, raw_len: int, stored: bytes) -> tuple[int, int, int]:
        """Append one record; returns (pack, offset of stored bytes, generation). ENOSPC when
        the record would eat into the metadata reserve."""
        header = HEADER.pack(MAGIC, chunk_id, codec, raw_len, len(stored))
        with self._lock:
            self._check_room(HEADER.size + len(stored))
            if self._size >= self.max_pack_size:
                self._rotate()
            offset = self._size + HEADER.size
            written = os.writev(self._fd, (header, stored))
            if written != HEADER.size + len(stored):
                # a short write (disk full): cut the partial record off again
                os.ftruncate(self._fd, self._size)
                raise OSError(28, "short write to pack file")
            self._size += written
            self._unsynced.add(self._pack)
            self.written_gen += 1
            return self._pack, offset, self.written_gen

    def append_many(self, records: list[tuple[bytes, int, int, bytes]]
                    ) -> list[tuple[int, int, int]]:
        """``append`` for each (chunk id, codec, raw_len, stored bytes), with one writev per run
        of records that go to the same pack (``_RUN_RECORDS`` at most); returns (pack, offset of
        stored bytes, generation) for each, in order."""
        out: list[tuple[int, int, int]] = []
        i = 0
        while i < len(records):
            with self._lock:              # (per run: a sync waits for one run, not all)
                if self._size >= self.max_pack_size:
                    self._rotate()
                iov: list = []
                offsets: list[int] = []
                end = self._size
                while i < len(records) and len(iov) < 2 * _RUN_RECORDS and \
                        (not iov or end < self.max_pack_size):
                    cid, codec, raw_len, stored = records[i]
                    iov.append(HEADER.pack(MAGIC, cid, codec, raw_len, len(stored)))
                    iov.append(stored)
                    offsets.append(end + HEADER.size)
                    end += HEADER.size + len(stored)
                    i += 1
                self._check_room(end - self._size)
                written = os.writev(self._fd, iov)
                if written != end - self._size:
                    # a short write (disk full): cut the partial records off again
                    os.ftruncate(self._fd, self._size)
                    raise OSError(28, "short write to pack file")
                self._size = end
                self._unsynced.add(self._pack)
                for off in offsets:
                    self.written_gen += 1
                    out.append((self._pack, off, self.written_gen))
        return out

    def _rotate(self) -> None:
        os.fdatasync(self._fd)
        os.close(self._fd)
        self._pack += 1
        self._fd = os.open(self._path(self._pack), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @property
    def current(self) -> int | None:
        return getattr(self, "_pack", None)

    def size_of(self, pack: int) -> int:
        try:
            return self._path(pack).stat().st_size
        except FileNotFoundError:
            return 0

    def rotate(self) -> None:
        with self._lock:
            self._rotate()

    def copy_records(self, pack: int, chunks) -> list[tuple[bytes, int, int, int]]:
        """Append the given (id, codec, raw_len, offset, stored_len) records of ``pack`` to the
        current pack; returns (id, new pack, new offset, generation) for each."""
        out = []
        for cid, kind, raw_len, off, stored_len in chunks:
            stored = self.read(pack, off, stored_len)
            new_pack, new_off, gen = self.append(cid, kind, raw_len, stored)
            out.append((cid, new_pack, new_off, gen))
        return out

    def retire(self, pack: int) -> None:
        """Delete a pack whose chunks have all moved (their new home is durable). A read still
        in flight keeps working through its open descriptor."""
        with self._open_lock:
            fd = self._readers.pop(pack, None)
        if fd is not None:
            self._retired.append((fd, time.monotonic()))
        self._path(pack).unlink(missing_ok=True)

    def close_retired(self, grace: float = 2.0) -> int:
        """Close the descriptors of deleted packs once reads begun before have had time to
        finish: only then does the file system get the space back. Returns how many."""
        if not self._retired:
            return 0
        now = time.monotonic()
        keep = []
        for fd, since in self._retired:
            if now - since >= grace:
                os.close(fd)
            else:
                keep.append((fd, since))
        closed = len(self._retired) - len(keep)
        self._retired = keep
        return closed

    def sync(self) -> int:
        """fdatasync every pack written since the last sync; returns the generation now durable."""
        with self._lock:
            gen = self.written_gen
            for pack in self._unsynced:
                if pack == self._pack:
                    os.fdatasync(self._fd)
                else:
                    os.fdatasync(self._reader(pack))
            self._unsynced.clear()
            self.synced_gen = gen
            return gen

    def _reader(self, pack: int) -> int:
        fd = self._readers.get(pack)
        if fd is None:
            with self._open_lock:
                fd = self._readers.get(pack)
                if fd is None:
                    fd = os.open(self._path(pack), os.O_RDONLY)
                    self._readers[pack] = fd
        return fd

    def read(self, pack: int, offset: int, length: int) -> bytes:
        data = os.pread(self._reader(pack), length, offset)
        if len(data) != length:
            raise OSError(5, f"pack {pack}: short read at {offset} (wanted {length}, got {len(data)})")
        return data

    def read_cached(self, pack: int, offset: int, length: int) -> bytearray | None:
        """The bytes when the page cache holds all of them, else None at once (no disk wait:
        RWF_NOWAIT), so that a caller may read on a thread that must not block."""
        buf = bytearray(length)
        try:
            n = os.preadv(self._reader(pack), [buf], offset, os.RWF_NOWAIT)
        except OSError:                   # EAGAIN, or a kernel without RWF_NOWAIT
            return None
        return buf if n == length else None

    def advise(self, pack: int, offset: int, length: int) -> None:
        """Ask the kernel to start reading a span of a pack in the background (a sequential
        reader will want it soon); never blocks on the disk, errors ignored."""
        try:
            os.posix_fadvise(self._reader(pack), offset, length, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass

    def scan(self, pack: int):
        """Yield (offset of stored bytes, chunk id, codec, raw_len, stored_len) for each record."""
        with open(self._path(pack), "rb") as f:
            pos = 0
            while True:
                head = f.read(HEADER.size)
                if len(head) < HEADER.size:
                    return
                magic, cid, codec, raw_len, stored_len = HEADER.unpack(head)
                if magic != MAGIC:
                    return
                yield pos + HEADER.size, cid, codec, raw_len, stored_len
                pos += HEADER.size + stored_len
                f.seek(pos)

    def total_bytes(self) -> int:
        return sum(self._path(p).stat().st_size for p in self.packs())

    def close(self) -> None:
        with self._lock:
            try:
                os.fdatasync(self._fd)
            finally:
                os.close(self._fd)
            for fd in [*self._readers.values(), *(fd for fd, _ in self._retired)]:
                os.close(fd)
            self._readers.clear()
            self._retired.clear()

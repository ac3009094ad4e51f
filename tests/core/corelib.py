"""Helpers for driving a FileSystem directly (no mount), the way the FUSE adapter would."""
from __future__ import annotations

import os
import random
import stat as st

from nexusfs import check
from nexusfs.config import Config
from nexusfs.core.fs import FileSystem
from nexusfs.types import ROOT_INO, Caller

ROOT = Caller()
USER = Caller(uid=1000, gid=1000, pid=4242)
OTHER = Caller(uid=2000, gid=2000, pid=4343)
FILE_MODE = st.S_IFREG | 0o644


def rnd(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def text(n: int, seed: int = 0) -> bytes:
    """Compressible bytes (zstd pays off) that are still not one repeated chunk."""
    r = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"nexus", b"chunk", b"extent", b"inode"]
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + b" "
    return bytes(out[:n])


def start_fs(cfg: Config) -> FileSystem:
    fs = FileSystem(cfg)
    fs.start()
    return fs


def fsck(cfg: Config) -> list[str]:
    return check.check(cfg)


async def create(fs: FileSystem, name: bytes, parent: int = ROOT_INO, caller: Caller = ROOT,
                 mode: int = 0o644, flags: int = os.O_RDWR) -> tuple[int, int]:
    """create(2) as the kernel does it; returns (fh, ino). The kernel keeps one lookup."""
    fh, attr = await fs.create(parent, name, mode, flags, caller)
    return fh, attr.ino


async def make_file(fs: FileSystem, name: bytes, data: bytes = b"", parent: int = ROOT_INO,
                    caller: Caller = ROOT) -> int:
    """Create, write, close, and let the kernel forget the inode."""
    fh, ino = await create(fs, name, parent, caller)
    if data:
        await write_all(fs, fh, 0, data)
    await fs.flush(fh)
    await fs.release(fh)
    fs.forget([(ino, 1)])
    return ino


async def write_all(fs: FileSystem, fh: int, offset: int, data: bytes, block: int = 128 * 1024):
    """Write in kernel-sized pieces."""
    for pos in range(0, len(data), block):
        n = await fs.write(fh, offset + pos, data[pos:pos + block])
        assert n == len(data[pos:pos + block])


async def read_fh(fs: FileSystem, fh: int, offset: int = 0, size: int | None = None,
                  block: int = 128 * 1024) -> bytes:
    if size is None:
        size = (await fs.getattr(fs.handles[fh].ino)).size - offset
    out = bytearray()
    while len(out) < size:
        part = await fs.read(fh, offset + len(out), min(block, size - len(out)))
        if not part:
            break
        out += part
    return bytes(out)


async def read_file(fs: FileSystem, ino: int, offset: int = 0, size: int | None = None) -> bytes:
    fh = await fs.open(ino, os.O_RDONLY, ROOT)
    try:
        return await read_fh(fs, fh, offset, size)
    finally:
        await fs.release(fh)


async def lookup(fs: FileSystem, parent: int, name: bytes) -> int:
    """Look a name up and give the reference straight back (like a stat that is done)."""
    attr = await fs.lookup(parent, name, ROOT)
    fs.forget([(attr.ino, 1)])
    return attr.ino


async def mkdir(fs: FileSystem, parent: int, name: bytes, mode: int = 0o755,
                caller: Caller = ROOT) -> int:
    attr = await fs.mkdir(parent, name, mode, caller)
    fs.forget([(attr.ino, 1)])
    return attr.ino


def extents(fs: FileSystem, ino: int) -> list[tuple[int, int, bytes]]:
    return [(e.offset, e.length, e.loc.id) for e in fs.meta.extents(ino)]


def covered(fs: FileSystem, ino: int) -> int:
    return sum(e.length for e in fs.meta.extents(ino))


def crash(fs: FileSystem) -> None:
    """Drop a FileSystem the way a killed process would: no commit, no checkpoint, no sync.
    What was committed to SQLite stays; the open batch is lost."""
    for df in fs.dirty.values():
        df.close()
    fs.dirty.clear()
    fs.meta.conn.close()
    fs.meta.in_txn = False
    os.close(fs.packs._fd)
    fs.packs.close_readers()
    os.close(fs._lock_fd)
    fs._lock_fd = None

class Stores:
    """Starts FileSystems on a config and cleans up after the test: closes what is still open
    and runs fsck on every data directory used."""

    def __init__(self):
        self.live = []
        self.cfgs = []

    def start(self, cfg):
        fs = start_fs(cfg)
        self.live.append(fs)
        if cfg not in self.cfgs:
            self.cfgs.append(cfg)
        return fs

    async def close(self, fs):
        self.live.remove(fs)
        await fs.close()

    def crash(self, fs):
        self.live.remove(fs)
        crash(fs)

    async def finish(self):
        for fs in list(self.live):
            await self.close(fs)
        for cfg in self.cfgs:
            problems = fsck(cfg)
            assert problems == [], f"fsck of {cfg.data_dir}: {problems}"

"""Value types shared by every layer, and FsError, the core's only error currency.

Pure data; no I/O, no locking. Times are integer nanoseconds since the epoch.
"""
from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass, field

ROOT_INO = 1
NAME_MAX = 255
SYMLINK_MAX = 4095


class FsError(Exception):
    """A filesystem error carrying the errno the caller should see."""

    def __init__(self, errno: int, message: str = ""):
        super().__init__(errno, message or os.strerror(errno))
        self.errno = errno
        self.message = message or os.strerror(errno)

    def __str__(self) -> str:
        return f"[{_errno.errorcode.get(self.errno, self.errno)}] {self.message}"


@dataclass(slots=True)
class Attr:
    """The attributes of one inode, as stat(2) reports them."""

    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    size: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    generation: int = 0
    volatile: bool = False       # virtual, changing content: the kernel may cache it only briefly
    uncached: bool = False       # the kernel must not cache it at all (checked per caller)

    def copy(self) -> "Attr":
        """A copy to adjust (several times faster than copy.copy)."""
        return Attr(self.ino, self.mode, self.nlink, self.uid, self.gid, self.rdev, self.size,
                    self.blocks, self.atime_ns, self.mtime_ns, self.ctime_ns, self.generation,
                    self.volatile, self.uncached)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: uid, gid, supplementary groups, pid, umask, and the agent label if known."""

    uid: int = 0
    gid: int = 0
    pid: int = 0
    umask: int = 0o022
    groups: tuple[int, ...] = ()
    agent: str | None = None
    process: str | None = None


ROOT_CALLER = Caller()


@dataclass(frozen=True, slots=True)
class DirEntry:
    """One readdir result: the name, its attributes, and the cookie that resumes after it."""

    name: bytes
    attr: Attr
    next_id: int


@dataclass(frozen=True, slots=True)
class ChunkLoc:
    """Where a chunk's bytes live: inline (``data``) or at (pack, offset, stored_len) in a pack."""

    id: bytes
    raw_len: int
    codec: int
    pack: int | None = None
    offset: int | None = None
    stored_len: int | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Extent:
    """A run of file content: ``length`` bytes at file ``offset`` are chunk ``loc``."""

    offset: int
    length: int
    loc: ChunkLoc

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(slots=True)
class StatFs:
    bsize: int
    frsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    favail: int
    namemax: int = NAME_MAX


@dataclass(slots=True)
class OpenFlags:
    """What an open asked for, reduced to what the core needs."""

    write: bool = False
    append: bool = False
    truncate: bool = False
    extra: dict = field(default_factory=dict)

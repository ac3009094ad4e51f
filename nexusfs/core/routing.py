"""Routing between the real tree and the virtual /.nexus/ tree.

A mixin placed first in FileSystem's bases: each operation checks whether it concerns a virtual
inode (or the reserved name /.nexus) and either hands it to the VirtualTree or passes it on to
the real implementation (super()). Runs on the trio thread.

Listings of real directories are built a window at a time (up to ``limit`` entries and their
document views) and kept per directory handle: the kernel asks for one buffer-full per
request, and the rest of the window answers the following requests of the same pass, unless
anything changed in between (a logged operation, a document's views, a forgotten virtual
inode, what decides access) or the window is older than WINDOW_TTL. A window's attributes are
made what the kernel must see (``_show_entries``: access grants widen group bits) once, when
it is built. The first window of a pass holds WINDOW_FIRST
entries, each next one twice what the pass took from the one before (at least a quarter of
WINDOW_FIRST, at most WINDOW_MAX), because a request takes only a few dozen
entries, and `rm -rf` changes the directory between any two requests, so a full-size window
would mostly be built to be thrown away.
"""
from __future__ import annotations

import errno
import time

from ..types import ROOT_INO, Attr, Caller, DirEntry, FsError
from .vtree import CTL, NEXUS, NEXUS_NAME, RAW, RAW_NAME, is_virtual

WINDOW_TTL = 1.0          # seconds a listing window may answer continuation requests
WINDOWS_KEPT = 32         # windows kept at most (of the handles listed last)
WINDOW_FIRST = 128        # entries in the first window of a pass
WINDOW_MAX = 1000         # entries in a window at most


class _Window:
    """Entries of one directory handle from cookie ``start`` on, as built at ``token``."""
    __slots__ = ("start", "entries", "after", "token", "made")

    def __init__(self, start: int, entries: list[DirEntry], token: tuple, made: float):
        self.start, self.entries, self.token, self.made = start, entries, token, made
        self.after = {e.next_id: i for i, e in enumerate(entries, 1)}   # cookie -> next index


class VirtualRouting:
    windows: dict[int, _Window] | None = None      # directory handle -> its listing window

    def _reserved(self, parent: int, name: bytes) -> None:
        if parent == ROOT_INO and (name == NEXUS_NAME or (name == RAW_NAME and self.cfg.auto_parse)):
            raise FsError(errno.EEXIST, "reserved name")

    async def lookup(self, parent: int, name: bytes, caller: Caller | None = None) -> Attr:
        if parent == ROOT_INO and name == NEXUS_NAME:
            return self.vtree.entry(NEXUS)
        if parent == ROOT_INO and name == RAW_NAME and self.cfg.auto_parse:
            return self.vtree.entry(RAW)
        if is_virtual(parent):
            if name == b".":
                return self.vtree.entry(parent)
            if self.vtree.search.owns(parent):
                return await self.vtree.search.lookup(parent, name, caller)
            return self.vtree.lookup(parent, name)
        try:
            attr = await super().lookup(parent, name, caller)
            if self.cfg.auto_parse and self.docs.kind(attr.ino) is not None:
                # auto-parse: the document's own name reads as its text (bytes under /.raw/)
                self.forget([(attr.ino, 1)])
                return self.vtree.entry(self.vtree.auto_vino(attr.ino))
            return attr
        except FsError as e:
            if e.errno != errno.ENOENT:
                raise
            view = self._view_of(parent, name)
            if view is None:
                raise
            return self.vtree.entry(view)

    def _view_of(self, parent: int, name: bytes) -> int | None:
        """The virtual inode of document view ``name`` (e.g. report.pdf.txt) in ``parent``
        (none in auto-parse mode, where the document's own name is its text)."""
        if self.cfg.auto_parse:
            return None
        for suffix in (b".txt", b".md"):
            if name.endswith(suffix) and len(name) > len(suffix):
                doc = self.meta.lookup(parent, name[: -len(suffix)])
                if doc is not None and self.docs.kind(doc) is not None:
                    return self.vtree.view_vino(doc, suffix.decode())
        return None

    def forget(self, items: list[tuple[int, int]]) -> None:
        real = []
        for ino, n in items:
            if is_virtual(ino):
                self.vtree.forget(ino, n)
            else:
                real.append((ino, n))
        if real:
            super().forget(real)

    async def getattr(self, ino: int, caller: Caller | None = None) -> Attr:
        if is_virtual(ino):
            return self.vtree.attr(ino)
        return await super().getattr(ino, caller)

    async def setattr(self, ino: int, caller: Caller, **kw) -> Attr:
        if is_virtual(ino):
            if ino == CTL and set(k for k, v in kw.items() if v is not None) <= {"size", "fh",
                                                                                  "atime_ns", "mtime_ns", "ctime_ns"}:
                return self.vtree.attr(ino)      # `echo cmd > ctl` truncates first: fine
            raise FsError(errno.EROFS if ino > NEXUS + 16 else errno.EPERM)
        return await super().setattr(ino, caller, **kw)

    async def readlink(self, ino: int, caller: Caller | None = None) -> bytes:
        if is_virtual(ino):
            return self.vtree.readlink(ino)
        return await super().readlink(ino, caller)

    # -- names --------------------------------------------------------------------------------
    async def mkdir(self, parent, name, mode, caller):
        if is_virtual(parent):
            return await self.vtree.mkdir(parent, name, caller)
        self._reserved(parent, name)
        return await super().mkdir(parent, name, mode, caller)

    async def mknod(self, parent, name, mode, rdev, caller):
        if is_virtual(parent):
            raise self.vtree._readonly(parent)
        self._reserved(parent, name)
        return await super().mknod(parent, name, mode, rdev, caller)

    async def symlink(self, parent, name, target, caller):
        if is_virtual(parent):
            raise self.vtree._readonly(parent)
        self._reserved(parent, name)
        return await super().symlink(parent, name, target, caller)

    async def link(self, ino, parent, name, caller):
        if is_virtual(parent) or is_virtual(ino):
            raise FsError(errno.EXDEV if is_virtual(ino) != is_virtual(parent) else errno.EROFS)
        self._reserved(parent, name)
        return await super().link(ino, parent, name, caller)

    async def create(self, parent, name, mode, flags, caller):
        if is_virtual(parent):
            raise self.vtree._readonly(parent)
        self._reserved(parent, name)
        return await super().create(parent, name, mode, flags, caller)

    def _no_view(self, parent: int, name: bytes) -> None:
        """Views are read-only: removing or renaming one is EROFS (a real file of the same
        name, which always wins, is handled as usual)."""
        if name.endswith((b".txt", b".md")) and self.meta.lookup(parent, name) is None and \
                self._view_of(parent, name) is not None:
            raise FsError(errno.EROFS)

    async def unlink(self, parent, name, caller):
        if is_virtual(parent):
            raise self.vtree._readonly(parent)
        if parent == ROOT_INO and name == NEXUS_NAME:
            raise FsError(errno.EPERM)
        self._no_view(parent, name)
        return await super().unlink(parent, name, caller)

    async def rmdir(self, parent, name, caller):
        if is_virtual(parent):
            return await self.vtree.rmdir(parent, name, caller)
        if parent == ROOT_INO and name == NEXUS_NAME:
            raise FsError(errno.EPERM)
        return await super().rmdir(parent, name, caller)

    async def rename(self, old_parent, old_name, new_parent, new_name, flags, caller):
        if is_virtual(old_parent) or is_virtual(new_parent):
            return await self.vtree.rename(old_parent, old_name, new_parent, new_name, flags, caller)
        self._no_view(old_parent, old_name)
        if ROOT_INO in (old_parent, new_parent) and NEXUS_NAME in (old_name, new_name) and \
                (old_parent, old_name) != (new_parent, new_name):
            if (old_parent == ROOT_INO and old_name == NEXUS_NAME) or \
                    (new_parent == ROOT_INO and new_name == NEXUS_NAME):
                raise FsError(errno.EPERM, "/.nexus is reserved")
        return await super().rename(old_parent, old_name, new_parent, new_name, flags, caller)

    # -- directories --------------------------------------------------------------------------
    async def opendir(self, ino, caller=None):
        if is_virtual(ino):
            self.vtree.attr(ino)
            fh = self._new_fh()
            self.dir_handles[fh] = ino
            await self.vtree.search.opendir(ino, fh, caller)
            return fh
        return await super().opendir(ino, caller)

    async def readdir(self, fh: int, start_id: int, limit: int | None = None) -> list[DirEntry]:
        """Entries after cookie ``start_id``: up to ``limit``, or (None: the FUSE adapter, which
        asks again while the kernel's buffer has room) what the adaptive window holds."""
        adaptive = limit is None
        if adaptive:
            limit = WINDOW_MAX
        ino = self.dir_handles.get(fh)
        if ino is not None and is_virtual(ino):
            return self.vtree.readdir(ino, start_id, fh)[:limit]
        if ino is None:
            return await super().readdir(fh, start_id, limit)
        token = (self.meta.last_seq, self.docs.generation, self.vtree.dropped,
                 self.access.generation, limit)
        now = time.monotonic()
        if self.windows is None:
            self.windows = {}
        w = self.windows.get(fh)
        i = None
        if w is not None and w.token == token and now - w.made < WINDOW_TTL:
            i = 0 if start_id == w.start else w.after.get(start_id)
        if i is None or (i == len(w.entries) and i):        # not in the window, or past its end
            size = min(limit, WINDOW_FIRST) if adaptive else limit
            if adaptive and w is not None:     # (what the pass took from the previous one)
                taken = w.after.get(start_id)
                if taken:
                    size = min(limit, max(2 * taken, WINDOW_FIRST // 4))
            self.windows.pop(fh, None)
            entries = await super().readdir(fh, start_id, size)
            self._show_entries(ino, entries)
            w = _Window(start_id, entries, token, now)
            if len(self.windows) >= WINDOWS_KEPT:
                del self.windows[next(iter(self.windows))]
            self.windows[fh] = w
            i = 0
        return w.entries[i:]

    def _show_entries(self, parent: int, entries: list[DirEntry]) -> None:
        """Adjust a new window's attributes to what the kernel must see (AccessView)."""

    async def releasedir(self, fh: int) -> None:
        if self.windows:
            self.windows.pop(fh, None)
        await super().releasedir(fh)

    def entry_reported(self, entry: DirEntry) -> None:
        if is_virtual(entry.attr.ino):
            self.vtree.refs[entry.attr.ino] = self.vtree.refs.get(entry.attr.ino, 0) + 1
        else:
            super().entry_reported(entry)

    # -- files --------------------------------------------------------------------------------
    async def open(self, ino, flags, caller=None):
        if is_virtual(ino):
            fh = self._new_fh()
            self.direct_io[fh] = await self.vtree.open(ino, flags, caller, fh)
            return fh
        return await super().open(ino, flags, caller)

    async def read(self, fh, offset, size):
        if fh in self.vtree.handles:
            return await self.vtree.read(fh, offset, size)
        return await super().read(fh, offset, size)

    async def write(self, fh, offset, data):
        if fh in self.vtree.handles:
            return await self.vtree.write(fh, offset, data)
        return await super().write(fh, offset, data)

    async def flush(self, fh):
        if fh in self.vtree.handles:
            return
        return await super().flush(fh)

    async def fsync(self, fh, datasync=False):
        if fh in self.vtree.handles:
            return
        return await super().fsync(fh, datasync)

    async def release(self, fh):
        if fh in self.vtree.handles:
            self.vtree.release(fh)
            self.direct_io.pop(fh, None)
            return
        return await super().release(fh)

    # -- xattrs -------------------------------------------------------------------------------
    async def getxattr(self, ino, name, caller):
        if is_virtual(ino):
            raise FsError(errno.ENODATA)
        return await super().getxattr(ino, name, caller)

    async def listxattr(self, ino, caller):
        if is_virtual(ino):
            return []
        return await super().listxattr(ino, caller)

    async def setxattr(self, ino, name, value, caller):
        if is_virtual(ino):
            raise FsError(errno.EROFS if ino > NEXUS + 16 else errno.EPERM)
        return await super().setxattr(ino, name, value, caller)

    async def removexattr(self, ino, name, caller):
        if is_virtual(ino):
            raise FsError(errno.EROFS if ino > NEXUS + 16 else errno.EPERM)
        return await super().removexattr(ino, name, caller)

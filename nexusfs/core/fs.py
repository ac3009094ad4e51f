"""The filesystem: inode-based async operations with POSIX semantics, callable without a mount.

Owns the in-memory state of a mounted store: kernel lookup counts, open handles, write buffers,
per-inode commit locks, and the batch commit. Permission checks on ordinary access are left to
the kernel (the mount uses ``default_permissions``); what the kernel does not decide (who may
chown, which xattr namespaces are writable, rename rules, name and size limits) is decided here.

Concurrency: every method runs on the trio thread. Methods that do not await are atomic. Those
that await (content commits, reads that miss the cache, durable commits) hold the inode's lock
against writers of the same inode; namespace operations never await.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat as st
import time
from dataclasses import replace

import trio

from ..chunks.packs import PackStore
from ..config import Config
from ..meta import db
from ..meta.store import MetaStore
from ..types import NAME_MAX, ROOT_INO, SYMLINK_MAX, Attr, Caller, DirEntry, FsError, StatFs
from .buffers import DirtyFile
from .content import ContentStore, CorruptChunk
from .gate import Gate

log = logging.getLogger("nexusfs.fs")

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
XATTR_CAPS = b"security.capability"
_XATTR_NAMESPACES = (b"user.", b"trusted.", b"security.")


def now_ns() -> int:
    return time.time_ns()


def check_name(name: bytes) -> None:
    if len(name) > NAME_MAX:
        raise FsError(errno.ENAMETOOLONG)
    if not name or b"/" in name or b"\0" in name:
        raise FsError(errno.EINVAL)


class Handle:
    __slots__ = ("ino", "writable", "append")

    def __init__(self, ino: int, writable: bool, append: bool):
        self.ino, self.writable, self.append = ino, writable, append


class FileSystem:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.lookups: dict[int, int] = {}
        self.opens: dict[int, int] = {}
        self.dirty: dict[int, DirtyFile] = {}
        self.locks: dict[int, trio.Lock] = {}
        self.handles: dict[int, Handle] = {}
        self.dir_handles: dict[int, int] = {}
        self._next_fh = 1
        self._lock_fd: int | None = None
        self.caps: set[int] = set()
        self.gate = Gate()
        self.garbage_hint = 0            # bytes probably freed since the last GC
        self._gc_running = False
        self._gc_last = 0.0
        self._space_checked = 0.0
        self._space_low = False
        self._space_near = False
        self.meta: MetaStore
        self.packs: PackStore
        self.content: ContentStore

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the store (creating it on first use), take its lock, and recover from a crash."""
        cfg = self.cfg
        if cfg.data_dir.is_dir() and not cfg.db_path.exists():
            others = [p.name for p in cfg.data_dir.iterdir() if p.name not in ("lock", "packs", "tmp")]
            if others:
                raise db.StoreError(f"{cfg.data_dir} is not a nexusfs data directory (it holds "
                                    f"{len(others)} other entries, e.g. {others[0]!r})")
        elif not cfg.data_dir.exists() and not cfg.data_dir.parent.is_dir():
            raise db.StoreError(f"data directory {cfg.data_dir} does not exist, nor its parent")
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            cfg.pack_dir.mkdir(exist_ok=True)
            cfg.spill_dir.mkdir(exist_ok=True)
        except OSError as e:
            raise db.StoreError(f"cannot use data directory {cfg.data_dir}: {e.strerror}") from e
        if not os.access(cfg.data_dir, os.W_OK):
            raise db.StoreError(f"data directory {cfg.data_dir} is not writable")
        fd = os.open(cfg.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise db.StoreError(f"data directory {cfg.data_dir} is in use by another nexusfs process")
        self._lock_fd = fd
        try:
            conn = db.open_store(cfg.db_path, root_uid=os.geteuid(), root_gid=os.getegid())
        except Exception as e:
            os.close(fd)
            self._lock_fd = None
            if isinstance(e, db.StoreError):
                raise
            raise db.StoreError(f"cannot open metadata in {cfg.data_dir}: {e}") from e
        self.meta = MetaStore(conn)
        self.packs = PackStore(cfg.pack_dir, cfg.pack_max)
        self.content = ContentStore(cfg, self.meta, self.packs)
        self._recover()
        self.caps = self.meta.xattr_inodes(XATTR_CAPS)

    def _recover(self) -> None:
        for leftover in self.cfg.spill_dir.iterdir():
            leftover.unlink(missing_ok=True)
        orphans = self.meta.orphan_inodes()
        for ino in orphans:
            self.meta.delete_inode(ino)
        if orphans:
            log.info("recovery: removed %d unlinked inodes left by an earlier run", len(orphans))
        self.meta.commit()

    async def close(self) -> None:
        """Commit every buffer, make everything durable, release the store."""
        for ino in list(self.dirty):
            await self.commit_file(ino)
        for ino in [i for i in self.opens if self.opens[i] > 0]:
            self.opens[ino] = 0
        self.lookups.clear()
        self._purge_unlinked_all()
        await self.sync()
        try:
            self.meta.checkpoint()
        except Exception as e:            # e.g. a full disk: the WAL stays, which is consistent
            log.warning("checkpoint at close failed: %s", e)
        self.meta.close()
        self.packs.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def sync(self, durable: bool = True) -> None:
        """Commit the batch; with ``durable``, only after the packs it references are synced,
        and fsync the WAL afterwards (a power cut then loses nothing committed)."""
        while self.meta.need_gen > self.packs.synced_gen:
            await trio.to_thread.run_sync(self.packs.sync)
        self.meta.commit()
        if durable:
            await trio.to_thread.run_sync(self._fsync_wal)

    def _fsync_wal(self) -> None:
        for suffix in ("-wal", ""):
            path = str(self.cfg.db_path) + suffix
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def quiesced(self):
        """Exclusive access for GC: no content commit runs while it is held."""
        return self.gate.exclusive()

    def start_gc(self, force: bool = False) -> None:
        """Collect garbage in the background (one collection at a time); ``force`` (a full
        disk) runs it even without known churn, at most every few seconds."""
        if self._gc_running:
            return
        if not self.garbage_hint and not (force and time.monotonic() - self._gc_last > 5):
            return
        self._gc_running = True
        self._gc_last = time.monotonic()
        trio.lowlevel.spawn_system_task(self._gc_task)

    async def _gc_task(self) -> None:
        from .gc import collect
        try:
            self.garbage_hint = 0
            await collect(self)
            self._space_checked = 0.0
        except Exception:
            log.exception("garbage collection failed")
        finally:
            self._gc_running = False

    async def periodic(self) -> None:
        """The batch timer's tick: commit idle buffers, then the batch (not fsynced)."""
        limit = time.monotonic() - self.cfg.idle_commit
        for ino, df in list(self.dirty.items()):
            if df.since < limit:
                await self.commit_file(ino)
        if self.meta.in_txn:
            await self.sync(durable=False)
        if self.garbage_hint > self.cfg.gc_threshold:
            self.start_gc()

    # -- attributes ---------------------------------------------------------------------------
    def _attr(self, ino: int) -> Attr:
        attr = self.meta.get_attr(ino)
        if attr is None:
            raise FsError(errno.ENOENT)
        df = self.dirty.get(ino)
        if df is not None:
            attr.size = df.size
            if df.mtime_ns is not None:
                attr.mtime_ns = attr.ctime_ns = max(df.mtime_ns, attr.ctime_ns)
        return attr

    def _entry(self, ino: int) -> Attr:
        """Attributes for an entry reply: the kernel now holds one more lookup reference."""
        attr = self._attr(ino)
        self.lookups[ino] = self.lookups.get(ino, 0) + 1
        return attr

    async def getattr(self, ino: int, caller: Caller | None = None) -> Attr:
        return self._attr(ino)

    async def lookup(self, parent: int, name: bytes, caller: Caller | None = None) -> Attr:
        check_name(name) if name not in (b".", b"..") else None
        if name == b".":
            return self._entry(parent)
        if name == b"..":
            return self._entry(self.meta.parent_of(parent) or ROOT_INO)
        self._require_dir(parent)
        ino = self.meta.lookup(parent, name)
        if ino is None:
            raise FsError(errno.ENOENT)
        return self._entry(ino)

    def forget(self, items: list[tuple[int, int]]) -> None:
        for ino, n in items:
            left = self.lookups.get(ino, 0) - n
            if left > 0:
                self.lookups[ino] = left
            else:
                self.lookups.pop(ino, None)
                self._maybe_purge(ino)

    def _require_dir(self, ino: int) -> Attr:
        attr = self.meta.get_attr(ino)
        if attr is None:
            raise FsError(errno.ENOENT)
        if not st.S_ISDIR(attr.mode):
            raise FsError(errno.ENOTDIR)
        return attr

    async def setattr(self, ino: int, caller: Caller, *, mode: int | None = None,
                      uid: int | None = None, gid: int | None = None, size: int | None = None,
                      atime_ns: int | None = None, mtime_ns: int | None = None,
                      ctime_ns: int | None = None, fh: int | None = None) -> Attr:
        attr = self._attr(ino)
        now = now_ns()
        cols: dict = {}
        if uid is not None and uid != attr.uid and caller.uid != 0:
            raise FsError(errno.EPERM)
        if gid is not None and gid != attr.gid and caller.uid != 0 and (
                caller.uid != attr.uid or (gid != caller.gid and gid not in caller.groups)):
            raise FsError(errno.EPERM)
        if mode is not None:
            cols["mode"] = st.S_IFMT(attr.mode) | (mode & 0o7777)
        if (uid is not None and uid != attr.uid) or (gid is not None and gid != attr.gid):
            if not st.S_ISDIR(attr.mode) and mode is None:
                m = attr.mode & ~st.S_ISUID
                if m & st.S_IXGRP:
                    m &= ~st.S_ISGID
                cols["mode"] = m
        if uid is not None:
            cols["uid"] = uid
        if gid is not None:
            cols["gid"] = gid
        if atime_ns is not None:
            cols["atime_ns"] = atime_ns
        if mtime_ns is not None:
            cols["mtime_ns"] = mtime_ns
        if size is not None:
            if st.S_ISDIR(attr.mode):
                raise FsError(errno.EISDIR)
            if not st.S_ISREG(attr.mode):
                raise FsError(errno.EINVAL)
            if size > self.cfg.max_file_size:
                raise FsError(errno.EFBIG)
            async with self._lock(ino):
                df = self._dirty(ino)
                await self._settle(df)
                df.truncate(size)
                df.mtime_ns = now
                if mtime_ns is None:
                    cols["mtime_ns"] = now
            if fh is None:               # truncate(2) by path: no release will follow
                await self.commit_file(ino)      # (takes the inode lock itself: not re-entrant)
        cols["ctime_ns"] = ctime_ns if ctime_ns is not None else now
        self.meta.update_attr(ino, **cols)
        df = self.dirty.get(ino)
        if df is not None and mtime_ns is not None:
            df.mtime_ns = None
        return self._attr(ino)

    # -- creating names -----------------------------------------------------------------------
    def _new_owner(self, parent_attr: Attr, caller: Caller, mode: int) -> tuple[int, int]:
        """(gid, mode) for a new inode: setgid directories pass their group (and, to
        subdirectories, the setgid bit) down."""
        if parent_attr.mode & st.S_ISGID:
            if st.S_ISDIR(mode):
                mode |= st.S_ISGID
            return parent_attr.gid, mode
        return caller.gid, mode

    def _prepare_create(self, parent: int, name: bytes) -> Attr:
        check_name(name)
        pattr = self._require_dir(parent)
        if pattr.nlink <= 0:
            raise FsError(errno.ENOENT)
        if self.meta.lookup(parent, name) is not None:
            raise FsError(errno.EEXIST)
        return pattr

    def _make(self, parent: int, name: bytes, mode: int, caller: Caller, *, rdev: int = 0,
              target: bytes | None = None) -> Attr:
        pattr = self._prepare_create(parent, name)
        self._check_space()
        gid, mode = self._new_owner(pattr, caller, mode)
        now = now_ns()
        is_dir = st.S_ISDIR(mode)
        ino = self.meta.create_inode(mode, caller.uid, gid, now, nlink=2 if is_dir else 1,
                                     rdev=rdev, target=target)
        self.meta.add_dentry(parent, name, ino)
        self.meta.touch_dir(parent, now, 1 if is_dir else 0)
        return self._entry(ino)

    async def mkdir(self, parent: int, name: bytes, mode: int, caller: Caller) -> Attr:
        return self._make(parent, name, st.S_IFDIR | (mode & 0o7777), caller)

    async def mknod(self, parent: int, name: bytes, mode: int, rdev: int, caller: Caller) -> Attr:
        kind = st.S_IFMT(mode) or st.S_IFREG
        if kind in (st.S_IFCHR, st.S_IFBLK) and caller.uid != 0:
            raise FsError(errno.EPERM)
        if kind not in (st.S_IFREG, st.S_IFIFO, st.S_IFSOCK, st.S_IFCHR, st.S_IFBLK):
            raise FsError(errno.EINVAL)
        return self._make(parent, name, kind | (mode & 0o7777), caller, rdev=rdev)

    async def symlink(self, parent: int, name: bytes, target: bytes, caller: Caller) -> Attr:
        if len(target) > SYMLINK_MAX:
            raise FsError(errno.ENAMETOOLONG)
        if not target:
            raise FsError(errno.ENOENT)
        return self._make(parent, name, st.S_IFLNK | 0o777, caller, target=target)

    async def readlink(self, ino: int, caller: Caller | None = None) -> bytes:
        attr = self._attr(ino)
        if not st.S_ISLNK(attr.mode):
            raise FsError(errno.EINVAL)
        return self.meta.readlink(ino)

    async def link(self, ino: int, parent: int, name: bytes, caller: Caller) -> Attr:
        attr = self._attr(ino)
        if st.S_ISDIR(attr.mode):
            raise FsError(errno.EPERM)
        if attr.nlink <= 0:
            raise FsError(errno.ENOENT)
        self._prepare_create(parent, name)
        now = now_ns()
        self.meta.add_dentry(parent, name, ino)
        self.meta.add_nlink(ino, 1, now)
        self.meta.touch_dir(parent, now)
        return self._entry(ino)

    # -- removing names -----------------------------------------------------------------------
    async def unlink(self, parent: int, name: bytes, caller: Caller) -> None:
        check_name(name)
        self._require_dir(parent)
        ino = self.meta.lookup(parent, name)
        if ino is None:
            raise FsError(errno.ENOENT)
        attr = self._attr(ino)
        if st.S_ISDIR(attr.mode):
            raise FsError(errno.EISDIR)
        now = now_ns()
        self.meta.remove_dentry(parent, name)
        self.meta.touch_dir(parent, now)
        self._drop_link(ino, attr, now)

    async def rmdir(self, parent: int, name: bytes, caller: Caller) -> None:
        if name == b".":
            raise FsError(errno.EINVAL)
        if name == b"..":
            raise FsError(errno.ENOTEMPTY)
        check_name(name)
        self._require_dir(parent)
        ino = self.meta.lookup(parent, name)
        if ino is None:
            raise FsError(errno.ENOENT)
        attr = self._attr(ino)
        if not st.S_ISDIR(attr.mode):
            raise FsError(errno.ENOTDIR)
        if self.meta.has_children(ino):
            raise FsError(errno.ENOTEMPTY)
        now = now_ns()
        self.meta.remove_dentry(parent, name)
        self.meta.touch_dir(parent, now, -1)
        self.meta.update_attr(ino, nlink=0, ctime_ns=now)
        self._maybe_purge(ino)

    def _drop_link(self, ino: int, attr: Attr, now: int) -> None:
        if st.S_ISDIR(attr.mode):
            self.meta.update_attr(ino, nlink=0, ctime_ns=now)
        else:
            self.meta.add_nlink(ino, -1, now)
        self._maybe_purge(ino)

    def _maybe_purge(self, ino: int) -> None:
        """Delete an inode once no name, no kernel reference and no open handle is left."""
        if ino == ROOT_INO or self.lookups.get(ino) or self.opens.get(ino):
            return
        attr = self.meta.get_attr(ino)
        if attr is None or attr.nlink > 0:
            return
        df = self.dirty.pop(ino, None)
        if df is not None:
            df.close()
        self.garbage_hint += attr.size
        self.meta.delete_inode(ino)
        self.content.forget(ino)
        self.caps.discard(ino)
        self.locks.pop(ino, None)

    def _purge_unlinked_all(self) -> None:
        for ino in self.meta.orphan_inodes():
            self._maybe_purge(ino)

    # -- rename -------------------------------------------------------------------------------
    def _is_ancestor(self, ancestor: int, ino: int) -> bool:
        """True if ``ancestor`` is ``ino`` or one of its ancestors (directories only)."""
        seen = 0
        while ino != ROOT_INO and seen < 100000:
            if ino == ancestor:
                return True
            parent = self.meta.parent_of(ino)
            if parent is None:
                return False
            ino = parent
            seen += 1
        return ancestor == ROOT_INO

    async def rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes,
                     flags: int, caller: Caller) -> None:
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise FsError(errno.EINVAL)
        check_name(old_name)
        check_name(new_name)
        self._require_dir(old_parent)
        self._require_dir(new_parent)
        src = self.meta.lookup(old_parent, old_name)
        if src is None:
            raise FsError(errno.ENOENT)
        dst = self.meta.lookup(new_parent, new_name)
        sattr = self._attr(src)
        src_dir = st.S_ISDIR(sattr.mode)
        now = now_ns()
        if flags & RENAME_EXCHANGE:
            if dst is None:
                raise FsError(errno.ENOENT)
            dattr = self._attr(dst)
            dst_dir = st.S_ISDIR(dattr.mode)
            if (src_dir and self._is_ancestor(src, new_parent)) or (
                    dst_dir and self._is_ancestor(dst, old_parent)):
                raise FsError(errno.EINVAL)
            self.meta.repoint_dentry(old_parent, old_name, dst)
            self.meta.repoint_dentry(new_parent, new_name, src)
            if old_parent != new_parent and src_dir != dst_dir:
                delta = 1 if src_dir else -1
                self.meta.touch_dir(new_parent, now, delta)
                self.meta.touch_dir(old_parent, now, -delta)
            else:
                self.meta.touch_dir(old_parent, now)
                self.meta.touch_dir(new_parent, now)
            self.meta.update_attr(src, ctime_ns=now)
            self.meta.update_attr(dst, ctime_ns=now)
            return
        if dst is not None:
            if flags & RENAME_NOREPLACE:
                raise FsError(errno.EEXIST)
            if dst == src:
                return                       # two names of one inode: POSIX says do nothing
            dattr = self._attr(dst)
            if src_dir and not st.S_ISDIR(dattr.mode):
                raise FsError(errno.ENOTDIR)
            if not src_dir and st.S_ISDIR(dattr.mode):
                raise FsError(errno.EISDIR)
            if st.S_ISDIR(dattr.mode) and self.meta.has_children(dst):
                raise FsError(errno.ENOTEMPTY)
        if src_dir and self._is_ancestor(src, new_parent):
            raise FsError(errno.EINVAL)
        if dst is not None:
            self.meta.remove_dentry(new_parent, new_name)
            if st.S_ISDIR(dattr.mode):
                self.meta.touch_dir(new_parent, now, -1)
            self._drop_link(dst, dattr, now)
        self.meta.remove_dentry(old_parent, old_name)
        self.meta.add_dentry(new_parent, new_name, src)
        if src_dir and old_parent != new_parent:
            self.meta.touch_dir(old_parent, now, -1)
            self.meta.touch_dir(new_parent, now, 1)
        else:
            self.meta.touch_dir(old_parent, now)
            if new_parent != old_parent:
                self.meta.touch_dir(new_parent, now)
        self.meta.update_attr(src, ctime_ns=now)

    # -- directories --------------------------------------------------------------------------
    async def opendir(self, ino: int, caller: Caller | None = None) -> int:
        self._require_dir(ino)
        fh = self._new_fh()
        self.dir_handles[fh] = ino
        return fh

    async def readdir(self, fh: int, start_id: int, limit: int = 1000) -> list[DirEntry]:
        """Entries after cookie ``start_id``; cookies 1 and 2 are '.' and '..'. The caller
        reports each entry it passes on to the kernel with ``entry_reported``."""
        ino = self.dir_handles.get(fh)
        if ino is None:
            raise FsError(errno.EBADF)
        out: list[DirEntry] = []
        if start_id < 1:
            out.append(DirEntry(b".", self._attr(ino), 1))
        if start_id < 2:
            parent = self.meta.parent_of(ino) or ROOT_INO
            out.append(DirEntry(b"..", self._attr(parent), 2))
        after = max(0, start_id - 2)
        for did, name, attr in self.meta.list_dir(ino, after, limit):
            df = self.dirty.get(attr.ino)
            if df is not None:
                attr = self._attr(attr.ino)
            out.append(DirEntry(name, attr, did + 2))
        return out

    def entry_reported(self, entry: DirEntry) -> None:
        if entry.name not in (b".", b".."):
            self.lookups[entry.attr.ino] = self.lookups.get(entry.attr.ino, 0) + 1

    async def releasedir(self, fh: int) -> None:
        self.dir_handles.pop(fh, None)

    # -- files (open/read/write/commit) -------------------------------------------------------
    def _new_fh(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    def _lock(self, ino: int) -> trio.Lock:
        lock = self.locks.get(ino)
        if lock is None:
            lock = self.locks[ino] = trio.Lock()
        return lock

    def _dirty(self, ino: int) -> DirtyFile:
        df = self.dirty.get(ino)
        if df is None:
            attr = self.meta.get_attr(ino)
            df = self.dirty[ino] = DirtyFile(attr.size, str(self.cfg.spill_dir),
                                             self.cfg.spill_threshold)
        return df

    async def open(self, ino: int, flags: int, caller: Caller | None = None) -> int:
        attr = self._attr(ino)
        if st.S_ISDIR(attr.mode):
            raise FsError(errno.EISDIR)
        if not st.S_ISREG(attr.mode):
            raise FsError(errno.ENXIO)
        acc = flags & os.O_ACCMODE
        writable = acc in (os.O_WRONLY, os.O_RDWR)
        fh = self._new_fh()
        self.handles[fh] = Handle(ino, writable, bool(flags & os.O_APPEND))
        self.opens[ino] = self.opens.get(ino, 0) + 1
        if flags & os.O_TRUNC and writable and attr.size:
            await self.setattr(ino, caller or Caller(), size=0, fh=fh)
        return fh

    async def create(self, parent: int, name: bytes, mode: int, flags: int,
                     caller: Caller) -> tuple[int, Attr]:
        attr = self._make(parent, name, st.S_IFREG | (mode & 0o7777), caller)
        fh = self._new_fh()
        self.handles[fh] = Handle(attr.ino, True, bool(flags & os.O_APPEND))
        self.opens[attr.ino] = self.opens.get(attr.ino, 0) + 1
        return fh, attr

    def _handle(self, fh: int) -> Handle:
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
            reserve = max(4 << 20, min(256 << 20, s.f_blocks * s.f_frsize // 50))
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
            df = self._dirty(h.ino)
            if df.error:
                raise FsError(df.error)
            if h.append:
                offset = df.size
            if df.streaming is not None and (offset < df.streaming_end or
                                             df.dirty_bytes() > 4 * self.cfg.stream_commit):
                await df.streaming.wait()        # never write under bytes being stored
            df.write(offset, data)
            df.mtime_ns = now_ns()
            if df.streaming is None:
                rng = self.content.streamable(h.ino, df)
                if rng is not None:
                    self._start_stream(h.ino, df, rng)
        return len(data)

    def _start_stream(self, ino: int, df: DirtyFile, rng: tuple[int, int]) -> None:
        """Store a sequential writer's full chunks in the background while it keeps writing,
        so a large file never sits whole in a buffer and chunking overlaps the FUSE traffic."""
        df.streaming = trio.Event()
        df.streaming_end = rng[1]
        snapshot = df.buf.pread(rng[0], rng[1] - rng[0])
        trio.lowlevel.spawn_system_task(self._stream_task, ino, df, rng, snapshot)

    async def _stream_task(self, ino: int, df: DirtyFile, rng: tuple[int, int], snapshot) -> None:
        try:
            async with self.gate.shared():
                done = await self.content.commit_stream(ino, df, rng, snapshot)
            if done is not None:
                self.meta.update_attr(ino, size=done)
                self.meta.update_blocks(ino)
        except Exception as e:
            df.error = getattr(e, "errno", None) or errno.EIO
            log.error("write of %s failed: %s", self.path_of(ino), e)
        finally:
            event, df.streaming = df.streaming, None
            event.set()

    async def _settle(self, df: DirtyFile) -> None:
        """Wait for a background streaming commit of ``df`` to end."""
        while df.streaming is not None:
            await df.streaming.wait()

    async def commit_file(self, ino: int) -> None:
        """Chunk and store an inode's buffered writes into the current batch (not yet durable)."""
        async with self._lock(ino):
            df = self.dirty.get(ino)
            if df is None:
                return
            await self._settle(df)
            if df.error:
                err, df.error = df.error, 0
                raise FsError(err)
            if self.meta.get_attr(ino) is None:
                self.dirty.pop(ino).close()
                return
            try:
                async with self.gate.shared():
                    await self.content.commit(ino, df)
            except CorruptChunk as e:
                log.error("commit of %s failed: %s", self.path_of(ino), e)
                raise FsError(errno.EIO) from e
            except OSError as e:
                log.error("commit of %s failed: %s", self.path_of(ino), e)
                raise FsError(e.errno or errno.EIO) from e
            self.garbage_hint += df.dirty_bytes() + 1
            cols = {"size": df.size}
            if df.mtime_ns is not None:
                cols["mtime_ns"] = cols["ctime_ns"] = df.mtime_ns
            self.meta.update_attr(ino, **cols)
            self.meta.update_blocks(ino)
            del self.dirty[ino]
            df.close()

    async def flush(self, fh: int) -> None:
        h = self._handle(fh)
        if h.ino in self.dirty:
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

    # -- extended attributes ------------------------------------------------------------------
    def _check_xattr_name(self, name: bytes, attr: Attr, caller: Caller, write: bool) -> None:
        if len(name) > self.cfg.xattr_name_max or not name:
            raise FsError(errno.ERANGE)
        if not name.startswith(_XATTR_NAMESPACES):
            raise FsError(errno.EOPNOTSUPP)
        if name.startswith(b"trusted.") and caller.uid != 0:
            raise FsError(errno.EPERM if write else errno.ENODATA)
        if write and name.startswith(b"user.") and not (st.S_ISREG(attr.mode) or st.S_ISDIR(attr.mode)):
            raise FsError(errno.EPERM)
        if write and name.startswith(b"security.") and caller.uid != 0 and caller.uid != attr.uid:
            raise FsError(errno.EPERM)

    async def getxattr(self, ino: int, name: bytes, caller: Caller) -> bytes:
        if name == XATTR_CAPS and ino not in self.caps:
            raise FsError(errno.ENODATA)          # asked before every write: answer from memory
        attr = self._attr(ino)
        self._check_xattr_name(name, attr, caller, write=False)
        value = self.meta.get_xattr(ino, name)
        if value is None:
            raise FsError(errno.ENODATA)
        return value

    async def setxattr(self, ino: int, name: bytes, value: bytes, caller: Caller) -> None:
        attr = self._attr(ino)
        self._check_xattr_name(name, attr, caller, write=True)
        if len(value) > self.cfg.xattr_value_max:
            raise FsError(errno.E2BIG)
        self.meta.set_xattr(ino, name, value)
        self.meta.update_attr(ino, ctime_ns=now_ns())
        if name == XATTR_CAPS:
            self.caps.add(ino)

    async def listxattr(self, ino: int, caller: Caller) -> list[bytes]:
        self._attr(ino)
        names = self.meta.list_xattrs(ino)
        if caller.uid != 0:
            names = [n for n in names if not n.startswith(b"trusted.")]
        return names

    async def removexattr(self, ino: int, name: bytes, caller: Caller) -> None:
        attr = self._attr(ino)
        self._check_xattr_name(name, attr, caller, write=True)
        if not self.meta.remove_xattr(ino, name):
            raise FsError(errno.ENODATA)
        self.meta.update_attr(ino, ctime_ns=now_ns())
        if name == XATTR_CAPS:
            self.caps.discard(ino)

    # -- whole filesystem ---------------------------------------------------------------------
    async def statfs(self, caller: Caller | None = None) -> StatFs:
        s = os.statvfs(self.cfg.data_dir)
        files = self.meta.inode_count()
        return StatFs(bsize=4096, frsize=s.f_frsize, blocks=s.f_blocks, bfree=s.f_bfree,
                      bavail=s.f_bavail, files=files + s.f_ffree, ffree=s.f_ffree,
                      favail=s.f_favail)

    def path_of(self, ino: int) -> str:
        """A path for log lines (one of them, for hard links); '?' parts when detached."""
        parts = []
        seen = 0
        while ino != ROOT_INO and seen < 4096:
            found = self.meta.name_of(ino)
            if found is None:
                parts.append(b"<unlinked>")
                break
            ino, name = found
            parts.append(name)
            seen += 1
        return "/" + "/".join(p.decode(errors="replace") for p in reversed(parts))

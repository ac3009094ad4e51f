"""The filesystem: inode-based async operations with POSIX semantics, callable without a mount.

Owns the in-memory state of a mounted store: kernel lookup counts, open handles, write buffers,
per-inode commit locks, the batch commit, and the operation log around every mutation. The
operations themselves live in mixins: namespace.py (names), files.py (open files and content),
xattrs.py. Permission checks on ordinary access are left to the kernel (the mount uses
``default_permissions``); what the kernel does not decide (who may chown, which xattr namespaces
are writable, rename rules, name and size limits) is decided here.

Concurrency: every method runs on the trio thread. Methods that do not await are atomic. Those
that await (content commits, reads that miss the cache, durable commits) hold the inode's lock
against writers of the same inode; namespace operations never await. ``meta.seq`` (the operation
mutations belong to) is set right before each synchronous block of mutations.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat as st
import time
from contextlib import contextmanager

import trio
from cachetools import LRUCache

from ..access.acl import ACL_ACCESS
from ..chunks.packs import PackStore
from ..config import Config
from ..meta import db
from ..meta.store import MetaStore, space_figures
from ..meta.timetravel import TimeTravel
from ..search.service import SearchService
from ..types import ROOT_INO, Attr, Caller, FsError, StatFs
from .buffers import DirtyFile
from .access import AccessControl
from .accessview import AccessView
from .content import ContentStore, CorruptChunk
from .docviews import DocViews
from .files import FileOps, Handle  # noqa: F401  (Handle re-exported for callers)
from .gate import Gate
from .names import check_name, now_ns
from .namespace import RENAME_EXCHANGE, RENAME_NOREPLACE, NamespaceOps  # noqa: F401
from .routing import VirtualRouting
from .vtree import VirtualTree
from .xattrs import RARE_XATTRS, XATTR_CAPS, XattrOps  # noqa: F401

log = logging.getLogger("nexusfs.fs")

class RealFS(NamespaceOps, FileOps, XattrOps):
    """The real tree (lifecycle, attributes, the log); FileSystem adds the /.nexus/ routing."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.lookups: dict[int, int] = {}
        self.opens: dict[int, int] = {}
        self.dirty: dict[int, DirtyFile] = {}
        self.locks: dict[int, trio.Lock] = {}
        self.handles: dict[int, Handle] = {}
        self.dir_handles: dict[int, int] = {}
        self.direct_io: dict[int, bool] = {}   # virtual files the kernel must not cache
        self._next_fh = 1
        self._lock_fd: int | None = None
        self._dir_paths: LRUCache = LRUCache(maxsize=8192)   # directory inode -> its path
        # {name: {ino: value}} of the xattrs few inodes have, kept current by the store
        self.rare_xattrs: dict[bytes, dict[int, bytes]] = {n: {} for n in RARE_XATTRS}
        # True under a FUSE writeback cache: the kernel keeps mtime/ctime of written files
        # itself and sends them with setattr; write() must not stamp the daemon's clock then,
        # or the stored times drift from what stat showed while mounted
        self.kernel_cmtime = False
        self.gate = Gate()
        self.garbage_hint = 0            # bytes probably freed since the last GC
        self._gc_running = False
        self._gc_last = 0.0
        self._space_checked = 0.0
        self._space_low = False
        self._space_near = False
        self.invalidate_hook = None      # set by the FUSE adapter: async (inodes, entries)
        self.invalidate_attrs_hook = None   # set by the FUSE adapter: async (inodes)
        self.stats_sources: list = []    # (figures so far) -> more figures; the runtime adds its own
        self._stale: tuple[set, set] = (set(), set())
        self.search = SearchService(self)   # the index: hooks queue, a background task indexes
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
        self._spill_dir = str(cfg.spill_dir)
        self.tt = TimeTravel(self.meta)
        from ..history.service import HistoryService
        self.history = HistoryService(self)
        self.vtree = VirtualTree(self, self.history)
        self.docs = DocViews(self)
        self._recover()
        self.search.start()
        self.rare_xattrs = self.meta.keep_xattrs(RARE_XATTRS)
        self.access = AccessControl(self)

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
        self.docs.close()
        await self.search.close()
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
        trio.lowlevel.spawn_system_task(self._gc_task, force)

    async def collect_garbage(self, progress=None):
        """Run a full collection now (retention, sweep, compaction); returns a GcResult."""
        from .gc import collect
        self.garbage_hint = 0
        return await collect(self, progress=progress)

    async def _gc_task(self, emergency: bool = False) -> None:
        from .gc import collect
        try:
            self.garbage_hint = 0
            await collect(self, emergency=emergency)
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
        self.search.tick()
        if self.packs.close_retired():
            self._space_checked = 0.0         # space came back: look again
        if self.access.tick(time.time_ns()):
            await self.refresh_permissions()  # a grant expired: the kernel must re-read ACLs

    async def refresh_permissions(self) -> None:
        """Make the kernel re-read the attributes and ACLs of every inode it holds (after a
        grant changed or expired): only attributes, cached pages stay."""
        if self.invalidate_attrs_hook is not None:
            await self.invalidate_attrs_hook(list(self.lookups))

    # -- attributes ---------------------------------------------------------------------------
    def _attr(self, ino: int) -> Attr:
        attr = self.meta.get_attr(ino)
        if attr is None:
            raise FsError(errno.ENOENT)
        df = self.dirty.get(ino)
        if df is not None:
            attr.size = df.size
            if df.mtime_ns is not None:       # (a chmod after the write keeps its later ctime)
                attr.mtime_ns = df.mtime_ns
                attr.ctime_ns = max(df.mtime_ns, attr.ctime_ns)
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
        attr = self.meta.lookup_attr(parent, name)
        if attr is None:
            raise FsError(errno.ENOENT)
        return self._entry(attr.ino)          # (the row read is reused: no second query)

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

    # -- kernel caches and the past -----------------------------------------------------------
    def invalidate(self, inodes, entries) -> None:
        """Note that these inodes and (parent, name) entries changed behind the kernel's back
        (undo, restore); ``settle_kernel`` then makes it drop them from its caches."""
        for ino in inodes:
            self.content.forget(ino)
        self.forget_paths()
        self.search.touched_many(inodes)
        if self.invalidate_hook is not None:
            self._stale[0].update(inodes)
            self._stale[1].update(entries)

    async def settle_kernel(self) -> None:
        """Have the kernel forget what ``invalidate`` noted, before the command that changed it
        replies (so the caller's next `cat` or `ls` sees the new state)."""
        if self.invalidate_hook is not None and (self._stale[0] or self._stale[1]):
            stale, self._stale = self._stale, (set(), set())
            await self.invalidate_hook(*stale)

    def past_view(self, ino: int, seq: int):
        """(size, extent map) of ``ino`` as of ``seq``: what reads of the past need, worth
        keeping for the life of an open handle."""
        from .content import ExtentMap
        attr = self.tt.attr(ino, seq)
        if attr is None:
            # the version an unlink cut: the file's last state is the one just before it
            seq -= 1
            attr = self.tt.attr(ino, seq)
            if attr is None:
                raise FsError(errno.ENOENT)
        return attr.size, ExtentMap(self.tt.extents(ino, seq))

    async def read_at(self, ino: int, seq: int, offset: int = 0, size: int | None = None,
                      view=None) -> bytes:
        """Content of ``ino`` as of ``seq`` (whole, or ``size`` bytes at ``offset``)."""
        fsize, emap = view or self.past_view(ino, seq)
        end = fsize if size is None else min(fsize, offset + size)
        if offset >= end:
            return b""
        try:
            if end - offset <= 256 * 1024 and not self.content.needs_io(emap, offset, end):
                return self.content.assemble(emap, None, offset, end - offset)
            return await trio.to_thread.run_sync(self.content.assemble, emap, None, offset,
                                                 end - offset)
        except CorruptChunk as e:
            log.error("read of %s at %d failed: %s", self.path_of(ino), seq, e)
            raise FsError(errno.EIO) from e

    def stats(self) -> dict:
        s = space_figures(self.meta.conn)
        s.update({"last_seq": self.meta.last_seq, "dirty_files": len(self.dirty),
                  "dirty_bytes": sum(df.dirty_bytes() for df in self.dirty.values()),
                  "open_files": len(self.handles), "chunk_cache_hits": self.content.cache.hits,
                  "chunk_cache_misses": self.content.cache.misses,
                  "packs": len(self.packs.packs()), "pack_bytes": self.packs.total_bytes(),
                  "bytes_written": self.content.bytes_written,
                  "bytes_deduplicated": self.content.bytes_deduplicated,
                  "parse_queue": self.docs.queue, "parses": self.docs.parses,
                  "view_cache_hits": self.docs.cache_hits})
        for source in self.stats_sources:
            s.update(source(s))
        return s

    # -- the operation log --------------------------------------------------------------------
    def _begin(self, op: str, caller: Caller, *, path: str | None = None,
               path2: str | None = None, ino: int | None = None, undo_of: int | None = None) -> int:
        return self.meta.begin_op(op, uid=caller.uid, gid=caller.gid, pid=caller.pid,
                                  process=caller.process, agent=caller.agent, path=path,
                                  path2=path2, ino=ino, time_ns=now_ns(), undo_of=undo_of)

    def _child_path(self, parent: int | None, name: bytes | None) -> str | None:
        if parent is None:
            return None
        base = self.path_of(parent, is_dir=True)
        return (base.rstrip("/") + "/" + name.decode(errors="backslashreplace")) if name else base

    @contextmanager
    def _op(self, op: str, caller: Caller, *, parent: int | None = None, name: bytes | None = None,
            parent2: int | None = None, name2: bytes | None = None, path: str | None = None,
            path2: str | None = None, ino: int | None = None):
        """Run one logged mutation: allocate its sequence number, record the caller and paths,
        and record the errno if it fails."""
        seq = self.meta.begin_op(op, uid=caller.uid, gid=caller.gid, pid=caller.pid,
                                 process=caller.process, agent=caller.agent,
                                 path=path or self._child_path(parent, name),
                                 path2=path2 or self._child_path(parent2, name2), ino=ino,
                                 time_ns=now_ns(), deferred=True)
        try:
            yield seq
        except FsError as e:
            self.meta.end_op(seq, e.errno)
            raise
        finally:
            self.meta.finish_op(seq)

    def _cut_version(self, ino: int, seq: int, size: int | None = None,
                     mtime_ns: int | None = None) -> None:
        """Record that ``ino`` (a regular file) has a version as of ``seq`` (``size`` and
        ``mtime_ns`` when the caller knows them: a committed write)."""
        if size is not None and mtime_ns is not None:
            self.meta.add_version(ino, seq, size, mtime_ns)
            return
        attr = self.meta.get_attr(ino)
        if attr is not None and st.S_ISREG(attr.mode):
            df = self.dirty.get(ino)
            self.meta.add_version(ino, seq, df.size if df else attr.size, attr.mtime_ns)

    # -- attributes (setattr) -----------------------------------------------------------------
    async def setattr(self, ino: int, caller: Caller, *, mode: int | None = None,
                      uid: int | None = None, gid: int | None = None, size: int | None = None,
                      atime_ns: int | None = None, mtime_ns: int | None = None,
                      ctime_ns: int | None = None, fh: int | None = None) -> Attr:
        attr = self._attr(ino)
        if uid is not None and uid != attr.uid and caller.uid != 0:
            raise FsError(errno.EPERM)
        if gid is not None and gid != attr.gid and caller.uid != 0 and (
                caller.uid != attr.uid or (gid != caller.gid and gid not in caller.groups)):
            raise FsError(errno.EPERM)
        if size is not None:
            if st.S_ISDIR(attr.mode):
                raise FsError(errno.EISDIR)
            if not st.S_ISREG(attr.mode):
                raise FsError(errno.EINVAL)
            if size > self.cfg.max_file_size:
                raise FsError(errno.EFBIG)
            if fh is not None:
                # ftruncate (and O_TRUNC) belong to the open file's write session
                await self.truncate_buffered(ino, size, caller)
                size = None
                if mode is uid is gid is atime_ns is mtime_ns is None:
                    return self._attr(ino)
            else:
                await self.commit_file(ino)   # earlier writes are their own operation
        if (mtime_ns is not None and atime_ns is None and mode is None and uid is None
                and gid is None and size is None):
            # the kernel's write-back cache reporting the times of buffered writes: part of
            # the write session, not an operation of its own
            df = self.dirty.get(ino)
            if df is not None:
                df.mtime_ns = mtime_ns
                if ctime_ns is not None:      # the kernel's ctime too, or stat drifts later
                    self.meta.set_ctime(ino, ctime_ns)
                    # what _attr would now read, without reading it again
                    attr.size = df.size       # (an ftruncate may have come with the times)
                    attr.mtime_ns = mtime_ns
                    attr.ctime_ns = max(mtime_ns, ctime_ns)
                    return attr
            else:
                self.meta.set_times(ino, mtime_ns, ctime_ns if ctime_ns is not None else now_ns())
            return self._attr(ino)
        if (size is None and atime_ns is None and mtime_ns is None
                and uid in (None, attr.uid) and gid in (None, attr.gid)
                and (mode is None or self._same_mode(ino, attr, mode))):
            # chown to the owner it has, chmod to the mode it has (tar and cp -a do both for
            # every file): no change to log or version, only the status change time POSIX
            # asks for
            self.meta.set_ctime(ino, ctime_ns if ctime_ns is not None else now_ns())
            return self._attr(ino)
        op = ("truncate" if size is not None else "chmod" if mode is not None else
              "chown" if uid is not None or gid is not None else "utimens")
        seq = self._begin(op, caller, path=self.path_of(ino), ino=ino)
        now = now_ns()
        cols: dict = {}
        if mode is not None:
            if self.access.active and self.access.stored(ino) is None:
                shown = self.access.shown(self.meta.get_attr(ino)).mode
                if (mode & 0o070) == (shown & 0o070):
                    # chmod of what stat showed (the grants' widened mask): the owning
                    # group keeps its own bits, as on Linux, where chmod moves only the mask
                    mode = (mode & ~0o070) | (attr.mode & 0o070)
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
            async with self._lock(ino):
                df = self._dirty(ino, caller)
                await self._settle(df)
                df.seq = seq
                df.truncate(size)
                df.mtime_ns = now
                if mtime_ns is None:
                    cols["mtime_ns"] = now
            await self.commit_file(ino)
        cols["ctime_ns"] = ctime_ns if ctime_ns is not None else now
        self.meta.seq = seq
        self.meta.update_attr(ino, **cols)
        if "mode" in cols or "uid" in cols or "gid" in cols:
            self.access.on_chmod(ino, cols.get("mode", attr.mode))
        df = self.dirty.get(ino)
        if df is not None and mtime_ns is not None:
            df.mtime_ns = None                # an explicit time wins over the buffered writes'
        if size is None:
            self._cut_version(ino, seq)
        return self._attr(ino)

    def _same_mode(self, ino: int, attr: Attr, mode: int) -> bool:
        """Would a chmod to ``mode`` leave everything as it is? Not decided here where an
        ACL or a grant is involved (a chmod moves the ACL's mask; grants widen what stat
        shows): that takes the full path."""
        return ((mode & 0o7777) == (attr.mode & 0o7777) and not self.access.active
                and ino not in self.rare_xattrs[ACL_ACCESS])

    # -- whole filesystem ---------------------------------------------------------------------
    async def statfs(self, caller: Caller | None = None) -> StatFs:
        s = os.statvfs(self.cfg.data_dir)
        files = self.meta.inode_count()
        return StatFs(bsize=4096, frsize=s.f_frsize, blocks=s.f_blocks, bfree=s.f_bfree,
                      bavail=s.f_bavail, files=files + s.f_ffree, ffree=s.f_ffree,
                      favail=s.f_favail)

    def path_of(self, ino: int, is_dir: bool = False) -> str:
        """A path for log lines (one of them, for hard links); '<unlinked>' when detached.
        Directory paths are cached (``forget_paths`` drops them when directories move)."""
        parts = []
        seen = 0
        start = ino
        prefix = ""
        while ino != ROOT_INO and seen < 4096:
            cached = self._dir_paths.get(ino)
            if cached is not None:
                prefix = cached
                break
            found = self.meta.name_of(ino)
            if found is None:
                parts.append(b"<unlinked>")
                break
            ino, name = found
            parts.append(name)
            seen += 1
        if not parts:
            return prefix or "/"
        path = prefix.rstrip("/") + "/" + "/".join(p.decode(errors="replace") for p in reversed(parts))
        if is_dir and b"<unlinked>" not in parts:
            self._dir_paths[start] = path
        return path

    def forget_paths(self) -> None:
        self._dir_paths.clear()
        self.access.changed()                 # a directory moved: grants above things changed


class FileSystem(AccessView, VirtualRouting, RealFS):
    """The filesystem the FUSE adapter and the tests drive: the real tree plus /.nexus/."""

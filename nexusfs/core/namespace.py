"""Namespace operations: creating, linking, removing and renaming names; listing directories;
purging inodes nothing refers to.

A mixin of FileSystem (fs.py), which provides the store, the attribute helpers and the operation
log. Runs on the trio thread; no method here awaits, so each is atomic. Every mutation runs
inside ``self._op(...)``, which gives it its sequence number and log record.
"""
from __future__ import annotations

import errno
import stat as st

from ..access.acl import ACL_DEFAULT
from ..types import ROOT_INO, SYMLINK_MAX, Attr, Caller, DirEntry, FsError
from .names import check_name, now_ns

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


class NamespaceOps:
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

    def _make(self, op: str, parent: int, name: bytes, mode: int, caller: Caller, *,
              rdev: int = 0, target: bytes | None = None) -> Attr:
        with self._op(op, caller, parent=parent, name=name) as seq:
            pattr = self._prepare_create(parent, name)
            self._check_space()
            gid, mode = self._new_owner(pattr, caller, mode)
            acl = dflt = None
            if parent in self.rare_xattrs[ACL_DEFAULT] and not st.S_ISLNK(mode):
                mode, acl, dflt = self.access.inherit(parent, mode)
            now = now_ns()
            is_dir = st.S_ISDIR(mode)
            ino = self.meta.create_inode(mode, caller.uid, gid, now, nlink=2 if is_dir else 1,
                                         rdev=rdev, target=target)
            if acl is not None or dflt is not None:
                self.access.store_inherited(ino, acl, dflt)
            self.meta.add_dentry(parent, name, ino)
            self.meta.touch_dir(parent, now, 1 if is_dir else 0)
            self.meta.end_op(seq, 0, ino)
            self.search.touched(ino) if not is_dir else None
            return self._entry(ino)

    async def mkdir(self, parent: int, name: bytes, mode: int, caller: Caller) -> Attr:
        return self._make("mkdir", parent, name, st.S_IFDIR | (mode & 0o7777), caller)

    async def mknod(self, parent: int, name: bytes, mode: int, rdev: int, caller: Caller) -> Attr:
        kind = st.S_IFMT(mode) or st.S_IFREG
        if kind in (st.S_IFCHR, st.S_IFBLK) and caller.uid != 0:
            raise FsError(errno.EPERM)
        if kind not in (st.S_IFREG, st.S_IFIFO, st.S_IFSOCK, st.S_IFCHR, st.S_IFBLK):
            raise FsError(errno.EINVAL)
        return self._make("mknod", parent, name, kind | (mode & 0o7777), caller, rdev=rdev)

    async def symlink(self, parent: int, name: bytes, target: bytes, caller: Caller) -> Attr:
        if len(target) > SYMLINK_MAX:
            raise FsError(errno.ENAMETOOLONG)
        if not target:
            raise FsError(errno.ENOENT)
        return self._make("symlink", parent, name, st.S_IFLNK | 0o777, caller, target=target)

    async def readlink(self, ino: int, caller: Caller | None = None) -> bytes:
        attr = self._attr(ino)
        if not st.S_ISLNK(attr.mode):
            raise FsError(errno.EINVAL)
        return self.meta.readlink(ino)

    async def link(self, ino: int, parent: int, name: bytes, caller: Caller) -> Attr:
        with self._op("link", caller, path=self.path_of(ino), parent2=parent, name2=name,
                      ino=ino):
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
            self.search.touched(ino)
            if self.access.active:
                self.access.changed()         # grants above the new name now reach it
            return self._entry(ino)

    # -- removing names -----------------------------------------------------------------------
    async def unlink(self, parent: int, name: bytes, caller: Caller) -> None:
        with self._op("unlink", caller, parent=parent, name=name) as seq:
            check_name(name)
            self._require_dir(parent)
            found = self.meta.lookup_attr(parent, name)
            if found is None:
                raise FsError(errno.ENOENT)
            ino = found.ino
            attr = self._attr(ino)            # (the row just read: no second query)
            if st.S_ISDIR(attr.mode):
                raise FsError(errno.EISDIR)
            self.meta.end_op(seq, 0, ino)
            now = now_ns()
            self.meta.remove_dentry(parent, name)
            self.meta.touch_dir(parent, now)
            self._drop_link(ino, attr, now, seq)
            if attr.nlink > 1 and self.access.active:
                self.access.changed()         # the grants of the other names remain

    async def rmdir(self, parent: int, name: bytes, caller: Caller) -> None:
        with self._op("rmdir", caller, parent=parent, name=name) as seq:
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
            self.meta.end_op(seq, 0, ino)
            now = now_ns()
            self.meta.remove_dentry(parent, name)
            self.meta.touch_dir(parent, now, -1)
            self.meta.update_attr(ino, nlink=0, ctime_ns=now)
            self._dir_paths.pop(ino, None)
            self._maybe_purge(ino)

    def _drop_link(self, ino: int, attr: Attr, now: int, seq: int) -> None:
        self.search.touched(ino)
        if st.S_ISDIR(attr.mode):
            self.meta.update_attr(ino, nlink=0, ctime_ns=now)
        else:
            self._cut_version(ino, seq)
            self.meta.add_nlink(ino, -1, now)
        self._maybe_purge(ino)

    def _maybe_purge(self, ino: int) -> None:
        """Delete an inode once no name, no kernel reference and no open handle is left (its
        past states stay in history)."""
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
        op = "exchange" if flags & RENAME_EXCHANGE else "rename"
        with self._op(op, caller, parent=old_parent, name=old_name, parent2=new_parent,
                      name2=new_name) as seq:
            self._rename(old_parent, old_name, new_parent, new_name, flags, seq)

    def _rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes,
                flags: int, seq: int) -> None:
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise FsError(errno.EINVAL)
        check_name(old_name)
        check_name(new_name)
        self._require_dir(old_parent)
        if self._require_dir(new_parent).nlink <= 0:
            raise FsError(errno.ENOENT)          # a removed directory takes no new entries
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
            self.meta.end_op(seq, 0, src)
            self.forget_paths()
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
            self._cut_version(src, seq)
            self._cut_version(dst, seq)
            self.search.touched_many((src, dst))
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
        self.meta.end_op(seq, 0, src)
        if src_dir or (dst is not None and st.S_ISDIR(dattr.mode)):
            self.forget_paths()               # a directory moved: cached paths below it changed
        elif self.access.active:
            self.access.changed()             # a file moved: the grants above it changed
        if dst is not None:
            self.meta.remove_dentry(new_parent, new_name)
            if st.S_ISDIR(dattr.mode):
                self.meta.touch_dir(new_parent, now, -1)
            self._drop_link(dst, dattr, now, seq)
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
        self._cut_version(src, seq)
        self.search.touched(src)

    # -- directories --------------------------------------------------------------------------
    async def opendir(self, ino: int, caller: Caller | None = None) -> int:
        self._require_dir(ino)
        fh = self._new_fh()
        self.dir_handles[fh] = ino
        return fh

    async def readdir(self, fh: int, start_id: int, limit: int = 1000) -> list[DirEntry]:
        """Entries after cookie ``start_id``. Cookies: 1 '.', 2 '..'; the entry with id D is
        3 + 3D and its document views (NAME.txt, NAME.md) follow as 4 + 3D and 5 + 3D, so a
        listing resumes exactly where it stopped. The caller reports each entry it passes on
        to the kernel with ``entry_reported``."""
        ino = self.dir_handles.get(fh)
        if ino is None:
            raise FsError(errno.EBADF)
        out: list[DirEntry] = []
        if start_id < 1:
            out.append(DirEntry(b".", self._attr(ino), 1))
        if start_id < 2:
            parent = self.meta.parent_of(ino) or ROOT_INO
            out.append(DirEntry(b"..", self._attr(parent), 2))
        first, done_k = (0, -1) if start_id < 3 else divmod(start_id - 3, 3)
        rows = self.meta.list_dir(ino, first - 1, limit)
        shown = self.vtree.views_in(ino, rows)        # document views, batched (vtree.py)
        auto = self.cfg.auto_parse
        for did, name, attr in rows:
            base = 3 + 3 * did
            views = shown.get(did, ())
            if did > first or done_k < 0:
                if auto and views:                   # the document's name reads as its text
                    out.append(DirEntry(name, views[0][2], base))
                    continue
                df = self.dirty.get(attr.ino)
                if df is not None:
                    attr = self._attr(attr.ino)
                out.append(DirEntry(name, attr, base))
            if auto:
                continue
            for k, vname, vattr in views:
                if did > first or k > done_k:
                    out.append(DirEntry(vname, vattr, base + k))
        return out

    def entry_reported(self, entry: DirEntry) -> None:
        if entry.name not in (b".", b".."):
            self.lookups[entry.attr.ino] = self.lookups.get(entry.attr.ino, 0) + 1

    async def releasedir(self, fh: int) -> None:
        self.dir_handles.pop(fh, None)

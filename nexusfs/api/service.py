"""File operations by store path, on behalf of a caller: what the nexus API, the nexus file verbs
and the daemon's ``file ...`` socket commands all run (one implementation behind both doors).

Every operation drives the same FileSystem methods the FUSE adapter calls (lookup, create, open,
read, mkdir, unlink, rename...), so the operation log, versions, views and undo see exactly what
they would see through the mount. Lookups taken here are forgotten when the operation ends.
Permission checks are the kernel's ``default_permissions`` rules (owner/group/other bits, root
passes, sticky directories), applied here because no kernel stands between the caller and the
core.

Writes replace a file's whole content in one write session, under the inode's lock: buffered
writes of others are committed first (as their own operation), then the ``if_match`` etag is
checked and the new content committed without releasing the lock, so no other writer can slip
in between (the check and the commit are one atomic step). A mutating call ends by committing
the metadata batch (``fs.sync(durable=False)``): when it returns, its effect survives a crash of
the process. ``write_batch`` checks every target first, writes them all, and commits once.

Runs on the trio thread of whoever owns the FileSystem (the daemon, or an embedded store).
Raises FsError only; a lost conditional write is FsError(ESTALE) whose message names the
current etag.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat as st
from collections.abc import Iterable
from contextlib import asynccontextmanager

from ..access.acl import permits
from ..core.etag import current as current_etag
from ..core.names import now_ns
from ..core.access import gids_of
from ..core.vtree import is_virtual
from ..types import ROOT_INO, Attr, Caller, FsError
from .sources import pieces

PIECE = 1 << 20                    # bytes per core read/write call
R, W, X = 4, 2, 1


def check_path(path: str) -> str:
    """A normalised absolute store path; EINVAL for relative paths and NUL bytes."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise FsError(errno.EINVAL, f"{path!r}: store paths start with / (the store's root)")
    if "\0" in path:
        raise FsError(errno.EINVAL, f"{path!r}: a path holds no NUL byte")
    p = posixpath.normpath(path)
    return "/" + p.lstrip("/")


def kind(mode: int) -> str:
    return ("dir" if st.S_ISDIR(mode) else "file" if st.S_ISREG(mode) else
            "symlink" if st.S_ISLNK(mode) else "other")


def may(attr: Attr, caller: Caller, want: int) -> bool:
    """The kernel's default_permissions rule for ``want`` (R|W|X bits) on the mode alone
    (virtual entries, which carry no ACL of their own beyond what their attributes show)."""
    if caller.uid == 0:
        return not (want & X) or st.S_ISDIR(attr.mode) or bool(attr.mode & 0o111)
    return permits(None, attr.mode, attr.uid, attr.gid, caller.uid, gids_of(caller), want)


class Refs:
    """The kernel-style lookup references one operation holds, forgotten at its end."""

    def __init__(self, fs):
        self.fs, self.held = fs, []

    def close(self) -> None:
        if self.held:
            items, self.held = self.held, []
            self.fs.forget([(ino, 1) for ino in items])


class FileService:
    def __init__(self, fs):
        self.fs = fs

    async def run(self, op: str, *args, **kw):
        """Call operation ``op``; an error without a path in its message gets the path."""
        try:
            return await getattr(self, op)(*args, **kw)
        except FsError as e:
            where = next((a for a in args if isinstance(a, str) and a.startswith("/")), None)
            if where is not None and e.message == os.strerror(e.errno):
                raise FsError(e.errno, f"{where}: {e.message}") from None
            raise

    @asynccontextmanager
    async def _refs(self):
        refs = Refs(self.fs)
        try:
            yield refs
        finally:
            refs.close()

    def _changed(self, inodes=(), entries=()) -> None:
        """What the kernel of a mount may have cached and must forget (settled at the end of
        the operation, before it returns: the caller's next `cat` through the mount sees it)."""
        self.fs.invalidate(set(inodes), set(entries))

    async def _finish(self, commit: bool = True) -> None:
        if commit:
            await self.fs.sync(durable=False)
        await self.fs.settle_kernel()

    # -- resolution ---------------------------------------------------------------------------
    async def _lookup(self, refs: Refs, parent: int, name: bytes, caller: Caller, path: str) -> Attr:
        pattr = await self.fs.getattr(parent, caller)
        if not st.S_ISDIR(pattr.mode):
            raise FsError(errno.ENOTDIR, f"{path}: not a directory on the way")
        if not self._may(pattr, caller, X):
            raise FsError(errno.EACCES, f"{path}: permission denied")
        try:
            attr = await self.fs.lookup(parent, name, caller)
        except FsError as e:
            if e.errno == errno.ENOENT:
                raise FsError(errno.ENOENT, f"{path}: no such file or directory") from None
            raise FsError(e.errno, f"{path}: {e.message}") from None
        refs.held.append(attr.ino)
        return attr

    async def _resolve(self, refs: Refs, path: str, caller: Caller) -> Attr:
        """The attributes of what ``path`` names (a final symlink is not followed)."""
        path = check_path(path)
        attr = await self.fs.getattr(ROOT_INO, caller)
        for part in [p for p in path.split("/") if p]:
            attr = await self._lookup(refs, attr.ino, part.encode(errors="surrogateescape"),
                                      caller, path)
        return attr

    async def _parent(self, refs: Refs, path: str, caller: Caller, *, create: bool = False,
                      mode: int = 0o777) -> tuple[Attr, bytes]:
        """(attributes of the parent directory, last name) of ``path``; with ``create``,
        missing directories on the way are made (mkdir -p)."""
        path = check_path(path)
        if path == "/":
            raise FsError(errno.EISDIR, "/: is the root directory")
        head, name = posixpath.split(path)
        if create:
            pattr = await self._mkdirs(refs, head, caller, mode)
        else:
            pattr = await self._resolve(refs, head, caller)
        if not st.S_ISDIR(pattr.mode):
            raise FsError(errno.ENOTDIR, f"{head}: not a directory")
        return pattr, name.encode(errors="surrogateescape")

    async def _mkdirs(self, refs: Refs, path: str, caller: Caller, mode: int) -> Attr:
        attr = await self.fs.getattr(ROOT_INO, caller)
        done = ""
        for part in [p for p in check_path(path).split("/") if p]:
            done += "/" + part
            name = part.encode(errors="surrogateescape")
            try:
                attr = await self._lookup(refs, attr.ino, name, caller, done)
            except FsError as e:
                if e.errno != errno.ENOENT:
                    raise
                attr = await self._make_dir(refs, attr, name, caller, mode, done)
        return attr

    async def _make_dir(self, refs: Refs, pattr: Attr, name: bytes, caller: Caller, mode: int,
                        path: str) -> Attr:
        self._need(pattr, caller, W | X, path)
        attr = await self.fs.mkdir(pattr.ino, name, mode & ~caller.umask, caller)
        refs.held.append(attr.ino)
        self._changed([pattr.ino], [(pattr.ino, name)])
        return attr

    def _may(self, attr: Attr, caller: Caller, want: int) -> bool:
        """The kernel's decision through a mount: POSIX ACLs and grants for stored inodes
        (fs.access), the shown mode for virtual ones."""
        if is_virtual(attr.ino):
            return may(attr, caller, want)
        return self.fs.access.permits(caller.uid, gids_of(caller), attr.ino, want)

    def _need(self, attr: Attr, caller: Caller, want: int, path: str) -> None:
        if not self._may(attr, caller, want):
            raise FsError(errno.EACCES, f"{path}: permission denied")

    def _sticky_ok(self, pattr: Attr, attr: Attr, caller: Caller) -> bool:
        return (not pattr.mode & st.S_ISVTX or caller.uid in (0, pattr.uid, attr.uid))

    # -- reading ------------------------------------------------------------------------------
    async def info(self, path: str, caller: Caller) -> dict:
        async with self._refs() as refs:
            attr = await self._resolve(refs, path, caller)
            return await self._info(check_path(path), attr)

    async def _info(self, path: str, attr: Attr) -> dict:
        out = {"path": path, "type": kind(attr.mode), "size": attr.size,
               "mode": st.S_IMODE(attr.mode), "uid": attr.uid, "gid": attr.gid,
               "nlink": attr.nlink, "ino": attr.ino, "atime_ns": attr.atime_ns,
               "mtime_ns": attr.mtime_ns, "ctime_ns": attr.ctime_ns}
        if st.S_ISREG(attr.mode) and not is_virtual(attr.ino):
            out["etag"] = await current_etag(self.fs, attr.ino)
            versions = self.fs.tt.versions(attr.ino)
            out["version"] = versions[-1][0] if versions else None
            out["size"] = self.fs.meta.get_attr(attr.ino).size
        elif st.S_ISLNK(attr.mode):
            out["target"] = (await self.fs.readlink(attr.ino)).decode(errors="surrogateescape")
        return out

    async def read(self, path: str, caller: Caller, *, offset: int = 0, size: int | None = None,
                   if_match: str | None = None) -> tuple[bytes, dict]:
        """(bytes, info) of a file or a byte range of it; the etag in ``info`` is the one of
        exactly these bytes. ``if_match``: ESTALE unless the file still has that etag."""
        path = check_path(path)
        async with self._refs() as refs:
            attr = await self._resolve(refs, path, caller)
            if st.S_ISDIR(attr.mode):
                raise FsError(errno.EISDIR, f"{path}: is a directory")
            self._need(attr, caller, R, path)
            fh = await self.fs.open(attr.ino, os.O_RDONLY, caller)
            try:
                if is_virtual(attr.ino):       # a document view: no etag, no writers
                    info = await self._info(path, attr)
                    return await self._read_fh(fh, offset, size), info
                async with self.fs._lock(attr.ino):      # no writer commits while we read
                    if attr.ino in self.fs.dirty:
                        await self.fs.commit_file(attr.ino, held=True)
                    info = await self._info(path, await self.fs.getattr(attr.ino, caller))
                    if if_match is not None and info["etag"] != if_match:
                        raise _conflict(path, info["etag"], if_match)
                    data = await self._read_fh(fh, offset, size)
            finally:
                await self.fs.release(fh)
            return data, info

    async def _read_fh(self, fh: int, offset: int, size: int | None) -> bytes:
        out = bytearray()
        while size is None or len(out) < size:
            want = PIECE if size is None else min(PIECE, size - len(out))
            part = await self.fs.read(fh, offset + len(out), want)
            if not part:
                break
            out += part
        return bytes(out)

    async def listdir(self, path: str, caller: Caller, *, recursive: bool = False) -> list[dict]:
        """Entries (name, path, type, size, mode, uid, gid, nlink, mtime_ns) of a directory as
        the mount lists them (document views included), sorted by name; with ``recursive``,
        every entry below it, depth first. A file lists itself."""
        path = check_path(path)
        async with self._refs() as refs:
            attr = await self._resolve(refs, path, caller)
            if not st.S_ISDIR(attr.mode):
                e = _entry(posixpath.basename(path) or "/", path, attr)
                return [e]
            out: list[dict] = []
            await self._walk(attr, path, caller, out, recursive)
            return out

    async def _entries(self, attr: Attr, path: str, caller: Caller) -> list[tuple[bytes, Attr]]:
        self._need(attr, caller, R | X, path)
        fh = await self.fs.opendir(attr.ino, caller)
        found = []
        try:
            start = 0
            while True:
                batch = await self.fs.readdir(fh, start, 1000)
                if not batch:
                    break
                for ent in batch:
                    if ent.name not in (b".", b".."):
                        found.append((ent.name, ent.attr))
                start = batch[-1].next_id
        finally:
            await self.fs.releasedir(fh)
        return sorted(found, key=lambda x: x[0])

    async def _walk(self, attr: Attr, path: str, caller: Caller, out: list, recursive: bool):
        for name, a in await self._entries(attr, path, caller):
            child = posixpath.join(path, name.decode(errors="surrogateescape"))
            out.append(_entry(name.decode(errors="surrogateescape"), child, a))
            if recursive and st.S_ISDIR(a.mode) and not is_virtual(a.ino):
                await self._walk(a, child, caller, out, recursive)

    # -- writing ------------------------------------------------------------------------------
    async def write(self, path: str, source, caller: Caller, *, if_match: str | None = None,
                    if_none_match: bool = False, mode: int = 0o666, parents: bool = True,
                    mtime_ns: int | None = None, commit: bool = True) -> dict:
        """Make ``source`` (bytes, or a binary file object read to its end) the whole content
        of the file at ``path``, creating it (and with ``parents`` its missing directories).
        ``if_match``: only if the file's etag is that (ESTALE otherwise, also when it does not
        exist); ``if_none_match``: only if nothing is there yet. ``mtime_ns`` sets the
        modification time (sync keeps the local one). Returns the file's new info."""
        path = check_path(path)
        async with self._refs() as refs:
            pattr, name = await self._parent(refs, path, caller, create=parents)
            try:
                attr = await self._lookup(refs, pattr.ino, name, caller, path)
            except FsError as e:
                if e.errno != errno.ENOENT:
                    raise
                attr = None
            if attr is None:
                if if_match is not None:
                    raise _conflict(path, None, if_match)
                self._need(pattr, caller, W | X, path)
                fh, attr = await self.fs.create(pattr.ino, name, mode & ~caller.umask,
                                                os.O_WRONLY, caller)
                refs.held.append(attr.ino)
                self._changed([pattr.ino], [(pattr.ino, name)])
                try:
                    await self._fill(attr.ino, source, caller, path, None, mtime_ns, new=True)
                finally:
                    await self.fs.release(fh)
            else:
                if if_none_match:
                    raise _conflict(path, await self._etag_or_none(attr), None)
                if st.S_ISDIR(attr.mode):
                    raise FsError(errno.EISDIR, f"{path}: is a directory")
                if not st.S_ISREG(attr.mode):
                    raise FsError(errno.EINVAL, f"{path}: not a regular file")
                if is_virtual(attr.ino):
                    raise FsError(errno.EROFS, f"{path}: read-only (a document view)")
                self._need(attr, caller, W, path)
                await self._fill(attr.ino, source, caller, path, if_match, mtime_ns, new=False)
            self._changed([attr.ino])
            if commit:                        # else the batch (or copy) finishes once
                await self._finish()
            return await self._info(path, await self.fs.getattr(attr.ino, caller))

    async def _etag_or_none(self, attr: Attr) -> str | None:
        return await current_etag(self.fs, attr.ino) if st.S_ISREG(attr.mode) else None

    async def _fill(self, ino: int, source, caller: Caller, path: str, if_match: str | None,
                    mtime_ns: int | None, new: bool) -> None:
        """One write session replacing the content, under the inode's lock (see the module
        docstring); the precondition is checked inside it."""
        fs = self.fs
        async with fs._lock(ino):
            if ino in fs.dirty:              # others' buffered writes: their own operation
                await fs.commit_file(ino, held=True)
            if if_match is not None:
                now = await current_etag(fs, ino)
                if now != if_match:
                    raise _conflict(path, now, if_match)
            df = fs._dirty(ino, caller)
            try:
                df.truncate(0)
                pos = 0
                for piece in pieces(source, PIECE):
                    if pos + len(piece) > fs.cfg.max_file_size:
                        raise FsError(errno.EFBIG, f"{path}: file too large")
                    fs._check_space()
                    df.write(pos, piece)
                    pos += len(piece)
            except BaseException:
                fs.dirty.pop(ino, None)
                df.close()
                raise
            if new and pos == 0 and mtime_ns is None:
                fs.dirty.pop(ino, None)          # like `: > file`: the create is all there is
                df.close()
                return
            df.mtime_ns = mtime_ns if mtime_ns is not None else now_ns()
            old_size = fs.meta.get_attr(ino).size
            await fs.commit_file(ino, held=True)
            self._kernel_size(ino, old_size)

    def _kernel_size(self, ino: int, old_size: int) -> None:
        """Under the FUSE write-back cache the kernel keeps its own size of a cached file and
        never takes the daemon's: a size changed behind its back needs a new generation of
        the inode (as undo does), and its names looked up again. Not while the mount has the
        file open (its descriptors would turn stale): the kernel then keeps its size."""
        fs = self.fs
        attr = fs.meta.get_attr(ino)
        if (fs.invalidate_hook is None or attr is None or attr.size == old_size
                or not fs.lookups.get(ino) or fs.opens.get(ino)):
            return
        fs.meta.update_attr(ino, generation=attr.generation + 1)
        self._changed([ino], fs.meta.names(ino))

    async def write_batch(self, items: Iterable[tuple[str, object]], caller: Caller, *,
                          mode: int = 0o666, parents: bool = True) -> list[dict]:
        """Write many files ((path, source) or (path, source, mtime_ns)) and commit once.
        Every target is checked first (a store path,
        not a directory, parents creatable, permissions): a bad one fails the batch before
        anything is written."""
        items = [(check_path(it[0]), it[1], it[2] if len(it) > 2 else None) for it in items]
        seen = set()
        for p, _src, _mtime in items:
            if p in seen:
                raise FsError(errno.EINVAL, f"{p}: given twice in one batch")
            seen.add(p)
            await self._check_target(p, caller, parents)
        out = [await self.write(p, src, caller, mode=mode, parents=parents, mtime_ns=mtime,
                                commit=False)
               for p, src, mtime in items]
        await self._finish()
        return out

    async def _check_target(self, path: str, caller: Caller, parents: bool) -> None:
        async with self._refs() as refs:
            attr = await self.fs.getattr(ROOT_INO, caller)
            parts = [p for p in path.split("/") if p]
            done = ""
            for i, part in enumerate(parts):
                done += "/" + part
                try:
                    attr = await self._lookup(refs, attr.ino, part.encode(errors="surrogateescape"),
                                              caller, done)
                except FsError as e:
                    if e.errno == errno.ENOENT and (parents or i == len(parts) - 1):
                        self._need(attr, caller, W | X, done)
                        return
                    raise
                last = i == len(parts) - 1
                if not last and not st.S_ISDIR(attr.mode):
                    raise FsError(errno.ENOTDIR, f"{done}: not a directory")
                if last and st.S_ISDIR(attr.mode):
                    raise FsError(errno.EISDIR, f"{path}: is a directory")
                if last:
                    self._need(attr, caller, W, path)

    # -- names --------------------------------------------------------------------------------
    async def mkdir(self, path: str, caller: Caller, *, parents: bool = False,
                    mode: int = 0o777) -> dict:
        path = check_path(path)
        async with self._refs() as refs:
            if parents:
                attr = await self._mkdirs(refs, path, caller, mode)
            else:
                pattr, name = await self._parent(refs, path, caller)
                attr = await self._make_dir(refs, pattr, name, caller, mode, path)
            await self._finish()
            return await self._info(path, attr)

    async def remove(self, path: str, caller: Caller, *, recursive: bool = False) -> int:
        """Remove a file (or with ``recursive`` a directory and everything below it); the
        number of entries removed."""
        path = check_path(path)
        async with self._refs() as refs:
            pattr, name = await self._parent(refs, path, caller)
            attr = await self._lookup(refs, pattr.ino, name, caller, path)
            if st.S_ISDIR(attr.mode) and not recursive:
                raise FsError(errno.EISDIR, f"{path}: is a directory (remove it recursively)")
            n = await self._remove(pattr, name, attr, caller, path)
            await self._finish()
            return n

    async def _remove(self, pattr: Attr, name: bytes, attr: Attr, caller: Caller,
                      path: str) -> int:
        if is_virtual(attr.ino):
            return 0                         # document views go with their documents
        n = 0
        if st.S_ISDIR(attr.mode):
            for cname, cattr in await self._entries(attr, path, caller):
                if is_virtual(cattr.ino):
                    continue
                n += await self._remove(attr, cname, cattr, caller,
                                        posixpath.join(path, cname.decode(errors="surrogateescape")))
        self._need(pattr, caller, W | X, path)
        if not self._sticky_ok(pattr, attr, caller):
            raise FsError(errno.EPERM, f"{path}: operation not permitted (sticky directory)")
        if st.S_ISDIR(attr.mode):
            await self.fs.rmdir(pattr.ino, name, caller)
        else:
            await self.fs.unlink(pattr.ino, name, caller)
        self._changed([pattr.ino, attr.ino], [(pattr.ino, name)])
        return n + 1

    async def rmdir(self, path: str, caller: Caller) -> None:
        path = check_path(path)
        async with self._refs() as refs:
            pattr, name = await self._parent(refs, path, caller)
            attr = await self._lookup(refs, pattr.ino, name, caller, path)
            if not st.S_ISDIR(attr.mode):
                raise FsError(errno.ENOTDIR, f"{path}: not a directory")
            self._need(pattr, caller, W | X, path)
            try:
                await self.fs.rmdir(pattr.ino, name, caller)
            except FsError as e:
                raise FsError(e.errno, f"{path}: {e.message}") from None
            self._changed([pattr.ino, attr.ino], [(pattr.ino, name)])
            await self._finish()

    async def move(self, src: str, dst: str, caller: Caller, *, overwrite: bool = True) -> str:
        """Rename ``src`` to ``dst``; into ``dst`` when it is a directory (like mv). Returns the
        final path."""
        src, dst = check_path(src), check_path(dst)
        async with self._refs() as refs:
            spattr, sname = await self._parent(refs, src, caller)
            sattr = await self._lookup(refs, spattr.ino, sname, caller, src)
            dst = await self._into_dir(refs, dst, sname, caller)
            dpattr, dname = await self._parent(refs, dst, caller)
            self._need(spattr, caller, W | X, src)
            self._need(dpattr, caller, W | X, dst)
            if not self._sticky_ok(spattr, sattr, caller):
                raise FsError(errno.EPERM, f"{src}: operation not permitted (sticky directory)")
            try:
                await self.fs.rename(spattr.ino, sname, dpattr.ino, dname,
                                     0 if overwrite else 1, caller)
            except FsError as e:
                raise FsError(e.errno, f"{src} -> {dst}: {e.message}") from None
            self._changed([spattr.ino, dpattr.ino, sattr.ino],
                          [(spattr.ino, sname), (dpattr.ino, dname)])
            await self._finish()
            return dst

    async def _into_dir(self, refs: Refs, dst: str, name: bytes, caller: Caller) -> str:
        try:
            dattr = await self._resolve(refs, dst, caller)
        except FsError as e:
            if e.errno == errno.ENOENT:
                return dst
            raise
        if st.S_ISDIR(dattr.mode):
            return posixpath.join(dst, name.decode(errors="surrogateescape"))
        return dst

    async def copy(self, src: str, dst: str, caller: Caller, *, recursive: bool = False) -> int:
        """Copy a file (or with ``recursive`` a tree; symlinks stay links) inside the store;
        into ``dst`` when it is a directory (like cp). Returns the number of entries made."""
        src, dst = check_path(src), check_path(dst)
        async with self._refs() as refs:
            sattr = await self._resolve(refs, src, caller)
            dst = await self._into_dir(refs, dst, posixpath.basename(src).encode(
                errors="surrogateescape"), caller)
            if st.S_ISDIR(sattr.mode) and not recursive:
                raise FsError(errno.EISDIR, f"{src}: is a directory (copy it recursively)")
            if st.S_ISDIR(sattr.mode) and (dst + "/").startswith(src.rstrip("/") + "/"):
                raise FsError(errno.EINVAL, f"cannot copy {src} into itself ({dst})")
        n = await self._copy(src, dst, caller)
        await self._finish()
        return n

    async def _copy(self, src: str, dst: str, caller: Caller) -> int:
        async with self._refs() as refs:
            sattr = await self._resolve(refs, src, caller)
            if st.S_ISDIR(sattr.mode):
                children = [n for n, a in await self._entries(sattr, src, caller)
                            if not is_virtual(a.ino)]
                try:
                    await self.mkdir(dst, caller, mode=st.S_IMODE(sattr.mode))
                    made = 1
                except FsError as e:
                    if e.errno != errno.EEXIST:
                        raise
                    made = 0
            elif st.S_ISLNK(sattr.mode):
                pattr, name = await self._parent(refs, dst, caller)
                self._need(pattr, caller, W | X, dst)
                target = await self.fs.readlink(sattr.ino)
                refs.held.append((await self.fs.symlink(pattr.ino, name, target, caller)).ino)
                self._changed([pattr.ino], [(pattr.ino, name)])
                return 1
            elif not st.S_ISREG(sattr.mode):
                raise FsError(errno.EINVAL, f"{src}: not a regular file, directory or symlink")
        if st.S_ISDIR(sattr.mode):
            for name in children:
                n = name.decode(errors="surrogateescape")
                made += await self._copy(posixpath.join(src, n), posixpath.join(dst, n), caller)
            return made
        data, _info = await self.read(src, caller)
        await self.write(dst, data, caller, mode=st.S_IMODE(sattr.mode), parents=False,
                         commit=False)
        return 1


def _entry(name: str, path: str, a: Attr) -> dict:
    return {"name": name, "path": path, "type": kind(a.mode), "size": a.size,
            "mode": st.S_IMODE(a.mode), "uid": a.uid, "gid": a.gid, "nlink": a.nlink,
            "mtime_ns": a.mtime_ns}


def _conflict(path: str, now: str | None, expected: str | None) -> FsError:
    if expected is None:
        return FsError(errno.ESTALE, f"{path}: exists already (etag {now or '-'}); "
                                     f"if-none-match failed")
    if now is None:
        return FsError(errno.ESTALE, f"{path}: does not exist (etag -), not etag {expected}")
    return FsError(errno.ESTALE, f"{path}: etag is {now}, not {expected} (changed since read)")

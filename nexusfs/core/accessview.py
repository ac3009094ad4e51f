"""What the kernel is shown, for access control: the outermost layer of FileSystem.

Every attribute that leaves the core passes through here, so that
  * with relationship grants, the group bits of the mode are the widened ACL mask
    (core/access.py explains why);
  * virtual inodes that stand for a real one — document views, /.raw/ directories,
    /.nexus/history/ entries — carry that inode's owner, group, mode and ACL, narrowed to
    reading (a view never lets anyone read what its document would not);
  * trees of the past (/.nexus/at/SEQ/, /.nexus/snapshots/NAME/) are checked twice: by the
    kernel against the attributes things had then, and here against the caller's access
    now — looking up a name in a past directory needs search permission on that directory
    today, listing it read permission, opening a past file read permission on the file
    today (when they still exist). Their entries are not cached by the kernel, so every
    path walk comes back here.
Also here: telling the kernel to re-read the attributes and ACLs of what a link, an unlink
or a rename between directories that different grants reach changed (grants themselves do
it through FileSystem.refresh_permissions).
Runs on the trio thread; nothing here awaits except the wrapped operations and those
notices (sent from a worker thread, core/fs.py).
"""
from __future__ import annotations

import errno
import stat as st

from ..access import acl as A
from ..types import ROOT_INO, Attr, Caller, FsError
from .vtree import is_virtual

_R, _X = 4, 1


def _narrow(perm: int, kind: str) -> int:
    """Permission bits of a virtual stand-in: views and past versions are read-only; a
    version directory (history of a file) may be listed by those who may read the file."""
    if kind in ("view", "auto"):
        return perm & _R
    if kind == "hfile":
        return (_R | _X) if perm & _R else 0
    if kind == "hdir":
        return perm & (_R | _X)
    return perm


class AccessView:
    # -- attributes ---------------------------------------------------------------------------
    def _shown(self, attr: Attr) -> Attr:
        if not is_virtual(attr.ino):
            return self.access.shown(attr)
        mirror = self.vtree.mirror(attr.ino)
        if mirror is not None:
            real, kind = mirror
            acl = self._mirror_acl(real, kind)
            if acl is not None:
                mask = A.get(acl, A.MASK) or A.get(acl, A.GROUP_OBJ)
                attr.mode = (attr.mode & ~0o070) | (mask.perm << 3)
        elif self.vtree.is_past(attr.ino):
            attr.volatile = attr.uncached = True
        return attr

    def _mirror_acl(self, real: int, kind: str) -> A.Acl | None:
        if not self.access.active and real not in self.rare_xattrs.get(A.ACL_ACCESS, ()):
            return None              # neither grants nor a stored ACL (asked per view by ls -l)
        attr = self.meta.get_attr(real)
        if attr is None:
            return None
        eff = self.access.effective(real, attr)
        if eff is None:
            return None
        return tuple(A.Entry(e.tag, _narrow(e.perm, kind), e.id) for e in eff)

    async def getattr(self, ino: int, caller: Caller | None = None) -> Attr:
        return self._shown(await super().getattr(ino, caller))

    async def lookup(self, parent: int, name: bytes, caller: Caller | None = None) -> Attr:
        if caller is not None and caller.uid != 0 and is_virtual(parent):
            self._check_past(parent, caller, _X)
        return self._shown(await super().lookup(parent, name, caller))

    async def setattr(self, ino: int, caller: Caller, **kw) -> Attr:
        return self._shown(await super().setattr(ino, caller, **kw))

    async def mknod(self, parent, name, mode, rdev, caller):
        return self._shown(await super().mknod(parent, name, mode, rdev, caller))

    async def mkdir(self, parent, name, mode, caller):
        return self._shown(await super().mkdir(parent, name, mode, caller))

    async def symlink(self, parent, name, target, caller):
        return self._shown(await super().symlink(parent, name, target, caller))

    async def link(self, ino, parent, name, caller):
        attr = await super().link(ino, parent, name, caller)
        if self.access.active:
            await self._regrant([ino])                # grants above the new name reach it
        return self._shown(attr)

    async def create(self, parent, name, mode, flags, caller):
        fh, attr = await super().create(parent, name, mode, flags, caller)
        return fh, self._shown(attr)

    async def unlink(self, parent, name, caller):
        ino = self.meta.lookup(parent, name) if self.access.active and not is_virtual(parent) \
            else None
        await super().unlink(parent, name, caller)
        if ino is not None:
            self.access.unnamed(ino)              # open still, or other names: not these grants
            await self._regrant([ino])

    async def rename(self, old_parent, old_name, new_parent, new_name, flags, caller):
        ac = self.access
        if not (ac.active and not is_virtual(old_parent) and not is_virtual(new_parent)
                and set(ac.grants_above(old_parent)) != set(ac.grants_above(new_parent))):
            return await super().rename(old_parent, old_name, new_parent, new_name, flags,
                                        caller)
        # between directories different grants reach: what moves (and what it replaces)
        # changes access, and the kernel must hear of it
        moved = [i for i in (self.meta.lookup(old_parent, old_name),
                             self.meta.lookup(new_parent, new_name)) if i is not None]
        dirs = any(a is not None and st.S_ISDIR(a.mode) for a in map(self.meta.get_attr, moved))
        await super().rename(old_parent, old_name, new_parent, new_name, flags, caller)
        await (self.refresh_permissions() if dirs else self._regrant(moved))

    async def _regrant(self, inodes) -> None:
        """The grants reaching these inodes changed: the kernel re-reads their attributes and
        ACLs (only those; cached pages stay)."""
        held = [i for i in inodes if i in self.lookups]
        if held and self.invalidate_attrs_hook is not None:
            await self.invalidate_attrs_hook(held)

    async def readdir(self, fh: int, start_id: int, limit: int | None = None):
        parent = self.dir_handles.get(fh)
        entries = await super().readdir(fh, start_id, limit)
        # (a real directory's windows were adjusted as they were built: _show_entries)
        if entries and (is_virtual(parent) if parent is not None else self.access.active):
            for e in entries:
                self._shown(e.attr)
        return entries

    def _show_entries(self, parent: int, entries) -> None:
        """A real directory's listing window, as it is built: with grants, group bits widened
        (views in a real directory carry their document's mode: only grants change them)."""
        if not self.access.active:
            return
        for e in self.access.show_listing(parent, entries):
            self._shown(e.attr)                   # a document view among the files

    # -- the past: checked against today's access ---------------------------------------------
    def _live(self, ino: int) -> bool:
        return self.meta.get_attr(ino) is not None and (
            ino == ROOT_INO or self.meta.name_of(ino) is not None)

    def _check_past(self, vino: int, caller: Caller, want: int) -> None:
        real = self.vtree.past_inode(vino)
        if real is not None and self._live(real) and not self.access.may_access(caller, real, want):
            raise FsError(errno.EACCES)

    async def opendir(self, ino, caller=None):
        if caller is not None and caller.uid != 0 and is_virtual(ino):
            self._check_past(ino, caller, _R)
        return await super().opendir(ino, caller)

    async def open(self, ino, flags, caller=None):
        if caller is not None and caller.uid != 0 and is_virtual(ino):
            self._check_past(ino, caller, _R)
        return await super().open(ino, flags, caller)

    # -- ACLs of virtual stand-ins ------------------------------------------------------------
    async def getxattr(self, ino, name, caller):
        if is_virtual(ino) and name == A.ACL_ACCESS:
            mirror = self.vtree.mirror(ino)
            acl = self._mirror_acl(*mirror) if mirror is not None else None
            if acl is None:
                raise FsError(errno.ENODATA)
            return A.encode(acl)
        return await super().getxattr(ino, name, caller)

    async def listxattr(self, ino, caller):
        if is_virtual(ino):
            mirror = self.vtree.mirror(ino)
            return [A.ACL_ACCESS] if mirror and self._mirror_acl(*mirror) is not None else []
        return await super().listxattr(ino, caller)


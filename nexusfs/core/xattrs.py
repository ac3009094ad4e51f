"""Extended attributes: the user, trusted and security namespaces with Linux's rules.

A mixin of FileSystem (fs.py). Runs on the trio thread; nothing here awaits. xattrs are live
state only (not versioned); their changes are logged.
"""
from __future__ import annotations

import errno
import stat as st

from ..access.acl import ACL_ACCESS, ACL_DEFAULT, ACL_NAMES
from ..types import Attr, Caller, FsError
from .etag import ETAG_XATTR, current as _current_etag
from .names import now_ns

XATTR_CAPS = b"security.capability"
# SELinux labels: not supported, as on NFS without labelled NFS. SELinux labels a FUSE mount
# as a whole (genfscon / the context= mount option), not by per-file xattrs, so storing them
# served nobody, while `ls -l` (libselinux) asked for it of every name: one FUSE round trip
# per entry, which the kernel does not cache. EOPNOTSUPP is what ls and cp remember per
# file system ("unsupported here") after the first ask.
XATTR_SELINUX = b"security.selinux"
UNSUPPORTED_XATTRS = frozenset({XATTR_SELINUX})
# names asked of every inode by the kernel (before each write) or by ls, and almost never
# set: which inodes have them is kept in memory, so the answer needs no SQL
RARE_XATTRS = (XATTR_CAPS, ACL_ACCESS, ACL_DEFAULT)
_XATTR_NAMESPACES = (b"user.", b"trusted.", b"security.")


class XattrOps:
    def _check_xattr_name(self, name: bytes, attr: Attr, caller: Caller, write: bool) -> None:
        if len(name) > self.cfg.xattr_name_max or not name:
            raise FsError(errno.ERANGE)
        if not name.startswith(_XATTR_NAMESPACES) or name in UNSUPPORTED_XATTRS:
            raise FsError(errno.EOPNOTSUPP)
        if name.startswith(b"trusted.") and caller.uid != 0:
            raise FsError(errno.EPERM if write else errno.ENODATA)
        if write and name.startswith(b"user.") and not (st.S_ISREG(attr.mode) or st.S_ISDIR(attr.mode)):
            raise FsError(errno.EPERM)
        if write and name.startswith(b"security.") and caller.uid != 0 and caller.uid != attr.uid:
            raise FsError(errno.EPERM)

    async def getxattr(self, ino: int, name: bytes, caller: Caller) -> bytes:
        if name in ACL_NAMES:
            return self.access.get_xattr(ino, name)
        if name in self.rare_xattrs and ino not in self.rare_xattrs[name]:
            raise FsError(errno.ENODATA)          # asked before every write: answer from memory
        attr = self._attr(ino)
        if name == ETAG_XATTR and st.S_ISREG(attr.mode):   # computed, read-only (etag.py)
            return (await _current_etag(self, ino)).encode()
        self._check_xattr_name(name, attr, caller, write=False)
        kept = self.rare_xattrs.get(name)
        value = kept.get(ino) if kept is not None else self.meta.get_xattr(ino, name)
        if value is None:
            raise FsError(errno.ENODATA)
        return value

    async def setxattr(self, ino: int, name: bytes, value: bytes, caller: Caller) -> None:
        if name in ACL_NAMES:
            self.access.set_xattr(ino, name, value, caller)
            return
        attr = self._attr(ino)
        if name == ETAG_XATTR:
            raise FsError(errno.EPERM)
        self._check_xattr_name(name, attr, caller, write=True)
        if len(value) > self.cfg.xattr_value_max:
            raise FsError(errno.E2BIG)
        with self._op("setxattr", caller, path=self.path_of(ino), ino=ino,
                      path2=name.decode(errors="replace")):
            self.meta.set_xattr(ino, name, value)
            self.meta.update_attr(ino, ctime_ns=now_ns())

    async def listxattr(self, ino: int, caller: Caller) -> list[bytes]:
        attr = self._attr(ino)
        names = [n for n in self.meta.list_xattrs(ino) if n not in UNSUPPORTED_XATTRS]
        if ACL_ACCESS not in names and self.access.effective(ino, attr) is not None:
            names.append(ACL_ACCESS)             # grants alone make an ACL
        if caller.uid != 0:
            names = [n for n in names if not n.startswith(b"trusted.")]
        return names

    async def removexattr(self, ino: int, name: bytes, caller: Caller) -> None:
        if name in ACL_NAMES:
            self.access.remove_xattr(ino, name, caller)
            return
        attr = self._attr(ino)
        if name == ETAG_XATTR:
            raise FsError(errno.EPERM)
        self._check_xattr_name(name, attr, caller, write=True)
        with self._op("removexattr", caller, path=self.path_of(ino), ino=ino,
                      path2=name.decode(errors="replace")):
            if not self.meta.remove_xattr(ino, name):
                raise FsError(errno.ENODATA)
            self.meta.update_attr(ino, ctime_ns=now_ns())

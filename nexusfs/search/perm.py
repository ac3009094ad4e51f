"""Who may see a result: ``checker(fs)`` gives ``(caller, ino, mask) -> bool``.

The filesystem's own evaluator (``fs.access.may_access``, or ``fs.may_access``: search
permission on every ancestor, then
``mask`` on the inode, with POSIX modes, ACLs and relationship grants) when it has one;
otherwise ``fallback``: POSIX mode bits along the ancestor chain for the caller's uid, gid and
supplementary groups. Root passes every check. Runs on the trio thread (metadata reads).
"""
from __future__ import annotations

import os
import stat as st

from ..access.acl import permits
from ..types import ROOT_INO, Caller


def _allowed(attr, caller: Caller, mask: int) -> bool:
    if caller.uid == 0:
        return True
    return permits(None, attr.mode, attr.uid, attr.gid, caller.uid,
                   frozenset((caller.gid, *caller.groups)), mask)


def fallback(fs, caller: Caller, ino: int, mask: int) -> bool:
    """POSIX permission bits: X on every directory from the root down, ``mask`` on ``ino``."""
    if caller.uid == 0:
        return True
    attr = fs.meta.get_attr(ino)
    if attr is None or not _allowed(attr, caller, mask):
        return False
    seen = 0
    cur = ino
    while cur != ROOT_INO and seen < 4096:
        parent = fs.meta.parent_of(cur)
        if parent is None:
            return False
        pattr = fs.meta.get_attr(parent)
        if pattr is None or not st.S_ISDIR(pattr.mode) or not _allowed(pattr, caller, os.X_OK):
            return False
        cur = parent
        seen += 1
    return True


def checker(fs):
    own = getattr(fs, "may_access", None) or getattr(getattr(fs, "access", None), "may_access", None)
    if own is not None:
        return own
    return lambda caller, ino, mask: fallback(fs, caller, ino, mask)

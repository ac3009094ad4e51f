"""Path resolution for history: live, as of a sequence number, or through the latest entry ever
(for paths that no longer exist). Runs on the trio thread."""
from __future__ import annotations

import errno
import stat as st

from ..types import ROOT_INO, FsError


def split(path: str) -> list[bytes]:
    if not path.startswith("/"):
        raise FsError(errno.EINVAL, f"{path!r}: paths start with /")
    return [p.encode(errors="surrogateescape") for p in path.split("/") if p and p != "."]


def resolve_live(fs, path: str) -> int:
    ino = ROOT_INO
    for part in split(path):
        attr = fs.meta.get_attr(ino)
        if attr is None or not st.S_ISDIR(attr.mode):
            raise FsError(errno.ENOTDIR, f"{path}: not a directory on the way")
        nxt = fs.meta.lookup(ino, part)
        if nxt is None:
            raise FsError(errno.ENOENT, f"{path}: no such file or directory")
        ino = nxt
    return ino


def resolve_at(fs, path: str, seq: int) -> int:
    ino = ROOT_INO
    for part in split(path):
        nxt = fs.tt.lookup(ino, part, seq)
        if nxt is None:
            raise FsError(errno.ENOENT, f"{path}: did not exist at {seq}")
        ino = nxt
    return ino


def resolve_any(fs, path: str) -> int:
    """The inode ``path`` names now, or named last if it is gone."""
    ino = ROOT_INO
    for part in split(path):
        nxt = fs.meta.lookup(ino, part)
        if nxt is None:
            found = fs.tt.latest_lookup(ino, part)
            if found is None:
                raise FsError(errno.ENOENT, f"{path}: never existed")
            nxt = found[0]
        ino = nxt
    return ino

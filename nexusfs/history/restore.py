"""Restoring and comparing subtrees against a past sequence number (snapshot restore and diff,
version rollback).

Restore is one logged operation R: it closes live rows that differ from the past and opens
copies of the past rows, all at R, so ``undo R`` puts everything back. Runs on the trio thread
without awaiting (atomic within the batch).
"""
from __future__ import annotations

import errno
import stat as st

from ..core.names import now_ns
from ..types import FsError
from .undo import names_of, settle


def _entries_at(fs, dir_ino: int, seq: int) -> dict[bytes, int]:
    out, after = {}, 0
    while True:
        rows = fs.tt.list_dir(dir_ino, seq, after, 5000)
        if not rows:
            return out
        for did, name, ino in rows:
            out[name] = ino
        after = rows[-1][0]


def _entries_live(fs, dir_ino: int) -> dict[bytes, int]:
    out, after = {}, 0
    while True:
        rows = fs.meta.list_dir(dir_ino, after, 5000)
        if not rows:
            return out
        for did, name, attr in rows:
            out[name] = attr.ino
        after = rows[-1][0]


def _is_dir_at(fs, ino: int, seq: int) -> bool:
    a = fs.tt.attr(ino, seq)
    return a is not None and st.S_ISDIR(a.mode)


def restore_inode(fs, ino: int, seq: int, touched: set[int]) -> bool:
    """Make one inode's attributes (and a file's content) what they were at ``seq``."""
    past = fs.tt.attr(ino, seq)
    if past is None:
        return False
    live = fs.meta.get_attr(ino)
    if live is not None and fs.tt.later_change(ino, seq) is None:
        return False
    fs.meta.revive_inode(past, fs.tt.readlink(ino, seq))
    if st.S_ISREG(past.mode):
        fs.meta.set_extents(ino, [(e.offset, e.length, e.loc.id) for e in fs.tt.extents(ino, seq)])
        fs.content.forget(ino)
    touched.add(ino)
    return True


def _remove_tree(fs, parent: int, name: bytes, ino: int, touched: set[int], entries: set) -> None:
    if st.S_ISDIR(fs.meta.get_attr(ino).mode):
        for child_name, child in _entries_live(fs, ino).items():
            _remove_tree(fs, ino, child_name, child, touched, entries)
    fs.meta.remove_dentry(parent, name)
    touched.update((parent, ino))
    entries.add((parent, name))


def restore_tree(fs, dir_ino: int, seq: int, touched: set[int], entries: set) -> int:
    """Make directory ``dir_ino``'s subtree what it was at ``seq``; returns entries changed."""
    changed = 0
    then = _entries_at(fs, dir_ino, seq)
    now = _entries_live(fs, dir_ino)
    for name, ino in now.items():
        if then.get(name) != ino:
            _remove_tree(fs, dir_ino, name, ino, touched, entries)
            changed += 1
    for name, ino in then.items():
        if now.get(name) != ino:
            if _is_dir_at(fs, ino, seq):
                elsewhere = fs.meta.name_of(ino)      # a directory moved away since: move it back
                if elsewhere is not None:
                    _remove_tree(fs, elsewhere[0], elsewhere[1], ino, touched, entries)
            restore_inode(fs, ino, seq, touched) if fs.meta.get_attr(ino) is None else None
            if fs.meta.get_attr(ino) is None:
                continue
            fs.meta.add_dentry(dir_ino, name, ino)
            touched.update((dir_ino, ino))
            entries.add((dir_ino, name))
            changed += 1
        if restore_inode(fs, ino, seq, touched) and now.get(name) == ino:
            changed += 1
        if _is_dir_at(fs, ino, seq):
            changed += restore_tree(fs, ino, seq, touched, entries)
    return changed


def restore(fs, ino: int, seq: int, r_seq: int) -> int:
    """Restore the file or directory ``ino`` to ``seq`` as operation ``r_seq``."""
    touched: set[int] = set()
    entries: set = set()
    fs.meta.seq = r_seq
    changed = 1 if restore_inode(fs, ino, seq, touched) else 0
    if _is_dir_at(fs, ino, seq):
        changed += restore_tree(fs, ino, seq, touched, entries)
    settle(fs, touched, r_seq)
    fs.invalidate(touched, entries | names_of(fs, touched))
    return changed


def restore_content(fs, live: int, ino: int, seq: int, r_seq: int) -> None:
    """Give the regular file ``live`` the content file ``ino`` had at ``seq`` (a version of
    another file the same path named before) as operation ``r_seq``: the chunks are shared,
    nothing is copied."""
    attr = fs.meta.get_attr(live)
    past = fs.tt.attr(ino, seq)
    if attr is None or past is None or not st.S_ISREG(attr.mode):
        raise FsError(errno.EISDIR if attr is not None and st.S_ISDIR(attr.mode) else errno.ENOENT)
    fs.meta.seq = r_seq
    fs.meta.set_extents(live, [(e.offset, e.length, e.loc.id) for e in fs.tt.extents(ino, seq)])
    fs.meta.update_attr(live, size=past.size, mtime_ns=past.mtime_ns, ctime_ns=now_ns())
    settle(fs, {live}, r_seq)
    fs.invalidate({live}, names_of(fs, {live}))


def diff(fs, dir_ino: int, seq: int, prefix: str) -> list[dict]:
    """Differences from the subtree at ``seq`` to the live one."""
    out: list[dict] = []
    then = _entries_at(fs, dir_ino, seq)
    now = _entries_live(fs, dir_ino)
    for name in sorted(set(then) | set(now)):
        path = prefix.rstrip("/") + "/" + name.decode(errors="surrogateescape")
        a, b = then.get(name), now.get(name)
        if a is None:
            out.append({"change": "added", "path": path})
        elif b is None:
            out.append({"change": "deleted", "path": path})
        elif a != b:
            out.append({"change": "replaced", "path": path})
        else:
            if fs.tt.later_change(a, seq) is not None and not _is_dir_at(fs, a, seq):
                out.append({"change": "modified", "path": path})
            if _is_dir_at(fs, a, seq):
                out.extend(diff(fs, a, seq, path))
    return out

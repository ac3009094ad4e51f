"""Undo: reverse one logged operation by re-opening the rows it closed and closing the rows it
opened, as a new logged operation (so an undo can itself be undone).

Conflicts: when a later operation changed what op S touched (a name S created was removed or
replaced, a name S removed is taken again, a file S changed was changed again), undo refuses
with EBUSY naming that operation, unless forced. Directory timestamps and link counts are not
restored but recomputed, so sibling changes in the same directory never conflict.

Runs on the trio thread without awaiting: the whole undo is one atomic step of the batch.
"""
from __future__ import annotations

import errno
import stat as st

from ..types import Caller, FsError

# (ACL and grant changes are live state, not history: change them back with setfacl/rebac)
NOT_UNDOABLE = {"snapshot-create", "snapshot-delete", "snapshot-rename", "setfacl",
                "rebac-create", "rebac-delete"}


CREATING = {"create", "mkdir", "mknod", "symlink", "link"}


def find_conflict(fs, seq: int, op: str) -> int | None:
    tt = fs.tt
    later: list[int] = []
    cancelled = tt.undo_pairs(seq)      # a later op and its undo: no net change, no conflict

    def changed_since(ino: int) -> int | None:
        return next((s for s in tt.later_changes(ino, seq) if s not in cancelled), None)

    if op in CREATING:        # what the op created was changed since (written, filled, ...)
        for _id, _parent, _name, ino, _seq_to in tt.dentries_opened(seq):
            s = changed_since(ino)
            if s is not None:
                later.append(s)
    for _id, parent, name, ino, seq_to in tt.dentries_opened(seq):
        # closed since, and the name does not point at the same inode again (an undone rename)
        if seq_to is not None and seq_to != seq and fs.meta.lookup(parent, name) != ino:
            later.append(seq_to)
    opened_names = {(p, n) for _i, p, n, _ino, _s in tt.dentries_opened(seq)}
    for _id, parent, name, _ino, _seq_from in tt.dentries_closed(seq):
        if (parent, name) in opened_names:
            continue
        if fs.meta.lookup(parent, name) is not None:
            found = tt.latest_lookup(parent, name)
            later.append(fs.meta.last_seq if found is None else _opened_at(fs, parent, name))
    for ino in tt.extent_inodes(seq) | set(_files(fs, tt.inodes_changed(seq))):
        s = changed_since(ino)
        if s is not None:
            later.append(s)
    return min(later) if later else None


def _opened_at(fs, parent: int, name: bytes) -> int:
    seq = fs.tt.live_entry_seq(parent, name)
    return fs.meta.last_seq if seq is None else seq


def _files(fs, inos):
    for ino in inos:
        attr = fs.tt.attr(ino, fs.meta.last_seq) or fs.meta.get_attr(ino)
        if attr is None or not st.S_ISDIR(attr.mode):
            yield ino


def undo(fs, seq: int, caller: Caller, force: bool = False) -> dict:
    tt = fs.tt
    rec = tt.op(seq)
    if rec is None:
        if seq < tt.oldest_seq():
            raise FsError(errno.EINVAL, f"operation {seq} is past the retention of the log")
        raise FsError(errno.ENOENT, f"no operation {seq}")
    (_seq, _t, _uid, _gid, _pid, _proc, _agent, op, path, path2, rec_ino, result, _undo_of) = rec
    if result:
        raise FsError(errno.EINVAL, f"operation {seq} ({op}) failed; there is nothing to undo")
    if op in NOT_UNDOABLE:
        raise FsError(errno.EINVAL, f"operation {seq} ({op}) cannot be undone")
    conflict = find_conflict(fs, seq, op)
    if conflict is not None and not force:
        crec = tt.op(conflict)
        what = f"{crec[7]} {crec[8]}" if crec else "a later change"
        raise FsError(errno.EBUSY, f"operation {conflict} ({what}) changed this since {seq}; "
                                   "undo it first or force")
    opened = tt.dentries_opened(seq)
    closed = tt.dentries_closed(seq)
    ext_inos = tt.extent_inodes(seq)
    attr_inos = tt.inodes_changed(seq)
    before = seq - 1
    u = fs._begin("undo", caller, path=path, path2=path2, ino=rec_ino, undo_of=seq)
    touched: set[int] = set()
    entries: set[tuple[int, bytes]] = set()
    for did, parent, name, ino, seq_to in opened:
        if seq_to is None:
            fs.meta.close_dentry(did)
        elif fs.meta.lookup(parent, name) == ino:
            fs.meta.remove_dentry(parent, name)       # an equivalent row a later undo re-opened
        touched.update((parent, ino))
        entries.add((parent, name))
    for _id, parent, name, ino, _seq_from in closed:
        if fs.meta.lookup(parent, name) is None:
            _ensure_live(fs, ino, before)
            fs.meta.add_dentry(parent, name, ino)
        touched.update((parent, ino))
        entries.add((parent, name))
    for ino in ext_inos:
        if _ensure_live(fs, ino, before):
            fs.meta.set_extents(ino, [(e.offset, e.length, e.loc.id) for e in tt.extents(ino, before)])
            fs.content.forget(ino)
            touched.add(ino)
    for ino in attr_inos:
        past = tt.attr(ino, before)
        if past is None or fs.meta.get_attr(ino) is None:
            continue
        if st.S_ISDIR(past.mode) and not (rec_ino == ino and op in ("chmod", "chown", "utimens")):
            continue
        fs.meta.revive_inode(past, tt.readlink(ino, before))
        touched.add(ino)
    settle(fs, touched, u)
    fs.invalidate(touched, entries | names_of(fs, touched))
    return {"undone": seq, "seq": u, "op": op, "path": path}


def _ensure_live(fs, ino: int, seq: int) -> bool:
    """Bring a purged inode back with its state at ``seq``; False if it has none."""
    if fs.meta.get_attr(ino) is not None:
        return True
    past = fs.tt.attr(ino, seq)
    if past is None:
        return False
    fs.meta.revive_inode(past, fs.tt.readlink(ino, seq))
    fs.meta.set_extents(ino, [(e.offset, e.length, e.loc.id) for e in fs.tt.extents(ino, seq)])
    return True


def settle(fs, touched: set[int], seq: int) -> None:
    """After rows moved: recount links, fix block counts, cut versions, purge what nothing
    names any more."""
    fs.meta.seq = seq
    for ino in touched:
        attr = fs.meta.get_attr(ino)
        if attr is None:
            continue
        fs.meta.recount_links(ino)
        if st.S_ISREG(attr.mode):
            fs.meta.update_blocks(ino)
            fs._cut_version(ino, seq)
        fs.content.forget(ino)
    for ino in touched:
        fs._maybe_purge(ino)


def names_of(fs, inodes) -> set[tuple[int, bytes]]:
    """The live names of these inodes: entries the kernel must look up again (a changed
    generation makes it replace its cached inode, stale size included)."""
    out = set()
    for ino in inodes:
        out.update(fs.meta.names(ino))
    return out


def _undo_chains(fs) -> dict[int, list[int]]:
    chains: dict[int, list[int]] = {}
    for u, target in fs.tt.undo_links():
        chains.setdefault(target, []).append(u)
    return chains


def effective(chains: dict[int, list[int]], seq: int) -> tuple[bool, int]:
    """(is op ``seq`` in effect now, the op to undo to reverse it). An undone op is in effect
    again once its undo is undone (a redo); reversing it then means undoing that redo."""
    active, target = True, seq
    cur = seq
    while chains.get(cur):
        cur = chains[cur][-1]
        active = not active
        target = cur
    return active, (target if active else seq)


def pick(fs, caller: Caller, *, count: int = 1, agent: str | None = None,
         path: str | None = None) -> list[int]:
    """The operations ``undo`` means without an explicit seq: the newest successful, undoable
    operations still in effect of the agent, the path, or else the caller (an agent's caller:
    that agent). Returns the sequence numbers to undo (a redo's, for a redone operation)."""
    chains = _undo_chains(fs)
    found: list[int] = []
    before = None
    while len(found) < count:
        if agent is not None:
            rows = fs.tt.log(agent=agent, newest_first=True, limit=200, before_seq=before)
        elif path is not None:
            rows = fs.tt.log(path=path, newest_first=True, limit=200, before_seq=before)
        elif caller.agent:
            rows = fs.tt.log(agent=caller.agent, newest_first=True, limit=200, before_seq=before)
        else:
            rows = fs.tt.log(uid=caller.uid, newest_first=True, limit=200, before_seq=before)
        if not rows:
            break
        for r in rows:
            s, op, result = r[0], r[7], r[11]
            if caller.uid != 0 and r[2] != caller.uid:
                continue                      # (an agent label never reaches other users' work)
            if result or op == "undo" or op in NOT_UNDOABLE:
                continue
            if op == "write" and not fs.tt.extent_inodes(s) and not fs.tt.inodes_changed(s):
                continue
            active, target = effective(chains, s)
            if not active:
                continue
            found.append(target)
            if len(found) == count:
                break
        before = rows[-1][0]
    if not found:
        raise FsError(errno.EINVAL, "nothing to undo")
    return found

"""Access control for the mounted tree: POSIX ACLs kept in step with the mode, relationship
grants compiled into ACL entries the kernel enforces, and the daemon's own permission checks.

How a decision is made (docs/access.md has the user's version):
  1. root may do anything the kernel lets root do (no ACL or grant restricts root);
  2. the owner gets the owner bits of the mode, nothing else;
  3. an explicit named-user ACL entry for the caller decides (masked) — explicit ACL first;
  4. a live grant naming the caller (directly, or through teams) decides next;
  5. the owning group, named-group ACL entries and grants to the caller's Unix groups: any
     one that allows, allows (masked);
  6. everyone else gets the other bits.
Steps 3–6 are exactly POSIX.1e ACL evaluation over the *effective* ACL: the stored ACL plus
one entry per subject a grant reaches (grants on the inode or any directory above it; a
user's explicit entry wins over a grant). To let grants through, the effective mask widens to
cover them and the stored group-class entries are narrowed by the old mask, so their effect
does not change. The kernel (``default_permissions`` + ``FUSE_POSIX_ACL``) enforces this ACL on
every access; it reads it with getxattr, and is told to forget it (attribute invalidation)
whenever a grant is made, deleted or expires.

Why compiled ACLs rather than deciding in the daemon: without default_permissions the kernel
skips directory search checks on cached dentries and serves cached attributes to anyone, so
a daemon-only check leaks. With the ACL compiled, the kernel applies one consistent rule to
every path walk, and ext4's semantics (supplementary groups, sticky and setgid directories,
capabilities) come for free.

Concurrency: runs on the trio thread; nothing awaits. Caches (effective grants per inode,
permission answers) are dropped wholesale on any change that could alter them (a grant, a
chmod/chown/ACL change, a directory rename).
"""
from __future__ import annotations

import errno
import grp
import pwd
import stat as st
import time

from cachetools import LRUCache, TTLCache

from ..access import acl as A
from ..access import rebac as R
from ..meta.grants import GrantStore
from ..types import ROOT_INO, Attr, Caller, FsError

ACL_ACCESS, ACL_DEFAULT = A.ACL_ACCESS, A.ACL_DEFAULT


def gids_of(caller: Caller) -> frozenset[int]:
    return frozenset((caller.gid, *caller.groups))


def unix_groups_of(uid: int) -> tuple[int, frozenset[int]]:
    """(primary gid, every gid) of a user from the system databases (for `rebac check`)."""
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        return uid, frozenset()
    return pw.pw_gid, frozenset(__import__("os").getgrouplist(pw.pw_name, pw.pw_gid))


class AccessControl:
    def __init__(self, fs):
        self.fs = fs
        self.meta = fs.meta
        self.grants = GrantStore(fs.meta)
        self.tuples: list[R.Tuple] = []
        self.by_obj: dict[int, list[R.Tuple]] = {}
        self.graph = R.Graph([])
        self.next_expiry_ns: int | None = None
        self.active = False                       # any live grant on a path: attrs need work
        self._derived: LRUCache = LRUCache(maxsize=65536)
        self._reach: LRUCache = LRUCache(maxsize=65536)
        self._answers: TTLCache = TTLCache(maxsize=65536, ttl=2.0)
        self.load()

    # -- the grant set ------------------------------------------------------------------------
    def load(self, now: int | None = None) -> None:
        """Re-read the tuples (after a change or an expiry) and drop every derived answer."""
        now = time.time_ns() if now is None else now
        self.tuples = self.grants.all()
        live = [t for t in self.tuples if t.live(now)]
        self.by_obj = {}
        for t in live:
            if t.obj_kind == "ino":
                self.by_obj.setdefault(t.obj, []).append(t)
        self.graph = R.Graph(live)
        future = [t.expires_ns for t in live if t.expires_ns is not None]
        self.next_expiry_ns = min(future) if future else None
        self.active = bool(self.by_obj)
        self.changed()

    def changed(self) -> None:
        """Something that decides access changed: forget every cached answer."""
        self._derived.clear()
        self._reach.clear()
        self._answers.clear()

    def tick(self, now_ns: int) -> bool:
        """Called by the batch timer; True (after reloading) when a grant just expired."""
        if self.next_expiry_ns is not None and now_ns >= self.next_expiry_ns:
            self.load(now_ns)
            return True
        return False

    # -- what grants reach an inode -----------------------------------------------------------
    def _ancestry(self, ino: int) -> list[int]:
        """``ino`` and every directory above it, through every link (a grant on any directory
        a name of the inode lives in covers it)."""
        out, todo, seen = [], [ino], set()
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            out.append(i)
            if i == ROOT_INO:
                continue
            for parent, _name in self.meta.names(i):
                todo.append(parent)
        return out

    def derived(self, ino: int, attr: Attr) -> dict[tuple[int, int], tuple[int, list]]:
        """{(USER|GROUP, id): (perm bits, [(tuple, member-of chain)])} the live grants give on
        ``ino``. Empty when no grant reaches it."""
        if not self.active:
            return {}
        hit = self._derived.get(ino)
        if hit is not None:
            return hit
        out: dict[tuple[int, int], tuple[int, list]] = {}
        is_dir = st.S_ISDIR(attr.mode)
        for t, subj, chain in self._reaching(ino):
            bits = R.perms(t.relation, is_dir, attr.mode)
            key = (A.USER if subj.kind == "user" else A.GROUP, int(subj.id))
            old = out.get(key)
            out[key] = ((old[0] if old else 0) | bits, (old[1] if old else []) + [(t, chain)])
        self._derived[ino] = out
        return out

    def _reaching(self, ino: int, depth: int = 0) -> tuple:
        """(tuple, subject, chain) of every live grant on ``ino`` or above it; cached per
        inode, so a directory's answer serves all its children."""
        hit = self._reach.get(ino)
        if hit is not None:
            return hit
        out = [(t, subj, chain) for t in self.by_obj.get(ino, ()) for subj, chain in self._subjects(t)]
        if ino != ROOT_INO and depth < 4096:
            for parent, _name in self.meta.names(ino):
                out.extend(self._reaching(parent, depth + 1))
        hit = self._reach[ino] = tuple(out)
        return hit

    def _subjects(self, t: R.Tuple):
        if t.subject.kind == "team":
            return self.graph.expand(t.subject.id)
        return [(t.subject, [])]

    # -- ACLs ---------------------------------------------------------------------------------
    def stored(self, ino: int, name: bytes = ACL_ACCESS) -> A.Acl | None:
        if ino not in self.fs.rare_xattrs.get(name, ()):
            return None
        value = self.meta.get_xattr(ino, name)
        return A.decode(value) if value else None

    def effective(self, ino: int, attr: Attr) -> A.Acl | None:
        """The access ACL the kernel enforces: the stored one plus the grants' entries."""
        stored = self.stored(ino)
        grants = self.derived(ino, attr)
        if not grants:
            return stored
        base = stored or A.from_mode(attr.mode)
        old_mask = (A.get(base, A.MASK) or A.get(base, A.GROUP_OBJ)).perm
        named = {(e.tag, e.id) for e in base if e.tag in (A.USER, A.GROUP)}
        extra, widen = [], 0
        for (tag, qid), (bits, _why) in sorted(grants.items()):
            if (tag, qid) in named or (tag == A.USER and qid == attr.uid):
                continue                       # the explicit entry (or ownership) decides
            extra.append(A.Entry(tag, bits, qid))
            widen |= bits
        if not extra:
            return stored
        out = [A.Entry(e.tag, e.perm & old_mask, e.id) if e.tag in (A.GROUP_OBJ, A.USER, A.GROUP)
               else e for e in base if e.tag != A.MASK]
        out += extra
        out.append(A.Entry(A.MASK, old_mask | widen))
        return tuple(sorted(out, key=A._order))

    def shown(self, attr: Attr) -> Attr:
        """Attributes as the kernel must see them: with grants, the group bits are the
        widened mask (else the kernel would not consult the ACL)."""
        if self.active and attr.ino < (1 << 48):
            eff = self.effective(attr.ino, attr)
            if eff is not None:
                mask = A.get(eff, A.MASK) or A.get(eff, A.GROUP_OBJ)
                attr.mode = (attr.mode & ~0o070) | (mask.perm << 3)
        return attr

    # -- the daemon's own checks (search results, the log, control commands, the past) ---------
    def permits(self, uid: int, gids: frozenset[int], ino: int, want: int) -> bool:
        attr = self.meta.get_attr(ino)
        if attr is None:
            return False
        if uid == 0:
            return not (want & 1) or st.S_ISDIR(attr.mode) or bool(attr.mode & 0o111)
        eff = self.effective(ino, attr)
        mode = self.shown(attr).mode if eff is not None else attr.mode
        return A.permits(eff, mode, attr.uid, attr.gid, uid, gids, want)

    def may_access(self, caller: Caller, ino: int, want: int) -> bool:
        """May ``caller`` reach ``ino`` by its path (search permission on every directory
        above it) and have ``want`` (R_OK|W_OK|X_OK bits) on it?"""
        return self.may(caller.uid, gids_of(caller), ino, want)

    def may(self, uid: int, gids: frozenset[int], ino: int, want: int) -> bool:
        key = (uid, gids, ino, want)
        hit = self._answers.get(key)
        if hit is not None:
            return hit
        ok = self.permits(uid, gids, ino, want)
        if ok and ino != ROOT_INO:
            found = self.meta.name_of(ino)
            ok = found is not None and self.may(uid, gids, found[0], 1)
        self._answers[key] = ok
        return ok

    def owns(self, caller: Caller, ino: int) -> bool:
        """Root, the inode's owner, or a holder of owner-of on it (or a directory above it)."""
        if caller.uid == 0:
            return True
        attr = self.meta.get_attr(ino)
        if attr is None:
            raise FsError(errno.ENOENT)
        if attr.uid == caller.uid:
            return True
        gids = gids_of(caller)
        for a in self._ancestry(ino):
            for t in self.by_obj.get(a, ()):
                if t.relation != "owner-of":
                    continue
                for subj, _chain in self._subjects(t):
                    if (subj.kind == "user" and subj.id == caller.uid) or (
                            subj.kind == "group" and subj.id in gids):
                        return True
        return False

    # -- ACL xattrs (getfacl / setfacl) -------------------------------------------------------
    def get_xattr(self, ino: int, name: bytes) -> bytes:
        attr = self.fs._attr(ino)
        if name == ACL_DEFAULT:
            value = self.meta.get_xattr(ino, name) if st.S_ISDIR(attr.mode) else None
        else:
            eff = self.effective(ino, attr)
            value = A.encode(eff) if eff is not None else None
        if value is None:
            raise FsError(errno.ENODATA)
        return value

    def _check_ids(self, acl: A.Acl) -> None:
        for e in acl:
            try:
                if e.tag == A.USER:
                    pwd.getpwuid(e.id)
                elif e.tag == A.GROUP:
                    grp.getgrgid(e.id)
            except KeyError:
                kind = "user" if e.tag == A.USER else "group"
                raise FsError(errno.EINVAL, f"ACL names unknown {kind} {e.id}") from None

    def set_xattr(self, ino: int, name: bytes, value: bytes, caller: Caller) -> None:
        attr = self.fs._attr(ino)
        if caller.uid not in (0, attr.uid):
            raise FsError(errno.EPERM)
        new = A.decode(value)
        self._check_ids(new)
        if name == ACL_DEFAULT:
            if not st.S_ISDIR(attr.mode):
                raise FsError(errno.EACCES)
            with self.fs._op("setfacl", caller, path=self.fs.path_of(ino), ino=ino,
                             path2="default"):
                self.meta.set_xattr(ino, name, A.encode(new))
                self.meta.update_attr(ino, ctime_ns=time.time_ns())
            self.fs.rare_xattrs[name].add(ino)
            return
        # what setfacl read back included the grants' entries: keep only the explicit ones
        grants = self.derived(ino, attr)
        stored = self.stored(ino) or ()
        explicit = {(e.tag, e.id) for e in stored}
        kept = tuple(e for e in new if not (
            e.tag in (A.USER, A.GROUP) and (e.tag, e.id) not in explicit
            and (e.tag, e.id) in grants and grants[(e.tag, e.id)][0] == e.perm))
        if len(kept) != len(new) and not any(e.tag in (A.USER, A.GROUP) for e in kept):
            kept = tuple(e for e in kept if e.tag != A.MASK)   # that mask was the grants'
        new = kept
        mode = (attr.mode & ~0o777) | A.mode_bits(new)
        if caller.uid != 0 and attr.gid != caller.gid and attr.gid not in caller.groups:
            mode &= ~st.S_ISGID                # as Linux does when a non-member sets an ACL
        with self.fs._op("setfacl", caller, path=self.fs.path_of(ino), ino=ino):
            if A.is_minimal(new):             # the mode says it all
                self.meta.remove_xattr(ino, name)
                self.fs.rare_xattrs[name].discard(ino)
            else:
                self.meta.set_xattr(ino, name, A.encode(new))
                self.fs.rare_xattrs[name].add(ino)
            self.meta.update_attr(ino, mode=mode, ctime_ns=time.time_ns())
        self.changed()

    def remove_xattr(self, ino: int, name: bytes, caller: Caller) -> None:
        attr = self.fs._attr(ino)
        if caller.uid not in (0, attr.uid):
            raise FsError(errno.EPERM)
        if ino not in self.fs.rare_xattrs[name]:
            raise FsError(errno.ENODATA)
        with self.fs._op("setfacl", caller, path=self.fs.path_of(ino), ino=ino,
                         path2="remove default" if name == ACL_DEFAULT else "remove"):
            self.meta.remove_xattr(ino, name)
            self.meta.update_attr(ino, ctime_ns=time.time_ns())
        self.fs.rare_xattrs[name].discard(ino)
        self.changed()

    # -- hooks of the namespace and setattr ---------------------------------------------------
    def on_chmod(self, ino: int, mode: int) -> None:
        """chmod rewrites the owner, mask and other entries of a stored ACL."""
        stored = self.stored(ino)
        if stored is not None:
            self.meta.set_xattr(ino, ACL_ACCESS, A.encode(A.chmod(stored, mode)))
        self.changed()

    def inherit(self, parent: int, mode: int) -> tuple[int, A.Acl | None, bytes | None]:
        """(mode, access ACL, default ACL value) of a new inode in ``parent``: a directory with
        a default ACL passes it on (narrowed by ``mode``); subdirectories keep it as theirs."""
        default = self.stored(parent, ACL_DEFAULT)
        if default is None:
            return mode, None, None
        access, bits = A.inherit(default, mode)
        mode = (mode & ~0o777) | bits
        dflt = A.encode(default) if st.S_ISDIR(mode) else None
        return mode, (None if A.is_minimal(access) else access), dflt

    def store_inherited(self, ino: int, access: A.Acl | None, dflt: bytes | None) -> None:
        if access is not None:
            self.meta.set_xattr(ino, ACL_ACCESS, A.encode(access))
            self.fs.rare_xattrs[ACL_ACCESS].add(ino)
        if dflt is not None:
            self.meta.set_xattr(ino, ACL_DEFAULT, dflt)
            self.fs.rare_xattrs[ACL_DEFAULT].add(ino)

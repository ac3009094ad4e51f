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

What it costs: every attribute that leaves the core passes through ``shown``, so a listing
of N files is N effective ACLs. They are computed once per *shape*, not per inode: the
effective ACL depends only on the stored ACL value, the grants that reach the inode, its
mode and its owner. The grants that reach an inode are those that reach its *anchor* — the
nearest inode at or above it that has grants of its own, is the root or has not exactly one
name (a file in a granted directory has the directory's anchor) — so a directory's files
share one answer. An attribute needs only the effective mask; the ACL itself is built when
first asked for (getxattr, the daemon's checks). Stored ACL values are decoded once per
distinct value (identical ACLs are the rule: default ACLs hand the same one down a tree),
and a listing reads the values of all its entries with one query.

Concurrency: runs on the trio thread; nothing awaits. Caches keyed by inode (anchors, grants
reaching, what each inode was last shown as, permission answers) and by anchor (the grants'
entries, effective ACLs) are dropped wholesale on any change that could alter them (a grant
made, deleted or expired; a chmod, chown or ACL change; a link, an unlink of a linked file,
a rename, an undo or restore); an unlink drops what was kept for that inode. Decoded ACL
values are pure functions of their bytes and need no invalidation; effective ACLs are keyed
by the stored value, mode and owner as well.
"""
from __future__ import annotations

import errno
import grp
import os
import pwd
import stat as st
import time

from cachetools import LRUCache, TTLCache

from ..access import acl as A
from ..access import rebac as R
from ..meta.grants import GrantStore
from ..types import ROOT_INO, Attr, Caller, FsError
from .vtree import VINO_BASE as _VIRTUAL

ACL_ACCESS, ACL_DEFAULT = A.ACL_ACCESS, A.ACL_DEFAULT
_MISSING = object()
_CACHE_MAX = 65536           # entries per cache; a full cache is emptied and refilled


def _put(cache: dict, key, value):
    """A bounded plain dict (cheaper than an LRU on the per-entry path of listings)."""
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def gids_of(caller: Caller) -> frozenset[int]:
    return frozenset((caller.gid, *caller.groups))


def names(subj: R.Subject, uid: int, gids: frozenset[int]) -> bool:
    """Is a caller with ``uid`` and ``gids`` the user or in the Unix group ``subj`` names?"""
    return (subj.kind == "user" and subj.id == uid) or (subj.kind == "group" and subj.id in gids)


def unix_groups_of(uid: int) -> tuple[int, frozenset[int]]:
    """(primary gid, every gid) of a user from the system databases (for `rebac check`)."""
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        return uid, frozenset()
    return pw.pw_gid, frozenset(os.getgrouplist(pw.pw_name, pw.pw_gid))


class _View:
    """What inodes of one shape (stored ACL, grants reaching, mode, owner) show the kernel:
    the group bits of the mode at once (every attribute reply needs them), the effective ACL
    and its xattr value when first asked (a getxattr, the daemon's own checks)."""

    __slots__ = ("stored", "grants", "mode", "uid", "mask", "known", "_acl")

    def __init__(self, stored: A.Acl | None, grants: dict, mode: int, uid: int):
        self.stored, self.grants, self.mode, self.uid = stored, grants, mode, uid
        self._acl = _MISSING
        self.mask = None                      # perm of the effective mask (None: no ACL)
        named = {(e.tag, e.id) for e in stored or () if e.tag in (A.USER, A.GROUP)}
        extra, widen = False, 0
        for key, bits in grants.items():
            if key in named or (key[0] == A.USER and key[1] == uid):
                continue                       # the explicit entry (or ownership) decides
            extra, widen = True, widen | bits
        base = stored or (A.from_mode(mode) if extra else None)
        if base is not None:
            self.mask = (A.get(base, A.MASK) or A.get(base, A.GROUP_OBJ)).perm | widen
        # the xattr value once encoded: b"" when there is no ACL, None until first asked
        self.known: bytes | None = b"" if self.mask is None else None

    def acl(self) -> A.Acl | None:
        """The effective ACL: the stored one; with grants, their entries added, the mask
        widened to cover them and the stored group-class entries narrowed by the old mask."""
        if self._acl is not _MISSING:
            return self._acl
        stored, grants = self.stored, self.grants
        self._acl = stored
        if not grants:
            return stored
        base = stored or A.from_mode(self.mode)
        old_mask = (A.get(base, A.MASK) or A.get(base, A.GROUP_OBJ)).perm
        named = {(e.tag, e.id) for e in base if e.tag in (A.USER, A.GROUP)}
        extra, widen = [], 0
        for (tag, qid), bits in sorted(grants.items()):
            if (tag, qid) in named or (tag == A.USER and qid == self.uid):
                continue                       # the explicit entry (or ownership) decides
            extra.append(A.Entry(tag, bits, qid))
            widen |= bits
        if not extra:
            return stored
        out = [A.Entry(e.tag, e.perm & old_mask, e.id) if e.tag in (A.GROUP_OBJ, A.USER, A.GROUP)
               else e for e in base if e.tag != A.MASK]
        out += extra
        out.append(A.Entry(A.MASK, old_mask | widen))
        self._acl = tuple(sorted(out, key=A._order))
        return self._acl

    def encoded(self) -> bytes | None:
        if self.known is None:
            self.known = A.encode(self.acl())
        return self.known or None


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
        self.generation = 0                       # counts changes of what decides access
        self._anchors: dict[int, int] = {}                  # ino -> its anchor
        self._derived: dict[tuple[int, bool], dict] = {}    # (anchor, x allowed) -> bits
        self._teams: dict[str, frozenset] = {}              # team -> its users and groups
        self._views: dict[tuple, _View] = {}                # (value, anchor, mode, uid) -> view
        self._shown: dict[int, _View] = {}                  # ino -> its view, as last shown
        self._decoded: dict[bytes, A.Acl] = {}              # stored value -> ACL (pure)
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
        self.generation += 1
        self._anchors.clear()
        self._derived.clear()
        self._teams.clear()
        self._views.clear()
        self._shown.clear()
        self._reach.clear()
        self._answers.clear()

    def unnamed(self, ino: int) -> None:
        """``ino`` lost a name (the others, if any, are handled by ``changed``)."""
        self._anchors.pop(ino, None)
        self._shown.pop(ino, None)
        self._reach.pop(ino, None)

    def tick(self, now_ns: int) -> bool:
        """Called by the batch timer; True (after reloading) when a grant just expired."""
        if self.next_expiry_ns is not None and now_ns >= self.next_expiry_ns:
            self.load(now_ns)
            return True
        return False

    # -- what grants reach an inode -----------------------------------------------------------
    def derived(self, ino: int, attr: Attr,
                parent: int | None = None) -> dict[tuple[int, int], tuple[int, list]]:
        """{(USER|GROUP, id): (perm bits, [(tuple, member-of chain)])} the live grants give on
        ``ino``, with the reasons (for explanations; ``bits`` is the fast form). Empty when no
        grant reaches it. ``parent``: ino's only parent, when the caller knows it."""
        if not self.active:
            return {}
        x = st.S_ISDIR(attr.mode) or bool(attr.mode & 0o111)
        out: dict[tuple[int, int], list] = {}
        for t, subj, chain in self.reaching(self.anchor(ino, parent)):
            got = out.get(key := (A.USER if subj.kind == "user" else A.GROUP, int(subj.id)))
            if got is None:
                got = out[key] = [0, []]
            got[0] |= R.perms(t.relation, x, 0)
            got[1].append((t, chain))
        return {k: (bits, why) for k, (bits, why) in out.items()}

    def bits(self, ino: int, attr: Attr, parent: int | None = None) -> dict[tuple[int, int], int]:
        """{(USER|GROUP, id): perm bits} the live grants give on ``ino``: ``derived`` without
        the reasons, shared by every inode of the same anchor and kind (do not modify)."""
        if not self.active:
            return {}
        return self._bits_at(self.anchor(ino, parent), st.S_ISDIR(attr.mode) or
                             bool(attr.mode & 0o111))

    def _bits_at(self, anchor: int, x: bool) -> dict[tuple[int, int], int]:
        hit = self._derived.get((anchor, x))
        if hit is not None:
            return hit
        if x:                                     # every relation on a path adds x then
            base = self._bits_at(anchor, False)
            return _put(self._derived, (anchor, x),
                        {k: bits | 1 if bits else 0 for k, bits in base.items()})
        by_bits: dict[int, set] = {}             # the subjects each level of access reaches
        for t in self.grants_above(anchor):
            level = by_bits.setdefault(R.perms(t.relation, x, 0), set())
            if t.subject.kind == "team":
                level |= self._team_keys(t.subject.id)
            else:
                level.add((A.USER if t.subject.kind == "user" else A.GROUP, int(t.subject.id)))
        out: dict[tuple[int, int], int] = {}
        for bits, keys in by_bits.items():
            for key in keys:
                out[key] = out.get(key, 0) | bits
        return _put(self._derived, (anchor, x), out)

    def _team_keys(self, team: str) -> frozenset:
        hit = self._teams.get(team)
        if hit is None:
            hit = self._teams[team] = frozenset(
                (A.USER if subj.kind == "user" else A.GROUP, int(subj.id))
                for subj, _chain in self.graph.expand(team))
        return hit

    def anchor(self, ino: int, parent: int | None = None) -> int:
        """The inode whose grants reaching are exactly ``ino``'s: ``ino`` itself when grants
        sit on it, it is the root or it has not exactly one name; else its parent's anchor.
        ``parent``: ino's only parent, when the caller knows it (spares a query)."""
        hit = self._anchors.get(ino)
        if hit is not None:
            return hit
        walked, cur = [], ino
        while True:
            hit = self._anchors.get(cur)
            if hit is not None:
                break
            walked.append(cur)
            if cur in self.by_obj or cur == ROOT_INO or len(walked) > 4096:
                hit = cur
                break
            if cur == ino and parent is not None:
                up = parent
            else:
                found = self.meta.names(cur)
                if len(found) != 1:
                    hit = cur
                    break
                up = found[0][0]
            cur = up
        for i in walked:
            _put(self._anchors, i, hit)
        return hit

    def reaching(self, ino: int) -> list:
        """(tuple, subject, chain) of every live grant on ``ino`` or above it."""
        return [(t, subj, chain) for t in self.grants_above(ino)
                for subj, chain in self.subjects(t)]

    def grants_above(self, ino: int, depth: int = 0) -> tuple:
        """The live grants on ``ino`` or a directory above it; cached per inode, so a
        directory's answer serves all its children."""
        hit = self._reach.get(ino)
        if hit is not None:
            return hit
        out = list(self.by_obj.get(ino, ()))
        if ino != ROOT_INO and depth < 4096:
            for parent, _name in self.meta.names(ino):
                out.extend(self.grants_above(parent, depth + 1))
        hit = self._reach[ino] = tuple(out)
        return hit

    def subjects(self, t: R.Tuple):
        if t.subject.kind == "team":
            return self.graph.expand(t.subject.id)
        return [(t.subject, [])]

    # -- ACLs ---------------------------------------------------------------------------------
    def stored(self, ino: int, name: bytes = ACL_ACCESS) -> A.Acl | None:
        value = self.fs.rare_xattrs[name].get(ino)
        return self.decoded(value) if value else None

    def decoded(self, value: bytes) -> A.Acl:
        """A stored ACL value decoded (once per distinct value)."""
        hit = self._decoded.get(value)
        if hit is None:
            hit = _put(self._decoded, value, A.decode(value))
        return hit

    def _view(self, ino: int, attr: Attr, parent: int | None, value) -> _View:
        """What ``ino`` shows (shared by inodes of the same shape); ``value`` is its stored
        access ACL value (None: none; _MISSING: read it)."""
        if value is _MISSING:
            value = self.fs.rare_xattrs[ACL_ACCESS].get(ino)
        value = value or None
        anchor = self.anchor(ino, parent) if self.active else 0
        key = (value, anchor, attr.mode, attr.uid)
        view = self._views.get(key)
        if view is None:
            grants = (self._bits_at(anchor, st.S_ISDIR(attr.mode) or bool(attr.mode & 0o111))
                      if self.active else {})
            view = _put(self._views, key, _View(
                self.decoded(value) if value is not None else None, grants, attr.mode, attr.uid))
        if self.active:
            _put(self._shown, ino, view)
        return view

    def known_acl(self, ino: int) -> bytes | None:
        """The access ACL xattr of an inode whose attributes were just shown, when it is
        already known: b"" for none; None when it is not known (ask ``get_xattr``). Nothing
        that could change it has happened since (that empties this cache)."""
        view = self._shown.get(ino)
        return view.known if view is not None else None

    def effective(self, ino: int, attr: Attr, parent: int | None = None,
                  value=_MISSING) -> A.Acl | None:
        """The access ACL the kernel enforces: the stored one plus the grants' entries."""
        return self._view(ino, attr, parent, value).acl()

    def shown(self, attr: Attr, parent: int | None = None, value=_MISSING) -> Attr:
        """Attributes as the kernel must see them: with grants, the group bits are the
        widened mask (else the kernel would not consult the ACL). ``parent``: the inode's
        only parent, ``value``: its stored ACL value, when the caller has them."""
        if self.active and attr.ino < _VIRTUAL:
            mask = self._view(attr.ino, attr, parent, value).mask
            if mask is not None:
                attr.mode = (attr.mode & ~0o070) | (mask << 3)
        return attr

    def show_listing(self, parent: int, entries) -> list:
        """``shown`` for the real inodes among the entries of a listing of directory
        ``parent``, with no query (the stored ACL values are kept in memory by the store);
        returns the others (document views, for the caller). An entry shown
        before with the same mode and owner shows the same again: whatever else decides its
        view (its ACL, the grants, its names) empties ``_shown`` when it changes. An entry
        whose only parent is ``parent`` (a file with one link, a subdirectory) and that has no
        grants of its own has ``parent``'s anchor."""
        if not self.active:
            return []
        views, by_obj, shown = self._views, self.by_obj, self._shown
        values = self.fs.rare_xattrs[ACL_ACCESS]
        here = None
        others = []
        for e in entries:
            a = e.attr
            if a.ino >= _VIRTUAL:
                others.append(e)
                continue
            view = shown.get(a.ino)
            if view is None or view.mode != a.mode or view.uid != a.uid:
                if e.name == b"." or e.name == b"..":
                    view = self._view(a.ino, a, None, values.get(a.ino))
                else:
                    if here is None:
                        here = self.anchor(parent)
                    only = a.nlink == 1 or st.S_ISDIR(a.mode)
                    value = values.get(a.ino)
                    view = (views.get((value, here, a.mode, a.uid))
                            if only and a.ino not in by_obj else None)
                    if view is None:
                        view = self._view(a.ino, a, parent if only else None, value)
                    else:
                        _put(shown, a.ino, view)
            if view.mask is not None:
                a.mode = (a.mode & ~0o070) | (view.mask << 3)
        return others

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
        return any(t.relation == "owner-of" and names(subj, caller.uid, gids)
                   for t, subj, _chain in self.reaching(ino))

    # -- ACL xattrs (getfacl / setfacl) -------------------------------------------------------
    def get_xattr(self, ino: int, name: bytes) -> bytes:
        attr = self.fs._attr(ino)
        if name == ACL_DEFAULT:
            value = self.fs.rare_xattrs[name].get(ino) if st.S_ISDIR(attr.mode) else None
        else:
            value = self._view(ino, attr, None, _MISSING).encoded()
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
            return
        # what setfacl read back included the grants' entries: keep only the explicit ones
        grants = self.bits(ino, attr)
        stored = self.stored(ino) or ()
        explicit = {(e.tag, e.id) for e in stored}
        kept = tuple(e for e in new if not (
            e.tag in (A.USER, A.GROUP) and (e.tag, e.id) not in explicit
            and grants.get((e.tag, e.id)) == e.perm))
        if len(kept) != len(new) and not any(e.tag in (A.USER, A.GROUP) for e in kept):
            kept = tuple(e for e in kept if e.tag != A.MASK)   # that mask was the grants'
        new = kept
        mode = (attr.mode & ~0o777) | A.mode_bits(new)
        if caller.uid != 0 and attr.gid != caller.gid and attr.gid not in caller.groups:
            mode &= ~st.S_ISGID                # as Linux does when a non-member sets an ACL
        with self.fs._op("setfacl", caller, path=self.fs.path_of(ino), ino=ino):
            if A.is_minimal(new):             # the mode says it all
                self.meta.remove_xattr(ino, name)
            else:
                self.meta.set_xattr(ino, name, A.encode(new))
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
        if dflt is not None:
            self.meta.set_xattr(ino, ACL_DEFAULT, dflt)

"""Relationship grants as commands: create, delete, list, check (with the path of the
decision) and expand (who holds a relation, through what).

Owns who may change grants: root; for a path, its owner or a holder of owner-of on it (or
on a directory above it); for a team, a holder of owner-of on the team (the first member
added to a new team by a non-root caller makes that caller its owner). ``NEXUS_AGENT`` is a
label in the log, never a principal: nothing here looks at it.

Runs on the trio thread; nothing awaits except the kernel refresh after a change.
"""
from __future__ import annotations

import errno
import time
from datetime import UTC, datetime

from ..access import acl as A
from ..access import rebac as R
from ..history.paths import resolve_live
from ..types import ROOT_INO, Caller, FsError
from .access import gids_of, names, unix_groups_of


def parse_expiry(text: str | None, now_ns: int) -> int | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FsError(errno.EINVAL, f"expiry {text!r}: use ISO 8601, e.g. 2026-12-31T23:59:59Z") \
            from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    ns = int(t.timestamp() * 1_000_000_000)
    if ns <= now_ns:
        raise FsError(errno.EINVAL, f"expiry {text} is in the past")
    return ns


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GrantOps:
    def __init__(self, fs):
        self.fs = fs
        self.ac = fs.access

    # -- objects ------------------------------------------------------------------------------
    def _object(self, text: str) -> tuple[str, int | str, str]:
        """("ino", N, path) or ("team", NAME, "team:NAME")."""
        if text.startswith("team:"):
            name = R.team_name(text[5:])
            return "team", name, text
        if not text.startswith("/"):
            raise FsError(errno.EINVAL, f"object {text!r}: a path (starting with /) or team:NAME")
        return "ino", resolve_live(self.fs, text), text

    def _show_object(self, t: R.Tuple) -> str:
        if t.obj_kind == "team":
            return f"team:{t.obj}"
        if self.fs.meta.get_attr(t.obj) is None:
            return f"<deleted inode {t.obj}>"
        return self.fs.path_of(t.obj, is_dir=True)

    def _may_manage(self, caller: Caller, kind: str, obj) -> bool:
        if caller.uid == 0:
            return True
        if kind == "ino":
            return self.ac.owns(caller, obj)
        gids, now = gids_of(caller), time.time_ns()
        if any(t.obj_kind == "team" and t.obj == obj and t.relation == "owner-of" and t.live(now)
               and any(names(subj, caller.uid, gids) for subj, _ in self.ac.subjects(t))
               for t in self.ac.tuples):
            return True
        return not self._team_exists(obj)

    def _team_exists(self, name: str) -> bool:
        """A team exists once any grant names it, as object or as subject."""
        return any((t.obj_kind == "team" and t.obj == name) or
                   (t.subject.kind == "team" and t.subject.id == name) for t in self.ac.tuples)

    # -- changing the grant set ---------------------------------------------------------------
    async def create(self, subject: str, relation: str, obj: str, expires: str | None,
                     caller: Caller) -> dict:
        now = time.time_ns()
        subj = R.parse_subject(subject)
        kind, target, shown = self._object(obj)
        if not (kind == "team" and relation == "owner-of"):
            R.check_relation(relation, kind == "team")
        expires_ns = parse_expiry(expires, now)
        if not self._may_manage(caller, kind, target):
            raise FsError(errno.EPERM, f"only the owner of {shown} (or root) may grant on it")
        new_team = kind == "team" and not self._team_exists(target)
        with self.fs._op("rebac-create", caller, path=shown if kind == "ino" else None,
                         path2=f"{subj.show()} {relation}"):
            tid = self.ac.grants.add(subj.key(), relation, kind, target, expires_ns, now,
                                     caller.uid)
            if new_team and caller.uid != 0 and relation != "owner-of":
                self.ac.grants.add(f"user:{caller.uid}", "owner-of", "team", target, None, now,
                                   caller.uid)
        await self._changed()
        return {"id": tid, "subject": subj.show(), "relation": relation, "object": shown,
                "expires": iso(expires_ns)}

    async def delete(self, ids: list[int] | None, subject: str | None, relation: str | None,
                     obj: str | None, caller: Caller) -> dict:
        if ids:
            chosen = [t for t in self.ac.tuples if t.id in ids]
            missing = set(ids) - {t.id for t in chosen}
            if missing:
                raise FsError(errno.ENOENT, f"no grant {min(missing)}")
        else:
            if not (subject and relation and obj):
                raise FsError(errno.EINVAL, "name the grant: its number, or SUBJECT RELATION OBJECT")
            subj = R.parse_subject(subject)
            kind, target, _ = self._object(obj)
            chosen = [t for t in self.ac.tuples if t.subject == subj and t.relation == relation
                      and t.obj_kind == kind and str(t.obj) == str(target)]
            if not chosen:
                raise FsError(errno.ENOENT, f"no grant {subject} {relation} {obj}")
        for t in chosen:
            if not self._may_manage(caller, t.obj_kind, t.obj):
                raise FsError(errno.EPERM, f"only the owner of {self._show_object(t)} (or root) "
                                           "may remove grants on it")
        with self.fs._op("rebac-delete", caller, path2=",".join(str(t.id) for t in chosen)):
            n = self.ac.grants.delete([t.id for t in chosen])
        await self._changed()
        return {"deleted": n}

    async def _changed(self) -> None:
        self.fs.meta.commit()
        self.ac.load()
        await self.fs.refresh_permissions()

    # -- reading it ---------------------------------------------------------------------------
    def list(self, caller: Caller) -> list[dict]:
        now = time.time_ns()
        out = []
        for t in self.ac.tuples:
            if caller.uid != 0 and t.obj_kind == "ino" and (
                    self.fs.meta.get_attr(t.obj) is None or not self.ac.may_access(caller, t.obj, 0)):
                continue                      # grants on what the caller cannot reach: hidden
            out.append({"id": t.id, "subject": t.subject.show(), "relation": t.relation,
                        "object": self._show_object(t), "expires": iso(t.expires_ns),
                        "expired": not t.live(now), "by": R.user_name(t.created_by)})
        return out

    def check(self, subject: str, action: str, path: str) -> dict:
        """Would ``subject`` (a user) be allowed ``action`` on ``path`` through the mount?
        Explains each step: the directories on the way, then the inode's decision."""
        subj = R.parse_subject(subject)
        if subj.kind != "user":
            raise FsError(errno.EINVAL, "check takes a user:NAME|UID subject")
        want = R.want_bits(action)
        uid = int(subj.id)
        _gid, gids = unix_groups_of(uid)
        ino = resolve_live(self.fs, path)
        steps = []
        chain, i = [], ino
        while i != ROOT_INO:
            found = self.fs.meta.name_of(i)
            if found is None:
                break
            i = found[0]
            chain.append(i)
        for d in reversed(chain):
            if not self.ac.permits(uid, gids, d, 1):
                why = self.explain(uid, gids, d, 1)
                return {"allowed": False, "subject": subj.show(), "action": action, "path": path,
                        "why": [f"cannot enter {self.fs.path_of(d, is_dir=True)}: {why}"]}
        ok = self.ac.permits(uid, gids, ino, want)
        steps.append(self.explain(uid, gids, ino, want))
        return {"allowed": ok, "subject": subj.show(), "action": action, "path": path,
                "why": steps}

    def explain(self, uid: int, gids: frozenset[int], ino: int, want: int) -> str:
        attr = self.fs.meta.get_attr(ino)
        if uid == 0:
            return "root"
        bits = "".join(c for c, b in (("r", 4), ("w", 2), ("x", 1)) if want & b)
        if uid == attr.uid:
            return f"owner; the mode gives the owner {_bits((attr.mode >> 6) & 7)}"
        stored = self.ac.stored(ino)
        for e in stored or ():
            if e.tag == A.USER and e.id == uid:
                return (f"explicit ACL entry user:{R.user_name(uid)}:{_bits(e.perm)} decides "
                        "(an explicit ACL entry comes before grants)")
        grants = self.ac.derived(ino, attr)
        mine = grants.get((A.USER, uid))
        if mine is not None:
            return f"granted {_bits(mine[0])} by " + "; ".join(self._via(t, c) for t, c in mine[1])
        for (tag, gid), (perm, why) in grants.items():
            if tag == A.GROUP and gid in gids and not (want & ~perm):
                return (f"granted {_bits(perm)} to group {R.group_name(gid)} (a group of the user) by "
                        + "; ".join(self._via(t, c) for t, c in why))
        for e in stored or ():
            if e.tag == A.GROUP and e.id in gids:
                return f"ACL entry group:{R.group_name(e.id)}:{_bits(e.perm)} (masked)"
        if attr.gid in gids:
            return f"member of the owning group {R.group_name(attr.gid)}: group bits " \
                   f"{_bits((attr.mode >> 3) & 7)}"
        return f"other: {_bits(attr.mode & 7)} (wants {bits})"

    def _via(self, t: R.Tuple, chain: list[R.Tuple]) -> str:
        where = self._show_object(t)
        links = " -> ".join(f"{c.subject.show()} member-of team:{c.obj} (#{c.id})" for c in chain)
        text = f"#{t.id} {t.subject.show()} {t.relation} {where}"
        if t.expires_ns:
            text += f" until {iso(t.expires_ns)}"
        return f"{links}; {text}" if links else text

    def expand(self, relation: str, obj: str) -> list[dict]:
        """Who holds ``relation`` on the object (directly, through a directory above, through
        teams; higher relations include lower ones), with the tuples that give it."""
        kind, target, _ = self._object(obj)
        if relation not in R.RELATIONS:
            R.check_relation(relation, kind == "team")
        out = []
        if kind == "team":
            for subj, chain in self.ac.graph.expand(target):
                out.append({"subject": subj.show(), "via": [f"#{c.id} {c.subject.show()} member-of "
                                                            f"team:{c.obj}" for c in chain]})
            return out
        attr = self.fs.meta.get_attr(target)
        out.append({"subject": f"user:{R.user_name(attr.uid)}", "via": ["POSIX owner"]})
        need = R.RANK.get(relation, 0)
        for t, subj, chain in self.ac.reaching(target):
            if R.RANK.get(t.relation, 0) >= need:
                via = [f"#{c.id} {c.subject.show()} member-of team:{c.obj}" for c in chain]
                via.append(f"#{t.id} {t.subject.show()} {t.relation} {self._show_object(t)}")
                out.append({"subject": subj.show(), "via": via})
        return out


def _bits(perm: int) -> str:
    return "".join(c if perm & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))


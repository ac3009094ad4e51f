"""Relationship-based grants: tuples (subject, relation, object, optional expiry) and the graph.

Pure: parsing of subject/relation names, what each relation allows, and the traversal of
``member-of`` edges between teams (named nexus groups) with cycle detection. Where objects
are paths, they are resolved to inodes by the caller (core/access.py); here an object is
``("ino", N)`` or ``("team", NAME)``. No I/O except name resolution through the system's
user and group databases (pwd/grp, cached by the C library); no locking.

Relations (each includes the ones below it):
    owner-of   read, write and traverse; may also create and delete grants on the object
    editor-of  read, write and traverse (x on directories; on files only if some x bit is set)
    viewer-of  read and traverse
    member-of  subject belongs to a team (object ``team:NAME``); teams may contain teams
"""
from __future__ import annotations

import errno
import grp
import pwd
import re
from dataclasses import dataclass

from ..types import FsError

RELATIONS = ("owner-of", "editor-of", "viewer-of", "member-of")
PATH_RELATIONS = ("owner-of", "editor-of", "viewer-of")
RANK = {"viewer-of": 1, "editor-of": 2, "owner-of": 3}
_TEAM_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Subject:
    """``user`` (uid), ``group`` (Unix gid) or ``team`` (name)."""

    kind: str
    id: int | str

    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def show(self) -> str:
        if self.kind == "user":
            return f"user:{user_name(self.id)}"
        if self.kind == "group":
            return f"group:{group_name(self.id)}"
        return f"team:{self.id}"


@dataclass(frozen=True, slots=True)
class Tuple:
    id: int
    subject: Subject
    relation: str
    obj_kind: str            # "ino" or "team"
    obj: int | str
    expires_ns: int | None
    created_ns: int
    created_by: int

    def live(self, now_ns: int) -> bool:
        return self.expires_ns is None or self.expires_ns > now_ns


def user_name(uid) -> str:
    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ValueError):
        return str(uid)


def group_name(gid) -> str:
    try:
        return grp.getgrgid(int(gid)).gr_name
    except (KeyError, ValueError):
        return str(gid)


def resolve_uid(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise FsError(errno.EINVAL, f"unknown user {text!r}") from None


def resolve_gid(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise FsError(errno.EINVAL, f"unknown group {text!r}") from None


def parse_subject(text: str) -> Subject:
    kind, sep, name = text.partition(":")
    if not sep or not name:
        raise FsError(errno.EINVAL, f"subject {text!r}: expected user:NAME|UID, group:NAME|GID"
                                    " or team:NAME")
    if kind == "user":
        return Subject("user", resolve_uid(name))
    if kind == "group":
        return Subject("group", resolve_gid(name))
    if kind == "team":
        return Subject("team", team_name(name))
    raise FsError(errno.EINVAL, f"subject {text!r}: unknown kind {kind!r} (user, group, team)")


def subject_from_key(key: str) -> Subject:
    kind, _, ident = key.partition(":")
    return Subject(kind, ident if kind == "team" else int(ident))


def team_name(name: str) -> str:
    if not _TEAM_RE.match(name):
        raise FsError(errno.EINVAL, f"team name {name!r}: letters, digits and _.@- only")
    return name


def check_relation(rel: str, obj_is_team: bool) -> str:
    if rel not in RELATIONS:
        raise FsError(errno.EINVAL, f"unknown relation {rel!r} (one of {', '.join(RELATIONS)})")
    if obj_is_team != (rel == "member-of"):
        raise FsError(errno.EINVAL, "member-of takes a team:NAME object; the other relations a path"
                      if rel == "member-of" or not obj_is_team else
                      f"{rel} takes a path object, not a team")
    return rel


def perms(relation: str, is_dir: bool, mode: int) -> int:
    """rwx bits a relation grants on one inode (x on files only when the file has an x bit,
    like setfacl's capital X)."""
    x = 1 if is_dir or (mode & 0o111) else 0
    if relation == "viewer-of":
        return 4 | x
    if relation in ("editor-of", "owner-of"):
        return 6 | x
    return 0


def want_bits(action: str) -> int:
    table = {"read": 4, "write": 2, "execute": 1, "traverse": 1, "list": 5, "rw": 6}
    if action not in table:
        raise FsError(errno.EINVAL, f"unknown permission {action!r} (read, write, execute)")
    return table[action]


class Graph:
    """Team membership over a set of live tuples: who is in which team, with the chain."""

    def __init__(self, tuples: list[Tuple]):
        self.members: dict[str, list[Tuple]] = {}         # team -> member-of tuples into it
        self._expanded: dict[str, list] = {}
        for t in tuples:
            if t.relation == "member-of":
                self.members.setdefault(t.obj, []).append(t)

    def expand(self, team: str) -> list[tuple[Subject, list[Tuple]]]:
        """Every user and Unix group in ``team`` (through nested teams), each with the
        shortest chain of member-of tuples that puts it there. Breadth first, each team
        entered once: cycles end there, and the cost is linear in the tuples. Cached (the
        graph does not change; a new one is built after each grant change)."""
        hit = self._expanded.get(team)
        if hit is not None:
            return hit
        out: list[tuple[Subject, list[Tuple]]] = []
        seen_teams, seen_subjects = {team}, set()
        frontier: list[tuple[str, list[Tuple]]] = [(team, [])]
        while frontier:
            nxt = []
            for name, chain in frontier:
                for t in self.members.get(name, ()):
                    if t.subject.kind == "team":
                        if t.subject.id not in seen_teams:
                            seen_teams.add(t.subject.id)
                            nxt.append((t.subject.id, chain + [t]))
                    elif t.subject not in seen_subjects:
                        seen_subjects.add(t.subject)
                        out.append((t.subject, chain + [t]))
            frontier = nxt
        self._expanded[team] = out
        return out

    def cycles(self) -> list[list[str]]:
        """Membership cycles among teams: each group of teams that reach one another
        (a strongly connected component, Kosaraju's algorithm, iterative and linear), as a
        list of names closed by its first (["a", "b", "a"])."""
        edges: dict[str, set[str]] = {}
        for team, tuples in self.members.items():
            for t in tuples:
                if t.subject.kind == "team":
                    edges.setdefault(t.subject.id, set()).add(team)   # member -> container
                    edges.setdefault(team, set())
        order, seen = [], set()
        for start in edges:
            if start in seen:
                continue
            seen.add(start)
            stack = [(start, iter(edges[start]))]
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    order.append(node)
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, iter(edges.get(nxt, ()))))
        reverse: dict[str, set[str]] = {n: set() for n in edges}
        for a, targets in edges.items():
            for b in targets:
                reverse[b].add(a)
        found, assigned = [], set()
        for root in reversed(order):
            if root in assigned:
                continue
            comp, todo = [], [root]
            assigned.add(root)
            while todo:
                n = todo.pop()
                comp.append(n)
                for m in reverse[n]:
                    if m not in assigned:
                        assigned.add(m)
                        todo.append(m)
            if len(comp) > 1 or root in edges.get(root, ()):
                comp.sort()
                found.append(comp + [comp[0]])
        return found

"""The rebac_tuples table: storing, listing and deleting relationship grants.

Uses the writer connection of MetaStore (its batch transaction); called on the trio thread
only. Grant changes are rare; readers keep their own in-memory copy (core/access.py) and
reload it after each change.
"""
from __future__ import annotations

from ..access.rebac import Tuple, subject_from_key


class GrantStore:
    def __init__(self, meta):
        self.meta = meta

    def all(self) -> list[Tuple]:
        rows = self.meta.conn.execute(
            "SELECT id, subject, relation, obj_kind, obj, expires_ns, created_ns, created_by"
            " FROM rebac_tuples ORDER BY id")
        return [Tuple(i, subject_from_key(s), r, k, int(o) if k == "ino" else o, e, c, b)
                for i, s, r, k, o, e, c, b in rows]

    def add(self, subject_key: str, relation: str, obj_kind: str, obj, expires_ns: int | None,
            now_ns: int, uid: int) -> int:
        self.meta._w()
        self.meta.conn.execute(
            "INSERT INTO rebac_tuples (subject, relation, obj_kind, obj, expires_ns, created_ns,"
            " created_by) VALUES (?,?,?,?,?,?,?)",
            (subject_key, relation, obj_kind, str(obj), expires_ns, now_ns, uid))
        return self.meta.conn.last_insert_rowid()

    def find(self, subject_key: str, relation: str, obj_kind: str, obj) -> list[int]:
        return [r[0] for r in self.meta.conn.execute(
            "SELECT id FROM rebac_tuples WHERE subject=? AND relation=? AND obj_kind=? AND obj=?",
            (subject_key, relation, obj_kind, str(obj)))]

    def delete(self, ids: list[int]) -> int:
        self.meta._w()
        n = 0
        for i in ids:
            self.meta.conn.execute("DELETE FROM rebac_tuples WHERE id=?", (i,))
            n += self.meta.conn.changes()
        return n

    def drop_objects(self, inos: list[int]) -> int:
        """Forget the grants on inodes that no longer exist (purged)."""
        if not inos:
            return 0
        self.meta._w()
        n = 0
        for ino in inos:
            self.meta.conn.execute("DELETE FROM rebac_tuples WHERE obj_kind='ino' AND obj=?",
                                   (str(ino),))
            n += self.meta.conn.changes()
        return n

"""The metadata store: every SQL statement the filesystem runs lives here.

Concurrency: one instance per mount, used only from the trio thread. Mutations join an open
batch transaction (begun lazily); ``commit()`` ends it. Between awaits the trio thread runs
alone, so each filesystem operation is atomic within the batch. ``need_gen`` records the highest
pack generation the batch references: the caller must sync packs up to it before committing.
"""
from __future__ import annotations

import apsw

from ..types import Attr, ChunkLoc, Extent

_ATTR_COLS = "ino, mode, nlink, uid, gid, rdev, size, blocks, atime_ns, mtime_ns, ctime_ns"


def _row_to_attr(row) -> Attr:
    return Attr(*row)


class MetaStore:
    def __init__(self, conn: apsw.Connection):
        self.conn = conn
        self.in_txn = False
        self.need_gen = 0
        self.changes = 0

    # -- transactions -------------------------------------------------------------------------
    def _w(self):
        if not self.in_txn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.in_txn = True
        self.changes += 1
        return self.conn

    def commit(self) -> None:
        if self.in_txn:
            try:
                self.conn.execute("COMMIT")
            finally:
                # SQLite rolls back by itself on some failures (disk full, I/O error)
                if self.conn.getautocommit():
                    self.in_txn = False

    def rollback(self) -> None:
        if self.in_txn:
            self.conn.execute("ROLLBACK")
            self.in_txn = False

    def checkpoint(self) -> None:
        self.commit()
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.commit()
        self.conn.close()

    # -- inodes -------------------------------------------------------------------------------
    def get_attr(self, ino: int) -> Attr | None:
        row = self.conn.execute(f"SELECT {_ATTR_COLS} FROM inodes WHERE ino=?", (ino,)).fetchone()
        return _row_to_attr(row) if row else None

    def update_blocks(self, ino: int) -> None:
        """Recompute st_blocks from the extents (after a commit changed them)."""
        self._w().execute("UPDATE inodes SET blocks=(SELECT CAST((total(length)+511)/512 AS INTEGER) FROM extents"
                          " WHERE ino=?) WHERE ino=?", (ino, ino))

    def create_inode(self, mode: int, uid: int, gid: int, now: int, *, nlink: int = 1,
                     rdev: int = 0, target: bytes | None = None) -> int:
        c = self._w()
        size = len(target) if target is not None else 0
        c.execute("INSERT INTO inodes (mode, nlink, uid, gid, rdev, size, atime_ns, mtime_ns,"
                  " ctime_ns, target) VALUES (?,?,?,?,?,?,?,?,?,?)",
                  (mode, nlink, uid, gid, rdev, size, now, now, now, target))
        return c.last_insert_rowid()

    def update_attr(self, ino: int, **cols) -> None:
        if not cols:
            return
        sets = ", ".join(f"{k}=?" for k in cols)
        self._w().execute(f"UPDATE inodes SET {sets} WHERE ino=?", (*cols.values(), ino))

    def add_nlink(self, ino: int, delta: int, now: int) -> None:
        self._w().execute("UPDATE inodes SET nlink=nlink+?, ctime_ns=? WHERE ino=?",
                          (delta, now, ino))

    def touch_dir(self, ino: int, now: int, nlink_delta: int = 0) -> None:
        self._w().execute("UPDATE inodes SET mtime_ns=?, ctime_ns=?, nlink=nlink+? WHERE ino=?",
                          (now, now, nlink_delta, ino))

    def readlink(self, ino: int) -> bytes | None:
        row = self.conn.execute("SELECT target FROM inodes WHERE ino=?", (ino,)).fetchone()
        return row[0] if row else None

    def delete_inode(self, ino: int) -> None:
        c = self._w()
        c.execute("DELETE FROM extents WHERE ino=?", (ino,))
        c.execute("DELETE FROM xattrs WHERE ino=?", (ino,))
        c.execute("DELETE FROM inodes WHERE ino=?", (ino,))

    def orphan_inodes(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT ino FROM inodes WHERE nlink<=0")]

    def inode_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM inodes").fetchone()[0]

    # -- directory entries --------------------------------------------------------------------
    def lookup(self, parent: int, name: bytes) -> int | None:
        row = self.conn.execute("SELECT ino FROM dentries WHERE parent=? AND name=?",
                                (parent, name)).fetchone()
        return row[0] if row else None

    def add_dentry(self, parent: int, name: bytes, ino: int) -> None:
        # the rowid picks max(id)+1, so new entries sort after every entry a listing has seen
        self._w().execute("INSERT INTO dentries (parent, name, ino) VALUES (?,?,?)",
                          (parent, name, ino))

    def remove_dentry(self, parent: int, name: bytes) -> None:
        self._w().execute("DELETE FROM dentries WHERE parent=? AND name=?", (parent, name))

    def repoint_dentry(self, parent: int, name: bytes, ino: int) -> None:
        self._w().execute("UPDATE dentries SET ino=? WHERE parent=? AND name=?", (ino, parent, name))

    def has_children(self, ino: int) -> bool:
        return self.conn.execute("SELECT 1 FROM dentries WHERE parent=? LIMIT 1",
                                 (ino,)).fetchone() is not None

    def parent_of(self, ino: int) -> int | None:
        row = self.conn.execute("SELECT parent FROM dentries WHERE ino=? LIMIT 1", (ino,)).fetchone()
        return row[0] if row else None

    def name_of(self, ino: int) -> tuple[int, bytes] | None:
        row = self.conn.execute("SELECT parent, name FROM dentries WHERE ino=? LIMIT 1",
                                (ino,)).fetchone()
        return (row[0], row[1]) if row else None

    def list_dir(self, parent: int, after_id: int, limit: int):
        """[(id, name, Attr)] of entries with id > after_id, in id order."""
        rows = self.conn.execute(
            f"SELECT d.id, d.name, i.{_ATTR_COLS.replace(', ', ', i.')} FROM dentries d"
            " JOIN inodes i ON i.ino=d.ino WHERE d.parent=? AND d.id>? ORDER BY d.id LIMIT ?",
            (parent, after_id, limit)).fetchall()
        return [(r[0], r[1], _row_to_attr(r[2:])) for r in rows]

    # -- content ------------------------------------------------------------------------------
    def extents(self, ino: int) -> list[Extent]:
        rows = self.conn.execute(
            "SELECT e.offset, e.length, c.id, c.raw_len, c.codec, c.pack, c.pack_offset,"
            " c.stored_len, c.data FROM extents e JOIN chunks c ON c.id=e.chunk"
            " WHERE e.ino=? ORDER BY e.offset", (ino,))
        return [Extent(r[0], r[1], ChunkLoc(r[2], r[3], r[4], r[5], r[6], r[7], r[8]))
                for r in rows]

    def replace_extents(self, ino: int, ranges: list[tuple[int, int]], cut_from: int | None,
                        new: list[tuple[int, int, bytes]]) -> None:
        """Drop extents starting inside each [start, end) of ``ranges`` and at or past
        ``cut_from``, then insert ``new`` (offset, length, chunk id) rows."""
        c = self._w()
        for start, end in ranges:
            c.execute("DELETE FROM extents WHERE ino=? AND offset>=? AND offset<?", (ino, start, end))
        if cut_from is not None:
            c.execute("DELETE FROM extents WHERE ino=? AND offset>=?", (ino, cut_from))
        c.executemany("INSERT INTO extents (ino, offset, length, chunk) VALUES (?,?,?,?)",
                      [(ino, off, n, cid) for off, n, cid in new])

    def known_chunks(self, ids: list[bytes]) -> dict[bytes, ChunkLoc]:
        out = {}
        for cid in ids:
            r = self.conn.execute("SELECT id, raw_len, codec, pack, pack_offset, stored_len, data"
                                  " FROM chunks WHERE id=?", (cid,)).fetchone()
            if r:
                out[cid] = ChunkLoc(*r)
        return out

    def add_chunk(self, loc: ChunkLoc, gen: int = 0) -> None:
        self._w().execute("INSERT OR IGNORE INTO chunks (id, raw_len, codec, stored_len, pack,"
                          " pack_offset, data) VALUES (?,?,?,?,?,?,?)",
                          (loc.id, loc.raw_len, loc.codec, loc.stored_len, loc.pack, loc.offset,
                           loc.data))
        self.need_gen = max(self.need_gen, gen)

    def unreferenced_chunks(self) -> list[tuple[bytes, int | None]]:
        return list(self.conn.execute(
            "SELECT id, pack FROM chunks WHERE NOT EXISTS (SELECT 1 FROM extents e WHERE e.chunk=chunks.id)"))

    def pack_usage(self) -> dict[int, int]:
        """Live (referenced by the chunk index) stored bytes per pack."""
        return {r[0]: r[1] for r in self.conn.execute(
            "SELECT pack, sum(stored_len) FROM chunks WHERE pack IS NOT NULL GROUP BY pack")}

    def chunks_in_pack(self, pack: int) -> list[tuple[bytes, int, int, int, int]]:
        """(id, codec, raw_len, offset, stored_len) of every indexed chunk in ``pack``."""
        return list(self.conn.execute(
            "SELECT id, codec, raw_len, pack_offset, stored_len FROM chunks WHERE pack=?", (pack,)))

    def move_chunk(self, cid: bytes, pack: int, offset: int, gen: int) -> None:
        self._w().execute("UPDATE chunks SET pack=?, pack_offset=? WHERE id=?", (pack, offset, cid))
        self.need_gen = max(self.need_gen, gen)

    def delete_chunks(self, ids: list[bytes]) -> None:
        self._w().executemany("DELETE FROM chunks WHERE id=?", [(i,) for i in ids])

    def space_stats(self) -> dict:
        logical = self.conn.execute(
            "SELECT total(size) FROM inodes WHERE (mode & ?)=?",  # SQL has no 0o literals
            (0o170000, 0o100000)).fetchone()[0]
        referenced = self.conn.execute("SELECT total(length) FROM extents").fetchone()[0]
        unique, stored, n = self.conn.execute(
            "SELECT total(raw_len), total(stored_len), count(*) FROM chunks").fetchone()
        files = self.conn.execute("SELECT count(*) FROM inodes").fetchone()[0]
        return {"inodes": files, "logical_bytes": int(logical), "referenced_bytes": int(referenced),
                "unique_bytes": int(unique), "stored_bytes": int(stored), "chunks": n}

    # -- xattrs -------------------------------------------------------------------------------
    def get_xattr(self, ino: int, name: bytes) -> bytes | None:
        row = self.conn.execute("SELECT value FROM xattrs WHERE ino=? AND name=?",
                                (ino, name)).fetchone()
        return row[0] if row else None

    def set_xattr(self, ino: int, name: bytes, value: bytes) -> None:
        self._w().execute("INSERT OR REPLACE INTO xattrs (ino, name, value) VALUES (?,?,?)",
                          (ino, name, value))

    def remove_xattr(self, ino: int, name: bytes) -> bool:
        c = self._w()
        c.execute("DELETE FROM xattrs WHERE ino=? AND name=?", (ino, name))
        return c.changes() > 0

    def list_xattrs(self, ino: int) -> list[bytes]:
        return [r[0] for r in self.conn.execute("SELECT name FROM xattrs WHERE ino=? ORDER BY name",
                                                (ino,))]

    def xattr_inodes(self, name: bytes) -> set[int]:
        return {r[0] for r in self.conn.execute("SELECT ino FROM xattrs WHERE name=?", (name,))}

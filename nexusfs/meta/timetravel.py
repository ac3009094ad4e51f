"""Reading the past: every query that asks "as of sequence number S", plus the log, versions
and snapshots tables, and the row-level queries undo and restore need.

Shares the MetaStore's connection (same thread rules: the trio thread only). A row is visible
at S when seq_from <= S and (seq_to IS NULL or seq_to > S); an inode's attributes at S are the
live row if it has held since S or earlier, else the history row covering S.
"""
from __future__ import annotations

from ..types import Attr, ChunkLoc, Extent

_VISIBLE = "seq_from<=? AND (seq_to IS NULL OR seq_to>?)"
_ATTR = "ino, mode, nlink, uid, gid, rdev, size, blocks, atime_ns, mtime_ns, ctime_ns"


class TimeTravel:
    def __init__(self, store):
        self.store = store
        self.conn = store.conn

    # -- the tree as of a seq -----------------------------------------------------------------
    def lookup(self, parent: int, name: bytes, seq: int) -> int | None:
        row = self.conn.execute(f"SELECT ino FROM dentries WHERE parent=? AND name=? AND {_VISIBLE}"
                                " ORDER BY seq_from DESC LIMIT 1", (parent, name, seq, seq)).fetchone()
        return row[0] if row else None

    def attr(self, ino: int, seq: int) -> Attr | None:
        row = self.conn.execute(f"SELECT {_ATTR} FROM inodes WHERE ino=? AND seq<=?",
                                (ino, seq)).fetchone()
        if row is None:
            row = self.conn.execute(
                f"SELECT {_ATTR} FROM inode_history WHERE ino=? AND seq_from<=? AND seq_to>?",
                (ino, seq, seq)).fetchone()
        return Attr(*row) if row else None

    def readlink(self, ino: int, seq: int) -> bytes | None:
        row = self.conn.execute("SELECT target FROM inodes WHERE ino=? AND seq<=?", (ino, seq)).fetchone()
        if row is None:
            row = self.conn.execute("SELECT target FROM inode_history WHERE ino=? AND seq_from<=?"
                                    " AND seq_to>?", (ino, seq, seq)).fetchone()
        return row[0] if row else None

    def list_dir(self, parent: int, seq: int, after_id: int, limit: int) -> list[tuple[int, bytes, int]]:
        """[(id, name, ino)] of the entries of ``parent`` at ``seq``, in id order."""
        return list(self.conn.execute(
            f"SELECT id, name, ino FROM dentries WHERE parent=? AND id>? AND {_VISIBLE}"
            " ORDER BY id LIMIT ?", (parent, after_id, seq, seq, limit)))

    def extents(self, ino: int, seq: int) -> list[Extent]:
        rows = self.conn.execute(
            "SELECT e.offset, e.length, c.id, c.raw_len, c.codec, c.pack, c.pack_offset,"
            " c.stored_len, c.data FROM extents e JOIN chunks c ON c.id=e.chunk"
            " WHERE e.ino=? AND e.seq_from<=? AND (e.seq_to IS NULL OR e.seq_to>?)"
            " ORDER BY e.offset", (ino, seq, seq))
        return [Extent(r[0], r[1], ChunkLoc(r[2], r[3], r[4], r[5], r[6], r[7], r[8]))
                for r in rows]

    def latest_lookup(self, parent: int, name: bytes) -> tuple[int, int | None] | None:
        """(ino, seq_to) of the most recent entry ``name`` in ``parent``, live or not."""
        row = self.conn.execute("SELECT ino, seq_to FROM dentries WHERE parent=? AND name=?"
                                " ORDER BY seq_from DESC, id DESC LIMIT 1", (parent, name)).fetchone()
        return (row[0], row[1]) if row else None

    def path_versions(self, parent: int, name: bytes) -> list[tuple[int, int, int, int, int]]:
        """[(seq, size, mtime_ns, time_ns, ino)] oldest first: the versions of every file that
        ever had the entry ``name`` in ``parent`` (an editor's atomic save, or a file deleted
        and made again, replaces the inode: the path's history goes on across them)."""
        spans = list(self.conn.execute("SELECT ino, seq_from, seq_to FROM dentries"
                                       " WHERE parent=? AND name=?", (parent, name)))
        rows = self.conn.execute(
            "SELECT v.seq, v.size, v.mtime_ns, coalesce(o.time_ns, v.mtime_ns), v.ino"
            " FROM versions v LEFT JOIN oplog o ON o.seq=v.seq"
            " WHERE v.ino IN (SELECT ino FROM dentries WHERE parent=? AND name=?)"
            " ORDER BY v.seq, v.ino", (parent, name))
        out: list[tuple[int, int, int, int, int]] = []
        for row in rows:
            if out and out[-1][0] == row[0]:
                # one operation cut versions of two of the path's files (a rename over the
                # path ends the old file): the one the path names after it stands for it
                if any(i == row[4] and f <= row[0] and (t is None or t > row[0])
                       for i, f, t in spans):
                    out[-1] = row
                continue
            out.append(row)
        return out

    def names_of(self, ino: int) -> tuple[int, bytes] | None:
        """(parent, name) of the most recent entry pointing at ``ino``, live or not."""
        row = self.conn.execute("SELECT parent, name FROM dentries WHERE ino=?"
                                " ORDER BY seq_to IS NOT NULL, seq_from DESC LIMIT 1", (ino,)).fetchone()
        return (row[0], row[1]) if row else None

    def live_entry_seq(self, parent: int, name: bytes) -> int | None:
        """The operation that created (or last repointed) the live entry ``name``."""
        row = self.conn.execute("SELECT seq_from FROM dentries WHERE parent=? AND name=? AND"
                                " seq_to IS NULL", (parent, name)).fetchone()
        return row[0] if row else None

    def undo_links(self) -> list[tuple[int, int]]:
        """(undo seq, the seq it reversed) of every successful undo, oldest first."""
        return list(self.conn.execute("SELECT seq, undo_of FROM oplog WHERE undo_of IS NOT NULL"
                                      " AND result=0 ORDER BY seq"))

    def last_state_seq(self, ino: int) -> int | None:
        """The operation that ended the newest past state of ``ino`` (a purged inode's end)."""
        row = self.conn.execute("SELECT max(seq_to) FROM inode_history WHERE ino=?", (ino,)).fetchone()
        return row[0] if row else None

    def oldest_seq(self) -> int:
        row = self.conn.execute("SELECT min(seq) FROM oplog").fetchone()
        return row[0] or 0

    # -- versions, log, snapshots ---------------------------------------------------------------
    def versions(self, ino: int) -> list[tuple[int, int, int, int]]:
        """[(seq, size, mtime_ns, time_ns)] oldest first."""
        return list(self.conn.execute(
            "SELECT v.seq, v.size, v.mtime_ns, coalesce(o.time_ns, v.mtime_ns) FROM versions v"
            " LEFT JOIN oplog o ON o.seq=v.seq WHERE v.ino=? ORDER BY v.seq", (ino,)))

    def log(self, *, agent=None, uid=None, path=None, op=None, since_seq=None, since_ns=None,
            limit=None, ino=None, newest_first=False, before_seq=None) -> list[tuple]:
        where, args = [], []
        for col, value in (("agent", agent), ("uid", uid), ("op", op), ("ino", ino)):
            if value is not None:
                where.append(f"{col}=?")
                args.append(value)
        if path is not None:
            # the path itself or anything below it, as index range scans on path and path2
            base = path.rstrip("/")
            lo, hi = base + "/", base + "0"          # '0' is the character after '/'
            where.append("(path=? OR (path>=? AND path<?) OR path2=? OR (path2>=? AND path2<?))")
            args += [path, lo, hi, path, lo, hi]
        if since_seq is not None:
            where.append("seq>=?")
            args.append(since_seq)
        if before_seq is not None:
            where.append("seq<?")
            args.append(before_seq)
        if since_ns is not None:
            where.append("time_ns>=?")
            args.append(since_ns)
        sql = ("SELECT seq, time_ns, uid, gid, pid, process, agent, op, path, path2, ino, result,"
               " undo_of FROM oplog")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return list(self.conn.execute(sql, args))

    def op(self, seq: int) -> tuple | None:
        rows = self.log(since_seq=seq, limit=1)
        return rows[0] if rows and rows[0][0] == seq else None

    def snapshots(self) -> list[tuple[str, int, int, str, int]]:
        return list(self.conn.execute(
            "SELECT name, seq, root_ino, path, created_ns FROM snapshots ORDER BY seq, name"))

    def snapshot(self, name: str) -> tuple[str, int, int, str, int] | None:
        return self.conn.execute("SELECT name, seq, root_ino, path, created_ns FROM snapshots"
                                 " WHERE name=?", (name,)).fetchone()

    # -- rows an operation changed (for undo) -----------------------------------------------------
    def dentries_opened(self, seq: int) -> list[tuple]:
        return list(self.conn.execute("SELECT id, parent, name, ino, seq_to FROM dentries"
                                      " WHERE seq_from=?", (seq,)))

    def dentries_closed(self, seq: int) -> list[tuple]:
        return list(self.conn.execute("SELECT id, parent, name, ino, seq_from FROM dentries"
                                      " WHERE seq_to=?", (seq,)))

    def extent_inodes(self, seq: int) -> set[int]:
        a = {r[0] for r in self.conn.execute("SELECT DISTINCT ino FROM extents WHERE seq_from=?", (seq,))}
        b = {r[0] for r in self.conn.execute("SELECT DISTINCT ino FROM extents WHERE seq_to=?", (seq,))}
        return a | b

    def inodes_changed(self, seq: int) -> list[int]:
        """Inodes whose attributes op ``seq`` changed (their earlier state ends at seq)."""
        return [r[0] for r in self.conn.execute("SELECT ino FROM inode_history WHERE seq_to=?", (seq,))]

    def inodes_created(self, seq: int) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT ino FROM inodes WHERE seq=? AND NOT EXISTS (SELECT 1 FROM inode_history h"
            " WHERE h.ino=inodes.ino)", (seq,))]

    def later_changes(self, ino: int, seq: int) -> list[int]:
        """The operations after ``seq`` that changed ``ino``'s attributes or content."""
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT s FROM (SELECT seq AS s FROM inodes WHERE ino=? AND seq>?"
            " UNION ALL SELECT seq_to FROM inode_history WHERE ino=? AND seq_to>?"
            " UNION ALL SELECT seq_from FROM extents WHERE ino=? AND seq_from>?"
            " UNION ALL SELECT seq_to FROM extents WHERE ino=? AND seq_to>?) ORDER BY s",
            (ino, seq) * 4)]

    def later_change(self, ino: int, seq: int) -> int | None:
        changes = self.later_changes(ino, seq)
        return changes[0] if changes else None

    def undo_pairs(self, after: int) -> set[int]:
        """Operations after ``after`` whose effect an undo (also after it) cancelled: both."""
        out: set[int] = set()
        for u, target in self.conn.execute("SELECT seq, undo_of FROM oplog WHERE undo_of>? AND"
                                           " result=0", (after,)):
            out.update((u, target))
        return out

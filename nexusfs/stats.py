"""Space figures of a store, read through a read-only connection (works while mounted), or
through the daemon's own connection (``conn``: what it has not committed yet counts too)."""
from __future__ import annotations

import apsw

from .config import Config


def store_stats(cfg: Config, conn: apsw.Connection | None = None) -> dict:
    own = conn is None
    if own:
        conn = apsw.Connection(str(cfg.db_path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.setbusytimeout(5000)
    try:
        q = lambda sql: conn.execute(sql).fetchone()  # noqa: E731
        files = q("SELECT count(*) FROM inodes WHERE (mode & 61440)=32768")[0]
        dirs = q("SELECT count(*) FROM inodes WHERE (mode & 61440)=16384")[0]
        logical = int(q("SELECT total(size) FROM inodes WHERE (mode & 61440)=32768")[0])
        referenced = int(q("SELECT total(length) FROM extents WHERE seq_to IS NULL")[0])
        unique, stored, chunks = q("SELECT total(raw_len), total(stored_len), count(*) FROM chunks")
    finally:
        if own:
            conn.close()
    packs = sum(p.stat().st_size for p in cfg.pack_dir.glob("*.pack")) if cfg.pack_dir.is_dir() else 0
    unique, stored = int(unique), int(stored)
    return {
        "files": files,
        "directories": dirs,
        "logical_bytes": logical,
        "data_bytes": referenced,
        "unique_bytes": unique,
        "stored_bytes": stored,
        "pack_file_bytes": packs,
        "chunks": chunks,
        "dedup_saved_bytes": referenced - unique,
        "compression_saved_bytes": unique - stored,
        "holes_bytes": logical - referenced,
    }

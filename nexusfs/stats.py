"""Space figures of a store, read through a read-only connection (works while mounted), or
through the daemon's own connection (``conn``: what it has not committed yet counts too)."""
from __future__ import annotations

import apsw

from .config import Config
from .meta.store import space_figures


def store_stats(cfg: Config, conn: apsw.Connection | None = None) -> dict:
    own = conn is None
    if own:
        conn = apsw.Connection(str(cfg.db_path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.setbusytimeout(5000)
    try:
        s = space_figures(conn)
    finally:
        if own:
            conn.close()
    packs = sum(p.stat().st_size for p in cfg.pack_dir.glob("*.pack")) if cfg.pack_dir.is_dir() else 0
    logical, referenced = s["logical_bytes"], s["referenced_bytes"]
    unique, stored, chunks = s["unique_bytes"], s["stored_bytes"], s["chunks"]
    return {
        "files": s["files"],
        "directories": s["directories"],
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

"""The APSW connection: pragmas, schema creation, schema versions and migrations.

One writer connection, owned by the trio thread. Migrations run at open, after a backup copy of
the database file is written next to it (meta.db.bak-vN).
"""
from __future__ import annotations

import shutil
import time
import uuid
from importlib import resources
from pathlib import Path

import apsw

SCHEMA_VERSION = 1

# version -> SQL that upgrades a store from version-1 to version. Version 1 is the first release.
MIGRATIONS: dict[int, str] = {}


class StoreError(Exception):
    """The data directory cannot be used (foreign, newer schema, locked, unreadable)."""


def connect(path: Path) -> apsw.Connection:
    conn = apsw.Connection(str(path))
    conn.setbusytimeout(5000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def _schema_sql() -> str:
    return resources.files("nexusfs.meta").joinpath("schema.sql").read_text()


def schema_version(conn: apsw.Connection) -> int | None:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='store_info'").fetchone()
    if row is None:
        return None
    row = conn.execute("SELECT value FROM store_info WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def open_store(path: Path, *, root_uid: int, root_gid: int) -> apsw.Connection:
    """Open (creating or migrating as needed) the metadata database at ``path``."""
    fresh = not path.exists()
    conn = connect(path)
    try:
        _prepare(conn, path, fresh, root_uid, root_gid)
    except BaseException:
        conn.close()                 # a refused or broken store must not leave a connection open
        raise
    return conn


def _prepare(conn: apsw.Connection, path: Path, fresh: bool, root_uid: int, root_gid: int) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not fresh and tables and "store_info" not in tables:
        raise StoreError(f"{path} is an SQLite database but not a nexusfs store")
    version = schema_version(conn)
    if version is None:
        with conn:
            conn.execute(_schema_sql())
            now = time.time_ns()
            conn.execute("INSERT INTO store_info VALUES ('schema_version', ?), ('store_id', ?),"
                         " ('created_ns', ?)", (SCHEMA_VERSION, str(uuid.uuid4()), now))
            conn.execute("INSERT INTO inodes (ino, mode, nlink, uid, gid, atime_ns, mtime_ns, ctime_ns)"
                         " VALUES (1, ?, 2, ?, ?, ?, ?, ?)",
                         (0o040755, root_uid, root_gid, now, now, now))
    elif version > SCHEMA_VERSION:
        raise StoreError(f"{path} has schema version {version}; this nexusfs knows up to "
                         f"{SCHEMA_VERSION}: upgrade nexusfs")
    elif version < SCHEMA_VERSION:
        migrate(conn, path, version)


def migrate(conn: apsw.Connection, path: Path, version: int) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy2(path, path.with_name(f"{path.name}.bak-v{version}"))
    with conn:
        for v in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute(MIGRATIONS[v])
            conn.execute("UPDATE store_info SET value=? WHERE key='schema_version'", (v,))

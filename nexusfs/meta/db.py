"""The APSW connection: pragmas, schema creation, schema versions and migrations.

One writer connection, owned by the trio thread. Migrations run at open, after a backup copy of
the database (a consistent online backup, fsynced, then renamed into place) is written next to
it as meta.db.bak-vN, N the version it had; all steps run in one transaction, so a failed
migration leaves the store as it was.

Adding schema version N+1: change schema.sql (new stores), set SCHEMA_VERSION = N+1, add
MIGRATIONS[N+1] (SQL, or a function of the connection, for stores at N), and add the
released version N to the table of tests/ops/test_migrations.py (one line and a dump of a
store written by that release; docs/operations.md has the procedure).
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import apsw

log = logging.getLogger("nexusfs.meta")

SCHEMA_VERSION = 3

# version -> how to upgrade a store from version-1 to version: SQL (any number of statements)
# or a function taking the connection. Version 1 is the first release: nothing migrates to it.
MIGRATIONS: dict[int, str | Callable[[apsw.Connection], None]] = {
    # 2: relationship-based grants (access control)
    2: """CREATE TABLE rebac_tuples (id INTEGER PRIMARY KEY, subject TEXT NOT NULL,
              relation TEXT NOT NULL, obj_kind TEXT NOT NULL, obj TEXT NOT NULL,
              expires_ns INTEGER, created_ns INTEGER NOT NULL, created_by INTEGER NOT NULL);
          CREATE INDEX rebac_by_obj ON rebac_tuples (obj_kind, obj);""",
    # 3: view sizes read without walking the cached views' overflow pages (listings)
    3: "CREATE INDEX view_cache_lengths ON view_cache (key, text_len, md_len);",
}


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


def backup_path(path: Path, version: int) -> Path:
    return path.with_name(f"{path.name}.bak-v{version}")


def _backup(conn: apsw.Connection, dest: Path) -> None:
    """A consistent copy of the open database (WAL included), durable before it is named."""
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    out = apsw.Connection(str(partial))
    try:
        with out.backup("main", conn, "main") as b:
            b.step(-1)
    finally:
        out.close()
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, dest)
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def migrate(conn: apsw.Connection, path: Path, version: int) -> None:
    """Upgrade the store at ``path`` from ``version`` to SCHEMA_VERSION: back it up as
    meta.db.bak-v<version>, then run every step in one transaction."""
    missing = [v for v in range(version + 1, SCHEMA_VERSION + 1) if v not in MIGRATIONS]
    if missing:
        raise StoreError(f"{path} has schema version {version} and this nexusfs has no migration "
                         f"to version {missing[0]}")
    backup = backup_path(path, version)
    try:
        _backup(conn, backup)
    except (OSError, apsw.Error) as e:
        raise StoreError(f"{path}: cannot write the backup {backup.name} before migrating "
                         f"from schema version {version}: {e}") from e
    log.warning("%s: migrating from schema version %d to %d (backup: %s)", path, version,
                SCHEMA_VERSION, backup)
    started = time.monotonic()
    v = version
    try:
        with conn:
            for v in range(version + 1, SCHEMA_VERSION + 1):
                step = MIGRATIONS[v]
                if callable(step):
                    step(conn)
                else:
                    conn.execute(step)
                conn.execute("UPDATE store_info SET value=? WHERE key='schema_version'", (v,))
    except Exception as e:
        raise StoreError(f"{path}: migration to schema version {v} failed ({e}); the store is "
                         f"unchanged at version {version}, a copy is in {backup.name}") from e
    log.warning("%s: now at schema version %d (%.1f s)", path, SCHEMA_VERSION,
                time.monotonic() - started)

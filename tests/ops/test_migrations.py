"""Upgrades: a store written by any released schema version mounts with this nexusfs, which
migrates it after writing a backup of its metadata (meta.db.bak-vN); a failed or missing
migration changes nothing; a store from a newer nexusfs is refused.

RELEASED lists every schema version a release has written, each with the SQL dump of a store
made by that release (schemas/vN.sql, written by schemas/make_dump.py) and what it holds
(schemas/vN.json). A release with schema version N+1 adds one
line here (and its own dump, for the version after it); the migration machinery itself is
exercised below with test-only migrations (monkeypatched in this process, or patched into a
real `nexus mount` through a wrapper), so the pattern is in place before it is needed.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import apsw
import pytest
import trio
from fusehelp import NEXUS, run, sha256_file

from nexusfs import config
from nexusfs.core.fs import FileSystem
from nexusfs.meta import db
from nexusfs.types import ROOT_INO, Caller

SCHEMAS = Path(__file__).resolve().parent / "schemas"

# every schema version a release has written: (version, dump name)
RELEASED = [
    (1, "v1"),
    (2, "v2"),
    (3, "v3"),
]

WHO = Caller(uid=0, gid=0, pid=1, process="test")


def load_dump(data_dir: Path, name: str) -> dict:
    """A data directory holding the store of ``schemas/NAME.sql``; returns its manifest."""
    data_dir.mkdir(parents=True)
    (data_dir / "packs").mkdir()
    conn = apsw.Connection(str(data_dir / "meta.db"))
    conn.execute((SCHEMAS / f"{name}.sql").read_text())
    conn.close()
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def version_of(db_path: Path) -> int:
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return int(conn.execute("SELECT value FROM store_info WHERE key='schema_version'")
                   .fetchone()[0])
    finally:
        conn.close()


def tables(db_path: Path) -> set[str]:
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_every_schema_version_has_a_released_store():
    assert [v for v, _ in RELEASED] == list(range(1, db.SCHEMA_VERSION + 1)), (
        "add the store dump of every schema version (schemas/make_dump.py) to RELEASED")
    assert set(db.MIGRATIONS) == set(range(2, db.SCHEMA_VERSION + 1))
    for _, name in RELEASED:
        assert (SCHEMAS / f"{name}.sql").is_file() and (SCHEMAS / f"{name}.json").is_file()


@pytest.mark.fuse
@pytest.mark.parametrize("version,name", RELEASED, ids=[n for _, n in RELEASED])
def test_released_store_mounts_and_is_migrated(version, name, new_mount):
    m = new_mount(mount=False)
    manifest = load_dump(m.data, name)
    assert manifest["schema_version"] == version == version_of(m.data / "meta.db")
    m.mount()
    backup = m.data / f"meta.db.bak-v{version}"
    if version < db.SCHEMA_VERSION:
        assert backup.is_file() and version_of(backup) == version
    else:
        assert not backup.exists()
    for rel, f in manifest["files"].items():
        assert os.path.getsize(m.mnt / rel) == f["size"] and sha256_file(m.mnt / rel) == f["sha256"]
    for rel, mode in manifest["modes"].items():
        assert os.lstat(m.mnt / rel).st_mode == mode, rel
    for rel, target in manifest["symlinks"].items():
        assert os.readlink(m.mnt / rel) == target
    for rel in manifest["dirs"]:
        assert (m.mnt / rel).is_dir(), rel
    for rel, attrs in manifest["xattrs"].items():
        for key, value in attrs.items():
            assert os.getxattr(m.mnt / rel, key) == value.encode()
    for snap, files in manifest["snapshots"].items():
        for rel, digest in files.items():
            assert sha256_file(m.mnt / ".nexus/snapshots" / snap / rel) == digest
    for rel, n in manifest["versions"].items():
        assert len(os.listdir(m.mnt / ".nexus/history" / rel)) >= n
    log = json.loads(run([NEXUS, "log", "--mount", str(m.mnt), "--json"]).stdout)
    assert len(log) >= manifest["log_records"]
    # and it keeps working
    (m.mnt / "src/new.txt").write_text("after the upgrade\n")
    m.remount()
    assert (m.mnt / "src/new.txt").read_text() == "after the upgrade\n"
    m.unmount()
    assert version_of(m.data / "meta.db") == db.SCHEMA_VERSION
    m.fsck()


# -- the machinery, with test-only migrations -------------------------------------------------------
N = db.SCHEMA_VERSION          # this nexusfs; the test-only migrations go beyond it
PROBE_V2 = ("CREATE TABLE probe (x INTEGER);"
            "INSERT INTO probe VALUES (2);"
            "INSERT INTO store_info VALUES ('probe', 'migrated to 2');")


@pytest.fixture
def v1_store(tmp_path) -> Path:
    """A store at this nexusfs's schema version N with two files, closed."""
    data = tmp_path / "data"

    async def build():
        fs = FileSystem(config.load(data))
        fs.start()
        for name in (b"a", b"b"):
            fh, _ = await fs.create(ROOT_INO, name, 0o644, os.O_WRONLY, WHO)
            await fs.write(fh, 0, name * 1000)
            await fs.release(fh)
        await fs.close()
    trio.run(build)
    assert version_of(data / "meta.db") == N
    return data


async def read_a(data: Path) -> bytes:
    fs = FileSystem(config.load(data))
    fs.start()
    try:
        ino = (await fs.lookup(ROOT_INO, b"a")).ino
        fh = await fs.open(ino, os.O_RDONLY, WHO)
        out = await fs.read(fh, 0, 1 << 20)
        await fs.release(fh)
        return out
    finally:
        await fs.close()


def test_migration_backs_up_first_then_upgrades(v1_store, monkeypatch, caplog):
    monkeypatch.setattr(db, "SCHEMA_VERSION", N + 1)
    monkeypatch.setattr(db, "MIGRATIONS", {**db.MIGRATIONS, N + 1: PROBE_V2})
    assert trio.run(read_a, v1_store) == b"a" * 1000
    assert version_of(v1_store / "meta.db") == N + 1 and "probe" in tables(v1_store / "meta.db")
    backup = v1_store / f"meta.db.bak-v{N}"
    assert version_of(backup) == N and "probe" not in tables(backup)
    assert not list(v1_store.glob("*.partial"))
    assert f"migrating from schema version {N} to {N + 1}" in caplog.text
    # opening again: nothing more to do, the backup stays as it was
    mtime = backup.stat().st_mtime_ns
    assert trio.run(read_a, v1_store) == b"a" * 1000
    assert backup.stat().st_mtime_ns == mtime


def test_a_callable_migration_over_two_versions(v1_store, monkeypatch):
    seen = []

    def v3(conn):
        seen.append(int(conn.execute("SELECT value FROM store_info WHERE key='schema_version'")
                        .fetchone()[0]))
        conn.execute("UPDATE probe SET x = 3")
    monkeypatch.setattr(db, "SCHEMA_VERSION", N + 2)
    monkeypatch.setattr(db, "MIGRATIONS", {**db.MIGRATIONS, N + 1: PROBE_V2, N + 2: v3})
    assert trio.run(read_a, v1_store) == b"a" * 1000
    assert seen == [N + 1] and version_of(v1_store / "meta.db") == N + 2
    assert version_of(v1_store / f"meta.db.bak-v{N}") == N


def test_a_failed_migration_changes_nothing(v1_store, monkeypatch):
    base = dict(db.MIGRATIONS)
    monkeypatch.setattr(db, "SCHEMA_VERSION", N + 2)
    monkeypatch.setattr(db, "MIGRATIONS", {**base, N + 1: PROBE_V2,
                                           N + 2: "INSERT INTO no_such_table VALUES (1)"})
    with pytest.raises(db.StoreError, match=rf"migration to schema version {N + 2} failed "
                                            rf".*no_such_table.*unchanged at version {N}"
                                            rf".*meta.db.bak-v{N}"):
        FileSystem(config.load(v1_store)).start()
    assert version_of(v1_store / "meta.db") == N and "probe" not in tables(v1_store / "meta.db")
    monkeypatch.setattr(db, "SCHEMA_VERSION", N)          # the old nexusfs still opens it
    monkeypatch.setattr(db, "MIGRATIONS", base)
    assert trio.run(read_a, v1_store) == b"a" * 1000


def test_missing_migration_and_newer_store_are_refused(v1_store, monkeypatch):
    before = (v1_store / "meta.db").read_bytes()
    base = dict(db.MIGRATIONS)
    monkeypatch.setattr(db, "SCHEMA_VERSION", N + 2)
    monkeypatch.setattr(db, "MIGRATIONS", {**base, N + 1: PROBE_V2})
    with pytest.raises(db.StoreError, match=f"no migration to version {N + 2}"):
        FileSystem(config.load(v1_store)).start()
    assert not (v1_store / f"meta.db.bak-v{N}").exists()
    monkeypatch.setattr(db, "SCHEMA_VERSION", N)
    monkeypatch.setattr(db, "MIGRATIONS", base)
    conn = apsw.Connection(str(v1_store / "meta.db"))
    conn.execute("UPDATE store_info SET value=7 WHERE key='schema_version'")
    conn.close()
    with pytest.raises(db.StoreError, match=f"schema version 7; this nexusfs knows up to {N}"):
        FileSystem(config.load(v1_store)).start()
    assert version_of(v1_store / "meta.db") == 7
    assert len(before) > 0


PATCHED_NEXUS = """
import sys
from nexusfs.meta import db
db.SCHEMA_VERSION = {next}
db.MIGRATIONS[{next}] = {probe!r}
from nexusfs.cli import main
sys.exit(main(prog_name="nexus"))
"""


@pytest.mark.fuse
def test_nexus_mount_migrates_with_a_backup(new_mount):
    """The real path: `nexus mount` (as a nexusfs whose schema is version N+1) on a v1 store:
    every migration from 1 runs, after one backup."""
    m = new_mount(mount=False)
    load_dump(m.data, "v1")
    script = PATCHED_NEXUS.format(probe=PROBE_V2, next=N + 1)
    r = run([sys.executable, "-c", script, "mount", str(m.mnt), "--data-dir", str(m.data),
             "-o", "allow_other"], check=False)
    assert r.returncode == 0, r.stderr + m.log_tail()
    log = m.log_path.read_text()
    assert (f"migrating from schema version 1 to {N + 1}" in log
            and f"now at schema version {N + 1}" in log)
    assert (m.mnt / "src/lib/util.py").read_bytes() == b"def util():\n    return 42\n" * 30
    m.unmount()
    assert version_of(m.data / "meta.db") == N + 1 and version_of(m.data / "meta.db.bak-v1") == 1
    # this nexusfs (schema N) refuses the upgraded store, with a message, and mounts nothing
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data)], check=False)
    assert r.returncode == 1 and "upgrade nexusfs" in r.stderr and not m.is_mounted(), r.stderr
    # the backup is a complete store of the old version
    os.replace(m.data / "meta.db.bak-v1", m.data / "meta.db")
    for leftover in ("meta.db-wal", "meta.db-shm"):
        (m.data / leftover).unlink(missing_ok=True)
    m.mount()
    assert (m.mnt / "src/lib/util.py").read_bytes() == b"def util():\n    return 42\n" * 30

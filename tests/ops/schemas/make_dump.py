#!/usr/bin/env python3
"""Writes a small store with the nexusfs of this checkout and dumps its metadata as SQL:
``schemas/vN.sql`` (N = the schema version this nexusfs writes) and ``schemas/vN.json``, what
the store holds. tests/ops/test_migrations.py loads every released version's dump and mounts
it with the current nexusfs, which must migrate it (docs/operations.md, "Upgrades").

Run it once per released schema version, with the release that introduced it, before the
schema changes again:

    .venv/bin/python tests/ops/schemas/make_dump.py

Every file is small enough to live inline in SQLite, so the SQL is the whole store.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

import trio  # noqa: E402

from nexusfs import config  # noqa: E402
from nexusfs.core.fs import FileSystem  # noqa: E402
from nexusfs.meta import db  # noqa: E402
from nexusfs.types import ROOT_INO, Caller  # noqa: E402

WHO = Caller(uid=0, gid=0, pid=1, process="make_dump", agent="release-fixture")

APP_V1 = b"print('version one')\n" * 40
APP_V2 = b"print('version two')\n" * 50
FILES = {                                  # the live tree's regular files
    "src/app.py": APP_V2,
    "src/lib/util.py": b"def util():\n    return 42\n" * 30,
    "docs/readme.txt": "Read me: ünïcödé, ß\n".encode() * 100,
    "docs/empty": b"",
    "data.bin": bytes(range(256)) * 48,    # 12 KiB: one chunk, inline
    "renamed.txt": b"was tmp.txt\n",
}


async def build(data_dir: Path) -> dict:
    fs = FileSystem(config.load(data_dir))
    fs.start()
    dirs = {"": ROOT_INO}

    async def mkdirs(rel: str) -> int:
        parent = ""
        for part in [p for p in rel.split("/") if p]:
            path = f"{parent}/{part}".lstrip("/")
            if path not in dirs:
                dirs[path] = (await fs.mkdir(dirs[parent], part.encode(), 0o755, WHO)).ino
            parent = path
        return dirs[rel]

    async def put(rel: str, content: bytes, mode: int = 0o644) -> int:
        parent, _, name = rel.rpartition("/")
        fh, attr = await fs.create(await mkdirs(parent), name.encode(), mode, os.O_WRONLY, WHO)
        if content:
            await fs.write(fh, 0, content)
        await fs.release(fh)
        return attr.ino

    app = await put("src/app.py", APP_V1)
    await fs.history.snapshot_create("release", "/", WHO)
    fh = await fs.open(app, os.O_WRONLY | os.O_TRUNC, WHO)
    await fs.setattr(app, WHO, size=0, fh=fh)
    await fs.write(fh, 0, APP_V2)
    await fs.release(fh)
    for rel, content in FILES.items():
        if rel not in ("src/app.py", "renamed.txt"):
            await put(rel, content, 0o600 if rel == "docs/empty" else 0o644)
    await put("tmp.txt", FILES["renamed.txt"])
    await fs.rename(ROOT_INO, b"tmp.txt", ROOT_INO, b"renamed.txt", 0, WHO)
    await put("trash/deleted.txt", b"gone\n")
    await fs.unlink(dirs["trash"], b"deleted.txt", WHO)
    await fs.symlink(ROOT_INO, b"link", b"src/app.py", WHO)
    util = await fs.lookup(dirs["src/lib"], b"util.py")
    await fs.link(util.ino, dirs["src"], b"util-hardlink.py", WHO)
    readme = await fs.lookup(dirs["docs"], b"readme.txt")
    await fs.setxattr(readme.ino, b"user.tag", b"release", WHO)
    records = fs.meta.last_seq
    await fs.close()
    return {
        "schema_version": db.SCHEMA_VERSION,
        "files": {rel: {"size": len(c), "sha256": hashlib.sha256(c).hexdigest()}
                  for rel, c in {**FILES, "src/util-hardlink.py": FILES["src/lib/util.py"]}.items()},
        "modes": {"docs/empty": stat.S_IFREG | 0o600, "src/app.py": stat.S_IFREG | 0o644},
        "symlinks": {"link": "src/app.py"},
        "dirs": sorted(d for d in dirs if d),
        "xattrs": {"docs/readme.txt": {"user.tag": "release"}},
        "snapshots": {"release": {"src/app.py": hashlib.sha256(APP_V1).hexdigest()}},
        "versions": {"src/app.py": 2},
        "log_records": records,
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        manifest = trio.run(build, data)
        conn = sqlite3.connect(data / "meta.db")
        sql = "\n".join(conn.iterdump()) + "\n"
        conn.close()
    v = manifest["schema_version"]
    (HERE / f"v{v}.sql").write_text(sql)
    (HERE / f"v{v}.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {HERE}/v{v}.sql ({len(sql)} bytes) and v{v}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""fsck: invariants across the metadata and the chunk store.

Opens the store read-only (a WAL reader sees a consistent state even while a daemon serves it)
and returns a list of problems; empty means clean. Used by ``nexus fsck`` and after every core
test.
"""
from __future__ import annotations

import stat as st
from collections import Counter
from collections.abc import Callable

import apsw

from .chunks import codec
from .chunks.packs import PackStore
from .config import Config
from .types import ROOT_INO


def check(cfg: Config, verify_data: bool = True,
          progress: Callable[[int, int], None] | None = None) -> list[str]:
    problems: list[str] = []
    conn = apsw.Connection(str(cfg.db_path), flags=apsw.SQLITE_OPEN_READONLY)
    conn.setbusytimeout(5000)
    try:
        conn.execute("BEGIN")
        _check_tree(conn, problems)
        _check_content(conn, problems)
        _check_chunks(conn, cfg, problems, verify_data, progress)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return problems


def _check_tree(conn, problems: list[str]) -> None:
    inodes = {r[0]: (r[1], r[2], r[3]) for r in conn.execute("SELECT ino, mode, nlink, size FROM inodes")}
    if ROOT_INO not in inodes or not st.S_ISDIR(inodes[ROOT_INO][0]):
        problems.append("root inode missing or not a directory")
        return
    links: Counter = Counter()
    subdirs: Counter = Counter()
    parents: dict[int, int] = {}
    for parent, name, ino in conn.execute("SELECT parent, name, ino FROM dentries WHERE seq_to IS NULL"):
        if parent not in inodes or not st.S_ISDIR(inodes[parent][0]):
            problems.append(f"entry {name!r} in {parent}: parent is missing or not a directory")
        if ino not in inodes:
            problems.append(f"entry {name!r} in {parent}: points to missing inode {ino}")
            continue
        if not name or b"/" in name or len(name) > 255:
            problems.append(f"entry {name!r} in {parent}: invalid name")
        links[ino] += 1
        if st.S_ISDIR(inodes[ino][0]):
            subdirs[parent] += 1
            if ino in parents:
                problems.append(f"directory {ino} has more than one name")
            parents[ino] = parent
    for ino, (mode, nlink, _size) in inodes.items():
        if st.S_ISDIR(mode):
            expected = 2 + subdirs[ino]
            if ino != ROOT_INO and links[ino] == 0:
                if nlink != 0:
                    problems.append(f"directory {ino} has no name but nlink {nlink}")
                continue
            if nlink != expected:
                problems.append(f"directory {ino}: nlink {nlink}, expected {expected}")
        elif nlink != links[ino] and not (nlink == 0 and links[ino] == 0):
            problems.append(f"inode {ino}: nlink {nlink} but {links[ino]} names")
    for ino in parents:                          # every directory must reach the root
        seen = set()
        cur = ino
        while cur != ROOT_INO:
            if cur in seen or cur not in parents:
                problems.append(f"directory {ino} is not connected to the root")
                break
            seen.add(cur)
            cur = parents[cur]


def _check_content(conn, problems: list[str]) -> None:
    for table in ("dentries", "extents"):
        bad = conn.execute(f"SELECT count(*) FROM {table} WHERE seq_to IS NOT NULL AND seq_to<=seq_from").fetchone()[0]
        if bad:
            problems.append(f"{bad} {table} history rows with an empty validity range")
    bad = conn.execute("SELECT count(*) FROM extents e WHERE NOT EXISTS (SELECT 1 FROM chunks c"
                       " WHERE c.id=e.chunk)").fetchone()[0]
    if bad:
        problems.append(f"{bad} extents (live or history) reference missing chunks")
    last = conn.execute("SELECT max(seq) FROM oplog").fetchone()[0] or 0
    ahead = conn.execute("SELECT count(*) FROM extents WHERE seq_from>?", (last,)).fetchone()[0]
    if ahead:
        problems.append(f"{ahead} extents carry a sequence number past the log's last ({last})")
    prev_ino, prev_end = None, 0
    rows = conn.execute(
        "SELECT e.ino, e.offset, e.length, c.raw_len, i.size, i.mode FROM extents e"
        " LEFT JOIN chunks c ON c.id=e.chunk LEFT JOIN inodes i ON i.ino=e.ino"
        " WHERE e.seq_to IS NULL ORDER BY e.ino, e.offset")
    for ino, off, length, raw_len, size, mode in rows:
        if size is None:
            problems.append(f"extents of missing inode {ino}")
            continue
        if not st.S_ISREG(mode):
            problems.append(f"inode {ino}: extents on a file that is not regular")
        if raw_len is None:
            problems.append(f"inode {ino} offset {off}: references a missing chunk")
        elif raw_len != length:
            problems.append(f"inode {ino} offset {off}: length {length} but chunk has {raw_len}")
        if ino == prev_ino and off < prev_end:
            problems.append(f"inode {ino}: overlapping extents at {off}")
        if off + length > size:
            problems.append(f"inode {ino}: extent at {off} reaches past the size {size}")
        prev_ino, prev_end = ino, off + length


def _check_chunks(conn, cfg: Config, problems, verify_data: bool, progress) -> None:
    total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    packs = PackStore.reader(cfg.pack_dir)
    try:
        done = 0
        for cid, raw_len, kind, stored_len, pack, off, data in conn.execute(
                "SELECT id, raw_len, codec, stored_len, pack, pack_offset, data FROM chunks"):
            done += 1
            if progress and done % 256 == 0:
                progress(done, total)
            if data is None and pack is None:
                problems.append(f"chunk {cid.hex()[:16]}: neither inline nor in a pack")
                continue
            if not verify_data:
                continue
            try:
                stored = data if data is not None else packs.read(pack, off, stored_len)
                raw = codec.decode(kind, stored, raw_len)
            except Exception as e:
                problems.append(f"chunk {cid.hex()[:16]}: unreadable ({e})")
                continue
            if len(raw) != raw_len or codec.chunk_id(raw) != cid:
                problems.append(f"chunk {cid.hex()[:16]}: content does not match its id")
        if progress:
            progress(total, total)
    finally:
        packs.close_readers()

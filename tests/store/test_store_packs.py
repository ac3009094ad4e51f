"""PackStore: append-only pack files, reads by offset, scans, sync generations, rotation."""
from __future__ import annotations

import os
import random

import pytest

from nexusfs.chunks import codec
from nexusfs.chunks.packs import HEADER, MAGIC, PackStore


def rnd(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def put(ps: PackStore, data: bytes):
    cid = codec.chunk_id(data)
    pack, off, gen = ps.append(cid, codec.RAW, len(data), data)
    return cid, pack, off, gen


def test_append_read(tmp_path):
    ps = PackStore(tmp_path / "packs", 1 << 20)
    try:
        assert (tmp_path / "packs").is_dir()
        a, b = rnd(1000, 1), rnd(3000, 2)
        _, pa, oa, ga = put(ps, a)
        _, pb, ob, gb = put(ps, b)
        assert pa == pb == 1
        assert oa == HEADER.size
        assert ob == oa + len(a) + HEADER.size
        assert gb == ga + 1 == ps.written_gen
        assert ps.read(pa, oa, len(a)) == a
        assert ps.read(pb, ob, len(b)) == b
        assert ps.read(pb, ob + 10, 20) == b[10:30]
        assert ps.packs() == [1]
        assert ps.total_bytes() == 2 * HEADER.size + len(a) + len(b)
    finally:
        ps.close()


def test_empty_record(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    try:
        _, p, o, _ = put(ps, b"")
        assert ps.read(p, o, 0) == b""
        assert list(ps.scan(p))[0][3:] == (0, 0)
    finally:
        ps.close()


def test_short_read_raises(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    try:
        _, p, o, _ = put(ps, b"abc")
        with pytest.raises(OSError):
            ps.read(p, o, 100)
    finally:
        ps.close()


def test_scan_lists_records(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    try:
        items = [rnd(n, n) for n in (10, 500, 4000, 1)]
        placed = [put(ps, d) for d in items]
        recs = list(ps.scan(1))
        assert len(recs) == len(items)
        for (off, cid, kind, raw_len, stored_len), d, (pcid, _, poff, _) in zip(recs, items, placed):
            assert off == poff
            assert cid == pcid == codec.chunk_id(d)
            assert kind == codec.RAW
            assert raw_len == stored_len == len(d)
    finally:
        ps.close()


def test_scan_records_codec_and_raw_len(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    try:
        data = b"compressible " * 1000
        kind, stored = codec.encode(data)
        assert kind == codec.ZSTD
        p, off, _ = ps.append(codec.chunk_id(data), kind, len(data), stored)
        (roff, cid, rkind, raw_len, stored_len), = ps.scan(p)
        assert (roff, rkind, raw_len, stored_len) == (off, codec.ZSTD, len(data), len(stored))
        assert codec.decode(rkind, ps.read(p, roff, stored_len), raw_len) == data
    finally:
        ps.close()


def test_scan_stops_at_garbage(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    try:
        put(ps, b"one")
        put(ps, b"two")
    finally:
        ps.close()
    with open(tmp_path / "00000001.pack", "ab") as f:
        f.write(b"JUNK" + bytes(60))
    assert [r[3] for r in PackStore.reader(tmp_path).scan(1)] == [3, 3]


def test_sync_generations(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    try:
        assert ps.sync() == 0
        put(ps, b"a" * 10)
        _, _, _, g = put(ps, b"b" * 10)
        assert ps.synced_gen < g
        assert ps.sync() == g
        assert ps.synced_gen == g
        assert ps.sync() == g            # nothing new: still that generation
    finally:
        ps.close()


def test_rotation(tmp_path):
    ps = PackStore(tmp_path, 5000)
    placed = []
    try:
        for i in range(12):
            d = rnd(1500, i)
            placed.append((d, *put(ps, d)))
        packs = ps.packs()
        assert len(packs) >= 3
        assert packs == list(range(1, len(packs) + 1))
        for d, cid, p, off, gen in placed:
            assert ps.read(p, off, len(d)) == d
        # a pack is closed once it has grown past the limit: at most one record past it
        for p in packs[:-1]:
            size = os.path.getsize(tmp_path / f"{p:08d}.pack")
            assert 5000 <= size < 5000 + HEADER.size + 1500
        # every pack written since the last sync is synced, rotated ones included
        assert ps.sync() == ps.written_gen == 12
        scanned = [cid for p in packs for _, cid, *_ in ps.scan(p)]
        assert scanned == [cid for _, cid, *_ in placed]
    finally:
        ps.close()


def test_append_many_matches_single_appends(tmp_path):
    """append_many: one writev per run of records, the same layout, rotation and generations as
    one append each (a run stops at the pack limit; runs of more records than writev takes)."""
    datas = [rnd(1500 + 37 * i, i) for i in range(12)] + [rnd(10, 100 + i) for i in range(700)]
    records = [(codec.chunk_id(d), codec.RAW, len(d), memoryview(d)) for d in datas]
    one = PackStore(tmp_path / "one", 5000)
    many = PackStore(tmp_path / "many", 5000)
    try:
        put(one, b"first")
        put(many, b"first")
        singles = [one.append(*r) for r in records]
        assert many.append_many(records) == singles
        assert many.append_many([]) == []
        assert many.written_gen == one.written_gen == 1 + len(records)
        for d, (p, off, _gen) in zip(datas, singles):
            assert many.read(p, off, len(d)) == d
        assert many.packs() == one.packs() and len(many.packs()) >= 3
        for p in many.packs():
            assert (tmp_path / "many" / f"{p:08d}.pack").read_bytes() == \
                (tmp_path / "one" / f"{p:08d}.pack").read_bytes()
        assert many.sync() == many.written_gen
    finally:
        one.close()
        many.close()
    big = PackStore(tmp_path / "big", 1 << 30)        # more records than one writev takes
    try:
        small = [rnd(20, 1000 + i) for i in range(1300)]
        placed = big.append_many([(codec.chunk_id(d), codec.RAW, len(d), d) for d in small])
        assert [gen for _, _, gen in placed] == list(range(1, 1301))
        assert all(big.read(p, off, 20) == d for d, (p, off, _) in zip(small, placed))
        assert [cid for _, cid, *_ in big.scan(1)] == [codec.chunk_id(d) for d in small]
    finally:
        big.close()


def test_reopen_appends_to_last_pack(tmp_path):
    ps = PackStore(tmp_path, 5000)
    for i in range(5):
        put(ps, rnd(1500, i))
    last = ps.packs()[-1]
    size = os.path.getsize(tmp_path / f"{last:08d}.pack")
    ps.close()
    ps = PackStore(tmp_path, 5000)
    try:
        d = rnd(100, 99)
        _, p, off, gen = put(ps, d)
        assert gen == 1                              # generations are per process
        if size >= 5000:
            assert p == last + 1 and off == HEADER.size
        else:
            assert p == last and off == size + HEADER.size
        assert ps.read(p, off, len(d)) == d
    finally:
        ps.close()


def test_reader_view(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    d = rnd(2000, 7)
    cid, p, off, _ = put(ps, d)
    ps.close()
    r = PackStore.reader(tmp_path)
    assert r.packs() == [1]
    assert r.read(p, off, len(d)) == d
    assert [x[1] for x in r.scan(p)] == [cid]
    assert r.total_bytes() == HEADER.size + len(d)
    assert not hasattr(r, "_fd")                    # never appends
    r.close_readers()
    r.close_readers()                               # idempotent


def test_reader_ignores_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "abc.pack").write_bytes(b"")
    ps = PackStore(tmp_path, 1 << 20)
    try:
        assert ps.packs() == [1]
    finally:
        ps.close()


def test_record_layout_on_disk(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    d = b"payload"
    cid = codec.chunk_id(d)
    ps.append(cid, codec.RAW, len(d), d)
    ps.close()
    raw = (tmp_path / "00000001.pack").read_bytes()
    assert raw == HEADER.pack(MAGIC, cid, codec.RAW, len(d), len(d)) + d


def test_torn_tail_does_not_hide_later_records(tmp_path):
    ps = PackStore(tmp_path, 1 << 20)
    put(ps, b"whole record")
    ps.close()
    d = b"0123456789" * 10
    with open(tmp_path / "00000001.pack", "ab") as f:    # a crash in the middle of a write
        f.write(HEADER.pack(MAGIC, codec.chunk_id(d), codec.RAW, len(d), len(d)) + d[:30])
    ps = PackStore(tmp_path, 1 << 20)
    try:
        later = b"written after the restart"
        cid, p, off, _ = put(ps, later)
        assert ps.read(p, off, len(later)) == later      # the index path works either way
        assert cid in [c for _, c, *_ in ps.scan(p)]    # a rescan must still find it
    finally:
        ps.close()

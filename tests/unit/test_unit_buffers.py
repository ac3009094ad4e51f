"""Ranges, SparseBuffer and DirtyFile (nexusfs/core/buffers.py): pure, no store."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from nexusfs.core.buffers import DirtyFile, Ranges, SparseBuffer


def as_list(r: Ranges) -> list[tuple[int, int]]:
    return list(r)


def covered(r: Ranges) -> set[int]:
    out: set[int] = set()
    for s, e in r:
        out.update(range(s, e))
    return out


def check_invariants(r: Ranges) -> None:
    """Sorted, disjoint, non-empty and not touching (touching ranges are merged)."""
    pairs = as_list(r)
    for s, e in pairs:
        assert s < e
    for (_, e1), (s2, _) in zip(pairs, pairs[1:]):
        assert e1 < s2


# -- Ranges ---------------------------------------------------------------------------------------
def test_ranges_empty():
    r = Ranges()
    assert not r
    assert as_list(r) == []
    assert r.total() == 0
    assert r.overlapping(0, 100) == []
    r.add(5, 5)                      # empty range: ignored
    r.add(7, 3)                      # inverted: ignored
    assert not r


def test_ranges_append_and_merge():
    r = Ranges()
    r.add(0, 10)
    r.add(10, 20)                    # touching: merged
    r.add(5, 15)                     # inside: absorbed
    assert as_list(r) == [(0, 20)]
    r.add(30, 40)
    r.add(50, 60)
    assert as_list(r) == [(0, 20), (30, 40), (50, 60)]
    r.add(15, 55)                    # bridges all three
    assert as_list(r) == [(0, 60)]
    assert r.total() == 60
    assert r


def test_ranges_insert_out_of_order():
    r = Ranges()
    r.add(100, 110)
    r.add(0, 10)
    r.add(50, 60)
    r.add(20, 30)
    assert as_list(r) == [(0, 10), (20, 30), (50, 60), (100, 110)]
    r.add(9, 21)
    assert as_list(r) == [(0, 30), (50, 60), (100, 110)]
    r.add(40, 50)                    # touches the next range from below
    assert as_list(r) == [(0, 30), (40, 60), (100, 110)]
    r.add(105, 200)                  # extends the last one
    assert as_list(r) == [(0, 30), (40, 60), (100, 200)]
    check_invariants(r)


def test_ranges_clip():
    r = Ranges()
    for s, e in [(0, 10), (20, 30), (40, 50)]:
        r.add(s, e)
    r.clip(25)
    assert as_list(r) == [(0, 10), (20, 25)]
    r.clip(20)                       # a range starting at the limit disappears
    assert as_list(r) == [(0, 10)]
    r.clip(100)
    assert as_list(r) == [(0, 10)]
    r.clip(0)
    assert as_list(r) == []


def test_ranges_overlapping_is_clipped_to_window():
    r = Ranges()
    for s, e in [(0, 10), (20, 30), (40, 50)]:
        r.add(s, e)
    assert r.overlapping(5, 45) == [(5, 10), (20, 30), (40, 45)]
    assert r.overlapping(10, 20) == []      # half-open: neither end is inside
    assert r.overlapping(29, 41) == [(29, 30), (40, 41)]
    assert r.overlapping(60, 70) == []


@pytest.mark.skipif(not hasattr(Ranges, "clip_before"), reason="no Ranges.clip_before")
def test_ranges_clip_before():
    r = Ranges()
    for s, e in [(0, 10), (20, 30), (40, 50)]:
        r.add(s, e)
    r.clip_before(25)
    assert as_list(r) == [(25, 30), (40, 50)]
    r.clip_before(30)
    assert as_list(r) == [(40, 50)]
    r.clip_before(100)
    assert as_list(r) == []


range_ops = hst.lists(
    hst.tuples(hst.sampled_from(["add", "add", "add", "clip", "clip_before"]),
               hst.integers(0, 120), hst.integers(0, 40)),
    max_size=40)


@settings(max_examples=300, deadline=None)
@given(range_ops)
def test_ranges_against_set_model(ops):
    r = Ranges()
    model: set[int] = set()
    for op, a, n in ops:
        if op == "add":
            r.add(a, a + n)
            model.update(range(a, a + n))
        elif op == "clip":
            r.clip(a)
            model = {x for x in model if x < a}
        elif hasattr(r, "clip_before"):
            r.clip_before(a)
            model = {x for x in model if x >= a}
        check_invariants(r)
        assert covered(r) == model
        assert r.total() == len(model)
        assert bool(r) == bool(model)
        lo, hi = a, a + n
        if lo == hi:
            continue                 # an empty window may yield an empty pair: harmless
        got = r.overlapping(lo, hi)
        assert covered_pairs(got) == {x for x in model if lo <= x < hi}
        check_pairs_sorted(got)


def covered_pairs(pairs) -> set[int]:
    out: set[int] = set()
    for s, e in pairs:
        assert s < e
        out.update(range(s, e))
    return out


def check_pairs_sorted(pairs) -> None:
    for (_, e1), (s2, _) in zip(pairs, pairs[1:]):
        assert e1 <= s2


# -- SparseBuffer ---------------------------------------------------------------------------------
def test_sparse_buffer_in_memory(tmp_path):
    b = SparseBuffer(str(tmp_path), 1 << 20)
    b.pwrite(b"hello", 0)
    b.pwrite(b"world", 5)
    assert b.pread(0, 10) == b"helloworld"
    b.pwrite(b"XY", 3)
    assert b.pread(0, 10) == b"helXYworld"
    assert b.pread(8, 2) == b"ld"
    assert list(tmp_path.iterdir()) == []          # nothing spilled
    b.close()


def test_sparse_buffer_spills_past_threshold(tmp_path):
    b = SparseBuffer(str(tmp_path), 4096)
    data = os.urandom(3000)
    b.pwrite(data, 0)
    more = os.urandom(3000)
    b.pwrite(more, 3000)                 # 6000 > 4096: moves to a temp file
    assert b.pread(0, 6000) == data + more
    # the temp file is unlinked at once: nothing to clean up after a crash
    assert list(tmp_path.iterdir()) == []
    if hasattr(b, "in_memory"):
        assert not b.in_memory
    far = 10 * 1024 * 1024
    b.pwrite(b"far", far)                # sparse temp file
    assert b.pread(far, 3) == b"far"
    assert b.pread(far + 1, 10) == b"ar" + bytes(8)   # reads past the end are zero-filled
    b.truncate(5000)
    assert b.pread(0, 5000) == (data + more)[:5000]
    b.close()


def test_sparse_buffer_far_first_write_spills(tmp_path):
    b = SparseBuffer(str(tmp_path), 4096)
    b.pwrite(b"abc", 1 << 30)
    assert b.pread(1 << 30, 3) == b"abc"
    b.close()


def test_sparse_buffer_truncate_in_memory(tmp_path):
    b = SparseBuffer(str(tmp_path), 1 << 20)
    b.pwrite(b"0123456789", 0)
    b.truncate(4)
    b.pwrite(b"ab", 8)
    assert b.pread(0, 4) == b"0123"
    assert b.pread(8, 2) == b"ab"
    b.close()


# -- DirtyFile ------------------------------------------------------------------------------------
def test_dirty_file_basics(tmp_path):
    df = DirtyFile(100, str(tmp_path), 1 << 20)
    assert df.empty
    assert df.size == 100
    df.write(90, b"x" * 20)
    assert df.size == 110
    assert list(df.ranges) == [(90, 110)]
    assert df.dirty_bytes() == 20
    assert not df.empty
    df.close()


def test_dirty_file_truncate_tracks_lowest_size(tmp_path):
    df = DirtyFile(1000, str(tmp_path), 1 << 20)
    df.truncate(2000)                       # growing: committed bytes stay valid
    assert df.trunc_to is None
    assert df.empty                         # only the size changed (the caller tracks it)
    df.truncate(500)
    assert df.trunc_to == 500
    assert not df.empty
    df.truncate(800)
    df.truncate(700)
    assert df.trunc_to == 500               # the lowest point since the last commit
    df.truncate(100)
    assert df.trunc_to == 100
    assert df.size == 100
    df.close()


def test_dirty_file_truncate_clips_dirty_data(tmp_path):
    df = DirtyFile(0, str(tmp_path), 1 << 20)
    df.write(0, b"a" * 100)
    df.truncate(40)
    df.truncate(100)
    assert list(df.ranges) == [(0, 40)]
    assert df.buf.pread(0, 40) == b"a" * 40
    df.write(60, b"b" * 10)
    assert list(df.ranges) == [(0, 40), (60, 70)]
    assert df.buf.pread(60, 10) == b"b" * 10
    df.close()


file_ops = hst.lists(
    hst.one_of(
        hst.tuples(hst.just("write"), hst.integers(0, 20000), hst.integers(1, 3000),
                   hst.integers(0, 255)),
        hst.tuples(hst.just("trunc"), hst.integers(0, 24000)),
        hst.tuples(hst.just("keep_from"), hst.integers(0, 24000)),
    ),
    max_size=25)


@settings(max_examples=150, deadline=None)
@given(file_ops, hst.sampled_from([1 << 20, 4096]))
def test_dirty_file_against_model(tmp_path_factory, ops, threshold):
    """Bytes inside the dirty ranges always read back as the model says; the size follows the
    model; nothing is dirty at or past the size."""
    tmp = tmp_path_factory.mktemp("spill")
    df = DirtyFile(0, str(tmp), threshold)
    model = bytearray()
    dirty: set[int] = set()
    try:
        for op in ops:
            if op[0] == "write":
                _, off, n, byte = op
                data = bytes([byte]) * (n - 1) + bytes([(byte + 1) % 256])
                df.write(off, data)
                if off > len(model):
                    model.extend(bytes(off - len(model)))
                model[off:off + n] = data
                dirty.update(range(off, off + n))
            elif op[0] == "trunc":
                size = op[1]
                df.truncate(size)
                if size < len(model):
                    del model[size:]
                else:
                    model.extend(bytes(size - len(model)))
                dirty = {x for x in dirty if x < size}
            else:
                if not hasattr(df, "keep_from"):
                    continue
                off = min(op[1], df.size)
                df.keep_from(off)
                dirty = {x for x in dirty if x >= off}
            assert df.size == len(model)
            assert covered(df.ranges) == dirty
            for s, e in df.ranges:
                assert df.buf.pread(s, e - s) == bytes(model[s:e])
    finally:
        df.close()


window_ops = hst.lists(
    hst.one_of(
        hst.tuples(hst.just("append"), hst.integers(1, 700), hst.integers(0, 255)),
        hst.tuples(hst.just("append"), hst.integers(65_536, 70_000), hst.integers(0, 255)),
        hst.tuples(hst.just("write"), hst.integers(0, 150_000), hst.integers(1, 1500),
                   hst.integers(0, 255)),
        hst.tuples(hst.just("trunc"), hst.integers(0, 150_000)),
        hst.tuples(hst.just("drop"), hst.integers(0, 150_000)),
    ),
    max_size=40)


@settings(max_examples=200, deadline=None)
@given(window_ops)
def test_sparse_buffer_window_against_model(tmp_path_factory, ops):
    """The in-memory window (parts kept as written, merged only where a write lands inside)
    reads, snapshots, truncates and drops like a plain byte array."""
    b = SparseBuffer(str(tmp_path_factory.mktemp("spill")), 1 << 20)
    model = bytearray()
    base = 0                               # bytes below it were dropped
    try:
        for op in ops:
            if op[0] in ("append", "write"):
                if op[0] == "append":
                    _, n, byte = op
                    off = len(model)
                else:
                    _, off, n, byte = op
                    off = base + off % (len(model) - base + 1)    # inside or at the end
                data = bytes([byte]) * n
                b.pwrite(memoryview(data) if n % 2 else data, off)
                if off + n > len(model):
                    model.extend(bytes(off + n - len(model)))
                model[off:off + n] = data
            elif op[0] == "trunc":
                size = max(base, op[1])
                b.truncate(size)
                del model[size:]
            else:
                off = min(base + op[1], len(model))
                b.drop_before(off)
                base = off
            assert b.in_memory
            if len(model) > base:
                n = len(model) - base
                assert b.pread(base, n) == bytes(model[base:])
                assert b"".join(b.snapshot(base, n)) == bytes(model[base:])
                mid = base + n // 3
                assert b"".join(b.snapshot(mid, n // 3)) == bytes(model[mid:mid + n // 3])
    finally:
        b.close()

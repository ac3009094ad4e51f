"""Chunker (FastCDC wrapper), codec (ids, zero detection, zstd encoding) and the chunk cache."""
from __future__ import annotations

import random

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from nexusfs.chunks import codec
from nexusfs.chunks.cache import ChunkCache
from nexusfs.chunks.chunker import Chunker

MIN, AVG, MAX = 1024, 4096, 16384


def rnd(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def chunker() -> Chunker:
    return Chunker(MIN, AVG, MAX)


# -- Chunker --------------------------------------------------------------------------------------
def test_cut_empty(chunker):
    assert chunker.cut(b"") == []
    assert chunker.cut_stream(b"", b"", True) == ([], b"")


def test_cut_covers_buffer_within_bounds(chunker):
    data = rnd(300_000)
    cuts = chunker.cut(data)
    pos = 0
    for off, n in cuts:
        assert off == pos
        assert n <= MAX
        pos += n
    assert pos == len(data)
    assert all(n >= MIN for _, n in cuts[:-1])
    assert len(cuts) > 300_000 // MAX


def test_cut_small_buffer_is_one_chunk(chunker):
    assert chunker.cut(b"abc") == [(0, 3)]
    assert chunker.cut(bytes(MIN - 1)) == [(0, MIN - 1)]


def test_cut_accepts_memoryview_and_bytearray(chunker):
    data = rnd(50_000, 1)
    assert chunker.cut(memoryview(data)) == chunker.cut(data) == chunker.cut(bytearray(data))


def test_cut_is_content_defined(chunker):
    """An insertion near the start only disturbs the chunks around it."""
    data = rnd(400_000, 2)
    shifted = b"inserted bytes" + data
    a = {data[o:o + n] for o, n in chunker.cut(data)}
    b = [shifted[o:o + n] for o, n in chunker.cut(shifted)]
    common = sum(1 for c in b if c in a)
    assert common >= len(b) - 3


def test_zeros_cut_at_max(chunker):
    cuts = chunker.cut(bytes(100_000))
    assert all(n == MAX for _, n in cuts[:-1])


@settings(max_examples=80, deadline=None)
@given(hst.integers(0, 200_000), hst.lists(hst.integers(1, 60_000), max_size=12),
       hst.integers(0, 1000))
def test_cut_stream_matches_one_shot(total, windows, seed):
    """Feeding a buffer in arbitrary windows gives exactly the one-shot chunks."""
    chunker = Chunker(MIN, AVG, MAX)
    data = rnd(total, seed)
    expected = [data[o:o + n] for o, n in chunker.cut(data)]
    got: list[bytes] = []
    carry = b""
    pos = 0
    for w in windows:
        if pos >= total:
            break
        piece = data[pos:pos + w]
        pos += len(piece)
        chunks, carry = chunker.cut_stream(carry, piece, final=False)
        got.extend(chunks)
        assert len(carry) <= MAX
    chunks, carry = chunker.cut_stream(carry, data[pos:], final=True)
    got.extend(chunks)
    assert carry == b""
    assert b"".join(got) == data
    assert got == expected


# -- codec ----------------------------------------------------------------------------------------
def test_chunk_id_is_blake3():
    data = b"some bytes"
    assert codec.chunk_id(data) == blake3.blake3(data).digest()
    assert len(codec.chunk_id(b"")) == 32
    assert codec.chunk_id(b"a") != codec.chunk_id(b"b")
    assert codec.chunk_id(memoryview(data)) == codec.chunk_id(data)


@pytest.mark.parametrize("n", [0, 1, 100, 65535, 65536, 65537, 200_000])
def test_is_zero_true(n):
    assert codec.is_zero(bytes(n))
    assert codec.is_zero(bytearray(n))
    assert codec.is_zero(memoryview(bytes(n)))


@pytest.mark.parametrize("n,pos", [(1, 0), (100, 99), (65536, 65535), (65537, 65536),
                                   (200_000, 131_072), (200_000, 0)])
def test_is_zero_false(n, pos):
    data = bytearray(n)
    data[pos] = 1
    assert not codec.is_zero(data)
    assert not codec.is_zero(bytes(data))


def test_encode_tiny_is_raw():
    kind, stored = codec.encode(b"a" * 100)
    assert kind == codec.RAW and stored == b"a" * 100


def test_encode_compressible_uses_zstd():
    data = (b"nexusfs compresses text well. " * 2000)[:50_000]
    kind, stored = codec.encode(data)
    assert kind == codec.ZSTD
    assert len(stored) < len(data) // 4
    assert codec.decode(kind, stored, len(data)) == data


@pytest.mark.parametrize("n", [200, 4096, 16384, 16385, 100_000])
def test_encode_incompressible_stays_raw(n):
    data = rnd(n, n)
    kind, stored = codec.encode(data)
    assert kind == codec.RAW
    assert stored == data
    assert isinstance(stored, bytes)
    assert codec.decode(kind, stored, n) == data


@pytest.mark.parametrize("level", [1, 3, 9])
def test_encode_roundtrip_levels(level):
    data = bytes(range(256)) * 300
    kind, stored = codec.encode(data, level)
    assert codec.decode(kind, stored, len(data)) == data


def test_encode_accepts_memoryview():
    data = b"abc" * 1000
    kind, stored = codec.encode(memoryview(data))
    assert codec.decode(kind, stored, len(data)) == data


def test_decode_unknown_codec():
    with pytest.raises(ValueError):
        codec.decode(7, b"x", 1)


def test_decode_garbage_zstd_raises():
    with pytest.raises(Exception):
        codec.decode(codec.ZSTD, b"definitely not a zstd frame", 100)


# -- chunk cache ----------------------------------------------------------------------------------
def test_chunk_cache_bounded_lru():
    c = ChunkCache(100)
    c.put(b"a", b"x" * 40)
    c.put(b"b", b"y" * 40)
    assert c.get(b"a") == b"x" * 40          # a is now most recently used
    c.put(b"c", b"z" * 40)                   # evicts b
    assert c.get(b"b") is None
    assert c.get(b"a") is not None and c.get(b"c") is not None
    c.put(b"big", b"w" * 101)                # larger than the whole cache: not kept
    assert c.get(b"big") is None
    assert c.hits >= 3 and c.misses >= 2
    c.clear()
    assert c.get(b"a") is None

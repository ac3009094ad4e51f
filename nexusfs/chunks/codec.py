"""Chunk ids (BLAKE3-256) and per-chunk encoding (zstd only when it saves space).

Pure functions, thread-safe (zstd contexts are per thread).
"""
from __future__ import annotations

import threading

import blake3
import zstandard

RAW = 0
ZSTD = 1
_ZERO_PAGE = bytes(65536)
_local = threading.local()


def chunk_id(data) -> bytes:
    return blake3.blake3(data).digest()


def is_zero(data) -> bool:
    """True when every byte is zero (such chunks are stored as holes)."""
    n = len(data)
    if n and (data[0] or data[-1]):
        return False                      # the common case, decided at once
    mv = memoryview(data)
    for off in range(0, n, len(_ZERO_PAGE)):
        part = mv[off:off + len(_ZERO_PAGE)]
        if part != _ZERO_PAGE[: len(part)]:
            return False
    return True


def _compressor(level: int) -> zstandard.ZstdCompressor:
    key = f"c{level}"
    c = getattr(_local, key, None)
    if c is None:
        c = zstandard.ZstdCompressor(level=level)
        setattr(_local, key, c)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def encode(data, level: int = 3) -> tuple[int, bytes]:
    """(codec, stored bytes). Compresses only when that saves at least 1/16 of the size.
    ``data`` is bytes or a read-only buffer; stored raw, it is returned as given (no copy).

    A 4 KiB probe at level 1 first rejects incompressible data cheaply."""
    n = len(data)
    if n < 128:
        return RAW, data
    if n > 16384:
        if len(_compressor(1).compress(data[:4096])) > 4096 - 4096 // 16:
            return RAW, data
    packed = _compressor(level).compress(data)
    if len(packed) <= n - n // 16:
        return ZSTD, packed
    return RAW, data


def decode(codec: int, stored: bytes, raw_len: int) -> bytes:
    if codec == RAW:
        return stored
    if codec == ZSTD:
        return _decompressor().decompress(stored, max_output_size=raw_len)
    raise ValueError(f"unknown chunk codec {codec}")

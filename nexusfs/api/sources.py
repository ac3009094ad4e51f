"""What callers hand to a write: bytes-like objects or binary file objects, read in pieces.

Pure functions; no state.
"""
from __future__ import annotations

from collections.abc import Iterator


def pieces(source, size: int) -> Iterator[bytes]:
    """Byte pieces of at most ``size`` of ``source`` (bytes-like, or a binary file object
    read to its end)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for i in range(0, len(view), size):
            yield bytes(view[i:i + size])
        return
    while True:
        piece = source.read(size)
        if not piece:
            return
        yield piece

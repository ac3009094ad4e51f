"""Etags: the identity of a file's committed content, for optimistic concurrency.

``etag(fs, ino)`` is the first 16 bytes (32 hex digits) of BLAKE3 over the file's size and its
ordered extent list (offset, length, chunk id) as committed: computed from the extent map, never
from the bytes, so it costs the same for a 1-byte and a 1-TiB file. Chunk ids are BLAKE3 of the
chunks' bytes, so the etag changes whenever the content does. Equal bytes stored the same way
(a copy, a rewrite of the whole file) give equal etags; equal bytes reached through different
edits (an append vs one write) may not, which a conditional write sees as a (safe) conflict.
Holes count through the offsets and the size; metadata (mode, times, names) does not count.

``ETAG_XATTR`` (``user.nexus.etag``) shows it through the mount: readable by name on regular
files, read-only (set/remove: EPERM), and left out of listxattr so that ``cp -a``/``rsync -X``
do not try to copy it. Buffered writes not yet committed are committed before an etag is given
out (``current``), so the etag always describes what a reader sees.

Runs on the trio thread. The cache holds the extent map object the etag was computed from:
a commit replaces the map (content.py drops it), so a stale entry is never returned.
"""
from __future__ import annotations

import errno
import stat as st

import blake3
from cachetools import LRUCache

from ..types import FsError

ETAG_XATTR = b"user.nexus.etag"
_DOMAIN = b"nexusfs-etag-1\0"
_cache: LRUCache = LRUCache(maxsize=4096)      # (id(fs), ino) -> (extent map, size, etag)


def etag(fs, ino: int) -> str:
    """The etag of ``ino``'s committed content (a regular file)."""
    attr = fs.meta.get_attr(ino)
    if attr is None:
        raise FsError(errno.ENOENT)
    if not st.S_ISREG(attr.mode):
        raise FsError(errno.EISDIR if st.S_ISDIR(attr.mode) else errno.EINVAL,
                      "only regular files have an etag")
    emap = fs.content.extent_map(ino)
    key = (id(fs), ino)
    hit = _cache.get(key)
    if hit is not None and hit[0] is emap and hit[1] == attr.size:
        return hit[2]
    h = blake3.blake3(_DOMAIN + attr.size.to_bytes(8, "little"))
    for e in emap.extents:
        h.update(e.offset.to_bytes(8, "little") + e.length.to_bytes(8, "little") + e.loc.id)
    value = h.hexdigest(length=16)
    _cache[key] = (emap, attr.size, value)
    return value


async def current(fs, ino: int) -> str:
    """The etag of what a reader sees now: buffered writes are committed first."""
    if ino in fs.dirty:
        await fs.commit_file(ino)
    return etag(fs, ino)

"""Garbage collection: apply history retention, drop chunks nothing references any more, then
compact mostly-dead pack files.

Mark-and-sweep, not reference counts: the mark is "referenced by an extent" (a query over
everything retained), so no counter can drift. Runs on the trio thread with commits quiesced
(the filesystem's ``commits`` gate) for the sweep; copying live chunks out of a pack happens
in a worker thread. A pack file is deleted only after the metadata that moved its live chunks
is durable, so a crash at any point leaves every reference valid.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

log = logging.getLogger("nexusfs.gc")


@dataclass
class GcResult:
    chunks_freed: int = 0
    bytes_freed: int = 0
    packs_compacted: int = 0
    packs_deleted: int = 0
    pruned: dict | None = None


async def collect(fs, compact_below: float = 0.5, progress=None,
                  emergency: bool = False) -> GcResult:
    """Apply retention (all unprotected history when ``emergency``: the disk is full), sweep
    unreferenced chunks, rewrite packs whose live share is under ``compact_below``."""
    from ..history import retention
    result = GcResult()
    async with fs.quiesced():
        result.pruned = retention.apply(fs, emergency=emergency)
        dead = fs.meta.unreferenced_chunks()
        fs.meta.delete_chunks([cid for cid, _ in dead])
        result.chunks_freed = len(dead)
    usage = fs.meta.pack_usage()                    # {pack: live stored bytes}
    current = fs.packs.current
    if current is not None and fs.packs.size_of(current) > 0 and \
            usage.get(current, 0) < fs.packs.size_of(current) * compact_below:
        fs.packs.rotate()                           # so the current pack can be compacted too
    candidates = []
    for pack in fs.packs.packs():
        size = fs.packs.size_of(pack)
        live = usage.get(pack, 0)
        if pack != fs.packs.current and size > 0 and live < size * compact_below:
            candidates.append((pack, size, live))
    for i, (pack, size, live) in enumerate(candidates):
        if progress:
            progress(i, len(candidates))
        async with fs.quiesced():
            chunks = fs.meta.chunks_in_pack(pack)
            moved = await trio.to_thread.run_sync(fs.packs.copy_records, pack, chunks)
            for cid, new_pack, new_off, gen in moved:
                fs.meta.move_chunk(cid, new_pack, new_off, gen)
            fs.content.forget_all()
            await fs.sync(durable=True)
        fs.packs.retire(pack)
        result.packs_compacted += 1 if chunks else 0
        result.packs_deleted += 1
        result.bytes_freed += size - live
    if progress:
        progress(len(candidates), len(candidates))
    if result.chunks_freed or result.packs_deleted:
        log.info("gc: %d chunks freed, %d packs compacted, %d bytes returned", result.chunks_freed,
                 result.packs_deleted, result.bytes_freed)
    return result

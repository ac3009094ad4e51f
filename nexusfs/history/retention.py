"""Retention: how far back history reaches. Operations older than ``retain_days`` or beyond the
last ``retain_ops`` are forgotten (the log, versions, time travel); anything a snapshot can still
see stays until the snapshot is deleted. The chunks that only forgotten rows used become
garbage for the next GC sweep. When the disk is full, history gives way first (all of it but
what snapshots protect): a user deleting files to make room must get that room. Runs on the
trio thread."""
from __future__ import annotations

import time


def keep_from(fs, now_ns: int | None = None) -> int:
    """The oldest sequence number retention keeps (the last operation always stays)."""
    cfg, meta = fs.cfg, fs.meta
    now_ns = now_ns or time.time_ns()
    by_count = meta.last_seq - cfg.retain_ops + 1
    by_age = meta.first_seq_since(now_ns - int(cfg.retain_days * 86400e9))
    if by_age is None:
        by_age = meta.last_seq
    return max(1, min(meta.last_seq, max(by_count, by_age)))


def apply(fs, now_ns: int | None = None, emergency: bool = False) -> dict[str, int]:
    """Forget what retention no longer keeps. ``emergency`` (the disk is full): forget all
    history snapshots do not protect, so that deleting files frees space at once."""
    start = fs.meta.last_seq if emergency else keep_from(fs, now_ns)
    if start <= fs.tt.oldest_seq():
        return {}
    fs.meta.seq = fs.meta.last_seq
    return fs.meta.prune_history(start)

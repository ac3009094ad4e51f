"""Typed, frozen configuration: defaults, the data directory layout, TOML and environment overrides.

Read once at mount; immutable afterwards (a reload builds a new Config).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB


def default_data_dir() -> Path:
    """Root keeps its stores in /var/lib/nexusfs; other users under their XDG data home."""
    if os.geteuid() == 0:
        return Path("/var/lib/nexusfs/default")
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "nexusfs" / "default"


@dataclass(frozen=True)
class Config:
    data_dir: Path
    chunk_min: int = 16 * KiB
    chunk_avg: int = 64 * KiB
    chunk_max: int = 256 * KiB
    inline_max: int = 16 * KiB           # chunks up to this size live in SQLite, not in packs
    pack_max: int = 64 * MiB             # a pack file is closed once it grows past this
    chunk_cache_bytes: int = 256 * MiB   # decoded chunks kept in memory (LRU)
    commit_interval: float = 0.2         # seconds between batched metadata commits
    idle_commit: float = 5.0             # dirty file buffers older than this are committed
    spill_threshold: int = 32 * MiB      # a file's dirty bytes move from memory to a temp file past this
    stream_commit: int = 8 * MiB         # a sequential writer's buffer is chunked and stored past this
    max_file_size: int = 1 << 44         # 16 TiB, like ext4 with 4 KiB blocks
    xattr_value_max: int = 64 * KiB
    xattr_name_max: int = 255
    readahead_kb: int = 1024             # the kernel's read-ahead window on the mount
    attr_timeout: float = 300.0
    entry_timeout: float = 300.0
    compress_level: int = 3
    gc_threshold: int = 256 * MiB        # collect garbage in the background past this much churn
    retain_days: float = 30.0            # history (log, versions, time travel) kept this long...
    retain_ops: int = 5_000_000          # ... and at most this many operations; snapshots stay

    @property
    def db_path(self) -> Path:
        return self.data_dir / "meta.db"

    @property
    def pack_dir(self) -> Path:
        return self.data_dir / "packs"

    @property
    def spill_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "lock"

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "control.sock"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "nexusfs.toml"


def load(data_dir: str | os.PathLike | None = None, **overrides) -> Config:
    """Defaults, then ``DATA_DIR/nexusfs.toml``, then ``NEXUS_<FIELD>`` variables, then overrides."""
    # absolute: the path is recorded in the mount registry and read from other directories
    cfg = Config(data_dir=Path(data_dir).absolute() if data_dir else default_data_dir())
    values: dict = {}
    if cfg.config_file.is_file():
        with open(cfg.config_file, "rb") as f:
            values.update(tomllib.load(f))
    for f in fields(Config):
        env = os.environ.get("NEXUS_" + f.name.upper())
        if env is not None and f.name != "data_dir":
            values[f.name] = env
    values.update(overrides)
    typed = {}
    known = {f.name: f for f in fields(Config)}
    for key, value in values.items():
        if key not in known or key == "data_dir":
            continue
        kind = type(getattr(cfg, key))
        typed[key] = kind(value)
    return replace(cfg, **typed)

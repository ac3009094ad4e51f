"""Typed, frozen configuration: defaults, the data directory layout, TOML and environment overrides.

Read once at mount; immutable afterwards (a reload builds a new Config: SIGHUP applies the
fields in ``LIVE`` and leaves the others for the next mount).

Loading is strict: an unknown setting, a value of the wrong type or out of range, or a file
that is not valid TOML raises ``ConfigError``, whose message names the file and line (or the
variable, or the option) and says what is wrong.
"""
from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB


META_DB = "meta.db"                     # the file that makes a directory a store


def enclosing_store(start: str | os.PathLike | None = None) -> Path | None:
    """The data directory ``start`` (default: the current directory) is in, itself or an
    ancestor, as git finds its repository; None outside any store."""
    here = Path(start) if start is not None else Path.cwd()
    for d in (here, *here.parents):
        if (d / META_DB).is_file():
            return d
    return None


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
    views_mode: str = "smart"            # document views: smart (documents), text (all binaries), binary (none)
    parse_workers: int = 2               # processes parsing documents for views
    auto_parse: bool = False             # documents read as text under their own names; bytes in /.raw/
    readahead_kb: int = 1024             # the kernel's read-ahead window on the mount
    attr_timeout: float = 300.0
    entry_timeout: float = 300.0
    compress_level: int = 3
    gc_threshold: int = 256 * MiB        # collect garbage in the background past this much churn
    retain_days: float = 30.0            # history (log, versions, time travel) kept this long...
    retain_ops: int = 5_000_000          # ... and at most this many operations; snapshots stay
    log_level: str = "INFO"              # DEBUG, INFO, WARNING, ERROR
    log_format: str = "text"             # text, or json (one object per line); journald is detected
    metrics: str = ""                    # HOST:PORT of the Prometheus endpoint; empty: none

    @property
    def db_path(self) -> Path:
        return self.data_dir / META_DB

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


class ConfigError(ValueError):
    """A configuration that cannot be used; ``str()`` is one line naming where the problem is."""


#: applied by a reload (SIGHUP) while mounted; every other field changes at the next mount
LIVE = frozenset({"log_level", "log_format", "retain_days", "retain_ops", "chunk_cache_bytes",
                  "gc_threshold", "idle_commit", "commit_interval", "compress_level",
                  "attr_timeout", "entry_timeout", "spill_threshold", "stream_commit",
                  "max_file_size", "xattr_value_max", "xattr_name_max", "inline_max"})

#: integer fields that are sizes in bytes: they also accept "64 MiB", "512k", "1G"
SIZES = frozenset({"chunk_min", "chunk_avg", "chunk_max", "inline_max", "pack_max",
                   "chunk_cache_bytes", "spill_threshold", "stream_commit", "max_file_size",
                   "xattr_value_max", "gc_threshold"})

CHOICES = {"log_level": ("DEBUG", "INFO", "WARNING", "ERROR"), "log_format": ("text", "json"),
           "views_mode": ("smart", "text", "binary")}

_UNITS = {"": 1, "b": 1, "k": KiB, "m": MiB, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|(b))?\s*", re.IGNORECASE)


def _line_of(text: str, key: str) -> int | None:
    """The line of ``text`` (a TOML file) that sets ``key`` or opens a table named ``key``."""
    k = re.escape(key)
    pattern = re.compile(rf"""\s*(?:(?:{k}|"{k}"|'{k}')\s*[=.]|\[+\s*(?:{k}|"{k}")\s*[\].])""")
    for n, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return n
    return None


def _coerce(name: str, kind: type, value, where: str, textual: bool = True):
    """``value`` as the type of field ``name``, or ConfigError saying what was expected.
    ``textual``: strings are parsed (variables, options); a TOML file must use numbers,
    except for sizes ("64 MiB")."""
    def bad(expected: str):
        return ConfigError(f"{where}: {name} must be {expected}, not {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            raise bad("a whole number" + (" of bytes" if name in SIZES else ""))
        if isinstance(value, str) and (textual or name in SIZES):
            text = value.strip().replace("_", "")
            if re.fullmatch(r"[+-]?\d+", text):
                return int(text)
            m = _SIZE.fullmatch(text) if name in SIZES else None
            if m:
                n = float(m.group(1)) * _UNITS[(m.group(2) or m.group(3) or "").lower()]
                if n == int(n):
                    return int(n)
            raise bad('a size in bytes (e.g. 67108864 or "64 MiB")' if name in SIZES else
                      "an integer")
        raise bad("an integer")
    if kind is float:
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and textual:
            try:
                return float(value.strip().replace("_", ""))
            except ValueError:
                pass
        raise bad("a number")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and textual:
            text = value.strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
        raise bad("true or false")
    if kind is str:
        if not isinstance(value, str):
            raise bad("a string")
        choices = CHOICES.get(name)
        if choices:
            canon = value.strip().upper() if name == "log_level" else value.strip().lower()
            if canon not in choices:
                raise ConfigError(f"{where}: {name} must be one of {', '.join(choices)}, "
                                  f"not {value!r}")
            return canon
        return value.strip()
    raise bad(kind.__name__)


def _check(cfg: Config, where: dict[str, str]) -> None:
    """Ranges and relations between fields; the message names where the bad value came from."""
    def fail(name: str, message: str):
        raise ConfigError(f"{where.get(name, 'default')}: {name} {message}")
    for f in fields(Config):
        value = getattr(cfg, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            fail(f.name, f"must not be negative (it is {value})")
    for name in ("chunk_min", "pack_max", "commit_interval", "retain_ops", "xattr_name_max"):
        if getattr(cfg, name) <= 0:
            fail(name, f"must be greater than 0 (it is {getattr(cfg, name)})")
    from pyfastcdc.cy import FastCDC  # the chunker knows which geometries it takes
    try:
        FastCDC(avg_size=cfg.chunk_avg, min_size=cfg.chunk_min, max_size=cfg.chunk_max)
    except (ValueError, OverflowError) as e:
        culprit = next((n for n in ("chunk_avg", "chunk_min", "chunk_max") if n in where),
                       "chunk_avg")
        fail(culprit, f"gives an unusable chunk geometry (chunk_min={cfg.chunk_min}, "
                      f"chunk_avg={cfg.chunk_avg}, chunk_max={cfg.chunk_max}: {e})")
    if not -7 <= cfg.compress_level <= 22:
        fail("compress_level", f"must be between -7 and 22 (zstd levels), not {cfg.compress_level}")
    if cfg.metrics:
        parse_address(cfg.metrics, where.get("metrics", "metrics"))


def parse_address(text: str, where: str = "metrics") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port); ConfigError when malformed."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", text.strip())
    port = int(m.group(2) or m.group(4)) if m else -1
    if not m or port > 65535:
        raise ConfigError(f"{where}: the metrics address must be HOST:PORT (e.g. "
                          f"127.0.0.1:9108), not {text!r}")
    return (m.group(1) or m.group(3)), port


def load(data_dir: str | os.PathLike | None = None, **overrides) -> Config:
    """Defaults, then ``DATA_DIR/nexusfs.toml``, then ``NEXUS_<FIELD>`` variables, then overrides.

    Raises ConfigError (a ValueError) for an unreadable or invalid file, an unknown setting in
    it, or a value of the wrong type or out of range, wherever it came from."""
    # absolute: the path is recorded in the mount registry and read from other directories
    cfg = Config(data_dir=Path(data_dir).absolute() if data_dir else default_data_dir())
    known = {f.name: f for f in fields(Config) if f.name != "data_dir"}
    values: dict = {}
    where: dict[str, str] = {}
    path = cfg.config_file
    if path.is_file():
        try:
            text = path.read_bytes().decode("utf-8")
            table = tomllib.loads(text)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read it: {e.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        for key, value in table.items():
            line = _line_of(text, key)
            at = f"{path}, line {line}" if line else str(path)
            if key == "data_dir":
                raise ConfigError(f"{at}: data_dir cannot be set in the file (the file lives in "
                                  f"the data directory; use --data-dir)")
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{at}: unknown setting {key!r}{hint}")
            values[key] = value
            where[key] = at
    for name in known:
        env = os.environ.get("NEXUS_" + name.upper())
        if env is not None:
            values[name] = env
            where[name] = f"environment variable NEXUS_{name.upper()}"
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = value
        where[key] = f"option {key}"
    typed = {key: _coerce(key, type(getattr(cfg, key)), value, where[key],
                          textual=not where[key].startswith(str(path)))
             for key, value in values.items()}
    cfg = replace(cfg, **typed)
    _check(cfg, where)
    return cfg


def reload(current: Config, **overrides) -> tuple[Config, dict, list[str]]:
    """Read the configuration again (for SIGHUP): (the config to use now, {field: (old, new)}
    of what changed and applies now, [fields that changed but apply at the next mount]).
    Raises ConfigError, and then nothing changes."""
    fresh = load(current.data_dir, **overrides)
    applied, later, keep = {}, [], {}
    for f in fields(Config):
        old, new = getattr(current, f.name), getattr(fresh, f.name)
        if old == new:
            continue
        if f.name in LIVE:
            applied[f.name] = (old, new)
        else:
            later.append(f.name)
            keep[f.name] = old
    return replace(fresh, **keep), applied, later

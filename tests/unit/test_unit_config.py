"""Configuration loading: defaults, nexusfs.toml, NEXUS_* variables, overrides."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nexusfs import config


def test_defaults_and_layout(tmp_path):
    cfg = config.load(tmp_path)
    assert cfg.data_dir == tmp_path
    assert cfg.chunk_min < cfg.chunk_avg < cfg.chunk_max
    assert cfg.inline_max <= cfg.chunk_max
    assert cfg.xattr_value_max == 64 * 1024
    assert cfg.xattr_name_max == 255
    assert cfg.db_path == tmp_path / "meta.db"
    assert cfg.pack_dir == tmp_path / "packs"
    assert cfg.spill_dir == tmp_path / "tmp"
    assert cfg.lock_path == tmp_path / "lock"
    assert cfg.config_file == tmp_path / "nexusfs.toml"
    assert not any(tmp_path.iterdir())        # loading creates nothing


def test_accepts_str_path(tmp_path):
    assert config.load(str(tmp_path)).data_dir == tmp_path


def test_frozen(tmp_path):
    cfg = config.load(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.chunk_avg = 1


def test_toml_file(tmp_path):
    (tmp_path / "nexusfs.toml").write_text(
        'chunk_avg = 32768\ncommit_interval = 1\ncompress_level = 5\n')
    cfg = config.load(tmp_path)
    assert cfg.chunk_avg == 32768
    assert cfg.commit_interval == 1.0 and isinstance(cfg.commit_interval, float)
    assert cfg.compress_level == 5
    # data_dir cannot be redirected by the file, and unknown settings are refused by line
    # (tests/ops/test_config.py has the whole table of bad input)
    (tmp_path / "nexusfs.toml").write_text('compress_level = 5\ndata_dir = "/elsewhere"\n')
    with pytest.raises(config.ConfigError, match="line 2: data_dir cannot be set"):
        config.load(tmp_path)
    (tmp_path / "nexusfs.toml").write_text('compress_level = 5\nno_such_option = 3\n')
    with pytest.raises(config.ConfigError, match="line 2: unknown setting 'no_such_option'"):
        config.load(tmp_path)


def test_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXUS_CHUNK_MAX", "524288")
    monkeypatch.setenv("NEXUS_IDLE_COMMIT", "0.5")
    monkeypatch.setenv("NEXUS_DATA_DIR", "/elsewhere")
    cfg = config.load(tmp_path)
    assert cfg.chunk_max == 524288 and isinstance(cfg.chunk_max, int)
    assert cfg.idle_commit == 0.5
    assert cfg.data_dir == tmp_path


def test_precedence(tmp_path, monkeypatch):
    (tmp_path / "nexusfs.toml").write_text("chunk_avg = 8192\nchunk_min = 2048\ninline_max = 1000\n")
    monkeypatch.setenv("NEXUS_CHUNK_AVG", "16384")
    monkeypatch.setenv("NEXUS_CHUNK_MIN", "4096")
    cfg = config.load(tmp_path, chunk_min=1024)
    assert cfg.inline_max == 1000               # file
    assert cfg.chunk_avg == 16384               # environment beats file
    assert cfg.chunk_min == 1024                # overrides beat both


def test_overrides_are_typed(tmp_path):
    cfg = config.load(tmp_path, chunk_avg="32768", commit_interval=2)
    assert cfg.chunk_avg == 32768 and isinstance(cfg.chunk_avg, int)
    assert isinstance(cfg.commit_interval, float)


def test_bad_value_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXUS_CHUNK_AVG", "lots")
    with pytest.raises(ValueError):
        config.load(tmp_path)


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(config.os, "geteuid", lambda: 0)
    assert config.default_data_dir() == Path("/var/lib/nexusfs/default")
    monkeypatch.setattr(config.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert config.default_data_dir() == tmp_path / "nexusfs" / "default"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.default_data_dir() == tmp_path / "home" / ".local/share/nexusfs/default"
    assert config.load().data_dir == config.default_data_dir()

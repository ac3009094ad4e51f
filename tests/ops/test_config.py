"""Bad input: a configuration file that is not valid TOML, an unknown setting, a value of the
wrong type or out of range, an unknown mount option. Each gives one clear line naming the
file and line (or the variable, or the option), a non-zero exit, nothing mounted and nothing
changed."""
from __future__ import annotations

import os

import pytest
from fusehelp import NEXUS, run

from nexusfs import config

MiB = 1 << 20

BAD_FILES = [
    ("retain_days = \n", r"nexusfs.toml: not valid TOML: .*line 1"),
    ("retain_days = 7\n\nretian_ops = 9\n",
     r"nexusfs.toml, line 3: unknown setting 'retian_ops' \(did you mean 'retain_ops'\?\)"),
    ("# comment\n[cache]\nsize = 1\n", r"nexusfs.toml, line 2: unknown setting 'cache'"),
    ('data_dir = "/elsewhere"\n', r"line 1: data_dir cannot be set in the file"),
    ("retain_ops = 1.5\n", r"line 1: retain_ops must be a whole number, not 1.5"),
    ("retain_ops = 1.0\n", r"line 1: retain_ops must be a whole number, not 1.0"),
    ('chunk_cache_bytes = "lots"\n', r"line 1: chunk_cache_bytes must be a size in bytes"),
    ('log_level = "LOUD"\n', r"line 1: log_level must be one of DEBUG, INFO, WARNING, ERROR"),
    ("retain_days = true\n", r"line 1: retain_days must be a number, not True"),
    ('retain_days = "7"\n', r"line 1: retain_days must be a number, not '7'"),
    ("retain_days = -1\n", r"line 1: retain_days must not be negative"),
    ("commit_interval = 0\n", r"line 1: commit_interval must be greater than 0"),
    ("chunk_min = 1000000\n", r"line 1: chunk_min gives an unusable chunk geometry"),
    ("compress_level = 30\n", r"line 1: compress_level must be between -7 and 22"),
    ('metrics = "9108"\n', r"line 1: the metrics address must be HOST:PORT"),
    ("log_format = 3\n", r"line 1: log_format must be a string, not 3"),
]


@pytest.mark.parametrize("text,message", BAD_FILES, ids=[str(i) for i in range(len(BAD_FILES))])
def test_bad_file_is_refused_with_its_line(tmp_path, text, message):
    (tmp_path / "nexusfs.toml").write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.load(tmp_path)


def test_bad_environment_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXUS_RETAIN_OPS", "1e3")
    with pytest.raises(config.ConfigError, match=r"environment variable NEXUS_RETAIN_OPS: "
                                                 r"retain_ops must be an integer, not '1e3'"):
        config.load(tmp_path)
    monkeypatch.delenv("NEXUS_RETAIN_OPS")
    with pytest.raises(config.ConfigError, match=r"unknown setting 'retain_dayz'"):
        config.load(tmp_path, retain_dayz=3)
    (tmp_path / "nexusfs.toml").write_bytes(b"retain_days = 7 # \xff\n")
    with pytest.raises(config.ConfigError, match="not UTF-8"):
        config.load(tmp_path)


def test_good_values_and_sizes(tmp_path, monkeypatch):
    (tmp_path / "nexusfs.toml").write_text(
        'chunk_cache_bytes = "64 MiB"\ngc_threshold = "1g"\nretain_days = 7\n'
        'log_level = "debug"\nmetrics = "[::1]:9108"\nretain_ops = 1_000\n')
    monkeypatch.setenv("NEXUS_PACK_MAX", "32M")
    cfg = config.load(tmp_path)
    assert cfg.chunk_cache_bytes == 64 * MiB and cfg.gc_threshold == 1 << 30
    assert cfg.retain_days == 7.0 and cfg.retain_ops == 1000 and cfg.pack_max == 32 * MiB
    assert cfg.log_level == "DEBUG" and config.parse_address(cfg.metrics) == ("::1", 9108)


def test_reload_splits_live_settings_from_the_rest(tmp_path):
    cfg = config.load(tmp_path)
    (tmp_path / "nexusfs.toml").write_text("retain_days = 3\npack_max = 1024\n")
    new, applied, later = config.reload(cfg)
    assert applied == {"retain_days": (30.0, 3.0)} and later == ["pack_max"]
    assert new.retain_days == 3.0 and new.pack_max == cfg.pack_max
    (tmp_path / "nexusfs.toml").write_text("retain_days = [\n")
    with pytest.raises(config.ConfigError):
        config.reload(cfg)


@pytest.mark.fuse
def test_mount_with_bad_configuration_or_option_changes_nothing(new_mount):
    m = new_mount(mount=False)
    m.data.mkdir()
    (m.data / "nexusfs.toml").write_text("retain_days = 7\nretain_ops = 2.5\n")
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data)], check=False)
    assert r.returncode == 1 and not m.is_mounted()
    assert r.stderr == (f"nexus: {m.data}/nexusfs.toml, line 2: retain_ops must be a whole "
                        f"number, not 2.5\n"), r.stderr
    assert sorted(os.listdir(m.data)) == ["nexusfs.toml"]       # no store was created
    # other commands say the same
    r = run([NEXUS, "fsck", "--data-dir", str(m.data)], check=False)
    assert r.returncode == 1 and "line 2: retain_ops" in r.stderr and "Traceback" not in r.stderr
    # an existing store is not touched either
    (m.data / "nexusfs.toml").unlink()
    m.mount()
    (m.mnt / "f").write_text("kept\n")
    m.unmount()
    before = {p.name: p.stat().st_mtime_ns for p in m.data.rglob("*")}
    (m.data / "nexusfs.toml").write_text("[retention]\ndays = 7\n")
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data)], check=False)
    assert r.returncode == 1 and "line 1: unknown setting 'retention'" in r.stderr, r.stderr
    for opts in ("allow_other,bogus", "retain_days=soon", "subtype=x"):
        r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "-o", opts], check=False)
        assert r.returncode != 0 and r.stderr.startswith("nexus: "), (opts, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "unknown mount option 'bogus'" in run(
        [NEXUS, "mount", str(m.mnt), "-o", "bogus"], check=False).stderr
    assert not m.is_mounted()
    after = {p.name: p.stat().st_mtime_ns for p in m.data.rglob("*") if p.name != "nexusfs.toml"}
    assert after == before
    (m.data / "nexusfs.toml").unlink()

"""Core fixtures: a FileSystem on a fresh data directory, closed and fsck'd after every test."""
from __future__ import annotations

import pytest
from corelib import crash, fsck, start_fs

from nexusfs import config


@pytest.fixture(autouse=True)
def _hermetic(clean_env):
    """No NEXUS_* variable from the environment leaks into these tests."""


@pytest.fixture
def cfg(tmp_path, small_store):
    return config.load(tmp_path / "data", **small_store)


class Stores:
    """Starts FileSystems on a config and cleans up after the test: closes what is still open
    and runs fsck on every data directory used."""

    def __init__(self):
        self.live = []
        self.cfgs = []

    def start(self, cfg):
        fs = start_fs(cfg)
        self.live.append(fs)
        if cfg not in self.cfgs:
            self.cfgs.append(cfg)
        return fs

    async def close(self, fs):
        self.live.remove(fs)
        await fs.close()

    def crash(self, fs):
        self.live.remove(fs)
        crash(fs)

    async def finish(self):
        for fs in list(self.live):
            await self.close(fs)
        for cfg in self.cfgs:
            problems = fsck(cfg)
            assert problems == [], f"fsck of {cfg.data_dir}: {problems}"


@pytest.fixture
async def stores():
    s = Stores()
    yield s
    await s.finish()


@pytest.fixture
async def fs(stores, cfg):
    """A started FileSystem; closed and checked by ``stores`` after the test."""
    return stores.start(cfg)

"""Core fixtures: a FileSystem on a fresh data directory, closed and fsck'd after every test."""
from __future__ import annotations

import pytest
from corelib import Stores

from nexusfs import config


@pytest.fixture(autouse=True)
def _hermetic(clean_env):
    """No NEXUS_* variable from the environment leaks into these tests."""


@pytest.fixture
def cfg(tmp_path, small_store):
    return config.load(tmp_path / "data", **small_store)




@pytest.fixture
async def stores():
    s = Stores()
    yield s
    await s.finish()


@pytest.fixture
async def fs(stores, cfg):
    """A started FileSystem; closed and checked by ``stores`` after the test."""
    return stores.start(cfg)

"""Search tier fixtures: a FileSystem on a fresh data directory (no mount), closed and fsck'd
after every test, as in tests/core; plus helpers to build trees and run queries."""
from __future__ import annotations

import os
import sys

import pytest

_core = os.path.join(os.path.dirname(os.path.dirname(__file__)), "core")
if _core not in sys.path:
    sys.path.insert(0, _core)

from corelib import Stores  # noqa: E402

from nexusfs import config  # noqa: E402


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
    return stores.start(cfg)

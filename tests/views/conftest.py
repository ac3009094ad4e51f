"""Fixtures of the document-views tier: one warm parse pool per session (hostile test
parsers included), and the generated documents."""
from __future__ import annotations

import pytest

from nexusfs.views import DEFAULT_REGISTRY, Limits, ParsePool
from nexusfs.views.testing import HOSTILE


@pytest.fixture(scope="session")
def pool():
    p = ParsePool(2, Limits(), registry=DEFAULT_REGISTRY.with_(HOSTILE))
    p.start()
    yield p
    p.close()

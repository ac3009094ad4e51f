"""Shared fixtures for every test tier.

Kept small on purpose: tier-specific fixtures live in each tier's own conftest.py.
"""
from __future__ import annotations

import os

import pytest

#: Small chunk geometry for tests: many chunks per file, inline and pack chunks, early spilling.
SMALL_STORE = dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384, inline_max=2048,
                   spill_threshold=64 * 1024)


@pytest.fixture
def clean_env(monkeypatch):
    """Drop NEXUS_* variables so configuration loading sees only what a test sets."""
    for key in list(os.environ):
        if key.startswith("NEXUS_"):
            monkeypatch.delenv(key)


@pytest.fixture
def small_store() -> dict:
    return dict(SMALL_STORE)

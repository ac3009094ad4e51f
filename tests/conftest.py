"""Shared fixtures for every test tier.

Kept small on purpose: tier-specific fixtures live in each tier's own conftest.py.
"""
from __future__ import annotations

import grp
import os
import pwd
import subprocess

import pytest

#: Small chunk geometry for tests: many chunks per file, inline and pack chunks, early spilling.
SMALL_STORE = dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384, inline_max=2048,
                   spill_threshold=64 * 1024)


#: The accounts the access tests name (core, unit and views tiers: alice is in group eng).
TEST_GROUPS = ("eng",)
TEST_USERS = {"alice": ("eng",), "bob": (), "carol": ()}


def pytest_configure(config):
    """Create the test accounts when missing (as root: what CI and the README's test command
    run as), before collection: test modules resolve them when imported."""
    if os.geteuid() != 0:
        return
    for group in TEST_GROUPS:
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", group], check=True, capture_output=True)
    for user, groups in TEST_USERS.items():
        try:
            pwd.getpwnam(user)
        except KeyError:
            extra = ["-G", ",".join(groups)] if groups else []
            subprocess.run(["useradd", "-M", "-s", "/bin/sh", *extra, user], check=True,
                           capture_output=True)


@pytest.fixture
def clean_env(monkeypatch):
    """Drop NEXUS_* variables so configuration loading sees only what a test sets."""
    for key in list(os.environ):
        if key.startswith("NEXUS_"):
            monkeypatch.delenv(key)


@pytest.fixture
def small_store() -> dict:
    return dict(SMALL_STORE)

"""Helpers of the operations tier shared by its modules (fixtures are in conftest.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fusehelp import NEXUS  # noqa: F401  (re-exported)

REPO = Path(__file__).resolve().parents[2]


def nexus_env(**extra) -> dict:
    """The environment of a daemon started by a test: no NEXUS_* settings, no systemd."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NEXUS_") and k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM",
                                                         "INVOCATION_ID", "LISTEN_FDS")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(0.02)

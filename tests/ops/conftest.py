"""Fixtures of the operations tier: the daemon as service managers and administrators drive it
(systemd's notify protocol, mount(8) and fstab, signals, metrics, crashes, schema migrations).

It reuses the real-mount helpers of tests/fuse (``fusehelp``: ``Mount``, ``run``...) and the
same rules: every store lives under one world-traversable temporary directory, is fsck-clean
at teardown, and without /dev/fuse or root the tier is skipped, except under CI=true, where
that is a failure.
"""
from __future__ import annotations

import os
import re
import sys

import pytest

FUSE_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuse")
OPS_TESTS = os.path.dirname(os.path.abspath(__file__))
for d in (FUSE_TESTS, OPS_TESTS):
    if d not in sys.path:
        sys.path.insert(0, d)

from fusehelp import (Mount, active_mounts, scratch_base)
from opshelp import nexus_env  # noqa: E402,F401


@pytest.fixture(scope="session")
def ops_base():
    """A world-traversable temporary directory holding every store and mount of the tier."""
    with scratch_base("nexusfs-ops-") as base:
        yield base


_counter = iter(range(1, 1 << 30))


@pytest.fixture
def new_mount(ops_base, request):
    """``new_mount(mount=True)`` -> a Mount (fresh data directory and mount point) owned by
    this test; at teardown it is unmounted if still mounted and must be fsck-clean."""
    made: list[Mount] = []

    def make(mount: bool = True) -> Mount:
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]
        m = Mount(ops_base, f"{label}-{next(_counter)}")
        made.append(m)
        if mount:
            m.mount()
        return m

    yield make
    errors = []
    for m in made:
        try:
            m.finish()
        except BaseException as e:      # finish every mount, then report
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and active_mounts:
        for m in active_mounts:
            report.sections.append((f"nexusfs daemon log {m.log_path}", m.log_tail(60)))


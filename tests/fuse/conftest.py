"""Fixtures of the real-mount tier: nexusfs mounted through the kernel with `nexus mount`.

Every mount lives in its own fresh data directory under one world-traversable temporary
directory (the non-root permission tests must be able to reach the mount points), is mounted
with ``-o allow_other``, and is unmounted with ``nexus unmount`` at teardown, after which
``nexus fsck`` must report the store clean.

* ``mount``        one mount shared by a test module (fast); ``work`` gives each test its own
                   fresh directory on it.
* ``mount_factory`` fresh mounts owned by one test (for remounts, crashes and space figures).

Without /dev/fuse or root the tier is skipped, except under CI=true, where that is a failure:
CI must never pass by silently skipping the real-mount tests.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from fusehelp import (TEST_USER, Mount, active_mounts, scratch_base,  # noqa: E402
                      require_tools, skip_or_fail)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fuse_base():
    """A world-traversable temporary directory holding every mount of the session."""
    with scratch_base("nexusfs-fuse-") as base:
        yield base


_counter = iter(range(1, 1 << 30))


def _new_mount(base: Path, label: str) -> Mount:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:60] + f"-{next(_counter)}"
    return Mount(base, name)


@pytest.fixture(scope="module")
def mount(fuse_base, request):
    """One live mount shared by the tests of a module; fsck-clean after its last test."""
    m = _new_mount(fuse_base, request.module.__name__.rsplit(".", 1)[-1])
    m.mount()
    yield m
    m.finish()


@pytest.fixture
def work(mount, request) -> Path:
    """A fresh directory (0755) on the module's mount, named after the test."""
    d = mount.mnt / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]
    d.mkdir()
    os.chmod(d, 0o755)
    return d


@pytest.fixture
def mount_factory(fuse_base, request):
    """``mount_factory()`` -> a new live Mount owned by this test, finished at teardown."""
    made: list[Mount] = []

    def make(mount: bool = True) -> Mount:
        m = _new_mount(fuse_base, request.node.name)
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


@pytest.fixture(scope="session")
def test_user(fuse_base) -> str:
    """The unprivileged system user ``nexustest`` (created when missing)."""
    require_tools("runuser")
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
        require_tools("useradd")
        r = subprocess.run(["useradd", "-r", "-M", TEST_USER],
                           capture_output=True, text=True)
        if r.returncode != 0 and subprocess.run(["id", "-u", TEST_USER],
                                                capture_output=True).returncode != 0:
            skip_or_fail(f"cannot create user {TEST_USER}: {r.stderr.strip()}")
    return TEST_USER


# -- the daemon's log in failure reports ----------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and active_mounts:
        for m in active_mounts:
            report.sections.append((f"nexusfs daemon log {m.log_path}", m.log_tail(60)))

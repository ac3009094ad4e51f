"""Fixtures of the API tier: stores used through nexusfs.connect (embedded, and through a
daemon's socket), the nexus file verbs as a subprocess, and real mounts to compare with.

Mounts reuse the real-mount tier's helpers (tests/fuse/fusehelp.py): fresh data directories
under a world-traversable scratch directory, `nexus mount -o allow_other`, fsck after unmount.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuse"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from apihelp import SETTINGS, fsck_clean  # noqa: E402
from fusehelp import TEST_USER, Mount, require_tools, scratch_base, skip_or_fail  # noqa: E402

import nexusfs  # noqa: E402


@pytest.fixture(autouse=True)
def _hermetic(clean_env):
    """No NEXUS_* variable from the environment leaks into these tests."""


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "store"
    yield d
    if (d / "meta.db").exists():
        fsck_clean(d)


@pytest.fixture
def nx(data_dir):
    """An embedded store (closed, then fsck'd, after the test)."""
    with nexusfs.connect(data_dir, door="embedded", **SETTINGS) as n:
        yield n


@pytest.fixture(scope="module")
def api_base():
    with scratch_base("nexusfs-api-") as base:
        yield base


@pytest.fixture
def mounts(api_base, request):
    """``mounts()`` -> a new live Mount owned by this test (unmounted and fsck'd after)."""
    made: list[Mount] = []
    counter = iter(range(1000))

    def make(mount: bool = True) -> Mount:
        m = Mount(api_base, f"{request.node.name[:50]}-{next(counter)}")
        made.append(m)
        if mount:
            m.mount()
        return m
    yield make
    for m in made:
        m.finish()


@pytest.fixture(scope="session")
def test_user() -> str:
    """The unprivileged system user of the real-mount tier (created when missing)."""
    require_tools("runuser")
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
        r = subprocess.run(["useradd", "-r", "-M", TEST_USER], capture_output=True, text=True)
        if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
            skip_or_fail(f"cannot create user {TEST_USER}: {r.stderr.strip()}")
    return TEST_USER

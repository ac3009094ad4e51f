"""Fixtures of the API tier: stores used through nexusfs.connect (embedded, and through a
daemon's socket), the nexus file verbs as a subprocess, and real mounts to compare with.

Mounts reuse the real-mount tier's helpers (tests/fuse/fusehelp.py): fresh data directories
under a world-traversable scratch directory, `nexus mount -o allow_other`, fsck after unmount.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuse"))

from fusehelp import NEXUS, TEST_USER, Mount, require_tools, scratch_base, skip_or_fail  # noqa: E402

import nexusfs  # noqa: E402
from nexusfs import check, config  # noqa: E402

#: small chunks: many chunks per file, inline and packed ones
SETTINGS = dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384, inline_max=2048)


@pytest.fixture(autouse=True)
def _hermetic(clean_env):
    """No NEXUS_* variable from the environment leaks into these tests."""


def fsck_clean(data_dir) -> None:
    problems = check.check(config.load(data_dir))
    assert problems == [], problems


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


def nexus(*args, input=None, user: str | None = None, check_rc: int | None = 0,
          env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The nexus CLI as a subprocess (bytes out)."""
    cmd = [NEXUS, *[str(a) for a in args]]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    full_env.update(env or {})
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=full_env)
    if check_rc is not None:
        assert r.returncode == check_rc, (cmd, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


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

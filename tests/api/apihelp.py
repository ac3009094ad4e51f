"""Helpers of the API tier (a module of its own: every tier has a conftest.py, and `from
conftest import` would find whichever tier came first on sys.path)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuse"))

from fusehelp import NEXUS  # noqa: E402

from nexusfs import check, config  # noqa: E402

#: small chunks: many chunks per file, inline and packed ones
SETTINGS = dict(chunk_min=1024, chunk_avg=4096, chunk_max=16384, inline_max=2048)


def fsck_clean(data_dir) -> None:
    problems = check.check(config.load(data_dir))
    assert problems == [], problems


def nexus(*args, input=None, user: str | None = None, check_rc: int | None = 0,
          env: dict | None = None, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    """The nexus CLI as a subprocess (bytes out)."""
    cmd = [NEXUS, *[str(a) for a in args]]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    full_env.update(env or {})
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=full_env,
                       cwd=cwd)
    if check_rc is not None:
        assert r.returncode == check_rc, (cmd, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r

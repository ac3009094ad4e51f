"""nexus grep|glob|search|reindex on a store no daemon serves: opened directly, same answers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio
from corelib import start_fs
from searchlib import put

from nexusfs import config

NEXUS = str(Path(sys.executable).with_name("nexus"))


def nexus(*args):
    return subprocess.run([NEXUS, *args], capture_output=True, text=True, timeout=120)


def test_offline_store(tmp_path):
    cfg = config.load(tmp_path / "data")

    async def build():
        fs = start_fs(cfg)
        await put(fs, "/src/a.py", b"def refresh_token():\n    pass\n")
        await put(fs, "/src/b.txt", b"nothing\n")
        fs.search._closing = True          # never indexed: the next open must catch up
        await fs.close()
    trio.run(build)
    d = str(cfg.data_dir)
    r = nexus("grep", "-n", "refresh_token", "--data-dir", d)
    assert (r.returncode, r.stdout) == (0, "/src/a.py:1:def refresh_token():\n"), r.stderr
    r = nexus("search", "refresh", "token", "--data-dir", d)
    assert r.returncode == 0 and r.stdout.startswith("/src/a.py:1: def refresh_token")
    r = nexus("glob", "*.txt", "--data-dir", d)
    assert r.stdout == "/src/b.txt\n"
    r = nexus("grep", "[unclosed", "--data-dir", d)
    assert r.returncode == 2 and r.stderr.startswith("nexus: ") and len(r.stderr.splitlines()) == 1
    r = nexus("grep", "absent", "--data-dir", d)
    assert r.returncode == 1 and r.stdout == ""
    r = nexus("reindex", "--data-dir", d)
    assert r.returncode == 0 and "indexed 2 files" in r.stdout, r.stderr

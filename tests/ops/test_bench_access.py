"""tools/bench-access, run for real at its smallest: both trees built, every workload timed
cold and warm on fresh mounts as a non-root user (so that the kernel reads the ACLs), the
table printed with its ratio and paired columns, and nothing left mounted or on disk."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fuse

REPO = Path(__file__).resolve().parents[2]


def test_bench_access_smoke(ops_base):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "bench-access"), "--files", "40",
                        "--rounds", "1", "--user", "alice", "-v"],
                       env={**os.environ, "BENCH_DIR": str(ops_base)},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    headers = [ln for ln in lines if ln.startswith(("wall time", "CPU time"))]
    assert len(headers) == 2 and all(h.split()[-2:] == ["ratio", "paired"] for h in headers)
    for workload in ("stat every file (cold)", "stat every file (warm)",
                     "read small files (cold)", "read small files (warm)"):
        rows = [ln for ln in lines if ln.startswith(workload) and "per round" not in ln]
        assert len(rows) == 2, r.stdout                      # wall and CPU
        for row in rows:
            plain, guarded, ratio, paired = map(float, row.split()[-4:])
            assert plain > 0 and guarded > 0 and ratio > 0 and paired > 0
    assert "target: ratio <= 1.10" in r.stdout
    assert not list(ops_base.glob("nexus-bench-access-*"))
    assert str(ops_base) not in Path("/proc/self/mounts").read_text()

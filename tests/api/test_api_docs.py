"""docs/api.md: every python and sh example runs as written (in a fresh directory, the sh
examples with this checkout's nexus first on PATH)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from apihelp import fsck_clean
from fusehelp import NEXUS

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("n", range(len(blocks("python"))))
def test_python_examples(tmp_path, n):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env["PYTHONPATH"] = str(DOC.parents[1])
    r = subprocess.run([sys.executable, "-c", blocks("python")[n]], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    fsck_clean(tmp_path / "nexus-data")


def test_shell_examples(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env["PATH"] = str(Path(NEXUS).parent) + os.pathsep + env["PATH"]
    env["PYTHONPATH"] = str(DOC.parents[1])
    script = "set -e\n" + "\n".join(blocks("sh"))
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "conflict: exit 4" in r.stdout
    assert "model.pt" not in r.stderr
    fsck_clean(tmp_path / "my-project")

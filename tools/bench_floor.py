"""The floorfs side of tools/bench --floor: mounts tools/floorfs.py (an in-memory pyfuse3 +
trio file system that stores nothing) so that every workload also runs on the cheapest FUSE
file system Python can serve, with the settings nexusfs uses. Its time over the plain
directory's is the floor that FUSE + pyfuse3 + trio set on this machine; nexus over floor is
what nexusfs's own work costs on top.

"cold" for this side means dropping the kernel's caches only: floorfs keeps file contents in
its own memory, so a remount would empty it (and its reads never touch a disk anyway). A cold
read on floorfs thus measures the FUSE round trips and transfer, not a storage read.

Used only by tools/bench (one thread, no concurrency of its own); the daemon runs as a child
process and is always unmounted and reaped by teardown().
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

FLOORFS = Path(__file__).resolve().parent / "floorfs.py"


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


class FloorGone(Exception):
    """The floorfs mount is gone: abort rather than run workloads on the bare mount point."""


class Floor:
    name = "floor"

    def __init__(self, mnt: Path, log: Path, python: str = sys.executable):
        self.root = self.mnt = mnt
        self.log = log
        self.stats_file = Path(str(log) + ".stats.json")
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.mount_s: list[float] = []

    def mounted(self) -> bool:
        return os.path.ismount(self.mnt)

    def mount(self) -> None:
        t0 = time.perf_counter()
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [self.python, str(FLOORFS), str(self.mnt), "--stats", str(self.stats_file)],
                stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        # "ready" once the kernel's INIT request is answered
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready" or not self.mounted():
            self.teardown()
            raise RuntimeError(f"floorfs did not mount {self.mnt} (see {self.log})")
        self.mount_s.append(time.perf_counter() - t0)

    def setup(self) -> None:
        self.mnt.mkdir(parents=True)
        self.mount()

    def cold(self) -> None:
        drop_caches()

    def check(self) -> None:
        if not self.mounted():
            raise FloorGone(f"{self.mnt} (floorfs) is not mounted any more")

    def op_stats(self) -> dict | None:
        """Cumulative {op: [requests, 0.0]} of the daemon (it writes its counters on SIGUSR1;
        it does not time its handlers)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.stats_file.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                return {op: [n, 0.0] for op, n in json.loads(self.stats_file.read_text()).items()}
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)
        return None

    def teardown(self) -> None:
        """Unmount and reap the daemon whatever happens (lazy unmount, then SIGTERM, SIGKILL)."""
        if self.mounted():
            r = subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
            if r.returncode and self.mounted():
                subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], capture_output=True)
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and proc.poll() is None:
                proc.send_signal(sig)
            try:
                proc.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout:
            proc.stdout.close()
        self.stats_file.unlink(missing_ok=True)

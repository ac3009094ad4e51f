"""The measuring instruments of tools/bench --floor, run for real.

tools/floorfs.py (the in-memory pyfuse3 file system that shows the FUSE floor) must behave
like a file system for the benchmark's workloads, or its figures mean nothing: files, links,
renames with flags, times with UTIME_OMIT/UTIME_NOW, xattrs, listings while entries go away,
rm -rf and git. Then a minimal tools/bench --floor run checks that the floor columns, the JSON
fields and the floorfs request counts appear, and that nothing stays mounted.
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.fuse

REPO = Path(__file__).resolve().parents[2]
FLOORFS = REPO / "tools" / "floorfs.py"
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}


@contextmanager
def floorfs(mnt: Path, *extra: str):
    mnt.mkdir()
    proc = subprocess.Popen([sys.executable, str(FLOORFS), str(mnt), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        assert os.path.ismount(mnt)
        yield proc
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def renameat2(old: Path, new: Path, flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, bytes(old), -100, bytes(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_floorfs_behaves_like_a_file_system(ops_base):
    mnt = ops_base / "floor-basic"
    with floorfs(mnt):
        f = mnt / "a"
        f.write_bytes(b"hello" * 1000)
        assert f.read_bytes() == b"hello" * 1000
        with open(f, "r+b") as fh:             # overwrite inside, then write past a hole
            fh.seek(2)
            fh.write(b"XY")
            fh.seek(10000)
            fh.write(b"end")
        data = f.read_bytes()
        assert data[:6] == b"heXYo" + b"h" and data[5000:10000] == bytes(5000)
        assert data[-3:] == b"end" and os.stat(f).st_size == 10003
        os.truncate(f, 4)
        assert f.read_bytes() == b"heXY"
        os.chmod(f, 0o640)
        assert os.stat(f).st_mode & 0o7777 == 0o640

        # names: hard link, symlink, rename with RENAME_NOREPLACE and RENAME_EXCHANGE
        os.link(f, mnt / "b")
        assert os.stat(f).st_nlink == 2 and os.stat(mnt / "b").st_ino == os.stat(f).st_ino
        os.symlink("b", mnt / "s")
        assert os.readlink(mnt / "s") == "b" and (mnt / "s").read_bytes() == b"heXY"
        (mnt / "c").write_bytes(b"other")
        with pytest.raises(FileExistsError):
            renameat2(mnt / "c", mnt / "b", 1)
        renameat2(mnt / "c", mnt / "b", 2)
        assert (mnt / "b").read_bytes() == b"other" and (mnt / "c").read_bytes() == b"heXY"
        os.rename(mnt / "c", mnt / "d")
        assert not (mnt / "c").exists() and (mnt / "d").read_bytes() == b"heXY"
        (mnt / "dir1").mkdir()
        (mnt / "dir2" / "x").mkdir(parents=True)
        os.rename(mnt / "dir1", mnt / "dir2" / "x" / "moved")
        assert os.stat(mnt / "dir2" / "x").st_nlink == 3
        with pytest.raises(OSError) as e:
            os.rename(mnt / "dir2" / "x", mnt / "d")
        assert e.value.errno == 20              # ENOTDIR: a directory over a file
        with pytest.raises(OSError) as e:
            os.rmdir(mnt / "dir2")
        assert e.value.errno == 39              # ENOTEMPTY

        # times: touch -m leaves atime (UTIME_OMIT), touch -a sets it to now (UTIME_NOW)
        os.utime(f, ns=(1_000_000_000, 2_000_000_000))
        subprocess.run(["touch", "-m", "-d", "@5000", str(f)], check=True)
        st = os.stat(f)
        assert st.st_atime_ns == 1_000_000_000 and st.st_mtime_ns == 5000 * 10**9
        subprocess.run(["touch", "-a", str(f)], check=True)
        st = os.stat(f)
        assert abs(st.st_atime - time.time()) < 60 and st.st_mtime_ns == 5000 * 10**9

        # extended attributes
        with pytest.raises(OSError) as e:
            os.getxattr(f, "user.none")
        assert e.value.errno == 61              # ENODATA
        os.setxattr(f, "user.k", b"v")
        assert os.getxattr(f, "user.k") == b"v" and "user.k" in os.listxattr(f)
        os.removexattr(f, "user.k")
        assert "user.k" not in os.listxattr(f)
        assert os.statvfs(mnt).f_bsize == 4096

        # a listing stays right while its entries are removed under it
        big = mnt / "many"
        big.mkdir()
        names = {f"f{i:04d}" for i in range(400)}
        for n in names:
            (big / n).write_bytes(b"x")
        seen = []
        with os.scandir(big) as it:
            for entry in it:
                seen.append(entry.name)
                os.unlink(entry.path)
        assert sorted(seen) == sorted(names) and os.listdir(big) == []

        # an unlinked file stays readable through its open descriptor
        g = mnt / "g"
        g.write_bytes(b"still here")
        with open(g, "rb") as fh:
            os.unlink(g)
            assert fh.read() == b"still here"

        # rm -rf of a tree, git
        subprocess.run(["cp", "-r", str(REPO / "tools"), str(mnt / "tree")], check=True)
        assert subprocess.run(["diff", "-r", str(REPO / "tools"), str(mnt / "tree")]).returncode == 0
        subprocess.run(["rm", "-rf", str(mnt / "tree"), str(mnt / "dir2")], check=True)
        assert sorted(os.listdir(mnt)) == ["a", "b", "d", "many", "s"]
        env = dict(os.environ, **GIT_ENV)
        repo = mnt / "repo"
        for argv in (["git", "init", "-q", str(repo)], ["cp", str(FLOORFS), str(repo)],
                     ["git", "-C", str(repo), "add", "-A"],
                     ["git", "-C", str(repo), "commit", "-q", "-m", "one"]):
            subprocess.run(argv, check=True, env=env)
        st = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], check=True,
                            env=env, capture_output=True, text=True)
        assert st.stdout == ""
        subprocess.run(["git", "-C", str(repo), "fsck", "--no-progress"], check=True, env=env)


def test_floorfs_counts_requests_on_sigusr1(ops_base):
    mnt, stats = ops_base / "floor-stats", ops_base / "floor-stats.json"
    with floorfs(mnt, "--stats", str(stats)) as proc:
        for i in range(3):
            (mnt / f"f{i}").write_bytes(b"x")
        proc.send_signal(10)                    # SIGUSR1
        deadline = time.monotonic() + 10
        while not stats.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        counts = json.loads(stats.read_text())
        assert counts["create"] == 3 and counts["write"] >= 3


def test_bench_floor_smoke(ops_base):
    """The smallest tools/bench --floor run: floor columns in the table and the JSON."""
    work, out = ops_base / "bench", ops_base / "bench.json"
    r = subprocess.run([sys.executable, str(REPO / "tools" / "bench"), "--quick", "--floor",
                        "--only", "small", "--files", "20", "--size-mib", "1",
                        "--workdir", str(work), "--cache-dir", str(ops_base / "bench-cache"),
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    header = next(line for line in r.stdout.splitlines() if line.startswith("workload"))
    assert header.split()[-5:] == ["floor", "s", "floor", "n/floor", "result"]
    assert "floorfs: FUSE requests per workload" in r.stdout
    doc = json.loads(out.read_text())
    keys = [row["key"] for row in doc["rows"]]
    assert keys == ["small_create", "small_stat", "small_stat_warm", "small_read"]
    for row in doc["rows"]:
        assert row["floor_best"] is not None and row["floor_ratio"] is not None
        assert row["nexus_over_floor"] is not None and not row["error"]
    assert doc["floor_ops"]["small_create"]["ops"]["create"][0] == 20
    assert not work.exists()
    assert not [ln for ln in Path("/proc/self/mounts").read_text().splitlines()
                if str(ops_base) + "/bench" in ln]

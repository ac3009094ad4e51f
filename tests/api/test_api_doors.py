"""One store, two doors: the same changes made through the embedded API, the nexus CLI without
a daemon, the CLI and the API through a daemon's socket, and shell tools on the mount give the
same tree, contents and versions. Also: the etag xattr through the mount, permissions of
socket callers, the exclusive lock, and interrupted syncs."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nexusfs
from apihelp import SETTINGS, fsck_clean, nexus
from fusehelp import NEXUS

pytestmark = pytest.mark.fuse

BIN = random.Random(7).randbytes(300_000)
OPS = [
    ("mkdir", "/proj/src"),
    ("write", "/proj/src/a.py", b"print(1)\n"),
    ("write", "/proj/src/b.bin", BIN),
    ("write", "/proj/readme.md", b"# hi\n"),
    ("write", "/proj/src/a.py", b"print(2)\n"),
    ("cp", "/proj/src", "/proj/copy"),
    ("mv", "/proj/readme.md", "/proj/README.md"),
    ("rm", "/proj/copy/b.bin"),
    ("mkdir", "/proj/empty"),
    ("mkdir", "/proj/gone"),
    ("rmdir", "/proj/gone"),
]


def run_api(nx):
    for op, *args in OPS:
        if op == "mkdir":
            nx.mkdir(args[0], parents=True)
        elif op == "write":
            nx.write(*args)
        elif op == "cp":
            nx.cp(*args, recursive=True)
        elif op == "mv":
            nx.mv(*args)
        elif op == "rm":
            nx.rm(args[0])
        elif op == "rmdir":
            nx.rmdir(args[0])


def run_cli(*where):
    for op, *args in OPS:
        if op == "write":
            nexus("write", args[0], "--input", "-", *where, input=args[1])
        elif op == "mkdir":
            nexus("mkdir", "-p", args[0], *where)
        elif op == "cp":
            nexus("cp", "-r", *args, *where)
        else:
            nexus(op, *args, *where)


def run_mount(mnt: Path):
    p = lambda s: str(mnt) + s                                 # noqa: E731
    for op, *args in OPS:
        if op == "write":
            Path(p(args[0])).write_bytes(args[1])
        elif op == "mkdir":
            subprocess.run(["mkdir", "-p", p(args[0])], check=True)
        elif op == "cp":
            subprocess.run(["cp", "-r", p(args[0]), p(args[1])], check=True)
        elif op == "mv":
            subprocess.run(["mv", p(args[0]), p(args[1])], check=True)
        elif op == "rm":
            subprocess.run(["rm", p(args[0])], check=True)
        elif op == "rmdir":
            subprocess.run(["rmdir", p(args[0])], check=True)


def tree_of(nx) -> dict:
    out = {}
    for e in nx.ls("/", recursive=True):
        content = nx.read(e["path"]) if e["type"] == "file" else None
        out[e["path"]] = (e["type"], e["mode"], content)
    out["versions of a.py"] = len(nx.versions("/proj/src/a.py"))
    return out


def test_same_results_through_every_door(tmp_path, mounts):
    trees = {}
    # 1. the embedded API
    with nexusfs.connect(tmp_path / "api", **SETTINGS) as nx:
        run_api(nx)
        trees["api"] = tree_of(nx)
    # 2. the CLI, no daemon
    nexus("init", tmp_path / "cli")
    run_cli("--data-dir", tmp_path / "cli")
    with nexusfs.connect(tmp_path / "cli", create=False) as nx:
        trees["cli"] = tree_of(nx)
    # 3. the CLI through a daemon, 4. the API through a daemon, 5. the mount itself
    for door in ("cli-daemon", "api-daemon", "mount"):
        m = mounts()
        if door == "cli-daemon":
            run_cli("--data-dir", m.data)
        elif door == "api-daemon":
            with nexusfs.connect(m.mnt) as nx:
                assert nx.mode == "daemon"
                run_api(nx)
        else:
            run_mount(m.mnt)
        with nexusfs.connect(m.data) as nx:
            assert nx.mode == "daemon"
            trees[door] = tree_of(nx)
        walked = sorted("/" + str(p.relative_to(m.mnt)) for p in m.mnt.rglob("*"))
        assert walked == sorted(k for k in trees[door] if k.startswith("/"))
    for door, tree in trees.items():
        assert tree == trees["mount"], door
    for name in ("api", "cli"):
        fsck_clean(tmp_path / name)


def test_etag_xattr_and_conflicts_through_the_mount(mounts):
    m = mounts()
    f = m.mnt / "doc.txt"
    f.write_bytes(b"v1")
    with nexusfs.connect(m.mnt) as nx:
        meta = nx.read("/doc.txt", with_metadata=True)
        assert os.getxattr(f, "user.nexus.etag").decode() == meta.etag
        assert "user.nexus.etag" not in os.listxattr(f)
        with pytest.raises(PermissionError):
            os.setxattr(f, "user.nexus.etag", b"forged")
        with pytest.raises(PermissionError):
            os.removexattr(f, "user.nexus.etag")
        f.write_bytes(b"someone else")                    # a write in between, via the mount
        with pytest.raises(nexusfs.ConflictError):
            nx.write("/doc.txt", b"mine", if_match=meta.etag)
        now = os.getxattr(f, "user.nexus.etag").decode()
        assert now != meta.etag and now == nx.etag("/doc.txt")
        nx.write("/doc.txt", b"mine", if_match=now)
        assert f.read_bytes() == b"mine"
        r = nexus("write", "/doc.txt", "v9", "--if-match", meta.etag, "--mount", m.mnt, check_rc=4)
        assert r.stderr.decode().startswith("nexus: /doc.txt: etag is ")
        assert r.stderr.count(b"\n") == 1
        # the mount and the socket see the same versions
        assert len(nx.versions("/doc.txt")) == 3
    with pytest.raises(nexusfs.StoreLockedError):
        nexusfs.connect(m.data, door="embedded")


ASK = """import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"argv": sys.argv[2:]}).encode() + b"\\n")
print(s.makefile().readline(), end="")
"""


def ask_as(user: str, sock, *argv) -> dict:
    """A request on the control socket from a process of ``user`` (plain python3: the test
    user may not reach this checkout)."""
    r = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", ASK, str(sock),
                        *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_socket_callers_have_their_own_permissions(mounts, test_user):
    m = mounts()
    os.chmod(m.mnt, 0o755)
    (m.mnt / "shared").mkdir(mode=0o777)
    os.chmod(m.mnt / "shared", 0o777)
    (m.mnt / "secret").write_bytes(b"root only")
    os.chmod(m.mnt / "secret", 0o600)
    sock = m.data / "control.sock"
    r = ask_as(test_user, sock, "file", "read", "--", "/secret")
    assert not r["ok"] and r["error"] == "EACCES" and "permission denied" in r["message"]
    r = ask_as(test_user, sock, "file", "write", "--", "/mine", "eA==")
    assert not r["ok"] and r["error"] == "EACCES"
    r = ask_as(test_user, sock, "file", "write", "--", "/shared/mine", "eA==")
    assert r["ok"], r
    uid = int(subprocess.run(["id", "-u", test_user], capture_output=True, text=True).stdout)
    assert r["data"]["uid"] == uid
    assert (m.mnt / "shared" / "mine").stat().st_uid == uid
    assert (m.mnt / "shared" / "mine").read_bytes() == b"x"
    log = json.loads(nexus("log", "--limit", "1", "--json", "--data-dir", m.data).stdout)
    assert log[-1]["uid"] == uid and log[-1]["path"] == "/shared/mine"
    nexus("write", "/secret", "x", "--data-dir", m.data)          # root may


def test_cli_exit_codes(tmp_path):
    d = tmp_path / "s"
    nexus("init", d)
    w = ("--data-dir", d)
    assert nexus("write", "relative", "x", *w, check_rc=2).stderr.count(b"\n") == 1
    nexus("cat", "/missing", *w, check_rc=3)
    nexus("write", "/x", "--input", tmp_path / "nope", *w, check_rc=3)
    nexus("sync", tmp_path / "nope", "/x", *w, check_rc=3)
    nexus("write", "/x", *w, check_rc=2)                    # neither CONTENT nor --input
    nexus("cat", "/x", "--data-dir", tmp_path / "nostore", check_rc=1)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, nexusfs; nx = nexusfs.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.read()", str(d)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(Path(nexusfs.__file__).parent.parent)})
    try:
        assert holder.stdout.readline() == b"open\n"
        r = nexus("ls", "/", *w, check_rc=5)
        assert b"in use by another nexusfs process" in r.stderr
    finally:
        holder.stdin.close()
        holder.wait(30)
    nexus("ls", "/", *w)


def _dataset(root: Path, n: int = 40, size: int = 200_000) -> dict[str, bytes]:
    rnd = random.Random(3)
    files = {f"part{i:02d}/f{i}.bin": rnd.randbytes(size) for i in range(n)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _killed_sync(args: list, wait_for) -> None:
    proc = subprocess.Popen([NEXUS, "sync", *map(str, args), "--batch-files", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not wait_for():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


@pytest.mark.parametrize("door", ["embedded", "daemon"])
def test_interrupted_sync_resumes(tmp_path, mounts, door):
    src = tmp_path / "dataset"
    files = _dataset(src)
    if door == "daemon":
        m = mounts()
        where, data = ["--data-dir", m.data], m.data
        seen = lambda: len(list((m.mnt / "train").rglob("*.bin"))) >= 3    # noqa: E731
    else:
        data = tmp_path / "store"
        nexus("init", data)
        where = ["--data-dir", data]
        seen = lambda: False                                                # noqa: E731
    if door == "embedded":
        proc = subprocess.Popen([NEXUS, "sync", src, "/train", *map(str, where),
                                 "--batch-files", "1"])
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    else:
        _killed_sync([src, "/train", *where], seen)
    with nexusfs.connect(data, create=False) as nx:      # the lock went with the process
        present = [e["path"] for e in nx.ls("/", recursive=True) if e["type"] == "file"] \
            if nx.exists("/train") else []
        for p in present:                                # whole files only
            assert nx.read(p) == files[p[len("/train/"):]]
    r = json.loads(nexus("sync", src, "/train", *where, "--json").stdout)
    assert r["unchanged"] == len(present) and len(r["copied"]) == len(files) - len(present)
    r = json.loads(nexus("sync", src, "/train", *where, "--json").stdout)
    assert r["copied"] == [] and r["unchanged"] == len(files)
    (src / "part00/f0.bin").write_bytes(b"changed")
    os.unlink(src / "part01/f1.bin")
    r = json.loads(nexus("sync", src, "/train", *where, "--delete", "--dry-run", "--json").stdout)
    assert r["copied"] == ["/train/part00/f0.bin"] and r["deleted"] == ["/train/part01"]
    nexus("sync", src, "/train", *where, "--delete")
    with nexusfs.connect(data, create=False) as nx:
        assert nx.read("/train/part00/f0.bin") == b"changed"
        assert not nx.exists("/train/part01")
        assert nx.info("/train/part02/f2.bin").mtime_ns == (src / "part02/f2.bin").stat().st_mtime_ns
    if door == "embedded":
        fsck_clean(data)


def test_write_batch_verb(tmp_path):
    d = tmp_path / "s"
    nexus("init", d)
    ck = tmp_path / "checkpoints"
    for i in range(5):
        (ck / f"step{i}").mkdir(parents=True)
        (ck / f"step{i}" / "model.pt").write_bytes(b"w" * (i + 1) * 1000)
        (ck / f"step{i}" / "notes.txt").write_text("skip me")
    r = json.loads(nexus("write-batch", ck, "--dest-prefix", "/ckpt", "--pattern", "**/*.pt",
                         "--data-dir", d, "--json").stdout)
    assert r["files"] == 5 and r["paths"][0] == "/ckpt/step0/model.pt"
    out = nexus("tree", "/ckpt", "-L", "2", "--show-size", "--data-dir", d).stdout.decode()
    assert "model.pt [1000 B]" in out and "5 directories, 5 files" in out
    assert nexus("size", "/ckpt", "--data-dir", d).stdout == b"15000\t/ckpt\n"
    nexus("write-batch", ck, "--dest-prefix", "/x", "--pattern", "*.nothing", "--data-dir", d,
          check_rc=3)
    with nexusfs.connect(d, create=False) as nx:
        ops = [r["op"] for r in nx.log() if r["path"] and r["path"].startswith("/ckpt")]
    assert ops.count("write") == 5


def test_socket_callers_get_acl_and_grant_decisions(mounts, test_user):
    """The socket door decides as the kernel does through the mount: an ACL entry or a
    relationship grant opens a file its mode alone would close."""
    m = mounts()
    os.chmod(m.mnt, 0o755)
    for name in ("by-acl", "by-grant", "closed"):
        (m.mnt / name).write_bytes(name.encode())
        os.chmod(m.mnt / name, 0o600)
    sock = m.data / "control.sock"
    subprocess.run(["setfacl", "-m", f"u:{test_user}:r", str(m.mnt / "by-acl")], check=True)
    nexus("rebac", "create", f"user:{test_user}", "viewer-of", "/by-grant", "--data-dir", m.data)
    for name in ("by-acl", "by-grant"):
        r = ask_as(test_user, sock, "file", "read", "--", f"/{name}")
        assert r["ok"], (name, r)
        r = ask_as(test_user, sock, "file", "write", "--", f"/{name}", "eA==")
        assert not r["ok"] and r["error"] == "EACCES", (name, r)
    r = ask_as(test_user, sock, "file", "read", "--", "/closed")
    assert not r["ok"] and r["error"] == "EACCES"


def test_verbs_find_the_store_they_run_in(tmp_path):
    """`nexus init ./p` then, from inside p (or below), the verbs use p, as git finds its
    repository; --data-dir still wins."""
    nexus("init", tmp_path / "p")
    other = tmp_path / "other"
    nexus("init", other)
    (tmp_path / "p" / "deep" / "er").mkdir(parents=True)
    nexus("write", "/hello.txt", "Hello", cwd=tmp_path / "p" / "deep" / "er")
    assert nexus("cat", "/hello.txt", cwd=tmp_path / "p").stdout == b"Hello"
    nexus("cat", "/hello.txt", "--data-dir", other, cwd=tmp_path / "p", check_rc=3)
    assert nexus("cat", "/hello.txt", "--data-dir", tmp_path / "p").stdout == b"Hello"


def test_history_verbs_without_a_daemon(tmp_path):
    """log, snapshot, versions, undo and rebac open a store no daemon serves (as the file
    verbs do), found by --data-dir or by the current directory; a store held by another
    process is a one-line error."""
    store = tmp_path / "p"
    nexus("init", store)
    nexus("write", "/a.txt", "one", cwd=store)
    nexus("snapshot", "create", "before", cwd=store)
    nexus("write", "/a.txt", "two", cwd=store)
    assert b"before" in nexus("snapshot", "list", "--data-dir", store).stdout
    assert len(json.loads(nexus("versions", "list", "/a.txt", "--json", cwd=store).stdout)) == 2
    log = json.loads(nexus("log", "--json", "--data-dir", store).stdout)
    assert [e["op"] for e in log][-1] == "write"
    nexus("undo", cwd=store)
    assert nexus("cat", "/a.txt", cwd=store).stdout == b"one"
    nexus("rebac", "create", "user:root", "viewer-of", "/a.txt", cwd=store)
    assert b"viewer-of" in nexus("rebac", "list", cwd=store).stdout
    with nexusfs.connect(store, door="embedded"):
        r = nexus("log", "--data-dir", store, check_rc=1)
        assert r.stderr.count(b"\n") == 1 and b"in use" in r.stderr
    nexus("log", "--data-dir", tmp_path / "nothing", check_rc=1)


def test_mount_option_wins_over_the_environment(mounts, tmp_path):
    m = mounts()
    (m.mnt / "here.txt").write_bytes(b"mounted")
    nexus("init", tmp_path / "other")
    env = {"NEXUS_DATA_DIR": str(tmp_path / "other")}
    assert nexus("cat", "/here.txt", "--mount", m.mnt, env=env).stdout == b"mounted"
    assert b"here.txt" in nexus("log", "--mount", m.mnt, env=env).stdout
    nexus("cat", "/here.txt", env=env, check_rc=3)          # the environment's store

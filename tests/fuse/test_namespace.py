"""Names on a real mount: hard links, symlinks, rename and renameat2 rules, name length limits,
unlinked-but-open files, special files (FIFOs, sockets) and huge directories.
"""
from __future__ import annotations

import ctypes
import errno
import os
import socket
import stat
import subprocess
import threading
import time

import pytest
from fusehelp import run

pytestmark = pytest.mark.fuse

AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]


def renameat2(old, new, flags: int) -> None:
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(old))


def errno_of(fn, *args, **kw) -> int:
    try:
        fn(*args, **kw)
    except OSError as e:
        return e.errno
    raise AssertionError(f"{fn.__name__}{args} succeeded")


# -- hard links -----------------------------------------------------------------------------------
def test_hard_links_share_content_and_count_links(work):
    a = work / "a"
    a.write_text("shared\n")
    (work / "sub").mkdir()
    run(["ln", str(a), str(work / "b")])
    os.link(a, work / "sub/c")
    ino = os.stat(a).st_ino
    for p in ("a", "b", "sub/c"):
        s = os.stat(work / p)
        assert (s.st_ino, s.st_nlink) == (ino, 3), p
    with open(work / "b", "a") as f:             # write through one name ...
        f.write("more\n")
    assert (work / "sub/c").read_text() == "shared\nmore\n"   # ... read through another
    os.unlink(a)
    assert os.stat(work / "b").st_nlink == 2 and os.stat(work / "sub/c").st_nlink == 2
    os.rename(work / "b", work / "sub/b")
    assert os.stat(work / "sub/c").st_nlink == 2
    out = run(["ls", "-l", str(work / "sub")]).stdout
    assert all(line.split()[1] == "2" for line in out.splitlines()[1:])
    os.unlink(work / "sub/c")
    s = os.stat(work / "sub/b")
    assert (s.st_ino, s.st_nlink) == (ino, 1)
    assert (work / "sub/b").read_text() == "shared\nmore\n"


def test_hard_link_errors(work):
    (work / "d").mkdir()
    (work / "f").write_text("x")
    assert errno_of(os.link, work / "d", work / "d2") == errno.EPERM
    assert errno_of(os.link, work / "f", work / "f") == errno.EEXIST
    assert errno_of(os.link, work / "missing", work / "x") == errno.ENOENT
    assert os.stat(work / "d").st_nlink == 2 and os.stat(work / "f").st_nlink == 1


def test_directory_link_counts_follow_subdirectories(work):
    os.makedirs(work / "p/one")
    os.mkdir(work / "p/two")
    (work / "p/file").write_text("f")
    assert os.stat(work / "p").st_nlink == 4
    os.rename(work / "p/two", work / "two")
    assert os.stat(work / "p").st_nlink == 3
    os.rmdir(work / "p/one")
    assert os.stat(work / "p").st_nlink == 2
    assert errno_of(os.rmdir, work / "p") == errno.ENOTEMPTY


# -- symlinks -------------------------------------------------------------------------------------
def test_symlinks_resolve_and_readlink(work):
    os.makedirs(work / "dir/sub")
    (work / "dir/sub/target.txt").write_text("through the link\n")
    os.symlink("dir/sub/target.txt", work / "rel")
    os.symlink(str(work / "dir"), work / "abs-dir")
    os.symlink("../sub/target.txt", work / "dir/sub/up-and-back")
    run(["ln", "-s", "nowhere/at/all", str(work / "dangling")])
    assert os.readlink(work / "rel") == "dir/sub/target.txt"
    assert (work / "rel").read_text() == "through the link\n"
    assert (work / "abs-dir/sub/target.txt").read_text() == "through the link\n"
    assert (work / "dir/sub/up-and-back").read_text() == "through the link\n"
    assert run(["readlink", "-f", str(work / "dir/sub/up-and-back")]).stdout.strip() == \
        str(work / "dir/sub/target.txt")
    assert run(["cat", str(work / "rel")]).stdout == "through the link\n"
    ls = run(["ls", "-l", str(work)]).stdout
    assert "rel -> dir/sub/target.txt" in ls and "dangling -> nowhere/at/all" in ls
    ls = os.lstat(work / "rel")
    assert stat.S_ISLNK(ls.st_mode) and ls.st_size == len("dir/sub/target.txt")
    assert errno_of(os.stat, work / "dangling") == errno.ENOENT
    assert stat.S_ISLNK(os.lstat(work / "dangling").st_mode)
    assert errno_of(os.readlink, work / "dir") == errno.EINVAL
    assert errno_of(os.symlink, "x", work / "rel") == errno.EEXIST
    os.unlink(work / "rel")                      # removes the link, not the target
    assert (work / "dir/sub/target.txt").exists()


def test_symlink_targets_up_to_4095_bytes(work):
    for n in (1, 255, 256, 1000, 4095):
        target = ("t" * 200 + "/") * (n // 201) + "x" * (n % 201)
        assert len(target) == n
        os.symlink(target, work / f"l{n}")
        assert os.readlink(work / f"l{n}") == target
        assert os.lstat(work / f"l{n}").st_size == n
    assert errno_of(os.symlink, "y" * 4096, work / "too-long") == errno.ENAMETOOLONG
    assert not os.path.lexists(work / "too-long")
    # a link whose target is a long chain of real directories
    chain = "/".join(["d" * 250] * 15)
    os.makedirs(work / chain)
    (work / chain / "end").write_text("end\n")
    os.symlink(chain + "/end", work / "deep-link")
    assert (work / "deep-link").read_text() == "end\n"


# -- rename ---------------------------------------------------------------------------------------
def test_rename_replaces_files_and_empty_directories(work):
    (work / "a").write_text("A")
    (work / "b").write_text("B")
    ino_a = os.stat(work / "a").st_ino
    os.rename(work / "a", work / "b")
    assert not (work / "a").exists() and (work / "b").read_text() == "A"
    assert os.stat(work / "b").st_ino == ino_a
    os.mkdir(work / "d1")
    os.mkdir(work / "d2")
    (work / "d1/in").write_text("in")
    os.rename(work / "d1", work / "d2")            # over an empty directory
    assert (work / "d2/in").read_text() == "in" and not (work / "d1").exists()
    os.mkdir(work / "d3")
    assert errno_of(os.rename, work / "d3", work / "d2") == errno.ENOTEMPTY
    assert errno_of(os.rename, work / "b", work / "d3") == errno.EISDIR
    assert errno_of(os.rename, work / "d3", work / "b") == errno.ENOTDIR
    assert errno_of(os.rename, work / "missing", work / "x") == errno.ENOENT
    os.link(work / "b", work / "b2")               # two names of one inode: a no-op
    os.rename(work / "b", work / "b2")
    assert (work / "b").exists() and os.stat(work / "b2").st_nlink == 2
    assert os.stat(work).st_nlink == 4             # d2, d3


def test_renameat2_noreplace_and_exchange(work):
    (work / "a").write_text("A")
    (work / "b").write_text("B")
    assert errno_of(renameat2, work / "a", work / "b", RENAME_NOREPLACE) == errno.EEXIST
    assert (work / "a").read_text() == "A" and (work / "b").read_text() == "B"
    renameat2(work / "a", work / "c", RENAME_NOREPLACE)
    assert not (work / "a").exists() and (work / "c").read_text() == "A"
    ino_b, ino_c = os.stat(work / "b").st_ino, os.stat(work / "c").st_ino
    renameat2(work / "b", work / "c", RENAME_EXCHANGE)
    assert (work / "b").read_text() == "A" and (work / "c").read_text() == "B"
    assert (os.stat(work / "b").st_ino, os.stat(work / "c").st_ino) == (ino_c, ino_b)
    assert errno_of(renameat2, work / "b", work / "nothing", RENAME_EXCHANGE) == errno.ENOENT
    # exchange a directory with a file in another directory
    os.makedirs(work / "d/sub")
    (work / "other").mkdir()
    (work / "other/f").write_text("F")
    renameat2(work / "d", work / "other/f", RENAME_EXCHANGE)
    assert (work / "d").read_text() == "F"
    assert (work / "other/f/sub").is_dir()
    assert os.stat(work / "other").st_nlink == 3 and os.stat(work).st_nlink == 3
    # unknown or contradictory flags
    for flags in (RENAME_NOREPLACE | RENAME_EXCHANGE, RENAME_WHITEOUT, 8, 1 << 20):
        assert errno_of(renameat2, work / "b", work / "c", flags) == errno.EINVAL, flags
    assert (work / "b").read_text() == "A" and (work / "c").read_text() == "B"


def test_moving_a_directory_into_its_own_subtree_is_einval(work):
    os.makedirs(work / "a/b/c")
    assert errno_of(os.rename, work / "a", work / "a/b/c/a") == errno.EINVAL
    assert errno_of(os.rename, work / "a", work / "a/b/x") == errno.EINVAL
    assert errno_of(renameat2, work / "a", work / "a/b", RENAME_EXCHANGE) == errno.EINVAL
    r = run(["mv", str(work / "a"), str(work / "a/b/")], check=False)
    assert r.returncode != 0
    assert (work / "a/b/c").is_dir() and os.listdir(work) == ["a"]


# -- name limits ----------------------------------------------------------------------------------
def test_names_over_255_bytes_are_enametoolong(work):
    ok, long = "n" * 255, "n" * 256
    (work / ok).write_text("fits")
    assert (work / ok).read_text() == "fits" and ok in os.listdir(work)
    euro_ok, euro_long = "€" * 85, "€" * 86            # 255 and 258 bytes in UTF-8
    os.mkdir(work / euro_ok)
    for fn, args in ((open, (work / long, "w")), (os.mkdir, (work / long,)),
                     (os.symlink, ("x", work / long)), (os.link, (work / ok, work / long)),
                     (os.rename, (work / ok, work / long)), (os.mkfifo, (work / long,)),
                     (os.stat, (work / long,)), (os.mkdir, (work / euro_long,)),
                     (os.stat, (work / ("m" * 2000),))):
        assert errno_of(fn, *args) == errno.ENAMETOOLONG, (fn.__name__, args)
    assert sorted(os.listdir(work)) == sorted([ok, euro_ok])


# -- unlinked but open ----------------------------------------------------------------------------
def test_unlinked_open_file_stays_readable_and_writable(work):
    p = work / "ghost"
    p.write_bytes(b"still here\n" * 1000)
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        assert "ghost" not in os.listdir(work) and not p.exists()
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 11, 0) == b"still here\n"
        assert os.pread(fd, 11000, 0) == b"still here\n" * 1000
        os.pwrite(fd, b"written after unlink", 5000)
        os.fsync(fd)
        assert os.pread(fd, 20, 5000) == b"written after unlink"
        p.write_text("a new file under the old name\n")   # the name is free again
        assert os.pread(fd, 11, 0) == b"still here\n"
    finally:
        os.close(fd)
    assert p.read_text() == "a new file under the old name\n"
    # another process keeps a file open across its removal
    r = run(["sh", "-c", f"echo fleeting > '{work}/f2'; exec 3<'{work}/f2'; rm '{work}/f2';"
                         f" test ! -e '{work}/f2' && cat <&3"])
    assert r.stdout == "fleeting\n"


# -- special files --------------------------------------------------------------------------------
def test_mkfifo_passes_data_between_processes(work):
    run(["mkfifo", "-m", "0640", str(work / "pipe")])
    s = os.stat(work / "pipe")
    assert stat.S_ISFIFO(s.st_mode) and stat.S_IMODE(s.st_mode) == 0o640
    writer = subprocess.Popen(["sh", "-c", f"seq 1 20000 > '{work}/pipe'"])
    try:
        out = run(["cat", str(work / "pipe")], timeout=60).stdout
    finally:
        writer.wait(timeout=60)
    assert out == "".join(f"{i}\n" for i in range(1, 20001))
    os.mknod(work / "pipe2", stat.S_IFIFO | 0o600)
    assert stat.S_ISFIFO(os.stat(work / "pipe2").st_mode)
    assert run(["ls", "-l", str(work / "pipe2")]).stdout.startswith("prw-------")


def test_unix_socket_bound_on_the_mount(work):
    path = str(work / "sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    got = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"pong")

    t = threading.Thread(target=serve)
    t.start()
    try:
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(30)
            c.connect(path)
            c.sendall(b"ping")
            assert c.recv(100) == b"pong"
    finally:
        t.join(30)
        srv.close()
    assert got == [b"ping"]
    os.unlink(path)


# -- huge directories -----------------------------------------------------------------------------
def test_rm_rf_of_a_10000_entry_directory(work):
    big = work / "big"
    big.mkdir()
    for i in range(10_000):
        fd = os.open(big / f"entry-{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        if i % 10 == 0:
            os.write(fd, b"some content %d\n" % i)
        os.close(fd)
    names = os.listdir(big)
    assert len(names) == 10_000 and len(set(names)) == 10_000
    assert run(f"ls -f '{big}' | wc -l").stdout.strip() == "10002"       # with . and ..
    assert (big / "entry-09990").read_text() == "some content 9990\n"
    run(["rm", "-rf", str(big)], timeout=180)
    assert not big.exists() and os.listdir(work) == []
    assert os.stat(work).st_nlink == 2


def test_removed_files_leave_the_store_once_the_last_user_is_gone(mount_factory):
    """After rm -rf (with readdirplus having handed the kernel references), the inodes leave the
    store while still mounted; one held open stays until closed."""
    m = mount_factory()
    d = m.mnt / "d"
    d.mkdir()
    for i in range(300):
        (d / f"f{i}").write_text(f"{i}\n")
    run(["ls", "-l", str(d)])
    fd = os.open(d / "f7", os.O_RDONLY)
    try:
        run(["rm", "-rf", str(d)])
        wait_until(lambda: m.stats()["files"] == 1, "all but the open file to be purged")
        assert os.pread(fd, 10, 0) == b"7\n"
    finally:
        os.close(fd)
    wait_until(lambda: m.stats()["files"] == 0, "the closed file to be purged")


def wait_until(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.1)

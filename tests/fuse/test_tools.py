"""Everyday tools on a real mount, run the way a person runs them (as subprocesses).

ls -l, cat, cp -a, mv, grep -r, find, vim (ex mode, with swap file, backup and atomic save),
git (init/add/commit/branch/merge/clone/status/gc/fsck), rsync -a there and back, tar
extract/create, sqlite3 with its database on the mount (rollback journal and WAL), and running
executables stored on the mount. Trees are compared with ``diff -r``; metadata with stat.
"""
from __future__ import annotations

import os
import stat
import subprocess

import pytest
from fusehelp import FIXED_NS, make_tree, require_tools, run, sha256_file

pytestmark = pytest.mark.fuse


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    """A varied tree outside the mount (the reference copy)."""
    return make_tree(tmp_path_factory.mktemp("src") / "tree")


def diff_r(a, b):
    r = run(["diff", "-r", "--no-dereference", str(a), str(b)], check=False)
    assert r.returncode == 0, f"diff -r {a} {b}:\n{r.stdout[-3000:]}{r.stderr[-2000:]}"


# -- coreutils, grep, find ------------------------------------------------------------------------
def test_ls_l_reports_what_stat_says(work):
    (work / "f").write_bytes(b"12345")
    os.chmod(work / "f", 0o640)
    os.link(work / "f", work / "f2")
    os.symlink("f", work / "lnk")
    (work / "sub").mkdir()
    out = run(["ls", "-l", "--time-style=+%s", str(work)]).stdout.splitlines()
    assert out[0].startswith("total")
    rows = {line.split()[-1] if "->" not in line else line.split()[-3]: line.split() for line in out[1:]}
    assert set(rows) == {"f", "f2", "lnk", "sub"}
    assert rows["f"][0] == "-rw-r-----" and rows["f"][1] == "2" and rows["f"][4] == "5"
    assert rows["f"][2] == "root" and rows["f"][3] == "root"
    assert rows["lnk"][0].startswith("l") and rows["lnk"][-1] == "f"
    assert rows["sub"][0].startswith("d") and rows["sub"][1] == "2"
    assert int(rows["f"][5]) == int(os.stat(work / "f").st_mtime)
    r = run(["ls", "-lR", str(work)])
    assert "sub:" in r.stdout


def test_cat_concatenates_and_redirects(work):
    (work / "a").write_text("alpha\n")
    (work / "b").write_text("beta\n")
    run(f"cat {work}/a {work}/b > {work}/c && cat {work}/c >> {work}/c2 && cat {work}/c >> {work}/c2")
    assert (work / "c").read_text() == "alpha\nbeta\n"
    assert run(["cat", str(work / "c2")]).stdout == "alpha\nbeta\n" * 2


def test_cp_a_preserves_tree_modes_times_and_links(work, source_tree, tmp_path):
    run(["cp", "-a", str(source_tree), str(work / "copy")])
    diff_r(source_tree, work / "copy")
    for rel in ("zero", "one", "a/text.txt", "a/b/random.bin", "a/b", "a/link-to-random"):
        s, d = os.lstat(source_tree / rel), os.lstat(work / "copy" / rel)
        assert (stat.S_IMODE(d.st_mode), stat.S_IFMT(d.st_mode)) == (
            stat.S_IMODE(s.st_mode), stat.S_IFMT(s.st_mode)), rel
        assert d.st_mtime_ns == s.st_mtime_ns == FIXED_NS, rel
    # cp -a keeps hard links within the copied tree
    assert os.stat(work / "copy/hardlink-to-text").st_ino == os.stat(work / "copy/a/text.txt").st_ino
    assert os.stat(work / "copy/a/text.txt").st_nlink == 2
    # mount -> mount, and back out again
    run(["cp", "-a", str(work / "copy"), str(work / "copy2")])
    diff_r(source_tree, work / "copy2")
    run(["cp", "-a", str(work / "copy2"), str(tmp_path / "out")])
    diff_r(source_tree, tmp_path / "out")


def test_cp_a_preserves_user_xattrs(work):
    src = work / "x"
    src.write_text("with xattrs\n")
    os.setxattr(src, "user.origin", b"on the mount")
    os.setxattr(src, "user.binary", bytes(range(256)))
    run(["cp", "-a", str(src), str(work / "y")])
    assert os.getxattr(work / "y", "user.origin") == b"on the mount"
    assert os.getxattr(work / "y", "user.binary") == bytes(range(256))


def test_mv_within_into_and_out_of_the_mount(work, tmp_path):
    (work / "d1").mkdir()
    (work / "d1/file").write_text("moving\n")
    run(["mv", str(work / "d1/file"), str(work / "renamed")])
    assert not (work / "d1/file").exists() and (work / "renamed").read_text() == "moving\n"
    run(["mv", str(work / "d1"), str(work / "d2")])
    assert (work / "d2").is_dir() and not (work / "d1").exists()
    outside = tmp_path / "outside.txt"
    outside.write_text("from outside\n")
    run(["mv", str(outside), str(work / "d2/")])          # cross-filesystem: copy + unlink
    assert not outside.exists() and (work / "d2/outside.txt").read_text() == "from outside\n"
    run(["mv", str(work / "renamed"), str(tmp_path / "back")])
    assert (tmp_path / "back").read_text() == "moving\n" and not (work / "renamed").exists()
    (work / "over").write_text("old\n")
    (work / "new").write_text("new\n")
    run(["mv", "-f", str(work / "new"), str(work / "over")])
    assert (work / "over").read_text() == "new\n" and not (work / "new").exists()


def test_grep_r_finds_exactly_the_matching_files(work, source_tree):
    run(["cp", "-a", str(source_tree), str(work / "t")])
    r = run(["grep", "-rl", "line 4999 of", str(work / "t")])
    assert sorted(os.path.relpath(p, work / "t") for p in r.stdout.split()) == [
        "a/text.txt", "hardlink-to-text"]
    r = run(["grep", "-rc", "INFO all is well", str(work / "t/a/b/c")])
    assert f"{work}/t/a/b/c/compressible.log:120000" in r.stdout
    assert run(["grep", "-rq", "no such text anywhere", str(work / "t")], check=False).returncode == 1


def test_find_by_type_name_size_and_perm(work, source_tree):
    run(["cp", "-a", str(source_tree), str(work / "t")])
    t = str(work / "t")

    def find(*args):
        out = run(["find", t, *args]).stdout.splitlines()
        return sorted(os.path.relpath(p, t) for p in out)

    expected_files = sorted(os.path.relpath(os.path.join(d, f), source_tree)
                            for d, _, fs in os.walk(source_tree) for f in fs
                            if not os.path.islink(os.path.join(d, f)))
    assert find("-type", "f") == expected_files
    assert find("-type", "l") == ["a/link-to-random", "dangling", "deep/link-to-dir"]
    assert find("-name", "*.txt") == sorted(["a/text.txt", "ünïcödé/ß/grüße.txt",
                                             "with space/file with space.txt"])
    assert find("-size", "+1M") == ["a/b/c/compressible.log", "big.bin"]
    assert find("-perm", "0755", "-type", "f") == ["a/b/random.bin"]
    assert find("-empty", "-type", "f") == ["zero"]
    assert len(find("-type", "d")) == len([d for d, _, _ in os.walk(source_tree)])


# -- vim ------------------------------------------------------------------------------------------
def vim(path, *commands, cwd=None):
    require_tools("vim")
    # backupskip is emptied: its default skips backups of everything under /tmp
    cmd = ["vim", "-E", "-s", "-N", "-u", "NONE", "-i", "NONE", "-c", "set backupskip="]
    for c in commands:
        cmd += ["-c", c]
    return run(cmd + [str(path)], cwd=cwd, timeout=60,
               env={**os.environ, "HOME": str(path.parent), "TERM": "dumb"})


def test_vim_saves_with_swap_file_and_backup_by_rename(work, tmp_path):
    f = work / "notes.txt"
    f.write_text("one\ntwo\nthree\n")
    old_ino = os.stat(f).st_ino
    info = tmp_path / "vim-info"
    vim(f,
        "set swapfile directory=. backup writebackup backupcopy=no backupdir=. backupext=~",
        "%s/two/TWO/",
        "$put ='four'",
        "preserve",                       # force the swap file to disk now
        f"call writefile([swapname('%'), filereadable(swapname('%'))], '{info}')",
        "wq")
    swapname, swap_existed = info.read_text().splitlines()
    assert swap_existed == "1", f"vim had no readable swap file {swapname!r}"
    assert os.path.dirname(os.path.abspath(os.path.join(work, swapname))) == str(work)
    assert f.read_text() == "one\nTWO\nthree\nfour\n"
    backup = work / "notes.txt~"
    assert backup.read_text() == "one\ntwo\nthree\n"
    # backupcopy=no: the original was renamed to the backup and a new file written (atomic save)
    assert os.stat(backup).st_ino == old_ino and os.stat(f).st_ino != old_ino
    assert sorted(os.listdir(work)) == ["notes.txt", "notes.txt~"], "swap/probe files left"


def test_vim_writebackup_copy_mode_keeps_the_inode(work):
    f = work / "inplace.txt"
    f.write_text("alpha\n")
    os.link(f, work / "other-name")
    ino = os.stat(f).st_ino
    vim(f, "set swapfile directory=. nobackup writebackup backupcopy=yes", "%s/alpha/beta/", "wq")
    assert f.read_text() == "beta\n"
    assert os.stat(f).st_ino == ino and (work / "other-name").read_text() == "beta\n"
    assert sorted(os.listdir(work)) == ["inplace.txt", "other-name"]


def test_vim_creates_a_new_file_and_edits_a_large_one(work):
    f = work / "new.txt"
    vim(f, "set swapfile directory=.", "put ='created by vim'", "1delete", "wq")
    assert f.read_text() == "created by vim\n"
    big = work / "big.txt"
    big.write_text("".join(f"row {i}\n" for i in range(100_000)))
    vim(big, "set swapfile directory=. backup backupdir=. writebackup", "g/^row [0-9]*5$/d", "wq")
    rows = big.read_text().splitlines()
    assert len(rows) == 90_000 and not any(r.endswith("5") for r in rows)
    assert (work / "big.txt~").read_text().count("\n") == 100_000


# -- git ------------------------------------------------------------------------------------------
def git(*args, cwd, check=True):
    env = {**os.environ, "GIT_AUTHOR_NAME": "Nexus Test", "GIT_AUTHOR_EMAIL": "test@nexus.invalid",
           "GIT_COMMITTER_NAME": "Nexus Test", "GIT_COMMITTER_EMAIL": "test@nexus.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": str(cwd)}
    return run(["git", "-c", "init.defaultBranch=main", "-c", "user.name=Nexus Test",
                "-c", "user.email=test@nexus.invalid", *args], cwd=cwd, env=env, check=check,
               timeout=120)


def test_git_workflow_on_the_mount(work, source_tree):
    require_tools("git")
    repo = work / "repo"
    git("init", str(repo), cwd=work)
    run(["cp", "-a", f"{source_tree}/.", str(repo)])
    (repo / "empty").rmdir()                              # git does not track empty directories
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "initial import", cwd=repo)
    git("branch", "feature", cwd=repo)
    git("checkout", "-q", "feature", cwd=repo)
    (repo / "a/text.txt").write_text("rewritten on the feature branch\n")
    (repo / "feature.txt").write_text("feature\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "feature work", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    assert (repo / "a/text.txt").read_text().startswith("line 0 of some text")
    (repo / "main.txt").write_text("main\n")
    git("add", "main.txt", cwd=repo)
    git("commit", "-q", "-m", "main work", cwd=repo)
    git("merge", "--no-edit", "-q", "feature", cwd=repo)
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert (repo / "main.txt").read_text() == "main\n"
    assert git("status", "--porcelain", cwd=repo).stdout == ""
    assert git("rev-list", "--count", "HEAD", cwd=repo).stdout.strip() == "4"
    git("fsck", "--full", "--strict", cwd=repo)

    # a local clone (hard-links the objects) and a --no-local clone (packs them), both on the mount
    git("clone", "-q", str(repo), str(work / "clone"), cwd=work)
    git("clone", "-q", "--no-local", str(repo), str(work / "clone2"), cwd=work)
    head = git("rev-parse", "HEAD", cwd=repo).stdout
    for c in ("clone", "clone2"):
        assert git("rev-parse", "HEAD", cwd=work / c).stdout == head
        assert git("status", "--porcelain", cwd=work / c).stdout == ""
        git("fsck", "--full", cwd=work / c)
        r = run(["diff", "-r", "--no-dereference", "--exclude=.git", str(repo), str(work / c)],
                check=False)
        assert r.returncode == 0, r.stdout

    git("gc", "-q", "--prune=now", cwd=repo)
    assert list((repo / ".git/objects/pack").glob("*.pack")), "gc wrote no pack"
    git("fsck", "--full", "--strict", cwd=repo)
    assert git("status", "--porcelain", cwd=repo).stdout == ""
    git("gc", "-q", "--aggressive", "--prune=now", cwd=work / "clone")
    git("fsck", "--full", cwd=work / "clone")
    assert git("log", "--format=%s", cwd=work / "clone").stdout.splitlines()[0].startswith("Merge")


# -- rsync and tar --------------------------------------------------------------------------------
def test_rsync_a_into_the_mount_and_back(work, source_tree, tmp_path):
    require_tools("rsync")
    run(["rsync", "-a", f"{source_tree}/", f"{work}/dst/"])
    diff_r(source_tree, work / "dst")
    # everything rsync -a preserves was preserved: a second run has nothing to transfer
    r = run(["rsync", "-ai", "--dry-run", f"{source_tree}/", f"{work}/dst/"])
    assert r.stdout.strip() == "", f"rsync would transfer again:\n{r.stdout}"
    run(["rsync", "-a", f"{work}/dst/", f"{tmp_path}/back/"])
    diff_r(source_tree, tmp_path / "back")
    r = run(["rsync", "-ai", "--dry-run", f"{work}/dst/", f"{tmp_path}/back/"])
    assert r.stdout.strip() == "", r.stdout
    # an incremental update in place
    (tmp_path / "back/a/text.txt").write_text("changed\n")
    run(["rsync", "-a", "--delete", f"{tmp_path}/back/", f"{work}/dst/"])
    assert (work / "dst/a/text.txt").read_text() == "changed\n"
    diff_r(tmp_path / "back", work / "dst")


def test_tar_extract_onto_the_mount_and_create_from_it(work, source_tree, tmp_path):
    tarball = tmp_path / "tree.tar"
    run(["tar", "-cf", str(tarball), "-C", str(source_tree), "."])
    (work / "x").mkdir()
    run(["tar", "-xpf", str(tarball), "-C", str(work / "x")])
    diff_r(source_tree, work / "x")
    # tar --compare checks sizes, modes, mtimes, owners, link targets and content
    r = run(["tar", "--compare", "-f", str(tarball), "-C", str(work / "x")], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # and a tarball made from the mount extracts to the same tree
    run(["tar", "-czf", str(work / "again.tgz"), "-C", str(work / "x"), "."])
    (tmp_path / "y").mkdir()
    run(["tar", "-xzpf", str(work / "again.tgz"), "-C", str(tmp_path / "y")])
    diff_r(source_tree, tmp_path / "y")


# -- sqlite3 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_sqlite3_database_on_the_mount(work, journal):
    require_tools("sqlite3")
    db = work / "test.db"
    script = [f"PRAGMA journal_mode={journal};",
              "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);",
              "CREATE INDEX t_k ON t(k);"]
    for batch in range(20):
        script += ["BEGIN;",
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<2500)"
                   f" INSERT INTO t(k, v) SELECT 'b{batch}-' || i, randomblob(40 + i % 200) FROM n;",
                   "COMMIT;"]
    script += ["BEGIN;", "UPDATE t SET v = zeroblob(10) WHERE id % 7 = 0;",
               "DELETE FROM t WHERE id % 11 = 0;", "COMMIT;",
               "BEGIN;", "DELETE FROM t;", "ROLLBACK;"]
    run(["sqlite3", str(db)], input="\n".join(script) + "\n", stdin=None, timeout=120)
    expected = 50_000 - 50_000 // 11
    r = run(["sqlite3", str(db), "PRAGMA integrity_check;", "SELECT count(*) FROM t;",
             "SELECT count(*) FROM t WHERE length(v) = 10;"])
    assert r.stdout.split() == ["ok", str(expected), str(sum(1 for i in range(1, 50_001)
                                                             if i % 7 == 0 and i % 11))]
    if journal == "wal":
        run(["sqlite3", str(db), "PRAGMA wal_checkpoint(TRUNCATE);"])
    run(["sqlite3", str(db), "VACUUM;"])
    r = run(["sqlite3", str(db), "PRAGMA integrity_check;", "SELECT count(*) FROM t;"])
    assert r.stdout.split() == ["ok", str(expected)]
    leftovers = sorted(p.name for p in work.iterdir())
    assert leftovers in (["test.db"], ["test.db", "test.db-shm", "test.db-wal"]), leftovers


# -- executables ----------------------------------------------------------------------------------
def test_run_executables_stored_on_the_mount(work):
    script = work / "hello.sh"
    script.write_text('#!/bin/sh\necho "hello from $(basename "$0"): $*"\n')
    os.chmod(script, 0o755)
    assert run([str(script), "a", "b"]).stdout == "hello from hello.sh: a b\n"
    assert run("./hello.sh x", cwd=work).stdout == "hello from hello.sh: x\n"
    # a real ELF binary, executed (and so mmap'ed) from the mount
    run(["cp", "/bin/echo", str(work / "echo")])
    assert run([str(work / "echo"), "binary", "works"]).stdout == "binary works\n"
    assert sha256_file(work / "echo") == sha256_file("/bin/echo")
    # without the x bit the kernel refuses
    (work / "noexec.sh").write_text("#!/bin/sh\necho no\n")
    with pytest.raises(PermissionError):
        subprocess.run([str(work / "noexec.sh")])
    # a Python script importing a module that lives next to it on the mount
    (work / "helper_mod.py").write_text("VALUE = 42\n")
    (work / "main.py").write_text("import helper_mod\nprint(helper_mod.VALUE)\n")
    assert run(["python3", str(work / "main.py")]).stdout == "42\n"

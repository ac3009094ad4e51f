"""History and control through a real mount, with the shell alone: snapshots by mkdir, diff -r
against them, versions under /.nexus/history, cp of a version back, the log, undo through the
ctl file, time travel under /.nexus/at, snapshot restore, read-only views, and the nexus CLI
over the control socket."""
from __future__ import annotations

import json
import os

import pytest
from fusehelp import NEXUS, run

pytestmark = pytest.mark.fuse


def sh(script: str, **kw):
    return run(["bash", "-c", script], **kw)


def test_snapshot_diff_restore_and_undo(mount):
    m = mount.mnt
    n = m / ".nexus"
    sh(f"mkdir -p {m}/proj/src && printf 'v1\\n' > {m}/proj/src/app.py && echo util > {m}/proj/src/util.py")
    assert ".nexus" not in os.listdir(m)                  # hidden from the root's listing
    assert {"ctl", "ctl.last", "log", "stats", "snapshots", "history", "at"} <= set(os.listdir(n))
    sh(f"mkdir {n}/snapshots/before-refactor")
    assert "before-refactor" in os.listdir(n / "snapshots")
    sh(f"printf 'v2 broken\\n' > {m}/proj/src/app.py && rm {m}/proj/src/util.py && echo new > {m}/proj/src/new.py")
    r = sh(f"diff -r {n}/snapshots/before-refactor/proj/src {m}/proj/src", check=False)
    assert r.returncode == 1
    assert "v2 broken" in r.stdout and "Only in" in r.stdout and "util.py" in r.stdout
    # the snapshot is read-only
    r = sh(f"echo x > {n}/snapshots/before-refactor/proj/src/app.py", check=False)
    assert r.returncode != 0 and "Read-only" in r.stderr
    # restore through the ctl file; the kernel must show the restored state at once
    sh(f"echo 'snapshot restore before-refactor /proj/src' > {n}/ctl")
    assert "restored" in (n / "ctl.last").read_text()
    assert (m / "proj/src/app.py").read_text() == "v1\n"
    assert sorted(os.listdir(m / "proj/src")) == ["app.py", "util.py"]
    # and the restore itself can be undone
    sh(f"echo undo > {n}/ctl")
    assert "undid" in (n / "ctl.last").read_text()
    assert (m / "proj/src/app.py").read_text() == "v2 broken\n"
    assert sorted(os.listdir(m / "proj/src")) == ["app.py", "new.py"]
    # rmdir deletes, mv renames
    sh(f"mv {n}/snapshots/before-refactor {n}/snapshots/old && rmdir {n}/snapshots/old")
    assert os.listdir(n / "snapshots") == []


def test_versions_log_and_time_travel(mount):
    m = mount.mnt
    n = m / ".nexus"
    sh(f"mkdir -p {m}/hist && echo one > {m}/hist/f.txt")
    seq_one = json.loads((n / "log").read_text().splitlines()[-1])["seq"]
    sh(f"echo two > {m}/hist/f.txt && echo three >> {m}/hist/f.txt")
    versions = sorted(os.listdir(n / "history/hist/f.txt"))
    assert len(versions) == 3
    assert [(n / "history/hist/f.txt" / v).read_text() for v in versions] == [
        "one\n", "two\n", "two\nthree\n"]
    # copying a version back is a rollback: a new version, nothing lost
    sh(f"cp {n}/history/hist/f.txt/{versions[0]} {m}/hist/f.txt")
    assert (m / "hist/f.txt").read_text() == "one\n"
    assert len(os.listdir(n / "history/hist/f.txt")) == 4
    # the log: who did what
    recs = [json.loads(line) for line in (n / "log").read_text().splitlines()]
    mine = [r for r in recs if r["path"] == "/hist/f.txt"]
    assert {"create", "write"} <= {r["op"] for r in mine}
    assert all(r["uid"] == 0 and r["pid"] > 0 for r in mine)
    assert any(r["process"] == "cp" for r in mine)
    # the whole tree as of a sequence number
    assert (n / f"at/{seq_one}/hist/f.txt").read_text() == "one\n"
    r = sh(f"touch {n}/at/{seq_one}/hist/new", check=False)
    assert r.returncode != 0
    assert not (n / "at/99999999").exists()


def test_agent_identity_and_undo_by_agent(mount):
    m = mount.mnt
    n = m / ".nexus"
    env = dict(os.environ, NEXUS_AGENT="agent-7")
    sh(f"mkdir -p {m}/ag && echo keep > {m}/ag/keep.txt")
    sh(f"echo oops > {m}/ag/keep.txt", env=env)
    recs = [json.loads(line) for line in (n / "log").read_text().splitlines()]
    assert any(r["agent"] == "agent-7" and r["path"] == "/ag/keep.txt" for r in recs)
    sh(f"echo 'undo --agent agent-7' > {n}/ctl")
    assert (m / "ag/keep.txt").read_text() == "keep\n"


def test_ctl_errors_and_garbage(mount):
    n = mount.mnt / ".nexus"
    r = sh(f"echo 'no-such-command' > {n}/ctl", check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert "snapshot" in (n / "ctl.last").read_text()       # the reply lists the commands
    r = sh(f"mkdir '{n}/snapshots/bad name'", check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    r = sh(f"head -c 100000 /dev/urandom > {n}/ctl", check=False)
    assert r.returncode != 0
    sh(f"echo help > {n}/ctl")                              # still healthy
    assert "undo" in (n / "ctl.last").read_text()


def test_cli_over_the_socket(mount):
    m = mount.mnt
    sh(f"mkdir -p {m}/cli && echo a > {m}/cli/x")
    run([NEXUS, "snapshot", "create", "cli-snap", "--mount", str(m)])
    r = run([NEXUS, "snapshot", "list", "--mount", str(m), "--json"])
    assert any(s["name"] == "cli-snap" for s in json.loads(r.stdout))
    sh(f"echo b > {m}/cli/x")
    r = run([NEXUS, "log", "--mount", str(m), "--path", "/cli/x", "--json"])
    assert len(json.loads(r.stdout)) >= 2
    run([NEXUS, "undo", "--mount", str(m)])
    assert (m / "cli/x").read_text() == "a\n"
    r = run([NEXUS, "versions", "list", str(m / "cli/x"), "--mount", str(m), "--json"])
    assert len(json.loads(r.stdout)) >= 2
    r = run([NEXUS, "snapshot", "create", "bad/name", "--mount", str(m)], check=False)
    assert r.returncode == 1 and r.stderr.startswith("nexus:")


def test_deleted_file_history_and_read_only_views(mount):
    m = mount.mnt
    n = m / ".nexus"
    sh(f"mkdir -p {m}/gone && echo first > {m}/gone/f && echo second > {m}/gone/f && rm {m}/gone/f")
    assert not (m / "gone/f").exists()
    versions = sorted(os.listdir(n / "history/gone/f"))       # a deleted file keeps its history
    assert [(n / "history/gone/f" / v).read_text() for v in versions][-1] == "second\n"
    sh(f"cp {n}/history/gone/f/{versions[0]} {m}/gone/f")       # bring the first one back
    assert (m / "gone/f").read_text() == "first\n"
    for target in (f"{n}/history/gone/f/{versions[0]}", f"{n}/history/gone/new"):
        r = sh(f"echo x > {target}", check=False)
        assert r.returncode != 0
    r = sh(f"rm -f {n}/history/gone/f/{versions[0]}", check=False)
    assert r.returncode != 0
    r = run([NEXUS, "gc", "--mount", str(m)])
    assert (n / "history/gone/f" / versions[0]).read_text() == "first\n"


def test_history_of_a_path_goes_on_across_atomic_saves(mount):
    """sed -i (like editors' safe saves) writes a new file and renames it over the old one:
    the path's history keeps every earlier content, and a rollback to one of them works."""
    m = mount.mnt
    n = m / ".nexus"
    sh(f"mkdir -p {m}/atomic && echo v1 > {m}/atomic/f && sed -i s/v1/v2/ {m}/atomic/f"
       f" && sed -i s/v2/v3/ {m}/atomic/f")
    hist = n / "history/atomic/f"
    texts = [(hist / v).read_text() for v in sorted(os.listdir(hist))]
    assert texts[0] == "v1\n" and texts[-1] == "v3\n" and "v2\n" in texts
    first = json.loads(run([NEXUS, "versions", "list", str(m / "atomic/f"), "--json"]).stdout)[0]
    run([NEXUS, "versions", "rollback", str(m / "atomic/f"), str(first["seq"])])
    assert (m / "atomic/f").read_text() == "v1\n"
    assert (hist / sorted(os.listdir(hist))[-1]).read_text() == "v1\n"     # a new version

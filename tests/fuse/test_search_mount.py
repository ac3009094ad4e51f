"""Search through a real mount and the nexus CLI: nexus grep equals grep -r over the mount on
random trees, documents by their parsed text, renames and deletes at once, /.nexus/search/
with ls, cat and readlink, a non-reader seeing nothing, bad input, reindex."""
from __future__ import annotations

import json
import os
import random
import sys

import pytest
from fusehelp import NEXUS, as_user, run

pytestmark = pytest.mark.fuse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "views"))
import docgen  # noqa: E402

WORDS = ["alpha", "beta", "token", "refresh", "TODO", "FIXME", "auth", "def", "return",
         "value", "Kappa", "x_1", "foo.bar", "a+b", "caf\u00e9", "end$", "tab\there"]


def nexus(mount, *args, check=False):
    return run([NEXUS, args[0], "--mount", str(mount.mnt), *args[1:]], check=check)


def write_tree(root, seed, files=80):
    r = random.Random(seed)
    for i in range(files):
        d = root / r.choice(["", "src", "src/lib", "docs x", "deep/er"])
        d.mkdir(parents=True, exist_ok=True)
        lines = [" ".join(r.choice(WORDS) for _ in range(r.randint(0, 7)))
                 for _ in range(r.randint(0, 25))]
        data = "\n".join(lines).encode() + (b"\n" if r.random() < 0.8 else b"")
        if r.random() < 0.05:
            data = b"\0bin " + data
        (d / f"f{i}{r.choice(['.py', '.txt', ''])}").write_bytes(data)


def grep_r(mount, work, pattern, *flags):
    r = run(["grep", "-r", "-E", *flags, "--", pattern, work.name], cwd=mount.mnt,
            check=False, env={**os.environ, "LC_ALL": "C"})
    assert r.returncode in (0, 1), r.stderr
    return sorted("/" + line for line in r.stdout.splitlines())


def nexus_grep(mount, work, pattern, *flags):
    r = nexus(mount, "grep", *flags, "--path", str(work), "--", pattern)
    assert r.returncode in (0, 1), r.stderr
    return sorted(r.stdout.splitlines())


@pytest.mark.parametrize("seed", [11, 12])
def test_grep_equals_grep_r_over_the_mount(mount, work, seed):
    write_tree(work, seed)
    for pattern in ("token", "TODO|FIXME", "^def", "value$", "a.c", "[[:upper:]][a-z]+",
                    "foo\\.bar", "a\\+b", "caf\u00e9", "^$", "\\<auth\\>", "nomatch"):
        assert nexus_grep(mount, work, pattern, "-n") == grep_r(mount, work, pattern, "-n"), pattern
    for flags in (["-i"], ["-l"], ["-c"], ["-in"]):
        for pattern in ("token", "todo|fixme", "kappa"):
            assert nexus_grep(mount, work, pattern, *flags) == grep_r(mount, work, pattern, *flags)
    # changes are seen at once: a rename, a delete, a rewrite
    victim = next(p for p in sorted(work.rglob("*")) if p.is_file() and b"token" in p.read_bytes())
    victim.rename(work / "renamed.txt")
    (work / "renamed.txt").write_text("token rewritten\n")
    gone = next(p for p in sorted(work.rglob("*")) if p.is_file() and b"refresh" in p.read_bytes())
    gone.unlink()
    for pattern in ("token", "refresh"):
        assert nexus_grep(mount, work, pattern, "-n") == grep_r(mount, work, pattern, "-n")


def test_documents_by_their_text(mount, work):
    (work / "report.pdf").write_bytes(docgen.pdf([["Quarterly report", "revenue grew nine percent"]]))
    (work / "plain.txt").write_text("no money here\nrevenue in plain text\n")
    r = nexus(mount, "grep", "-n", "revenue", "--path", str(work), "--search-mode", "parsed")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"/{work.name}/report.pdf.txt:")
    assert "revenue grew nine percent" in lines[0]
    # the view's path is real: grep -r over the mount finds the same line in it
    view = grep_r(mount, work, "revenue grew", "-n")
    assert any(v.startswith(f"/{work.name}/report.pdf.txt:") for v in view)
    r = nexus(mount, "grep", "revenue", "--path", str(work), "--json")
    got = {(j["path"], j["source"]) for j in map(json.loads, r.stdout.splitlines())}
    assert got == {(f"/{work.name}/report.pdf.txt", "parsed"), (f"/{work.name}/plain.txt", "raw")}
    r = nexus(mount, "search", "revenue grew", "--path", str(work))
    assert r.returncode == 0 and r.stdout.startswith(f"/{work.name}/report.pdf:")


def test_search_directory(mount, work):
    (work / "src").mkdir()
    (work / "src/auth.py").write_text("import os\n# authentication token refresh\n")
    (work / "notes.txt").write_text("token refresh later\n")
    (work / "other.txt").write_text("unrelated\n")
    q = mount.mnt / ".nexus/search/token refresh"
    names = set(os.listdir(q))
    mine = {f"{work.name}%2Fsrc%2Fauth.py", f"{work.name}%2Fnotes.txt"}
    assert mine <= names and "results.txt" in names
    assert not any("other.txt" in n for n in names)
    link = q / f"{work.name}%2Fsrc%2Fauth.py"
    assert os.readlink(link) == f"../../../{work.name}/src/auth.py"
    assert link.read_text() == "import os\n# authentication token refresh\n"   # it resolves
    r = run(["ls", "-l", str(q)])
    assert f"-> ../../../{work.name}/src/auth.py" in r.stdout
    text = (q / "results.txt").read_text()
    assert f"/{work.name}/src/auth.py:2: # authentication token refresh" in text
    # a rename and a delete are visible at the next look
    (work / "src/auth.py").rename(work / "auth2.py")
    (work / "notes.txt").unlink()
    names = set(os.listdir(q))
    assert f"{work.name}%2Fauth2.py" in names and not (mine & names)
    # a query with a slash, any bytes, too long, invalid
    slash = mount.mnt / ".nexus/search" / f"{work.name}%2Fauth2"
    assert "results.txt" in os.listdir(slash)
    r = run(["ls", str(mount.mnt / ".nexus/search" / ("x" * 256))], check=False)
    assert r.returncode != 0 and "too long" in r.stderr
    r = run(["ls", str(mount.mnt / ".nexus/search" / '"open')], check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    r = run(["bash", "-c", f"ls \"{mount.mnt}/.nexus/search/$(printf 'caf\\xe9 \\x01')\""], check=False)
    assert r.returncode in (0, 2) and "Input/output" not in r.stderr
    assert os.listdir(mount.mnt / ".nexus/search") == []


def test_non_reader_sees_nothing(mount, work, test_user):
    (work / "secret").mkdir()
    (work / "secret/s.txt").write_text("classifiedword\n")
    os.chmod(work / "secret", 0o700)
    (work / "private.txt").write_text("classifiedword too\n")
    os.chmod(work / "private.txt", 0o600)
    (work / "public.txt").write_text("classifiedword public\n")
    r = nexus(mount, "grep", "-l", "classifiedword", "--path", str(work))
    assert sorted(r.stdout.split()) == sorted(f"/{work.name}/{p}" for p in
                                              ("secret/s.txt", "private.txt", "public.txt"))
    # the user asks through the ctl file (the daemon's commands, for the caller the kernel names)
    ctl = mount.mnt / ".nexus/ctl"
    r = as_user(["sh", "-c", f"echo 'grep --files-with-matches classifiedword --path /{work.name}'"
                             f" > {ctl} && cat {ctl}.last"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"/{work.name}/public.txt"]
    r = as_user(["sh", "-c", f"echo 'search classifiedword --path /{work.name}' > {ctl} && cat {ctl}.last"])
    assert [line.split(":")[0] for line in r.stdout.splitlines()] == [f"/{work.name}/public.txt"]
    r = as_user(["ls", str(mount.mnt / ".nexus/search/classifiedword")])
    assert r.returncode == 0
    assert sorted(r.stdout.split()) == sorted([f"{work.name}%2Fpublic.txt", "results.txt"])


def test_bad_input_and_bounds(mount, work):
    for i in range(30):
        (work / f"f{i}.txt").write_text("hit\n" * 50)
    r = nexus(mount, "grep", "(unclosed", "--path", str(work))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
    r = nexus(mount, "search", '"unbalanced')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = nexus(mount, "grep", "x", "--path", str(work / "nope"))
    assert r.returncode == 2
    r = nexus(mount, "grep", "hit", "--path", str(work), "--max-results", "7")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 7
    r = nexus(mount, "grep", "hit", "--path", str(work))            # 1500 lines, paged
    assert len(r.stdout.splitlines()) == 1500
    r = nexus(mount, "grep", "nothing-like-this", "--path", str(work))
    assert r.returncode == 1 and r.stdout == ""
    r = nexus(mount, "glob", "f1*.txt", "--path", str(work))
    assert r.stdout.split() == [f"/{work.name}/f{i}.txt" for i in [1] + list(range(10, 20))]
    r = run(["bash", "-c", f"{NEXUS} grep hit --mount {mount.mnt} --path {work} | head -3"])
    assert len(r.stdout.splitlines()) == 3 and "Traceback" not in r.stderr
    r = nexus(mount, "reindex")
    assert r.returncode == 0 and "indexed" in r.stdout
    r = nexus(mount, "grep", "-c", "hit", "--path", str(work))
    assert sorted(r.stdout.split()) == sorted(f"/{work.name}/f{i}.txt:50" for i in range(30))

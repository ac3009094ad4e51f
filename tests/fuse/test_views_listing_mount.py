"""Listing big directories of documents through a real mount, with the real tools: `ls -l`
shows every document's views with their parsed sizes and their document's read permissions
across many readdir requests, a real file hides a view, `find` and `stat` agree, and a
listing read while documents are added returns no name twice and skips none."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from fusehelp import run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "views"))
import docgen  # noqa: E402

pytestmark = pytest.mark.fuse

N = 160                     # 480 entries with the views: more than one readdir buffer


@pytest.fixture(scope="module")
def many(mount):
    d = mount.mnt / "many"
    d.mkdir()
    contents = [docgen.pdf([[f"listing variant {k} " + "word " * (k * 7)]]) for k in range(3)]
    (d / "d0005.pdf.md").write_text("a real file of a view's name\n")
    for i in range(N):
        (d / f"d{i:04d}.pdf").write_bytes(contents[i % 3])
        (d / f"p{i:04d}.dat").write_bytes(b"x" * i)
    os.chmod(d / "d0007.pdf", 0o640)
    # reading one view of each content waits for its parse: then every size is known
    texts = {k: (d / f"d{k:04d}.pdf.txt").read_bytes() for k in range(3)}
    mds = {k: (d / f"d{k:04d}.pdf.md").read_bytes() for k in range(3)}
    return d, texts, mds


def test_ls_long_shows_every_view_with_size_and_permissions(many):
    d, texts, mds = many
    lines = run(["ls", "-l", "--time-style=+", str(d)]).stdout.splitlines()[1:]
    rows = {ln.split()[-1]: ln.split() for ln in lines}
    assert len(rows) == 4 * N      # documents, their 2 views (one a real file), plain files
    for i in range(N):
        k = i % 3
        txt = rows[f"d{i:04d}.pdf.txt"]
        assert int(txt[4]) == len(texts[k])
        assert txt[0] == ("-r--r-----" if i == 7 else "-r--r--r--")
        if i != 5:
            assert int(rows[f"d{i:04d}.pdf.md"][4]) == len(mds[k])
    assert rows["d0005.pdf.md"][0] == "-rw-r--r--"
    assert (d / "d0005.pdf.md").read_text() == "a real file of a view's name\n"
    assert int(rows["p0042.dat"][4]) == 42
    # find and stat see the same entries
    found = run(["find", str(d), "-name", "*.pdf.txt"]).stdout.split()
    assert len(found) == N
    sizes = run(f"cd {d} && stat -c '%s %n' *.pdf.md").stdout.splitlines()
    assert len(sizes) == N
    assert {s.split()[1]: int(s.split()[0]) for s in sizes}["d0004.pdf.md"] == len(mds[1])
    assert sorted(os.listdir(d)) == sorted(rows)


def test_a_listing_read_while_documents_arrive(many):
    d, _texts, _mds = many
    before = set(os.listdir(d))
    seen = []
    with os.scandir(d) as it:
        for k, entry in enumerate(it):
            seen.append(entry.name)
            if k == 50:
                for j in range(5):
                    (d / f"late{j}.pdf").write_bytes(docgen.pdf([[f"late arrival {j}"]]))
    assert len(seen) == len(set(seen)), "a name came twice"
    assert before <= set(seen), "a name was skipped"
    after = set(os.listdir(d))
    assert {f"late{j}.pdf.txt" for j in range(5)} <= after

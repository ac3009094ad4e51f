"""Document views through a real mount: NAME.txt and NAME.md appear beside documents the tests
generate with each format's own library, grep finds words inside them, the original bytes are
untouched, views are read-only, a real file of the same name wins, views follow their
document's permissions, and a copy of a document is served from the view cache."""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from fusehelp import as_user, run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "views"))
import docgen  # noqa: E402

pytestmark = pytest.mark.fuse


@pytest.fixture(scope="module")
def docs(mount):
    d = mount.mnt / "docs"
    d.mkdir()
    os.chmod(d, 0o755)
    files = {
        "q4.pdf": docgen.pdf([["Revenue grew in the fourth quarter", "ostrich"], ["page two pelican"]]),
        "sales.xlsx": docgen.xlsx({"Sales": [["Region", "Revenue"], ["North", 120], ["South", 80]],
                                   "Costs": [["Item", "Amount"], ["rent", 40]]}),
        "notes.docx": docgen.docx(),
        "deck.pptx": docgen.pptx(),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d, files


def test_views_are_listed_and_readable(docs):
    d, files = docs
    names = set(os.listdir(d))
    for name in files:
        assert {name, name + ".txt", name + ".md"} <= names
    pdf_txt = (d / "q4.pdf.txt").read_text()
    assert "Revenue grew in the fourth quarter" in pdf_txt and "pelican" in pdf_txt
    assert pdf_txt.index("ostrich") < pdf_txt.index("pelican")        # reading order, pages
    md = (d / "sales.xlsx.md").read_text()
    assert "Sales" in md and "Costs" in md and "| North | 120 |" in md
    assert "North\t120" in (d / "sales.xlsx.txt").read_text()
    docx_md = (d / "notes.docx.md").read_text()
    assert "# Quarterly Report" in docx_md and "zebra" in docx_md and "widget" in docx_md
    assert "Launch Plan" in (d / "deck.pptx.md").read_text()


def test_grep_finds_words_inside_documents(docs):
    d, _ = docs
    r = run(f"grep -l -i revenue {d}/*.txt", check=False)
    found = {Path(p).name for p in r.stdout.split()}
    assert {"q4.pdf.txt", "sales.xlsx.txt"} <= found
    r = run(["grep", "-r", "-l", "walrus", str(d)])
    assert "deck.pptx.txt" in r.stdout


def test_originals_are_untouched_and_views_read_only(docs):
    d, files = docs
    for name, data in files.items():
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
        r = run(["sha256sum", str(d / name)])
        assert r.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    r = run(f"echo x > {d}/q4.pdf.txt", check=False)
    assert r.returncode != 0 and "Read-only" in r.stderr
    r = run(["rm", "-f", str(d / "q4.pdf.md")], check=False)
    assert r.returncode != 0
    st_doc, st_view = os.stat(d / "q4.pdf"), os.stat(d / "q4.pdf.txt")
    assert st_view.st_mtime_ns == st_doc.st_mtime_ns and st_view.st_uid == st_doc.st_uid


def test_a_real_file_of_the_same_name_wins(mount):
    d = mount.mnt / "shadow"
    d.mkdir()
    (d / "a.pdf.txt").write_text("my own notes\n")           # a real file first, then the doc
    (d / "a.pdf").write_bytes(docgen.pdf([["hidden words heron"]]))
    assert (d / "a.pdf.txt").read_text() == "my own notes\n"
    assert sorted(os.listdir(d)).count("a.pdf.txt") == 1
    assert "heron" in (d / "a.pdf.md").read_text()
    # moving a real file onto a view's name: the real file takes the name
    (d / "mine.txt").write_text("moved in\n")
    os.rename(d / "mine.txt", d / "a.pdf.md")
    assert (d / "a.pdf.md").read_text() == "moved in\n"
    assert sorted(os.listdir(d)).count("a.pdf.md") == 1


def test_views_follow_their_documents_permissions(mount, test_user):
    d = mount.mnt / "private"
    d.mkdir()
    os.chmod(d, 0o755)
    (d / "secret.pdf").write_bytes(docgen.pdf([["classified kestrel"]]))
    os.chmod(d / "secret.pdf", 0o600)
    (d / "open.pdf").write_bytes(docgen.pdf([["public puffin"]]))
    os.chmod(d / "open.pdf", 0o644)
    r = as_user(["cat", str(d / "secret.pdf.txt")])
    assert r.returncode != 0 and "kestrel" not in r.stdout
    r = as_user(["cat", str(d / "open.pdf.txt")])
    assert r.returncode == 0 and "puffin" in r.stdout


def test_a_copy_is_not_parsed_again_and_sizes_are_known(docs):
    d, files = docs
    run(["cp", str(d / "q4.pdf"), str(d / "copy-of-q4.pdf")])
    assert (d / "copy-of-q4.pdf.txt").read_text() == (d / "q4.pdf.txt").read_text()
    # once parsed, stat shows the view's real size
    text = (d / "q4.pdf.txt").read_bytes()
    assert os.stat(d / "q4.pdf.txt").st_size == len(text)


def test_views_read_again_from_cache_and_follow_a_rewrite(docs):
    """A parsed view may stay in the kernel's page cache (repeated reads cost what a plain
    file's do); rewriting the document never lets an old text show, with cat or a reader
    that kept the view open."""
    d, _ = docs
    doc = d / "rewritten.pdf"
    doc.write_bytes(docgen.pdf([["first version flamingo"]]))
    view = d / "rewritten.pdf.txt"
    first = run(["cat", str(view)]).stdout
    assert "flamingo" in first
    for _ in range(3):
        assert run(["cat", str(view)]).stdout == first
        assert os.stat(view).st_size == len(first.encode())
    kept = open(view, "rb")
    try:
        assert kept.read() == first.encode()
        doc.write_bytes(docgen.pdf([["second version heron, a longer text than before"]]))
        again = run(["cat", str(view)]).stdout
        assert "heron" in again and "flamingo" not in again
        assert os.stat(view).st_size == len(again.encode())
        assert run(["grep", "-c", "heron", str(view)]).stdout.strip() == "1"
        kept.seek(0)
        assert kept.read() in (first.encode(), again.encode())   # one text, never a mix
    finally:
        kept.close()


def test_auto_parse_mode_reads_documents_as_text_and_raw_gives_bytes(fuse_base):
    from fusehelp import NEXUS, Mount
    m = Mount(fuse_base, "auto-parse")
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "--auto-parse",
             "-o", "allow_other"], check=False)
    assert r.returncode == 0, r.stderr
    try:
        d = m.mnt / "docs"
        d.mkdir()
        pdf = docgen.pdf([["Revenue rose sharply", "flamingo"]])
        xlsx = docgen.xlsx({"Sales": [["Region", "Revenue"], ["East", 42]]})
        (d / "q4.pdf").write_bytes(pdf)
        (d / "sales.xlsx").write_bytes(xlsx)
        (d / "plain.txt").write_text("no revenue here? yes revenue\n")
        names = sorted(os.listdir(d))
        assert names == ["plain.txt", "q4.pdf", "sales.xlsx"]          # no .txt/.md views
        assert "flamingo" in (d / "q4.pdf").read_text()
        r = run(["grep", "-r", "-l", "-i", "revenue", str(d)])
        assert {Path(p).name for p in r.stdout.split()} == {"q4.pdf", "sales.xlsx", "plain.txt"}
        # /.raw/ is listable and gives the original bytes; it stays out of the root listing
        assert ".raw" not in os.listdir(m.mnt)
        assert sorted(os.listdir(m.mnt / ".raw/docs")) == names
        assert (m.mnt / ".raw/docs/q4.pdf").read_bytes() == pdf
        r = run(["sha256sum", str(m.mnt / ".raw/docs/sales.xlsx")])
        assert r.stdout.split()[0] == hashlib.sha256(xlsx).hexdigest()
        # the parsed names are read-only; the choice shows in /.nexus/config/
        r = run(f"echo x > {d}/q4.pdf", check=False)
        assert r.returncode != 0 and "Read-only" in r.stderr
        assert (m.mnt / ".nexus/config/auto_parse").read_text() == "on\n"
        assert (m.mnt / ".nexus/config/views_mode").read_text() == "smart\n"
    finally:
        m.finish()


@pytest.mark.parametrize("mode", ["text", "binary"])
def test_view_modes(fuse_base, mode):
    from fusehelp import NEXUS, Mount
    m = Mount(fuse_base, f"mode-{mode}")
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "--mode", mode], check=False)
    assert r.returncode == 0, r.stderr
    try:
        (m.mnt / "blob.bin").write_bytes(bytes(range(256)) * 64 + os.urandom(4096))
        (m.mnt / "q.pdf").write_bytes(docgen.pdf([["mode words"]]))
        (m.mnt / "code.py").write_text("print('text files never get views')\n")
        names = set(os.listdir(m.mnt))
        if mode == "text":
            assert {"blob.bin.txt", "blob.bin.md", "q.pdf.txt", "q.pdf.md"} <= names
            assert (m.mnt / "blob.bin.txt").read_text().strip()      # says what the data is
        else:
            assert names == {"blob.bin", "q.pdf", "code.py"}
        assert "code.py.txt" not in names
        assert (m.mnt / ".nexus/config/views_mode").read_text() == mode + "\n"
    finally:
        m.finish()


def test_broken_documents_explain_themselves_and_harm_nothing(mount):
    d = mount.mnt / "broken"
    d.mkdir()
    good = docgen.pdf([["still fine gannet"]])
    (d / "truncated.pdf").write_bytes(good[: len(good) // 2])
    (d / "lying.xlsx").write_bytes(b"%PDF-1.7 not really anything\n" + os.urandom(2000))
    (d / "bomb.docx").write_bytes(docgen.zip_bomb_docx(1 << 30))
    (d / "good.pdf").write_bytes(good)
    for name in ("truncated.pdf", "lying.xlsx", "bomb.docx"):
        text = (d / (name + ".txt")).read_text()
        assert text.strip() and len(text.strip().splitlines()) <= 3, (name, text)
    assert "gannet" in (d / "good.pdf.txt").read_text()
    assert (d / "good.pdf").read_bytes() == good

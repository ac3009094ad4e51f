"""Bad input never raises: it yields views that say in one line why, or what limit cut them."""
from __future__ import annotations

import io
import resource
import zipfile

import docgen
import pytest

from nexusfs.views import Limits, detect, parse_here

MiB = 1 << 20


def one_line_error(r, *needles: str) -> None:
    assert r.error, r.text[:500]
    assert r.text == r.markdown
    assert r.text.count("\n") == 1 and r.text.startswith("[nexusfs: "), r.text
    for n in needles:
        assert n.lower() in r.text.lower(), r.text


def test_time_limit_cuts_a_big_pdf_with_partial_text(pool):
    data = docgen.pdf_pages(400, lines_per_page=60)
    r = pool.parse_sync(data, "huge.pdf", "pdf", limits=Limits(time_limit=0.6))
    assert r.truncated and not r.cacheable and r.error is None
    assert r.text.startswith("--- page 1 ---\nmarker page1 alpha1")
    last = r.text.rstrip("\n").splitlines()[-1]
    assert last.startswith("[nexusfs: view cut at the time limit (0.6 s) after page ")
    assert last.endswith(" of 400]")
    assert r.markdown.rstrip("\n").splitlines()[-1] == last


def test_memory_limit_stops_a_real_parser(pool):
    data = docgen.docx_paragraphs(300_000)           # ~20 MB of XML: lxml needs far more
    r = pool.parse_sync(data, "big.docx", "docx",
                        limits=Limits(memory_limit=200 * MiB, max_ratio=100_000))
    one_line_error(r, "memory", "200 MiB")
    assert pool.parse_sync(docgen.docx(), "ok.docx", "docx").error is None


def test_memory_limit_against_a_hog(pool):
    r = pool.parse_sync(b"x", "hog", "t-hog_memory", limits=Limits(memory_limit=300 * MiB))
    one_line_error(r, "more memory than the limit of 300 MiB")


def test_daemon_limits_are_untouched(pool):
    before = resource.getrlimit(resource.RLIMIT_AS)
    pool.parse_sync(docgen.pdf_pages(1), "a.pdf", "pdf", limits=Limits(memory_limit=256 * MiB))
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_zip_bomb_is_refused_before_inflating():
    r = parse_here(docgen.zip_bomb_docx(64 * MiB), "bomb.docx", "docx")
    one_line_error(r, "zip bomb", "64 MiB")


def test_zip_bomb_by_total_size():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"xl/worksheets/sheet{i}.xml", b"<a/>" * MiB)         # 4 MiB each
    r = parse_here(out.getvalue(), "many.xlsx", "xlsx", limits=Limits(max_unzipped=16 * MiB))
    one_line_error(r, "inflates to 20 MiB, more than the limit of 16 MiB (zip bomb?)")


def test_corrupt_pdfs():
    one_line_error(parse_here(b"%PDF-1.4\n" + bytes(range(256)) * 20, "bad.pdf", "pdf"), "pdf")
    one_line_error(parse_here(b"hello, this is not a pdf", "lie.pdf", "pdf"), "not a PDF")
    whole = docgen.pdf_pages(5)
    r = parse_here(whole[: len(whole) // 2], "truncated.pdf", "pdf")
    # pypdf recovers what it can from a truncated file: text, or one explained line
    assert r.text.strip()
    if r.error:
        one_line_error(r)
    else:
        assert "alpha1" in r.text


def test_encrypted_pdf_with_password():
    data = docgen.encrypt_pdf(docgen.pdf_pages(2), user="secret")
    one_line_error(parse_here(data, "locked.pdf", "pdf"), "encrypted with a password")


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_pdf_protected_by_owner_password_only_is_read(algorithm):
    data = docgen.encrypt_pdf(docgen.pdf_pages(2), user="", algorithm=algorithm)
    r = parse_here(data, "protected.pdf", "pdf")
    assert r.error is None and "alpha2 bravo2" in r.text, r.text


def test_sheet_with_a_huge_dimension_stops_at_the_cell_limit():
    r = parse_here(docgen.xlsx_sparse(), "sparse.xlsx", "xlsx")
    assert r.truncated and r.cacheable
    assert r.text.startswith("--- sheet: Sparse ---\nstart\n")
    assert "[nexusfs: view cut at the cell limit (1,000,000 cells) in sheet 'Sparse'" in r.text


def test_cell_limit_keeps_the_first_rows():
    r = parse_here(docgen.xlsx_big(2000, 10), "big.xlsx", "xlsx", limits=Limits(max_cells=5000))
    assert r.truncated
    lines = r.text.splitlines()
    assert lines[0] == "--- sheet: Big ---" and lines[1] == "\t".join(str(c) for c in range(10))
    assert lines[-1].startswith("[nexusfs: view cut at the cell limit (5,000 cells)")
    assert 400 <= len(lines) <= 510


def test_output_limit(pool):
    r = pool.parse_sync(b"", "flood", "t-flood", limits=Limits(max_output=MiB))
    assert r.truncated and r.cacheable
    assert len(r.text) <= MiB + 200
    assert r.text.splitlines()[-1] == "[nexusfs: view cut at the output limit (1 MiB)]"


def test_input_limit():
    r = parse_here(docgen.pdf_pages(3), "a.pdf", "pdf", limits=Limits(max_input=1000))
    one_line_error(r, "more than the limit of 1000 bytes")


def test_lying_extensions():
    junk = bytes(range(256)) * 10
    one_line_error(parse_here(junk, "x.pdf", detect(junk, "x.pdf")), "not a PDF")
    one_line_error(parse_here(junk, "x.docx", detect(junk, "x.docx")), "not a valid DOCX")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "hi")
    one_line_error(parse_here(out.getvalue(), "x.docx", detect(out.getvalue(), "x.docx")),
                   "DOCX")
    one_line_error(parse_here(out.getvalue(), "x.pptx", "pptx"), "PPTX")
    one_line_error(parse_here(out.getvalue(), "x.xlsx", "xlsx"), "XLSX")
    one_line_error(parse_here(junk, "x.xls", "xls"), "XLS")
    one_line_error(parse_here(out.getvalue(), "x.epub", "epub"), "EPUB")
    one_line_error(parse_here(out.getvalue(), "x.odt", "odt"), "content.xml")


def test_parser_exceptions_become_one_line(pool):
    one_line_error(pool.parse_sync(b"", "x", "t-raises"), "ValueError: boom")
    one_line_error(pool.parse_sync(b"", "x", "no-such-kind"), "no parser")


def test_binary_data_in_text_mode_says_what_it_is():
    one_line_error(parse_here(bytes(range(256)) * 4, "blob", "binary"), "no text", "1 KiB")
    one_line_error(parse_here(b"\xd0\xcf\x11\xe0" + bytes(600), "old.doc", "doc"),
                   "Word 97-2003")

"""Detection: content (libmagic) and extension together; lying and missing extensions."""
from __future__ import annotations

import docgen
import pytest

from nexusfs.views import detect, views_for


@pytest.fixture(scope="module")
def docs():
    return {"pdf": docgen.pdf_pages(1), "docx": docgen.docx(), "xlsx": docgen.xlsx(),
            "pptx": docgen.pptx(), "epub": docgen.epub(), "odt": docgen.odt(),
            "html": docgen.html(), "ods": docgen.ods(), "odp": docgen.odp()}


@pytest.mark.parametrize("kind", ["pdf", "docx", "xlsx", "pptx", "epub", "odt", "ods", "odp",
                                  "html"])
def test_documents_by_content_and_extension(docs, kind):
    assert detect(docs[kind], f"file.{kind}") == kind
    assert views_for(detect(docs[kind], f"file.{kind}"), "smart") == (".txt", ".md")


@pytest.mark.parametrize("kind", ["pdf", "docx", "xlsx", "pptx", "epub", "odt", "ods", "odp"])
def test_documents_without_extension_are_found_by_content(docs, kind):
    assert detect(docs[kind], "noext") == kind
    assert views_for(detect(docs[kind], "noext"), "text") == (".txt", ".md")


def test_only_the_head_is_needed(docs):
    assert detect(docs["xlsx"][:65536], "sheet") == "xlsx"
    big = docgen.pdf_pages(40)
    assert len(big) > 65536 and detect(big[:65536], "x.pdf") == "pdf"


def test_content_wins_over_a_lying_extension(docs):
    assert detect(docs["pdf"], "notes.txt") == "pdf"
    assert detect(docs["xlsx"], "report.docx") == "xlsx"
    assert detect(docs["docx"], "table.xlsx") == "docx"


def test_text_is_never_a_document():
    for name in ("fake.pdf", "fake.docx", "notes.txt", "data.csv", "main.py", "README"):
        assert detect(b"just some words\nand another line\n", name) is None
    assert detect(b"a,b,c\n1,2,3\n", "table.xlsx") is None
    assert detect(b'{"a": 1}', "x.json") is None
    assert detect(b"", "empty.pdf") is None
    assert detect("Grüße aus Köln\n".encode() * 100, "x.docx") is None


def test_html_needs_an_html_name_or_none(docs):
    assert detect(docs["html"], "page.htm") == "html"
    assert detect(docs["html"], "page") == "html"
    assert detect(docs["html"], "index.php") is None
    assert detect(b"<div><p>fragment</p></div>\n", "part.html") == "html"


def test_unreadable_binary_under_a_document_name_goes_to_that_parser():
    junk = bytes(range(256)) * 64
    assert detect(junk, "broken.pdf") == "pdf"            # the parser says why it cannot
    assert detect(junk, "blob") == "binary"
    assert views_for("binary", "smart") == ()
    assert views_for("binary", "text") == (".txt", ".md")


def test_plain_zip_and_images(docs):
    import io
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", "hello")
    assert detect(out.getvalue(), "archive.zip") == "zip"
    assert detect(out.getvalue(), "fake.docx") == "docx"   # docx parser explains what is missing
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
           b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00"
           b"\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    assert detect(png, "pic.png") == "binary"
    assert views_for(detect(png, "pic.png"), "smart") == ()

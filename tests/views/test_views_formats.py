"""Each format, generated with its own library, parsed in-process (parse_here): the known
words come out in order, with the structure (page markers, sheets, tables, headings, slides)."""
from __future__ import annotations

import docgen

from nexusfs.views import parse_here


def in_order(text: str, *words: str) -> None:
    pos = -1
    for w in words:
        nxt = text.find(w, pos + 1)
        assert nxt > pos, f"{w!r} missing or out of order in:\n{text[:3000]}"
        pos = nxt


def ok(data: bytes, name: str, kind: str):
    r = parse_here(data, name, kind)
    assert r.error is None, r.text
    assert not r.truncated
    assert r.text.endswith("\n") and r.markdown.endswith("\n")
    return r


def test_pdf_pages_in_order_with_markers():
    r = ok(docgen.pdf_pages(3), "report.pdf", "pdf")
    in_order(r.text, "--- page 1 ---", "alpha1 bravo1 charlie1", "--- page 2 ---",
             "alpha2 bravo2", "--- page 3 ---", "charlie3")
    in_order(r.markdown, "## Page 1", "alpha1", "## Page 2", "alpha2", "## Page 3", "alpha3")
    assert r.parser == "pypdf" and "pypdf=" in r.version


def test_pdf_reading_order_follows_the_page_not_the_stream():
    # the content stream draws the footer first, then the body, then the header
    data = docgen.pdf_positioned([(56, 60, "Footer penguin page one"),
                                  (56, 500, "Body text narwhal"),
                                  (56, 780, "Header walrus invoice")])
    r = ok(data, "form.pdf", "pdf")
    in_order(r.text, "Header walrus invoice", "Body text narwhal", "Footer penguin page one")


def test_pdf_two_columns_are_not_interleaved():
    left = [f"left column sentence {i} about apples" for i in range(30)]
    right = [f"right column sentence {i} about pears" for i in range(30)]
    r = ok(docgen.pdf(None, columns=[[left, right]]), "paper.pdf", "pdf")
    in_order(r.text, "left column sentence 0", "left column sentence 29",
             "right column sentence 0", "right column sentence 29")


def test_pdf_without_text_layer_says_so():
    r = ok(docgen.pdf([[]]), "scan.pdf", "pdf")
    assert "no text layer" in r.text


def test_xlsx_every_sheet_named_with_tables():
    r = ok(docgen.xlsx(), "book.xlsx", "xlsx")
    in_order(r.text, "--- sheet: Budget ---", "Item\tCost\tWhen", "rent\t1200\t2024-05-01",
             "food\t310.5", "--- sheet: People ---", "Ada\t36", "--- sheet: Empty ---",
             "(empty sheet)")
    in_order(r.markdown, "## Sheet: Budget", "| Item | Cost | When |", "|---|---|---|",
             "| rent | 1200 | 2024-05-01 |", "## Sheet: People", "| Linus | 28 |",
             "## Sheet: Empty")


def test_docx_headings_lists_tables_and_emphasis():
    r = ok(docgen.docx(), "report.docx", "docx")
    in_order(r.markdown, "# Quarterly Report", "zebra", "## Findings", "- first bullet apple",
             "- second bullet banana", "1. step one cherry", "2. step two damson",
             "**bold words**", "*italic words*", "| Name | Qty | Price |", "| widget | 4 | 2.50 |",
             "## Conclusion", "yak")
    in_order(r.text, "Quarterly Report", "zebra", "Findings", "- first bullet apple",
             "1. step one cherry", "bold words and italic words", "Name\tQty\tPrice",
             "gadget\t7\t9.99", "Conclusion", "yak")
    assert "**" not in r.text and "#" not in r.text


def test_pptx_slides_titles_bullets_tables_notes():
    r = ok(docgen.pptx(), "deck.pptx", "pptx")
    in_order(r.markdown, "## Slide 1: Launch Plan", "- goal walrus", "  - detail narwhal",
             "### Notes", "remember the otter", "## Slide 2: Numbers", "| Region | Sales |",
             "| north | 42 |", "## Slide 3: Closing", "thanks penguin")
    in_order(r.text, "--- slide 1 ---", "Launch Plan", "goal walrus", "detail narwhal",
             "otter", "--- slide 2 ---", "Region\tSales", "--- slide 3 ---", "penguin")


def test_html_body_as_markdown_without_scripts():
    r = ok(docgen.html(), "garden.html", "html")
    in_order(r.markdown, "# Garden Notes", "**sun**", "[water](https://example.org/water)",
             "## Pests", "- aphid", "- slug", "| Plant | Days |", "| basil | 30 |")
    in_order(r.text, "Garden Notes", "Tomatoes need sun and water.", "Pests", "aphid",
             "basil\t30")
    assert "scriptword" not in r.text + r.markdown and "color:red" not in r.markdown


def test_epub_metadata_and_chapters_in_spine_order():
    r = ok(docgen.epub(), "book.epub", "epub")
    in_order(r.markdown, "# Sea Stories", "**Authors:** Ann Author", "# Chapter 1", "harbour",
             "# Chapter 2", "lighthouse")
    in_order(r.text, "Sea Stories", "Ann Author", "Chapter 1", "harbour", "lighthouse")


def test_odt_with_repeated_empty_cells_stays_small():
    r = ok(docgen.odt(), "guide.odt", "odt")
    in_order(r.markdown, "# Field Guide", "heron", "- egret", "- ibis", "| bird | count |",
             "| crane | 3 |")
    assert len(r.text) < 500


def test_ods_sheets_with_repeated_rows():
    r = ok(docgen.ods(), "stock.ods", "ods")
    in_order(r.text, "--- sheet: Stock ---", "fruit\tcount", "kiwi\t12", "same\trow",
             "same\trow", "--- sheet: Notes ---", "remember mango")
    in_order(r.markdown, "## Sheet: Stock", "| fruit | count |", "| kiwi | 12 |",
             "## Sheet: Notes")


def test_odp_slides_and_notes():
    r = ok(docgen.odp(), "talk.odp", "odp")
    in_order(r.text, "--- slide 1 ---", "hello falcon", "notes: speaker hint owl",
             "--- slide 2 ---", "bye hawk")
    in_order(r.markdown, "## Slide 1: Opening", "hello falcon", "### Notes", "owl",
             "## Slide 2", "hawk")

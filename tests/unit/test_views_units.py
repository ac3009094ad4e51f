"""Pure pieces of nexusfs.views: output helpers, limits, results, cache keys, modes."""
from __future__ import annotations

import datetime

import pytest

from nexusfs.views import (
    DEFAULT_REGISTRY,
    Limits,
    ParseResult,
    cache_key,
    split_view_name,
    view_names,
    views_for,
)
from nexusfs.views.limits import Budget, Cut
from nexusfs.views.output import Doc, cell_str, md_table, md_to_text, trim_rows
from nexusfs.views.worker import clean


def test_views_for_modes():
    assert views_for("pdf", "smart") == (".txt", ".md")
    assert views_for("pdf", "text") == (".txt", ".md")
    assert views_for("pdf", "binary") == ()
    assert views_for(None, "smart") == views_for(None, "text") == ()
    assert views_for("binary", "smart") == ()
    assert views_for("binary", "text") == (".txt", ".md")
    assert views_for("zip", "smart") == ()
    with pytest.raises(ValueError):
        views_for("pdf", "clever")
    assert view_names("a.pdf", "pdf") == ("a.pdf.txt", "a.pdf.md")
    assert split_view_name("a.pdf.md") == ("a.pdf", ".md")
    assert split_view_name(".txt") is None


def test_cache_key_depends_on_content_kind_and_version():
    a = cache_key(b"\x01" * 32, "pdf")
    assert len(a) == 32
    assert a == cache_key(b"\x01" * 32, "pdf")
    assert a != cache_key(b"\x02" * 32, "pdf")
    assert a != cache_key(b"\x01" * 32, "docx")
    assert "pypdf=" in DEFAULT_REGISTRY.version("pdf")
    # every registered kind has a version that names its parser module's PARSER_VERSION
    for kind in DEFAULT_REGISTRY.kinds():
        assert "/" in DEFAULT_REGISTRY.version(kind)


def test_result_round_trip():
    r = ParseResult(text="héllo\n", markdown="# héllo\n", error=None, parser="p", version="v",
                    kind="pdf", truncated=True, cacheable=False, elapsed=0.5)
    assert ParseResult.from_bytes(r.to_bytes()) == r
    with pytest.raises(ValueError):
        ParseResult.from_bytes(r.to_bytes()[:-1])


def test_cell_formatting():
    assert cell_str(None) == ""
    assert cell_str(3.0) == "3"
    assert cell_str(0.1 + 0.2) == "0.3"
    assert cell_str(True) == "TRUE"
    assert cell_str(datetime.datetime(2024, 5, 1)) == "2024-05-01"
    assert cell_str(datetime.datetime(2024, 5, 1, 13, 5)) == "2024-05-01 13:05:00"
    assert trim_rows([["a", "", ""], ["", ""], ["", "b"]]) == [["a"], ["", "b"]]


def test_md_table_and_back_to_text():
    md = md_table([["a|b", "c"], ["1\n2", "3"], ["x"]])
    assert md.splitlines() == ["| a\\|b | c |", "|---|---|", "| 1<br>2 | 3 |", "| x |  |"]
    assert md_to_text(md).splitlines() == ["a|b\tc", "1 2\t3", "x"]
    text = md_to_text("# Title\n\nSome **bold** and [a link](http://x/y(z)) ![pic](p.png)\n")
    assert text == "Title\n\nSome bold and a link pic\n"


def test_doc_output_cap_keeps_whole_lines():
    doc = Doc(Budget(Limits(max_output=25)))
    doc.both("line one\nline two\n")
    with pytest.raises(Cut) as cut:
        doc.both("line three is long\n")
    assert doc.text() == "line one\nline two\n"
    assert "output limit" in cut.value.note()


def test_budget_time_and_cells():
    b = Budget(Limits(time_limit=0.0, max_cells=10))
    b.where = "after page 2 of 9"
    with pytest.raises(Cut) as cut:
        b.tick()
    assert cut.value.note() == "[nexusfs: view cut at the time limit (0 s) after page 2 of 9]"
    b2 = Budget(Limits(max_cells=10))
    b2.add_cells(10)
    with pytest.raises(Cut):
        b2.add_cells(1)


def test_clean_removes_controls_and_bad_surrogates():
    assert clean("a\x00b\x0cc\r\nd\re\tf") == "abc\nd\ne\tf"
    assert clean("x\ud800y") == "x?y"

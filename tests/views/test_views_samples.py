"""Real-world documents made by others (shared/samples/documents, read-only; skipped when
absent): every sample yields text or one explained line; known passages come out; prints a
short quality summary (run with -s to see it)."""
from __future__ import annotations

import os
import pathlib
import time

import pytest

from nexusfs.views import HEAD_SIZE, detect, views_for

SAMPLES = pathlib.Path(os.environ.get("NEXUS_SAMPLES",
                                      pathlib.Path(__file__).resolve().parents[3]
                                      / "shared" / "samples" / "documents"))
if not SAMPLES.is_dir():
    SAMPLES = pathlib.Path("/work/shared/samples/documents")

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"no samples at {SAMPLES}")

# Passages the samples are known to contain (the markitdown test files' published vectors,
# in this parser's markdown), in the order they must appear.
EXPECT_MD = {
    "test.docx": ["AutoGen: Enabling Next-Gen LLM Applications via Multi-Agent Conversation",
                  "# Abstract", "# Introduction", "## d666f1f7-46cb-42bd-9a39-9a39cf2a509f",
                  "314b0a30-5b04-470b-b9f7-eed2c2bec74a", "49e168b7-d2ae-407f-a055-2167576f39a1"],
    "test.xlsx": ["## Sheet: Sheet1", "6ff4173b-42a5-4784-9b19-f49caff4d93d",
                  "## Sheet: 09060124-b5e7-4717-9d07-3c046eb",
                  "affc7dad-52dc-4b98-9b5d-51e65d8a8ad0"],
    "test.xls": ["## Sheet: Sheet1", "6ff4173b-42a5-4784-9b19-f49caff4d93d",
                 "## Sheet: 09060124-b5e7-4717-9d07-3c046eb",
                 "affc7dad-52dc-4b98-9b5d-51e65d8a8ad0"],
    "test.pptx": [("## Slide 1: AutoGen: Enabling Next-Gen LLM Applications via Multi-Agent "
                   "Conversation"), "## Slide 2: 2cdda5c8-e50e-4db4-b5f0-9722a649f455",
                  "44bf7d06-5e7a-4a40-a2e1-a2e42ef28c8a", "04191ea8-5c73-4215-a1d3-1cfb43aaaf12",
                  "1b92870d-e3b5-4e65-8153-919f4ff45592",
                  "### Chart: a3f6004b-6f4f-4ea8-bee3-3741f4dc385f", "| 2003 | 2003 |",
                  "![This phrase of the caption is Human-written.](Picture4.jpg)"],
    "test.pdf": ["## Page 1", ("While there is contemporaneous exploration of multi-agent "
                               "approaches")],
    "test_blog.html": [("Large language models (LLMs) are powerful tools that can generate "
                        "natural language texts for various applications, such as chatbots, "
                        "summarization, translation, and more. GPT-4 is currently the state "
                        "of the art LLM in the world. Is model selection irrelevant? What "
                        "about inference parameters?"),
                       "an example where high cost can easily prevent a generic complex"],
    "test.epub": ["**Authors:** Test Author", "A test EPUB document for MarkItDown testing",
                  "# Chapter 1: Test Content",
                  "This is a **test** paragraph with some formatting",
                  "- A bullet point", "- Another point",
                  "# Chapter 2: More Content", "*different* style",
                  "> This is a blockquote for testing"],
    # reading order: the shop's header before the items, the form's header before its fields
    "RECEIPT-2024-TXN-98765_retail_purchase.pdf": ["TECHMART ELECTRONICS", "Headphones",
                                                   "TOTAL $821.14", "Thank you for shopping!"],
    "REPAIR-2022-INV-001_multipage.pdf": ["## Page 1", "ZAVA AUTO REPAIR",
                                          "Preliminary Estimate (ID: EST-1008)",
                                          "Insured name", "GRAND TOTAL", "## Page 2",
                                          "Bruce Wayne", "## Page 3"],
}
NOT_EXPECTED = ["data:image/png;base64,iVBORw0KGgoAAAANSU",
                "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQE"]


def samples():
    return sorted(p for p in SAMPLES.iterdir() if p.is_file()) if SAMPLES.is_dir() else []


def test_every_sample_gives_text_or_an_explained_line(pool):
    rows = []
    seen = 0
    for path in samples():
        data = path.read_bytes()
        kind = detect(data[:HEAD_SIZE], path.name)
        if not views_for(kind, "text"):
            rows.append((path.name, kind or "text", "-", 0.0, 0, 0, "no view (text)"))
            continue
        seen += 1
        t0 = time.perf_counter()
        r = pool.parse_sync(data, path.name, kind)
        ms = (time.perf_counter() - t0) * 1000
        assert r.text.strip(), path.name
        if r.error:
            assert r.text.count("\n") == 1 and r.text.startswith("[nexusfs: "), r.text
        for bad in NOT_EXPECTED:
            assert bad not in r.text + r.markdown
        expected = EXPECT_MD.get(path.name, [])
        pos = -1
        for passage in expected:
            nxt = r.markdown.find(passage, pos + 1)
            assert nxt > pos, f"{path.name}: {passage!r} missing or out of order"
            pos = nxt
        first = next((ln for ln in r.text.splitlines() if ln.strip()
                      and not ln.startswith("---")), "")
        rows.append((path.name, kind, r.parser, ms, len(r.text), r.text.count("\n"),
                     r.error or first[:48]))
    print("\nsample                                       kind  parser        ms   chars lines  "
          "first line / error")
    for name, kind, parser, ms, chars, lines, note in rows:
        print(f"{name[:44]:44} {kind:5} {parser:11} {ms:6.0f} {chars:7} {lines:5}  {note}")
    assert seen or not samples()

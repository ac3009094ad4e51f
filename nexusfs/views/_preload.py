"""Imported by each worker before it says "ready": the libraries every parse needs.

~0.6 s per worker, paid when the worker starts (the pool starts them ahead of need), not on
the first document. markitdown is not preloaded: it costs ~1 s and ~100 MB (magika,
onnxruntime) and serves only rare formats, so a worker imports it on first use.

numpy is hidden while openpyxl is imported: openpyxl only uses it when present (to write numpy
values) and importing it costs ~0.3 s and starts an OpenBLAS thread pool. The fallback parser
unhides it before importing markitdown, which needs it.
"""
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib

_hidden = "numpy" not in sys.modules
if _hidden:
    sys.modules["numpy"] = None         # type: ignore[assignment]
try:
    for _name in ("pypdf", "openpyxl", "docx", "pptx", "xlrd", "bs4", "markdownify",
                  "lxml.etree", "magic",
                  "nexusfs.views.parsers.pdf", "nexusfs.views.parsers.sheets",
                  "nexusfs.views.parsers.word", "nexusfs.views.parsers.slides",
                  "nexusfs.views.parsers.web", "nexusfs.views.parsers.odf"):
        try:
            importlib.import_module(_name)
        except Exception:   # a missing optional library shows up as that format's parse error
            pass
finally:
    if _hidden and sys.modules.get("numpy", 0) is None:
        del sys.modules["numpy"]

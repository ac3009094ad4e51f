"""Text renderings of control replies: tables, log lines, listings, sizes, diffs."""
from __future__ import annotations

import errno

from nexusfs.control import render


def test_table_aligns_columns():
    lines = render.table(["NAME", "SEQ"], [["a", 1], ["longer", 1234], ["b", None]], right=[1])
    assert lines == ["NAME     SEQ\n", "a          1\n", "longer  1234\n", "b          -\n"]
    assert render.table(None, []) == []


def test_log_line_fields_and_missing_fields():
    line = render.log_line({"seq": 12, "time_ns": None, "uid": 0, "agent": "a", "process": "p",
                            "op": "rename", "path": "/x", "path2": "/y", "result": errno.EBUSY,
                            "undo_of": 3})
    assert line.endswith("/x -> /y  [EBUSY]  (undo of 3)\n")
    assert "a (p)" in line
    assert render.log_line({}).split() == ["?", "-", "-", "-", "?", "-"]
    assert render.log_line({"seq": 1, "result": "weird", "process": "cp"}).rstrip().endswith(
        "[weird]")


def test_log_lines_stream_with_a_header():
    lines = list(render.log_lines([{"seq": 1}, {"seq": 2}]))
    assert lines[0] == render.LOG_HEADER and len(lines) == 3
    assert list(render.log_lines([])) == ["no matching operations\n"]


def test_ls_lines_modes_with_and_without_type_bits():
    lines = render.ls_lines([{"name": "f", "type": "file", "size": 5, "mode": 0o644},
                             {"name": "d", "type": "dir", "mode": 0o40700},
                             {"name": "l", "type": "symlink", "size": 3, "mode": 0o777},
                             {"name": "odd", "type": "other"}])
    assert lines[0].split()[0] == "-rw-r--r--" and lines[0].split()[1] == "5"
    assert lines[1].split()[0] == "drwx------" and lines[1].rstrip().endswith("d/")
    assert lines[2].split()[0] == "lrwxrwxrwx"
    assert lines[3].split()[0] == "??????????"


def test_sizes_kv_and_errno_names():
    assert render.human_size(0) == "0 B"
    assert render.human_size(1536) == "1.5 KiB"
    assert render.human_size(5 * 1024**5) == "5120.0 TiB"
    assert render.kv_lines({"a": 1, "stored_bytes": 2048, "sub": {"x_bytes": 1, "y": None}}) == [
        "a: 1\n", "stored_bytes: 2.0 KiB\n", "sub.x_bytes: 1 B\n", "sub.y: None\n"]
    assert render.kv_lines(7) == ["result: 7\n"]
    assert render.errno_name(errno.ENOENT) == "ENOENT"
    assert render.errno_name(99999) == "99999"


def test_content_text():
    assert render.content_text(b"") == ""
    assert render.content_text(b"a\n") == "a\n"
    assert render.content_text(b"a") == "a\n"
    assert render.content_text(b"\xffa\n") == "\ufffda\n"


def test_unified_diff():
    assert render.unified_diff(b"same\n", b"same\n", "a", "b") == ""
    d = render.unified_diff(b"one\ntwo\n", b"one\nthree", "f@1", "f@2")
    assert d == ("--- f@1\n+++ f@2\n@@ -1,2 +1,2 @@\n one\n-two\n+three\n"
                 "\\ No newline at end of file\n")
    assert render.unified_diff(b"\0x", b"\0y", "a", "b") == "binary contents a and b differ\n"
    d = render.unified_diff(b"", b"new\n", "a", "b")
    assert d.endswith("+new\n")


def test_change_version_snapshot_undo_lines():
    assert render.change_lines([{"change": "replaced", "path": "/p"}, {"change": "?", "path": "/q"}],
                               "s") == ["R /p\n", "? /q\n"]
    assert render.change_lines([], "s") == ["no changes since snapshot s\n"]
    assert render.version_lines([], "/f") == ["no versions of /f\n"]
    assert render.snapshot_lines([]) == ["no snapshots\n"]
    assert render.undo_lines([]) == ["nothing undone\n"]
    assert render.undo_lines([{"undone": 3}]) == ["undid 3\n"]

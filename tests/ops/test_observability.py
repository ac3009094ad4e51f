"""Observability: /.nexus/stats, `nexus stats` (asked of the daemon while mounted, read from
the store otherwise) and the Prometheus endpoint (`--metrics HOST:PORT`) show the same
figures: requests and latencies by operation, cache hits, dirty bytes, chunks and packs,
dedup and compression savings. Logs are structured (fields; JSON lines on request)."""
from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request

import pytest
from fusehelp import NEXUS, run

from nexusfs.metrics import parse_exposition

pytestmark = pytest.mark.fuse

MiB = 1 << 20


def vstats(m) -> dict:
    return dict(line.split(": ", 1) for line in (m.mnt / ".nexus/stats").read_text().splitlines())


def status_entry(m) -> dict:
    for e in json.loads(run([NEXUS, "status", "--json"]).stdout):
        if e["mountpoint"] == str(m.mnt):
            return e
    pytest.fail(f"{m.mnt} not in nexus status")


def fetch(url: str, method: str = "GET") -> tuple[int, str, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, "", ""


def test_stats_cli_and_prometheus_show_the_same_figures(new_mount):
    m = new_mount(mount=False)
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "--metrics", "127.0.0.1:0",
             "-o", "allow_other,log_format=json"], check=False)
    assert r.returncode == 0, r.stderr
    address = status_entry(m)["metrics"]
    assert address.startswith("127.0.0.1:") and not address.endswith(":0")
    assert f"metrics http://{address}/metrics" in run([NEXUS, "status"]).stdout

    block = os.urandom(MiB)
    (m.mnt / "a.bin").write_bytes(block * 3)                  # three copies of one MiB
    (m.mnt / "b.bin").write_bytes(block * 3)                  # and three more: deduplicated
    (m.mnt / "text").write_bytes(b"compressible line\n" * 50_000)
    os.sync()
    for _ in range(2):                  # past the kernel's page cache: the daemon reads
        fd = os.open(m.mnt / "a.bin", os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        assert (m.mnt / "a.bin").read_bytes() == block * 3

    live = vstats(m)
    for key in ("files", "directories", "chunks", "packs", "dirty_bytes", "dedup_saved_bytes",
                "compression_saved_bytes", "chunk_cache_hit_ratio", "ops_total",
                "op.write.count", "op.write.avg_us", "op.read.max_us", "op.lookup.errors"):
        assert key in live, (key, live)
    assert int(live["files"]) == 3 and int(live["dedup_saved_bytes"]) >= 4 * MiB
    assert int(live["compression_saved_bytes"]) > 500_000
    assert float(live["op.write.avg_us"]) > 0 and int(live["op.write.count"]) > 0

    # `nexus stats MOUNTPOINT` asks the daemon: the live figures, not the store's
    s = json.loads(run([NEXUS, "stats", str(m.mnt), "--json"]).stdout)
    assert s["mountpoint"] == str(m.mnt) and "op.write.count" in s
    for key in ("files", "chunks", "packs", "dedup_saved_bytes", "compression_saved_bytes"):
        assert s[key] == int(live[key]), key
    assert s["ops_total"] >= int(live["ops_total"])
    text = run([NEXUS, "stats", str(m.mnt)]).stdout
    assert "dedup_saved_bytes: " in text and "MiB" in text
    assert text.splitlines()[-1] and "operation" in text and "\nwrite " in text, text

    # the Prometheus endpoint: the same figures
    code, ctype, body = fetch(f"http://{address}/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4"), (code, ctype)
    assert "# TYPE nexusfs_fuse_request_duration_seconds histogram" in body
    p = parse_exposition(body)
    for key in ("files", "chunks", "packs", "dedup_saved_bytes", "compression_saved_bytes"):
        assert p[f"nexusfs_{key}"] == s[key], key
    writes = p['nexusfs_fuse_requests_total{op="write"}']
    assert writes >= s["op.write.count"]
    assert p['nexusfs_fuse_request_duration_seconds_bucket{op="write",le="+Inf"}'] == writes
    assert p['nexusfs_fuse_request_duration_seconds_count{op="write"}'] == writes
    assert p["nexusfs_chunk_cache_hits_total"] >= 1
    assert 0 <= p["nexusfs_chunk_cache_hit_ratio"] <= 1
    assert fetch(f"http://{address}/nothing")[0] == 404
    assert fetch(f"http://{address}/metrics", "POST")[0] == 405
    assert fetch(f"http://{address}/metrics", "HEAD")[0] == 200

    # structured log lines: JSON objects with fields
    records = [json.loads(line) for line in m.log_path.read_text().splitlines()]
    serving = [r for r in records if r["message"].startswith("serving ")]
    assert serving and serving[0]["level"] == "INFO" and "init_to_ready_s" in serving[0]

    # not mounted: the store's own figures
    m.unmount()
    off = json.loads(run([NEXUS, "stats", "--data-dir", str(m.data), "--json"]).stdout)
    assert off["mounted"] is False and not any(k.startswith("op.") for k in off)
    for key in ("files", "chunks", "packs", "dedup_saved_bytes", "compression_saved_bytes"):
        assert off[key] == s[key], key


def test_metrics_address_errors_leave_nothing_mounted(new_mount):
    m = new_mount(mount=False)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data),
                 "--metrics", f"127.0.0.1:{port}"], check=False)
    finally:
        taken.close()
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == (f"nexus: cannot serve metrics on 127.0.0.1:{port}: "
                                f"Address already in use"), r.stderr
    assert not m.is_mounted() and not m.data.exists()
    r = run([NEXUS, "mount", str(m.mnt), "--data-dir", str(m.data), "--metrics", "nowhere"],
            check=False)
    assert r.returncode == 1 and "metrics address must be HOST:PORT" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not m.is_mounted() and not m.data.exists()

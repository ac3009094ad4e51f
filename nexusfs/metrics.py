"""Figures of a store, one set for every reader.

* A mounted store: ``FileSystem.stats()`` (space, dirty data, cache, packs, written bytes) plus
  what the daemon adds through ``daemon_figures`` (the offline figures it lacks, savings, cache
  hit ratio, FUSE requests and latencies by operation). /.nexus/stats, the control socket's
  ``stats`` command (so `nexus stats`) and the Prometheus endpoint all read that one dict.
* A store that is not mounted: ``offline_figures`` (read-only, no daemon).

``exposition`` turns the figures into the Prometheus text format (version 0.0.4); ``serve``
answers ``GET /metrics`` with it from a trio task (plain HTTP/1.0, one request per
connection). ``bind`` opens the listening socket before the mount, so a taken port fails the
mount with a clear message and nothing mounted.
"""
from __future__ import annotations

import logging
import math
import socket
import time

import trio

from .config import Config, ConfigError, parse_address
from .stats import store_stats

log = logging.getLogger("nexusfs.metrics")

#: upper bounds (seconds) of the FUSE latency histogram (fuse_ops.OpStats); one more bucket
#: holds the rest
LATENCY_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1.0, 2.5, 5.0, 10.0)

# figures that only grow: Prometheus counters (``_total``); every other number is a gauge
COUNTERS = {"bytes_written", "bytes_deduplicated", "chunk_cache_hits", "chunk_cache_misses",
            "ops_total", "ops_failed", "parses", "view_cache_hits"}

HELP = {
    "files": "Regular files in the live tree.",
    "directories": "Directories in the live tree.",
    "inodes": "Inodes of the store (live and kept by history).",
    "logical_bytes": "Sum of the sizes of the live files.",
    "referenced_bytes": "Bytes of content the live files reference (holes excluded).",
    "data_bytes": "Bytes of content the live files reference (holes excluded).",
    "unique_bytes": "Bytes of distinct chunks, before compression.",
    "stored_bytes": "Bytes of distinct chunks as stored (after compression).",
    "pack_bytes": "Bytes of the pack files.",
    "pack_file_bytes": "Bytes of the pack files on disk.",
    "chunks": "Distinct chunks in the store.",
    "packs": "Pack files.",
    "dirty_bytes": "Bytes written but not yet committed to the store.",
    "parse_queue": "Documents being parsed for their views now.",
    "parses": "Documents parsed for views since the mount.",
    "view_cache_hits": "View reads served from the view cache.",
    "dirty_files": "Files with uncommitted writes.",
    "open_files": "Open file handles.",
    "last_seq": "Sequence number of the last logged operation.",
    "dedup_saved_bytes": "Bytes saved by deduplication.",
    "compression_saved_bytes": "Bytes saved by compression.",
    "holes_bytes": "Bytes of the live files that are holes (no storage).",
    "chunk_cache_hit_ratio": "Share of chunk reads served by the chunk cache.",
    "chunk_cache_hits": "Chunk reads served by the chunk cache.",
    "chunk_cache_misses": "Chunk reads that missed the chunk cache.",
    "chunk_cache_limit_bytes": "Size limit of the chunk cache.",
    "bytes_written": "Bytes written into the store by commits.",
    "bytes_deduplicated": "Bytes of commits that were already stored.",
    "ops_total": "FUSE requests handled.",
    "ops_failed": "FUSE requests answered with an error.",
    "uptime_seconds": "Seconds since the daemon mounted the store.",
}


# -- figures --------------------------------------------------------------------------------------
def op_figures(snapshot: dict[str, dict]) -> dict:
    """Flat figures of ``OpStats.snapshot()``: totals, then per operation ``op.NAME.count``,
    ``.errors``, ``.avg_us`` and ``.max_us`` (most frequent first)."""
    out = {"ops_total": sum(o["count"] for o in snapshot.values()),
           "ops_failed": sum(o["errors"] for o in snapshot.values())}
    for name, o in sorted(snapshot.items(), key=lambda kv: -kv[1]["count"]):
        out[f"op.{name}.count"] = o["count"]
        out[f"op.{name}.errors"] = o["errors"]
        out[f"op.{name}.avg_us"] = round(o["seconds"] / o["count"] * 1e6, 1) if o["count"] else 0
        out[f"op.{name}.max_us"] = round(o["max_seconds"] * 1e6, 1)
    return out


def derived(s: dict) -> dict:
    """Savings and ratios computed from the base figures (the same formulas offline)."""
    out = {}
    referenced = s.get("referenced_bytes", s.get("data_bytes"))
    if referenced is not None and "unique_bytes" in s:
        out["dedup_saved_bytes"] = referenced - s["unique_bytes"]
    if "unique_bytes" in s and "stored_bytes" in s:
        out["compression_saved_bytes"] = s["unique_bytes"] - s["stored_bytes"]
    hits, misses = s.get("chunk_cache_hits"), s.get("chunk_cache_misses")
    if hits is not None and misses is not None:
        out["chunk_cache_hit_ratio"] = round(hits / (hits + misses), 4) if hits + misses else 0.0
    return out


def daemon_figures(cfg: Config, s: dict, op_snapshot: dict, started: float,
                   mountpoint: str) -> dict:
    """What a daemon adds to ``FileSystem.stats()`` (``s``, which already holds the space
    figures, uncommitted work included): the names the offline figures use for them, savings,
    the cache hit ratio, and the FUSE requests."""
    out: dict = {}
    if "referenced_bytes" in s and "logical_bytes" in s:
        out["data_bytes"] = s["referenced_bytes"]
        out["holes_bytes"] = s["logical_bytes"] - s["referenced_bytes"]
    if "pack_bytes" in s:
        out["pack_file_bytes"] = s["pack_bytes"]
    out.update(derived({**s, **out}))
    out["chunk_cache_limit_bytes"] = cfg.chunk_cache_bytes
    out["uptime_seconds"] = round(time.time() - started, 1)
    out["mountpoint"] = mountpoint
    out.update(op_figures(op_snapshot))
    return out


def offline_figures(cfg: Config) -> dict:
    """The figures of a store that is not mounted (nothing live: no dirty data, no requests)."""
    s = store_stats(cfg)
    s["packs"] = len(list(cfg.pack_dir.glob("*.pack"))) if cfg.pack_dir.is_dir() else 0
    s.update(derived(s))
    s["mounted"] = False
    return s


# -- the Prometheus text format -------------------------------------------------------------------
def _name(key: str) -> str:
    return "nexusfs_" + "".join(c if c.isalnum() else "_" for c in key)


def _num(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return repr(v)
    return str(v)


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(figures: dict, op_snapshot: dict[str, dict]) -> str:
    """The figures as Prometheus text: every number as ``nexusfs_<key>`` (counters get
    ``_total``), the FUSE requests as ``nexusfs_fuse_requests_total{op=...}``,
    ``nexusfs_fuse_request_errors_total{op=...}`` and the histogram
    ``nexusfs_fuse_request_duration_seconds{op=...}``."""
    lines = []
    for key, value in figures.items():
        if key.startswith("op.") or isinstance(value, str) or value is None:
            continue
        if not isinstance(value, (int, float)):
            continue
        counter = key in COUNTERS
        name = _name(key) + ("_total" if counter else "")
        lines.append(f"# HELP {name} {HELP.get(key, key.replace('_', ' ') + '.')}")
        lines.append(f"# TYPE {name} {'counter' if counter else 'gauge'}")
        lines.append(f"{name} {_num(value)}")
    ops = sorted(op_snapshot)
    lines += ["# HELP nexusfs_fuse_requests_total FUSE requests handled, by operation.",
              "# TYPE nexusfs_fuse_requests_total counter"]
    lines += [f'nexusfs_fuse_requests_total{{op="{_label(op)}"}} {op_snapshot[op]["count"]}'
              for op in ops]
    lines += ["# HELP nexusfs_fuse_request_errors_total FUSE requests answered with an error, "
              "by operation.", "# TYPE nexusfs_fuse_request_errors_total counter"]
    lines += [f'nexusfs_fuse_request_errors_total{{op="{_label(op)}"}} {op_snapshot[op]["errors"]}'
              for op in ops]
    lines += ["# HELP nexusfs_fuse_request_duration_seconds Time to answer FUSE requests, by "
              "operation.", "# TYPE nexusfs_fuse_request_duration_seconds histogram"]
    for op in ops:
        o, lab = op_snapshot[op], _label(op)
        cumulative = 0
        for bound, n in zip(LATENCY_BOUNDS + (math.inf,), o["buckets"], strict=True):
            cumulative += n
            le = "+Inf" if bound == math.inf else repr(bound)
            lines.append(f'nexusfs_fuse_request_duration_seconds_bucket{{op="{lab}",le="{le}"}} '
                         f'{cumulative}')
        lines.append(f'nexusfs_fuse_request_duration_seconds_sum{{op="{lab}"}} {o["seconds"]!r}')
        lines.append(f'nexusfs_fuse_request_duration_seconds_count{{op="{lab}"}} {o["count"]}')
    return "\n".join(lines) + "\n"


def parse_exposition(text: str) -> dict[str, float]:
    """``{"name{labels}": value}`` of a text exposition (for tests and scripts)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


# -- the endpoint ---------------------------------------------------------------------------------
def bind(address: str) -> socket.socket:
    """A listening TCP socket on ``HOST:PORT``; ConfigError (malformed) or OSError."""
    host, port = parse_address(address)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(16)
    except OSError:
        sock.close()
        raise
    return sock


def bound_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(address: str) -> bool:
    try:
        host, _ = parse_address(address)
    except ConfigError:
        return False
    return host in ("localhost", "::1") or host.startswith("127.")


async def serve(sock: socket.socket, figures, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Answer ``GET /metrics`` on ``sock`` with ``figures()`` (-> text) until cancelled."""
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    log.info("metrics on http://%s/metrics", bound_address(sock))
    task_status.started()

    async def handle(stream: trio.SocketStream) -> None:
        try:
            await _answer(stream, figures)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except Exception:
            log.exception("metrics request failed")
        finally:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await stream.aclose()

    await trio.serve_listeners(handle, [listener])


async def _answer(stream: trio.SocketStream, figures) -> None:
    request = b""
    with trio.move_on_after(10):
        while b"\r\n\r\n" not in request and b"\n\n" not in request and len(request) < 16384:
            data = await stream.receive_some(4096)
            if not data:
                break
            request += data
    parts = request.split(b"\n", 1)[0].decode("latin-1").split()
    body, status, ctype = b"", "200 OK", "text/plain; version=0.0.4; charset=utf-8"
    if len(parts) < 2:
        status, body = "400 Bad Request", b"bad request\n"
    elif parts[0] not in ("GET", "HEAD"):
        status, body = "405 Method Not Allowed", b"GET /metrics\n"
    elif parts[1].split("?")[0] == "/metrics":
        body = figures().encode()
    elif parts[1] == "/":
        body = b"nexusfs: the figures are at /metrics\n"
    else:
        status, body = "404 Not Found", b"not found: GET /metrics\n"
    head = (f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    await stream.send_all(head + (b"" if parts[:1] == ["HEAD"] else body))

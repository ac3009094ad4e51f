"""Who is on the other end of a control connection: SO_PEERCRED, then /proc for the rest.

The kernel vouches for pid, uid and gid (taken when the peer connected); the supplementary
groups, umask, command name (/proc/PID/comm) and agent label (NEXUS_AGENT in
/proc/PID/environ) are read from /proc and are best effort: a peer that has already exited, or
whose environ this daemon may not read, gets the defaults. Mirrors what fuse_ops does for FUSE
requests, without importing pyfuse3. Plain blocking reads of procfs; call from any thread.
"""
from __future__ import annotations

import socket
import struct

from ..types import Caller

_UCRED = struct.Struct("3i")          # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


def peer_credentials(sock) -> tuple[int, int, int]:
    """(pid, uid, gid) of a connected AF_UNIX socket's peer (a socket or trio socket)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return _UCRED.unpack(raw)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def groups_and_umask(pid: int) -> tuple[tuple[int, ...], int]:
    groups: tuple[int, ...] = ()
    umask = 0o022
    status = _read(f"/proc/{pid}/status") if pid > 0 else None
    for line in (status or b"").splitlines():
        try:
            if line.startswith(b"Groups:"):
                groups = tuple(int(g) for g in line.split()[1:])
            elif line.startswith(b"Umask:"):
                umask = int(line.split()[1], 8)
        except (ValueError, IndexError):
            continue
    return groups, umask


def comm_of(pid: int) -> str | None:
    raw = _read(f"/proc/{pid}/comm") if pid > 0 else None
    return raw.strip().decode(errors="replace") if raw else None


def agent_of(pid: int) -> str | None:
    raw = _read(f"/proc/{pid}/environ") if pid > 0 else None
    for item in (raw or b"").split(b"\0"):
        if item.startswith(b"NEXUS_AGENT="):
            return item[12:].decode(errors="replace") or None
    return None


def caller_of(pid: int, uid: int, gid: int) -> Caller:
    groups, umask = groups_and_umask(pid)
    return Caller(uid=uid, gid=gid, pid=pid, umask=umask, groups=groups,
                  agent=agent_of(pid), process=comm_of(pid))


def peer_caller(sock) -> Caller:
    return caller_of(*peer_credentials(sock))

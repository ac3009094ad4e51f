"""Just enough of systemd to run systemd/nexusfs@.service in a container without it.

``Unit`` reads the unit file and expands what the service lines use (%i %I %f %n and
${STATE_DIRECTORY} ${RUNTIME_DIRECTORY} $MAINPID). ``Service`` runs it as systemd would for
Type=notify: ExecStartPre, then ExecStart with a real NOTIFY_SOCKET (a datagram socket with
SO_PASSCRED, so each message carries the sender's pid, which NotifyAccess=main requires to
be the main process), INVOCATION_ID and JOURNAL_STREAM naming the pipe that is its stderr
(so the daemon logs as it would to journald); ExecReload; and a stop that sends KillSignal to
the main process (KillMode=mixed) and waits up to TimeoutStopSec.
"""
from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


class Unit:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, list[tuple[str, str]]] = {}
        section = None
        for raw in self.path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                self.entries.setdefault(section, [])
                continue
            key, _, value = line.partition("=")
            self.entries[section].append((key.strip(), value.strip()))

    def get(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.entries.get(section, []) if k == key]

    def one(self, section: str, key: str, default: str | None = None) -> str | None:
        values = self.get(section, key)
        return values[-1] if values else default


def escape_path(path: str) -> str:
    return subprocess.run(["systemd-escape", "--path", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m)?", text.strip())
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, None: 1, "min": 60, "m": 60}[m.group(2)]


class Service:
    """One instance of a template unit, run as a child process of the test."""

    def __init__(self, unit: Unit, mountpoint: str, state_dir: Path, runtime_dir: Path,
                 env: dict, binary_map: dict[str, str] | None = None):
        self.unit = unit
        self.instance = escape_path(mountpoint)
        self.mountpoint = mountpoint
        self.state_dir = state_dir
        self.runtime_dir = runtime_dir
        self.binary_map = binary_map or {}
        self.base_env = env
        self.proc: subprocess.Popen | None = None
        self.messages: list[tuple[float, int, dict, str]] = []   # (time, sender pid, fields, raw)
        self.journal = b""
        self.sock_dir: Path | None = None
        self.sock: socket.socket | None = None
        self.journal_r: int | None = None

    # -- expansion ----------------------------------------------------------------------------
    def expand(self, text: str) -> list[str]:
        spec = {"i": self.instance, "I": self.mountpoint.strip("/"), "f": self.mountpoint,
                "n": f"nexusfs@{self.instance}.service", "%": "%"}
        text = re.sub(r"%(.)", lambda m: spec[m.group(1)], text)
        env = {"STATE_DIRECTORY": str(self.state_dir),
               "RUNTIME_DIRECTORY": str(self.runtime_dir),
               "MAINPID": str(self.proc.pid if self.proc else 0)}
        text = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env[m.group(1) or m.group(2)], text)
        argv = shlex.split(text.lstrip("-@+!:"))
        argv[0] = self.binary_map.get(argv[0], argv[0])
        return argv

    # -- start --------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> dict:
        """ExecStartPre, then ExecStart; returns the READY=1 message's fields (failing if the
        process exits first or no READY=1 comes within ``timeout``)."""
        assert self.unit.one("Service", "Type") == "notify"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, int(self.unit.one("Service", "StateDirectoryMode", "0755"), 8))
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        for pre in self.unit.get("Service", "ExecStartPre"):
            # a "-" prefix: a failure is not fatal
            subprocess.run(self.expand(pre), check=not pre.startswith("-"),
                           capture_output=True)
        self.sock_dir = Path(tempfile.mkdtemp(prefix="sdnotify-"))   # short: AF_UNIX limit
        self.sock_path = self.sock_dir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.journal_r, journal_w = os.pipe()
        st = os.fstat(journal_w)
        env = dict(self.base_env, NOTIFY_SOCKET=str(self.sock_path),
                   INVOCATION_ID=uuid.uuid4().hex, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
                   STATE_DIRECTORY=str(self.state_dir), RUNTIME_DIRECTORY=str(self.runtime_dir))
        argv = self.expand(self.unit.one("Service", "ExecStart"))
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=journal_w, stderr=journal_w, start_new_session=True)
        os.close(journal_w)
        os.set_blocking(self.journal_r, False)
        ready = self.wait_for("READY", timeout)
        return ready

    # -- the notify socket --------------------------------------------------------------------
    def _receive(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.sock, self.journal_r], [], [], max(timeout, 0))
        got = False
        if self.journal_r in ready:
            self.read_journal()
        if self.sock in ready:
            data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
            pid = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, _uid, _gid = struct.unpack("iII", payload[:12])
            text = data.decode()
            fields = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
            self.messages.append((time.monotonic(), pid, fields, text))
            got = True
        return got

    def wait_for(self, key: str, timeout: float, since: int = 0) -> dict:
        """The first message (from index ``since``) that sets ``key``; fails after ``timeout``
        or when the main process exits without sending it."""
        deadline = time.monotonic() + timeout
        while True:
            for _, _, fields, _ in self.messages[since:]:
                if key in fields:
                    return fields
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key} within {timeout} s; messages: "
                                     f"{[m[3] for m in self.messages]}\n{self.journal_text()}")
            if self.proc.poll() is not None and not self._receive(0):
                raise AssertionError(f"the service exited ({self.proc.returncode}) without "
                                     f"{key}; messages: {[m[3] for m in self.messages]}\n"
                                     f"{self.journal_text()}")
            self._receive(min(left, 0.2))

    def drain(self, seconds: float = 0.0) -> None:
        end = time.monotonic() + seconds
        while self._receive(max(0.0, end - time.monotonic())):
            pass

    def read_journal(self) -> None:
        while True:
            try:
                chunk = os.read(self.journal_r, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.journal += chunk

    def journal_text(self) -> str:
        self.read_journal()
        return self.journal.decode(errors="replace")

    # -- reload, stop -------------------------------------------------------------------------
    def reload(self, timeout: float = 10.0) -> dict:
        """ExecReload; then RELOADING=1 and READY=1 must follow (returns the READY fields)."""
        since = len(self.messages)
        for cmd in self.unit.get("Service", "ExecReload"):
            subprocess.run(self.expand(cmd), check=True)
        self.wait_for("RELOADING", timeout, since)
        start = next(i for i, m in enumerate(self.messages) if i >= since and "RELOADING" in m[2])
        return self.wait_for("READY", timeout, start + 1)

    def kill_signal(self) -> int:
        return getattr(signal, self.unit.one("Service", "KillSignal", "SIGTERM"))

    def stop(self, timeout: float | None = None) -> int:
        """KillSignal to the main process (KillMode=mixed); wait for it (TimeoutStopSec);
        returns its exit status."""
        if timeout is None:
            timeout = _seconds(self.unit.one("Service", "TimeoutStopSec", "90"))
        self.proc.send_signal(self.kill_signal())
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the service did not stop within {timeout} s\n"
                                     f"{self.journal_text()}")
            self._receive(0.05)
        self.drain()
        self.read_journal()
        return self.proc.returncode

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.journal_r is not None:
            os.close(self.journal_r)
            self.journal_r = None
        if self.sock_dir is not None:
            shutil.rmtree(self.sock_dir, ignore_errors=True)
            self.sock_dir = None

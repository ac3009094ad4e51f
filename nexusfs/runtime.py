"""Daemon wiring: open the store, mount, daemonize, run the trio loop, commit on a timer,
handle signals, notify readiness, and shut down cleanly.

Process rules: the mount happens in the process the user started (so errors reach the
terminal); without --foreground it forks before trio starts and before any thread exists, and
the parent exits with 0 only once the child reports that it serves requests. SIGTERM/SIGINT ->
terminate the FUSE loop on the trio thread -> commit everything, checkpoint, unmount, exit 0.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import logging.handlers
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio

from . import fuse_ops
from .config import Config
from .control.ctlfile import attach as attach_ctl
from .control.server import serve_control
from .core.fs import FileSystem

log = logging.getLogger("nexusfs")

IGNORED_OPTIONS = {"auto", "noauto", "nofail", "_netdev", "user", "users", "nouser", "defaults",
                   "rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "async", "atime",
                   "noatime", "relatime", "x-systemd.automount"}


class MountError(Exception):
    pass


def registry_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/run/nexusfs")
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/nexusfs-{os.geteuid()}"
    return Path(base) / "nexusfs"


def registry_file(mountpoint: str) -> Path:
    key = hashlib.sha256(os.path.realpath(mountpoint).encode()).hexdigest()[:24]
    return registry_dir() / f"{key}.json"


def read_registry(mountpoint: str) -> dict | None:
    try:
        return json.loads(registry_file(mountpoint).read_text())
    except (OSError, ValueError):
        return None


def all_mounts() -> list[dict]:
    out = []
    d = registry_dir()
    if d.is_dir():
        for f in sorted(d.glob("*.json")):
            try:
                info = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if _alive(info.get("pid", 0)):
                out.append(info)
            else:
                f.unlink(missing_ok=True)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # a daemon that has exited but not been reaped yet (its parent is init, which may reap
    # late) is a zombie: kill(pid, 0) still succeeds, yet it holds no mount and no lock
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True


def setup_logging(level: str = "INFO", log_file: Path | None = None) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    if log_file is not None:
        handler: logging.Handler = logging.handlers.WatchedFileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    elif os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JournalFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


class _JournalFormatter(logging.Formatter):
    """journald reads a leading <N> as the syslog priority of the line."""
    PRI = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record):
        return f"<{self.PRI.get(record.levelno, 6)}>{record.name}: {record.getMessage()}" + (
            "\n" + self.formatException(record.exc_info) if record.exc_info else "")


def sd_notify(message: str) -> None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify failed: %s", e)


def recover_stale(mountpoint: str) -> None:
    """A mount point left by a crashed daemon ("Transport endpoint is not connected") is
    detached so that the new mount can take its place."""
    try:
        os.stat(mountpoint)
        # stat may be answered from the kernel's attribute cache (attr_timeout) without asking
        # the dead daemon; statfs always goes to the daemon, so it sees the dead connection
        os.statvfs(mountpoint)
    except OSError as e:
        if e.errno in (errno.ENOTCONN, errno.ECONNABORTED):
            log.warning("%s: stale mount of a crashed daemon, detaching it", mountpoint)
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if subprocess.run(["mountpoint", "-q", mountpoint]).returncode == 0:
                subprocess.run(["umount", "-l", mountpoint], check=False)
            return
        if e.errno == errno.ENOENT:
            raise MountError(f"mount point {mountpoint} does not exist") from None
        raise MountError(f"mount point {mountpoint}: {e.strerror}") from None


def mount_options(options: list[str], fsname: str) -> set[str]:
    opts = fuse_ops.base_options(fsname)
    for opt in options:
        if opt in IGNORED_OPTIONS or opt.startswith(("x-", "comment=")):
            continue
        opts.add(opt)
    return opts


def mount(cfg: Config, mountpoint: str, options: list[str], foreground: bool,
          log_level: str = "INFO") -> int:
    """Mount and serve until unmounted or signalled. Returns the exit status."""
    mountpoint = os.path.abspath(mountpoint)
    served = read_registry(mountpoint)
    if served and _alive(served.get("pid", 0)) and os.path.ismount(mountpoint):
        if os.path.realpath(served["data_dir"]) == os.path.realpath(cfg.data_dir):
            log.info("%s is already served from %s", mountpoint, cfg.data_dir)
            return 0
        raise MountError(f"{mountpoint} is already a nexusfs mount of {served['data_dir']}")
    recover_stale(mountpoint)
    reg = registry_file(mountpoint)   # resolves the path: must happen before we serve it
    if not os.path.isdir(mountpoint):
        raise MountError(f"mount point {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is already a mount point")
    fs = FileSystem(cfg)
    fs.start()                      # StoreError reaches the terminal
    attach_ctl(fs)
    ops = fuse_ops.Operations(fs)
    try:
        fuse_ops.init(ops, mountpoint, mount_options(options, str(cfg.data_dir)))
    except Exception as e:
        trio.run(fs.close)
        raise MountError(f"cannot mount {mountpoint}: {e}") from e
    ready_w = None
    if not foreground:
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid:
            os.close(ready_w)
            status = os.read(ready_r, 64)
            return 0 if status.startswith(b"ok") else 1
        os.close(ready_r)
        os.setsid()
        setup_logging(log_level, cfg.data_dir / "nexusfs.log")
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    reg.parent.mkdir(parents=True, exist_ok=True)
    reg.write_text(json.dumps({"pid": os.getpid(), "mountpoint": mountpoint,
                               "data_dir": str(cfg.data_dir)}))
    try:
        trio.run(_serve, fs, ops, ready_w, mountpoint)
    finally:
        reg.unlink(missing_ok=True)
    return 0


async def _readahead_after_init(mountpoint: str, kb: int) -> None:
    # the kernel clamps read-ahead to what FUSE's INIT exchange agreed (128 KiB), so raise it
    # once that exchange, the first request the loop serves, is over
    log.debug("read-ahead: waiting for INIT")
    await trio.sleep(0.3)
    log.debug("read-ahead: raising")
    await trio.to_thread.run_sync(_raise_readahead, mountpoint, kb)


def _raise_readahead(mountpoint: str, kb: int) -> None:
    """Let the kernel read ahead ``kb`` KiB on this mount (its default for FUSE, 128 KiB, cuts
    sequential reads into many small requests). Found through /proc/self/mountinfo, so the
    mount itself is never touched; best effort."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                if point == mountpoint:
                    with open(f"/sys/class/bdi/{fields[2]}/read_ahead_kb", "w") as ra:
                        ra.write(str(kb))
                    log.info("read-ahead on %s: %d KiB", mountpoint, kb)
                    return
        log.warning("no mountinfo line for %s: read-ahead left as is", mountpoint)
    except OSError as e:
        log.debug("cannot raise read-ahead: %s", e)


async def _serve(fs: FileSystem, ops: fuse_ops.Operations, ready_w: int | None,
                 mountpoint: str) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_readahead_after_init, mountpoint, fs.cfg.readahead_kb)
        nursery.start_soon(_signals, ops)
        nursery.start_soon(_batch_timer, fs)
        await _start_control(nursery, fs)
        if ready_w is not None:
            os.write(ready_w, b"ok")
            os.close(ready_w)
        sd_notify("READY=1")
        log.info("serving %s", fs.cfg.data_dir)
        try:
            await fuse_ops.serve()
        finally:
            sd_notify("STOPPING=1")
            nursery.cancel_scope.cancel()
    with trio.CancelScope(shield=True):
        await fs.close()
    fuse_ops.close(unmount=True)      # a no-op when the kernel already unmounted us
    log.info("stopped cleanly")


async def _start_control(nursery: trio.Nursery, fs: FileSystem) -> None:
    """The control socket (nexus snapshot/log/undo/...), listening before we report ready; it
    stops when the nursery is cancelled at shutdown. A mount without it still serves files."""
    try:
        await nursery.start(serve_control, fs.history, fs.cfg.socket_path)
    except OSError as e:
        log.warning("no control socket at %s: %s", fs.cfg.socket_path, e)


async def _signals(ops: fuse_ops.Operations) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                   signal.SIGUSR1) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                log.info("SIGHUP: nothing to reload yet")
                continue
            if signum == signal.SIGUSR1:
                st = ops.op_stats
                for op in sorted(st.count, key=st.count.get, reverse=True):
                    log.info("op %s: %d requests, %.0f us average, %d failed", op, st.count[op],
                             st.seconds[op] / st.count[op] * 1e6, st.errors.get(op, 0))
                continue
            log.info("signal %d: flushing and unmounting", signum)
            fuse_ops.terminate()


async def _batch_timer(fs: FileSystem) -> None:
    while True:
        await trio.sleep(fs.cfg.commit_interval)
        try:
            await fs.periodic()
        except Exception:
            log.exception("periodic commit failed")

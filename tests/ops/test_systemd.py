"""systemd: the unit file passes `systemd-analyze verify` and keeps what the daemon needs, and
the daemon speaks the notify protocol as the unit declares it (Type=notify, NotifyAccess=main),
run here by an emulation of systemd (sdemu.py: a real NOTIFY_SOCKET with sender credentials,
INVOCATION_ID, JOURNAL_STREAM) with the unit's own ExecStartPre/ExecStart/ExecReload lines.

* READY=1 comes from the main process, only once the mount answers, with STATUS and MAINPID;
  the log is journald-style (a <N> priority on every line).
* `systemctl reload` (ExecReload: SIGHUP): RELOADING=1 (with MONOTONIC_USEC), then READY=1;
  log level and retention apply live; a broken nexusfs.toml changes nothing and says which line.
* stop (KillSignal, KillMode=mixed): STOPPING=1, every written byte committed and synced,
  unmounted, exit 0 (no restart).
* a crash (SIGKILL: Restart=on-failure restarts): the unit's start lines mount again over the
  dead mount point.
"""
from __future__ import annotations

import os
import re
import signal
import time

import pytest
from fusehelp import require_tools, run, sha256_file, wait_gone
from opshelp import NEXUS, REPO, nexus_env
from sdemu import Service, Unit

from nexusfs import runtime

pytestmark = pytest.mark.fuse

UNIT = REPO / "systemd" / "nexusfs@.service"
# options that give a service its own mount namespace: a FUSE mount made there is invisible
NAMESPACING = ["ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
               "PrivateUsers", "ProtectKernelTunables", "ProtectKernelModules",
               "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ProtectClock",
               "ProtectHostname", "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths",
               "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "MountAPIVFS",
               "RootDirectory", "RootImage", "DynamicUser", "PrivateNetwork", "NetworkNamespacePath"]


def verify(unit_dir) -> tuple[int, str]:
    r = run(["systemd-analyze", "verify", str(unit_dir / "nexusfs@mnt-nexus.service")],
            check=False, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def test_unit_file_verifies_and_keeps_the_mount_usable(tmp_path):
    require_tools("systemd-analyze", "systemd-escape")
    d = tmp_path / "units"
    d.mkdir()
    text = UNIT.read_text()
    if not os.access("/usr/local/bin/nexus", os.X_OK):     # tools/setup links it; else ours
        text = text.replace("/usr/local/bin/nexus", NEXUS)
    (d / "nexusfs@.service").write_text(text)
    (d / "nexusfs@mnt-nexus.service").symlink_to("nexusfs@.service")
    code, out = verify(d)
    assert code == 0 and out == "", f"systemd-analyze verify:\n{out}"
    # the check is not vacuous: a mistake in the same file is reported
    (d / "nexusfs@.service").write_text(text.replace("KillMode=mixed", "KillMode=mixed\nKilMode=x"))
    code, out = verify(d)
    assert "KilMode" in out, out

    unit = Unit(UNIT)
    svc = lambda key: unit.one("Service", key)  # noqa: E731
    assert svc("Type") == "notify" and svc("NotifyAccess") == "main"
    assert svc("Restart") == "on-failure"
    assert svc("StateDirectory") == "nexusfs/%i" and "${STATE_DIRECTORY}" in svc("ExecStart")
    assert svc("RuntimeDirectory") == "nexusfs" and svc("RuntimeDirectoryPreserve") == "yes"
    assert str(runtime.registry_dir()) == "/run/nexusfs"        # where RuntimeDirectory is
    assert "--foreground" in svc("ExecStart") and "HUP" in svc("ExecReload")
    assert svc("KillMode") == "mixed" and svc("KillSignal") == "SIGTERM"
    assert int(svc("TimeoutStopSec")) >= 60
    assert svc("ExecStartPre").startswith("-"), "a dead mount point must not stop a restart"
    # hardening, and nothing of it takes /dev/fuse or the host's mount namespace away
    assert svc("NoNewPrivileges") == "yes" and svc("DevicePolicy") == "closed"
    assert "/dev/fuse rw" in unit.get("Service", "DeviceAllow")
    assert "CAP_SYS_ADMIN" in svc("CapabilityBoundingSet")
    assert "@mount" in svc("SystemCallFilter")
    present = [k for k in NAMESPACING if unit.get("Service", k)]
    assert not present, f"these give the service a private mount namespace: {present}"


@pytest.fixture
def service(new_mount, ops_base):
    """The unit, instantiated for a fresh mount point, with its state directory there."""
    require_tools("systemd-escape")
    m = new_mount(mount=False)
    made = []

    def start(**env):
        s = Service(Unit(UNIT), str(m.mnt), state_dir=m.data,
                    runtime_dir=runtime.registry_dir(), env=nexus_env(**env),
                    binary_map={"/usr/local/bin/nexus": NEXUS})
        made.append(s)
        return s

    yield m, start
    for s in made:
        if s.proc and s.proc.poll() is None:
            s.stop(timeout=60)
        s.close()


def test_notify_protocol_reload_and_stop(service):
    m, start = service
    svc = start()
    ready = svc.start()
    ready_s = time.monotonic() - svc.started_at
    pid = svc.proc.pid
    # READY=1 first, from the main process, and by then the mount answers
    assert m.is_mounted(), "READY=1 before the mount exists"
    (m.mnt / "hello").write_text("served\n")
    assert (m.mnt / "hello").read_text() == "served\n"
    assert "READY" in svc.messages[0][2], svc.messages
    assert all(sender == pid for _, sender, _, _ in svc.messages), svc.messages
    assert ready["READY"] == "1" and ready["MAINPID"] == str(pid)
    assert str(m.mnt) in ready["STATUS"]
    assert m.pid() == pid                                      # `nexus status` sees it
    print(f"start to READY=1: {ready_s:.3f} s")

    # journald-style log: a priority on every line
    journal = svc.journal_text()
    assert "<6>nexusfs: serving" in journal, journal
    assert all(re.match(r"<[0-7]>", line) for line in journal.splitlines()), journal

    # reload: live settings apply, the others wait for the next mount
    (m.data / "nexusfs.toml").write_text(
        'log_level = "DEBUG"\nretain_days = 7\nchunk_cache_bytes = "64 MiB"\npack_max = "32 MiB"\n')
    before = len(svc.messages)
    svc.reload()
    reloading = next(f for _, _, f, _ in svc.messages[before:] if "RELOADING" in f)
    assert int(reloading["MONOTONIC_USEC"]) > 0
    journal = svc.journal_text()
    assert "SIGHUP: retain_days 30.0 -> 7.0" in journal, journal
    assert "SIGHUP: chunk_cache_bytes 268435456 -> 67108864" in journal
    assert "pack_max changed; it takes effect at the next mount" in journal
    assert "<7>nexusfs: configuration now" in journal                 # DEBUG is on

    # a broken file: READY=1 again, nothing changed, the line is named
    (m.data / "nexusfs.toml").write_text('log_level = "INFO"\nretain_days = \n')
    svc.reload()
    journal = svc.journal_text()
    assert re.search(r"<3>nexusfs: SIGHUP: configuration not reloaded, nothing changed: .*"
                     r"nexusfs.toml: not valid TOML: .*line 2", journal), journal
    (m.data / "nexusfs.toml").write_text('retain_days = 7\n')
    assert (m.mnt / "hello").read_text() == "served\n"

    # written but never synced, some still open in the daemon's buffers: the stop keeps all
    rnd = os.urandom(3 << 20)
    digests = {}
    for i in range(6):
        data = rnd[i * 1000:] + bytes([i]) * (i * 100_000)
        (m.mnt / f"f{i}").write_bytes(data)
        digests[f"f{i}"] = len(data), sha256_file(m.mnt / f"f{i}")
    before = len(svc.messages)
    t0 = time.monotonic()
    assert svc.stop() == 0, svc.journal_text()
    print(f"stop: {time.monotonic() - t0:.3f} s")
    assert any("STOPPING" in f for _, _, f, _ in svc.messages[before:]), svc.messages
    assert not m.is_mounted()
    assert wait_gone(pid, 5)
    assert "stopped cleanly" in svc.journal_text()
    m.fsck()
    m.mount()
    for name, (size, digest) in digests.items():
        assert os.path.getsize(m.mnt / name) == size and sha256_file(m.mnt / name) == digest
    assert (m.mnt / "hello").read_text() == "served\n"
    m.unmount()


def test_restart_after_a_crash_mounts_over_the_dead_mount_point(service):
    m, start = service
    first = start()
    first.start()
    (m.mnt / "kept").write_text("synced\n")
    fd = os.open(m.mnt / "kept", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    os.kill(first.proc.pid, signal.SIGKILL)
    assert first.wait_exit(10) == -signal.SIGKILL          # a failure: Restart=on-failure
    assert m.is_mounted()                                  # dead, still in the mount table
    second = start()
    second.start()                                         # ExecStartPre fails, harmlessly
    assert (m.mnt / "kept").read_text() == "synced\n"
    assert second.stop() == 0
    assert not m.is_mounted()

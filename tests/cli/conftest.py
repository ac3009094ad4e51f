"""Control socket and CLI fixtures: a control server on a fake HistoryService in a temporary
data directory (in the test's trio loop, or in a thread for the synchronous CLI), and a
private mount registry. No mount, no real store."""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))

from controlfake import FakeHistory  # noqa: E402

from nexusfs import config, runtime  # noqa: E402
from nexusfs.control.server import serve_control  # noqa: E402


@pytest.fixture(autouse=True)
def _hermetic(clean_env, tmp_path, monkeypatch):
    """No NEXUS_* variable leaks in, and the mount registry is the test's own."""
    reg = tmp_path / "registry"
    reg.mkdir()
    monkeypatch.setattr(runtime, "registry_dir", lambda: reg)


@pytest.fixture
def fake():
    return FakeHistory()


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def sock_path(data_dir):
    return config.load(data_dir).socket_path


class ServerThread:
    """serve_control in a trio loop of its own thread, for synchronous clients."""

    def __init__(self, service, path):
        self.service, self.path = service, path
        self.error: BaseException | None = None

    def start(self):
        ready = threading.Event()

        async def main():
            self.token = trio.lowlevel.current_trio_token()
            with trio.CancelScope() as self.scope:
                async with trio.open_nursery() as nursery:
                    await nursery.start(serve_control, self.service, self.path)
                    ready.set()

        def run():
            try:
                trio.run(main)
            except BaseException as e:        # reported by stop()
                self.error = e
                ready.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        if self.error:
            raise self.error
        return self

    def stop(self):
        if self.thread.is_alive():
            trio.from_thread.run_sync(self.scope.cancel, trio_token=self.token)
        self.thread.join(10)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error


@pytest.fixture
def server(fake, sock_path):
    srv = ServerThread(fake, sock_path).start()
    yield srv
    srv.stop()


@pytest.fixture
def register_mount():
    """``register_mount(mountpoint, data_dir)``: pretend a daemon (this process) serves
    ``data_dir`` at ``mountpoint``, in the private registry."""
    def register(mountpoint: Path, data_dir: Path, pid: int | None = None) -> None:
        mountpoint.mkdir(parents=True, exist_ok=True)
        f = runtime.registry_file(str(mountpoint))
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({"pid": pid or os.getpid(), "mountpoint": str(mountpoint),
                                 "data_dir": str(data_dir)}))
    return register

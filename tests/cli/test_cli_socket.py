"""The control socket server on a fake HistoryService: JSON lines, errors, garbage, huge and
partial lines, pipelining, disconnects, peer credentials, shutdown, socket file handling."""
from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest
import trio
from controlfake import FakeHistory

from nexusfs.control import client
from nexusfs.control.server import MAX_LINE, serve_control
from nexusfs.types import FsError


class LineClient:
    def __init__(self, stream: trio.SocketStream):
        self.stream = stream
        self.buf = b""

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def response(self) -> dict:
        with trio.fail_after(10):
            while b"\n" not in self.buf:
                chunk = await self.stream.receive_some(65536)
                assert chunk, "the server closed the connection"
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    async def ask(self, request) -> dict:
        await self.send((request if isinstance(request, bytes) else
                         json.dumps(request).encode()) + b"\n")
        return await self.response()


@pytest.fixture
async def served(fake, sock_path, nursery):
    path = await nursery.start(serve_control, fake, sock_path)
    assert path == sock_path
    return path


async def connect(path) -> LineClient:
    return LineClient(await trio.open_unix_socket(str(path)))


async def test_cmd_argv_and_id(served, fake):
    c = await connect(served)
    r = await c.ask({"cmd": "snapshot create before /src"})
    assert r == {"ok": True, "text": "snapshot before of /src at seq 41\n",
                 "data": {"name": "before", "seq": 41, "path": "/src"}}
    r = await c.ask({"argv": ["snapshot", "create", "with space", "/a b"], "id": 7})
    assert r["ok"] and r["id"] == 7
    assert fake.last() == ("snapshot_create", ("with space", "/a b"), {})
    r = await c.ask({"cmd": "versions show /bin.dat 7", "id": "x"})
    assert r["data"]["base64"] == "AP/+IGJpbmFyeSCA" and r["id"] == "x"


async def test_errors_carry_errno_name_message_and_text(served):
    c = await connect(served)
    r = await c.ask({"cmd": "snapshot delete nosuch", "id": 1})
    assert r == {"ok": False, "errno": errno.ENOENT, "error": "ENOENT",
                 "message": "no snapshot nosuch", "text": "error: ENOENT: no snapshot nosuch\n",
                 "id": 1}
    r = await c.ask({"cmd": "frobnicate"})
    assert r["errno"] == errno.EINVAL and r["error"] == "EINVAL"
    assert "commands: snapshot, undo, log" in r["message"]
    assert "snapshot create NAME [PATH]" in r["text"]


@pytest.mark.parametrize("line, reason", [
    (b"not json", "invalid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"snapshot list"', "JSON object"),
    (b"{}", "exactly one of"),
    (b'{"cmd": "help", "argv": ["help"]}', "exactly one of"),
    (b'{"cmd": 5}', '"cmd" must be a string'),
    (b'{"argv": "snapshot list"}', "argv must be"),
    (b'{"argv": ["log", 5]}', "argv must be"),
    (b'{"argv": []}', "argv must be"),
    (b'{"cmd": ""}', "empty command"),
    (b'{"cmd": "undo\\u0000"}', "binary"),
    (b"\xff\xfe\x00\x01", "invalid JSON"),
    (b"[" * 200_000, "invalid JSON"),
    (b'{"cmd": "' + b"x" * 70_000 + b'"}', "64 KiB"),
    (b'{"cmd": "help"' + b"}" * 3, "invalid JSON"),
])
async def test_garbage_gets_an_error_and_the_connection_stays(served, line, reason):
    c = await connect(served)
    r = await c.ask(line)
    assert r["ok"] is False and r["errno"] == errno.EINVAL and reason in r["message"], r
    r = await c.ask({"cmd": "snapshot list"})
    assert r["ok"] and len(r["data"]) == 2


async def test_blank_lines_are_ignored(served):
    c = await connect(served)
    await c.send(b"\n\r\n   \n" + b'{"cmd": "gc"}\r\n')
    assert (await c.response())["data"] == {"chunks_freed": 4, "bytes_freed": 2048}


async def test_huge_line_is_refused_then_the_connection_goes_on(served, fake):
    c = await connect(served)
    await c.send(b'{"cmd": "' + b"a" * (MAX_LINE + 10))
    r = await c.response()                 # answered before the line even ends
    assert r["errno"] == errno.EMSGSIZE and "1 MiB" in r["message"]
    await c.send(b"b" * 300_000 + b'"}\n')  # the rest of the overlong line is dropped
    r = await c.ask({"cmd": "stats"})
    assert r["ok"] and r["data"]["files"] == 12
    assert [call[0] for call in fake.calls] == ["stats"]


async def test_huge_line_in_small_pieces(served):
    c = await connect(served)
    piece = b"z" * 4096
    for _ in range(MAX_LINE // len(piece) + 2):
        await c.send(piece)
    await c.send(b'\n{"cmd": "help stats"}\n')
    assert (await c.response())["errno"] == errno.EMSGSIZE
    r = await c.response()
    assert r["ok"] and r["data"]["commands"][0]["usage"] == "stats"


async def test_partial_writes_make_one_request(served):
    c = await connect(served)
    for byte in b'{"cmd": "snapshot list", "id": 3}\n':
        await c.send(bytes([byte]))
        await trio.sleep(0)
    r = await c.response()
    assert r["ok"] and r["id"] == 3


async def test_pipelined_requests_are_answered_in_order(served):
    c = await connect(served)
    await c.send(b"".join(json.dumps({"cmd": cmd, "id": i}).encode() + b"\n"
                          for i, cmd in enumerate(["gc", "bogus", "stats", "log"] * 5)))
    rs = [await c.response() for _ in range(20)]
    assert [r["id"] for r in rs] == list(range(20))
    assert [r["ok"] for r in rs[:4]] == [True, False, True, True]


async def test_disconnects_do_no_harm(served, fake):
    c = await connect(served)
    await c.send(b'{"cmd": "snapshot cre')          # mid-line
    await c.stream.aclose()
    fake.gates["gc"] = trio.Event()
    fake.entered["gc"] = trio.Event()
    c = await connect(served)
    await c.send(b'{"cmd": "gc"}\n')                 # gone before the reply
    await fake.entered["gc"].wait()
    await c.stream.aclose()
    fake.gates["gc"].set()
    with trio.fail_after(5):                          # the command runs to its end
        while fake.finished != ["gc"]:
            await trio.sleep(0.01)
    c = await connect(served)
    assert (await c.ask({"cmd": "snapshot list"}))["ok"]
    assert all(call[0] != "snapshot_create" for call in fake.calls)


async def test_connections_are_independent(served, fake):
    fake.gates["gc"] = trio.Event()
    fake.entered["gc"] = trio.Event()
    slow = await connect(served)
    await slow.send(b'{"cmd": "gc"}\n')
    await fake.entered["gc"].wait()
    quick = await connect(served)
    assert (await quick.ask({"cmd": "stats"}))["ok"]
    fake.gates["gc"].set()
    assert (await slow.response())["ok"]


async def test_peer_credentials_identify_the_caller(served, fake):
    c = await connect(served)
    await c.ask({"cmd": "undo"})
    who = fake.callers[-1]
    assert (who.uid, who.gid, who.pid) == (os.getuid(), os.getgid(), os.getpid())
    assert who.process == Path("/proc/self/comm").read_text().strip()
    assert who.umask == os.umask(os.umask(0o022))
    assert set(who.groups) == set(os.getgroups())


PEER_SCRIPT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"cmd": "undo --agent x"}\\n')
print(s.makefile("rb").readline().decode(), end="")
"""


async def test_another_process_user_and_agent(fake):
    """A separate process (as nobody when we are root) with NEXUS_AGENT set: the server sees
    its uid, pid, command name and agent label; the 0666 socket lets any user in."""
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    root = os.geteuid() == 0
    d = Path(tempfile.mkdtemp(prefix="nexus-ctl-"))
    try:
        d.chmod(0o755)
        path = d / "control.sock"
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, fake, path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o666
            kwargs = {"user": 65534, "group": 65534, "extra_groups": []} if root else {}
            proc = await trio.run_process([python, "-c", PEER_SCRIPT, str(path)],
                                          capture_stdout=True, capture_stderr=True,
                                          env={"NEXUS_AGENT": "bot-7", "PATH": "/usr/bin:/bin"},
                                          **kwargs)
            nursery.cancel_scope.cancel()
        assert json.loads(proc.stdout)["ok"], proc.stderr
        who = fake.callers[-1]
        assert who.agent == "bot-7" and who.process.startswith("python")
        assert who.pid not in (0, os.getpid())
        assert who.uid == (65534 if root else os.getuid())
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_socket_file_is_0666_replaces_a_stale_one_and_goes_away(fake, sock_path):
    sock_path.write_text("stale")                   # left by a crashed daemon
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, fake, sock_path)
        st = sock_path.stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666
        assert [p.name for p in sock_path.parent.iterdir()] == ["control.sock"]   # no temp left
        assert (await (await connect(sock_path)).ask({"cmd": "gc"}))["ok"]
        nursery.cancel_scope.cancel()
    assert not sock_path.exists()


async def test_a_successors_socket_is_left_alone(fake, sock_path):
    other = type(fake)()                            # a second daemon
    async with trio.open_nursery() as outer:
        with trio.CancelScope() as first:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_control, fake, sock_path)
                await outer.start(serve_control, other, sock_path)   # replaces our socket
                first.cancel()
        assert sock_path.exists()                   # the first one did not remove it
        assert (await (await connect(sock_path)).ask({"cmd": "gc"}))["ok"]
        assert other.finished == ["gc"] and fake.finished == []
        outer.cancel_scope.cancel()
    assert not sock_path.exists()


async def test_shutdown_lets_a_running_command_finish_and_reply(fake, sock_path):
    fake.gates["gc"] = trio.Event()
    fake.entered["gc"] = trio.Event()

    async def finish_gc_later():
        await trio.sleep(0.1)
        fake.gates["gc"].set()

    async with trio.open_nursery() as test:
        with trio.CancelScope() as server_scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_control, fake, sock_path)
                c = await connect(sock_path)
                idle = await connect(sock_path)
                await c.send(b'{"cmd": "gc"}\n')
                await fake.entered["gc"].wait()
                server_scope.cancel()              # the daemon shuts down...
                test.start_soon(finish_gc_later)   # ...while gc is still running
        r = await c.response()
        assert r["ok"] and fake.finished == ["gc"]
        assert await idle.stream.receive_some(10) == b""      # idle connections are closed
    assert not sock_path.exists()


async def test_bind_failure_reaches_the_starter(fake, tmp_path):
    async with trio.open_nursery() as nursery:     # as runtime._start_control sees it
        with pytest.raises(FileNotFoundError):
            await nursery.start(serve_control, fake, tmp_path / "missing" / "control.sock")
    assert list(tmp_path.iterdir()) == [tmp_path / "registry"]


async def test_a_long_socket_path_works(fake, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "control.sock"
    assert len(str(path)) > 108
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, fake, path)
        r = await trio.to_thread.run_sync(client.call, path, ["snapshot", "list"])
        assert r["ok"] and len(r["data"]) == 2
        nursery.cancel_scope.cancel()
    assert list(deep.iterdir()) == []


async def test_sync_client_connection_and_remote_error(served, fake):
    def talk():
        with client.Connection(served) as conn:
            ok = conn.request(cmd="snapshot list")
            with pytest.raises(client.RemoteError) as info:
                conn.request(argv=["snapshot", "delete", "nosuch"])
            again = conn.request(argv=["stats"])
            return ok, info.value, again
    ok, err, again = await trio.to_thread.run_sync(talk)
    assert ok["ok"] and again["data"]["files"] == 12
    assert (err.errno, err.error, err.message) == (errno.ENOENT, "ENOENT", "no snapshot nosuch")
    assert isinstance(err, client.ControlError) and str(err) == "no snapshot nosuch"


async def test_sync_client_connection_errors(tmp_path, sock_path):
    with pytest.raises(client.ControlError, match="no control socket"):
        client.Connection(sock_path)
    import socket as socketmod
    s = socketmod.socket(socketmod.AF_UNIX)
    s.bind(str(sock_path))                          # a socket file nobody listens on
    s.close()
    with pytest.raises(client.ControlError, match="no daemon listens"):
        client.Connection(sock_path)


async def test_service_bug_is_eio_and_the_server_survives(served, fake):
    fake.fail["stats"] = RuntimeError("bug")
    c = await connect(served)
    r = await c.ask({"cmd": "stats"})
    assert r["errno"] == errno.EIO and "internal error" in r["message"]
    fake.fail["gc"] = FsError(errno.ENOSPC, "disk full")
    r = await c.ask({"cmd": "gc"})
    assert (r["error"], r["message"]) == ("ENOSPC", "disk full")
    assert (await c.ask({"cmd": "snapshot list"}))["ok"]


async def test_want_selects_the_parts_of_a_reply(served):
    c = await connect(served)
    r = await c.ask({"cmd": "versions show /bin.dat 7", "want": ["data"], "id": 1})
    assert set(r) == {"ok", "data", "id"}
    r = await c.ask({"cmd": "snapshot list", "want": ["text"]})
    assert set(r) == {"ok", "text"}
    r = await c.ask({"cmd": "snapshot delete nosuch", "want": ["data"]})
    assert r["ok"] is False and r["message"] == "no snapshot nosuch"    # errors stay whole


# -- the daemon's wiring ---------------------------------------------------------------------
class _FsStub:
    def __init__(self, cfg):
        self.cfg = cfg
        self.history = FakeHistory()


async def test_runtime_starts_the_control_socket(data_dir, sock_path):
    from nexusfs import config, runtime
    async with trio.open_nursery() as nursery:
        await runtime._start_control(nursery, _FsStub(config.load(data_dir)))
        assert stat.S_ISSOCK(sock_path.stat().st_mode)           # listening before "ready"
        r = await (await connect(sock_path)).ask({"cmd": "help undo"})
        assert r["ok"] and r["data"]["commands"][0]["usage"].startswith("undo")
        nursery.cancel_scope.cancel()                             # what shutdown does
    assert not sock_path.exists()


async def test_runtime_serves_files_without_a_control_socket(tmp_path, caplog):
    from nexusfs import config, runtime
    cfg = config.load(tmp_path / "missing")
    async with trio.open_nursery() as nursery:
        await runtime._start_control(nursery, _FsStub(cfg))      # does not raise
        nursery.cancel_scope.cancel()
    assert "no control socket" in caplog.text

"""The /.nexus/ctl handle logic without FUSE: write runs a command, reads return the reply at
the position after the write or from 0, ctl.last per caller."""
from __future__ import annotations

import errno

import pytest
from controlfake import FakeHistory

from nexusfs.control.ctlfile import CtlHandle, LastReplies, encode_text
from nexusfs.types import Caller, FsError

ALICE = Caller(uid=1000, pid=1)
ALICE_BOT = Caller(uid=1000, pid=2, agent="bot")
BOB = Caller(uid=1001, pid=3)


def read_all(h: CtlHandle, offset: int, size: int = 7) -> bytes:
    out = b""
    while True:
        chunk = h.read(offset, size)
        if not chunk:
            return out
        out += chunk
        offset += len(chunk)


async def test_write_then_read_on_from_the_write_position():
    h = CtlHandle(FakeHistory())
    cmd = b"snapshot create before /src\n"
    assert await h.write(0, cmd, ALICE) == len(cmd)
    assert read_all(h, len(cmd)) == b"snapshot before of /src at seq 41\n"


async def test_read_back_from_zero_and_rewind_after_reading():
    h = CtlHandle(FakeHistory())
    cmd = b"snapshot list"
    await h.write(0, cmd, ALICE)
    whole = read_all(h, 0, 5)                       # pread(fd, ..., 0) / lseek(0) + read
    assert whole.startswith(b"NAME") and whole.endswith(b"/src\n")
    assert read_all(h, len(cmd), 5) == whole[len(cmd):]    # a position past the write: absolute
    h2 = CtlHandle(FakeHistory())
    await h2.write(0, cmd, ALICE)
    assert read_all(h2, len(cmd)) == whole          # continue after the write...
    assert read_all(h2, 0) == whole                 # ...then rewind: the reply from its start


async def test_second_command_on_the_same_handle():
    h = CtlHandle(FakeHistory())
    await h.write(0, b"gc\n", ALICE)
    first = read_all(h, 3)
    pos = 3 + len(first)
    await h.write(pos, b"snapshot delete before\n", ALICE)
    assert read_all(h, pos + 23) == b"snapshot before deleted\n"


async def test_failed_write_raises_and_keeps_the_error_text():
    last = LastReplies()
    h = CtlHandle(FakeHistory(), last)
    with pytest.raises(FsError) as info:
        await h.write(0, b"snapshot delete nosuch\n", ALICE)
    assert info.value.errno == errno.ENOENT
    assert read_all(h, 23) == b"error: ENOENT: no snapshot nosuch\n"
    assert last.get(ALICE) == b"error: ENOENT: no snapshot nosuch\n"
    with pytest.raises(FsError) as info:
        await h.write(0, b"\xff\xfe", ALICE)
    assert info.value.errno == errno.EINVAL
    text = last.get(ALICE).decode()
    assert text.startswith("error: EINVAL: command is not UTF-8 text")
    assert "snapshot create NAME [PATH]" in text      # the list of commands


async def test_last_reply_is_per_uid_and_agent():
    last = LastReplies()
    svc = FakeHistory()
    await CtlHandle(svc, last).write(0, b"gc", ALICE)
    await CtlHandle(svc, last).write(0, b"snapshot delete before", ALICE_BOT)
    assert last.get(ALICE).startswith(b"chunks_freed")
    assert last.get(ALICE_BOT) == b"snapshot before deleted\n"
    assert last.get(BOB) == b""
    assert last.read(ALICE_BOT, 9, 6) == b"before"


def test_last_replies_are_bounded():
    last = LastReplies(maxsize=2)
    for uid in range(5):
        last.remember(Caller(uid=uid), b"%d" % uid)
    assert [last.get(Caller(uid=u)) for u in range(5)] == [b"", b"", b"", b"3", b"4"]


def test_encode_text_restores_surrogate_escaped_names():
    assert encode_text("a\udcffb") == b"a\xffb"
    assert encode_text("\ud800") == b"?"

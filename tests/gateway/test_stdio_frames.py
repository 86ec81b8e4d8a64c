"""The stdio transport's frame limit: oversized frames are refused unread, the next is served.

Unit tests drive `gateway._stdio` over real pipes (read and written on the event
loop) and over regular files (the worker-thread fallback); the end-to-end tests
send raw frames to the real gateway process in front of `recording_server.py`,
which writes down every call that reaches it.
"""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.shared.message import SessionMessage

from tests.gateway._cli import command_prefix
from tests.gateway.conftest import ROOT
from warrant import warrants
from warrant.enforce import TrustDomain
from warrant.gateway._stdio import (
    SKIP_CHUNK,
    Oversized,
    PipeFrames,
    read_frame,
    request_id,
    stdio_server,
)

RECORDER = Path(__file__).with_name("recording_server.py")
LIMIT = 10_000
ANSWER_TIMEOUT_S = 20


# -- the frame reader -------------------------------------------------------------------------

def test_frames_up_to_the_limit_are_read_and_longer_ones_are_skipped_to_their_end() -> None:
    source = io.BufferedReader(io.BytesIO(
        b"a" * 10 + b"\n" + b"b" * 11 + b"\n" + b"c" * 100_000 + b"\nlast"), buffer_size=64)
    assert read_frame(source, 10) == b"a" * 10
    assert read_frame(source, 10) == Oversized(size=11, request_id=None)
    assert read_frame(source, 10) == Oversized(size=100_000, request_id=None)
    assert read_frame(source, 10) == b"last"  # the end of input ends the last frame
    assert read_frame(source, 10) is None


def test_an_oversized_frame_keeps_at_most_the_limit_in_memory() -> None:
    class Counting(io.RawIOBase):
        """Endless `x`s, then a newline; records the largest read asked of it."""

        def __init__(self, total: int):
            self.left, self.largest = total, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            self.largest = max(self.largest, len(buffer))
            if self.left <= 0:
                return 0
            n = min(len(buffer), self.left)
            buffer[:n] = b"x" * (n - 1) + (b"\n" if n == self.left else b"x")
            self.left -= n
            return n

    raw = Counting(50_000_000)
    frame = read_frame(io.BufferedReader(raw, buffer_size=8192), 1000)
    assert frame == Oversized(size=49_999_999, request_id=None)
    assert raw.largest <= 64 * 1024


@pytest.mark.parametrize(("head", "expected"), [
    (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"x":"aaa', 7),
    (b'{ "id" : "r-1" , "method" : "ping", "params": {"id": 9, "x": "', "r-1"),
    # The request's own id is not known yet: a nested one must not be taken for it.
    (b'{"jsonrpc":"2.0","method":"tools/call","params":{"id":5,"x":"aaa', None),
    (b'{"method":"tools/call","params":{"a":"b"},"jsonrpc":"2.0","id":3}', 3),
    # Responses and notifications are never answered with an id.
    (b'{"jsonrpc":"2.0","id":4,"result":{"x":"aaa', None),
    (b'{"jsonrpc":"2.0","id":4,"error":{"code":1}}', None),
    (b'{"jsonrpc":"2.0","method":"notifications/x","params":{"a":"', None),
    # Odd ids and odd frames.
    (b'{"id":true,"method":"ping"}', None),
    (b'{"id":1.5,"method":"ping"}', None),
    (b'{"id":1,"id":2,"method":"ping"}', None),
    (b'[{"id":1,"method":"ping"}]', None),
    (b'\xff\xfe{"id":1', None),
    (b"[" * 5000, None),
    (b"", None),
])
def test_the_request_id_of_an_oversized_frame_is_taken_only_from_its_top_level(
        head: bytes, expected: object) -> None:
    assert request_id(head) == expected


# Frames that end exactly at, just past and far past the limit, CRs, bad UTF-8, empty lines.
FRAME_BYTES = st.lists(st.sampled_from([b"a", b"{", b"\r", b"\n", b"\n", b"\xff", b"\xc3\xa9"]),
                       max_size=300).map(b"".join)


@settings(max_examples=150, deadline=None)
@given(data=FRAME_BYTES, limit=st.integers(1, 40),
       chunks=st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_the_pipe_reader_frames_any_bytes_exactly_as_the_blocking_reader(
        data: bytes, limit: int, chunks: list[int]) -> None:
    expected = []
    source = io.BufferedReader(io.BytesIO(data), buffer_size=16)
    while (frame := read_frame(source, limit)) is not None:
        expected.append(frame)
    assert pipe_frames(data, limit, chunks) == expected


def test_the_pipe_reader_skips_an_oversized_frame_one_chunk_at_a_time() -> None:
    limit = 1000
    data = (b'{"id":"r","method":"ping","x":"' + b"x" * (3 * SKIP_CHUNK + 5) + b'"}\n'
            + b"next\n")
    frames = pipe_frames(data, limit, [SKIP_CHUNK // 3 + 1])
    assert frames == [Oversized(size=len(data) - 6, request_id="r"), b"next"]


def pipe_frames(data: bytes, limit: int, chunks: list[int]) -> list[bytes | Oversized]:
    """What `PipeFrames` reads from a real pipe that `data` is written to in `chunks` sizes."""
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb", buffering=0) as sink:
            at, turn = 0, 0
            while at < len(data):
                size = chunks[turn % len(chunks)]
                sink.write(data[at:at + size])
                at, turn = at + size, turn + 1

    async def read_all() -> list[bytes | Oversized]:
        reader, frames = PipeFrames(read_end, limit), []
        with anyio.fail_after(ANSWER_TIMEOUT_S):
            while (frame := await reader.next()) is not None:
                frames.append(frame)
                # INVARIANT: at most the limit plus one read is ever held.
                assert len(reader._buffer) <= limit + SKIP_CHUNK
        return frames

    os.set_blocking(read_end, False)
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        return anyio.run(read_all)
    finally:
        writer.join()
        os.close(read_end)


@dataclass
class Wire:
    """The transport's input and output: real pipes (event loop) or regular files (threads)."""

    stdin: io.BufferedReader
    stdout: io.BufferedWriter
    feed: Any  # (bytes) -> None: what the client sends
    end: Any  # () -> None: the client closes its side
    output: Any  # () -> bytes: what the transport wrote, once it stopped


@contextmanager
def wire(kind: str, tmp_path: Path) -> Iterator[Wire]:
    if kind == "pipes":
        read_in, write_in = os.pipe()
        read_out, write_out = os.pipe()
        written: list[bytes] = []

        def drain() -> None:
            with os.fdopen(read_out, "rb") as out:
                written.append(out.read())

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        closed: list[int] = []

        def end() -> None:
            if not closed:
                closed.append(write_in)
                os.close(write_in)

        def output() -> bytes:
            drainer.join(ANSWER_TIMEOUT_S)
            return written[0]

        with os.fdopen(read_in, "rb") as stdin, os.fdopen(write_out, "wb") as stdout:
            try:
                yield Wire(stdin, stdout, lambda data: os.write(write_in, data), end, output)
            finally:
                end()
        return
    path_in, path_out = tmp_path / "in", tmp_path / "out"
    path_in.write_bytes(b"")
    with path_in.open("rb") as stdin, path_out.open("wb") as stdout:
        def feed(data: bytes) -> None:
            with path_in.open("ab") as sink:
                sink.write(data)

        yield Wire(stdin, stdout, feed, lambda: None, path_out.read_bytes)


@pytest.mark.parametrize("kind", ["pipes", "files"])
def test_the_transport_refuses_an_oversized_frame_and_serves_the_next(
        kind: str, tmp_path: Path) -> None:
    ping = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}).encode()
    big = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"x" * 5000 + b'"}}'
    with wire(kind, tmp_path) as io_:
        async def body() -> None:
            # Both send input before serving starts: a regular file ends where it is read.
            io_.feed(big + b"\n" + ping + b"\nnot json\r\n")
            io_.end()
            async with stdio_server(max_frame_bytes=1000, stdin=io_.stdin,
                                    stdout=io_.stdout) as (read, write):
                # Pipes are waited on by the event loop, files read by worker threads.
                assert os.get_blocking(io_.stdin.fileno()) is (kind == "files")
                assert os.get_blocking(io_.stdout.fileno()) is (kind == "files")
                received = [item async for item in read]
                await write.send(SessionMessage(types.JSONRPCResponse(
                    jsonrpc="2.0", id=2, result={})))
            assert os.get_blocking(io_.stdin.fileno())  # as they were before
            assert os.get_blocking(io_.stdout.fileno())
            assert len(received) == 2
            assert isinstance(received[0], SessionMessage)
            assert isinstance(received[0].message, types.JSONRPCRequest)
            assert received[0].message.id == 2
            assert isinstance(received[1], Exception)  # passed on for the gateway to answer

        anyio.run(body)
        io_.stdout.close()
        answers = [json.loads(line) for line in io_.output().splitlines()]
    assert answers[0]["id"] == 1
    assert answers[0]["error"]["code"] == types.INVALID_REQUEST
    assert answers[0]["error"]["message"].startswith("message too large: ")
    assert answers[1] == {"jsonrpc": "2.0", "id": 2, "result": {}}


def test_an_answer_larger_than_the_pipe_waits_for_the_client_to_read_it(
        tmp_path: Path) -> None:
    text = "y" * (8 * SKIP_CHUNK)  # a pipe holds 64 KiB: the writer must wait, not fail
    with wire("pipes", tmp_path) as io_:
        async def body() -> None:
            async with stdio_server(max_frame_bytes=1000, stdin=io_.stdin,
                                    stdout=io_.stdout) as (_, write):
                for request in (1, 2):
                    await write.send(SessionMessage(types.JSONRPCResponse(
                        jsonrpc="2.0", id=request, result={"text": text})))

        anyio.run(body)
        io_.stdout.close()
        answers = [json.loads(line) for line in io_.output().splitlines()]
    assert [(a["id"], a["result"]["text"]) for a in answers] == [(1, text), (2, text)]


def test_the_transport_stops_while_the_client_keeps_its_pipe_open(tmp_path: Path) -> None:
    with wire("pipes", tmp_path) as io_:
        async def body() -> None:
            with anyio.fail_after(ANSWER_TIMEOUT_S):
                async with stdio_server(max_frame_bytes=1000, stdin=io_.stdin,
                                        stdout=io_.stdout):
                    await anyio.sleep(0)  # the reader now waits for input that never comes

        anyio.run(body)
        assert os.get_blocking(io_.stdin.fileno())


def test_a_wire_shared_with_stderr_is_not_made_non_blocking(tmp_path: Path) -> None:
    """Non-blocking belongs to the open pipe, so stderr (ours, our children's) would get it."""
    with wire("pipes", tmp_path) as io_:
        saved = os.dup(2)
        os.dup2(io_.stdout.fileno(), 2)
        try:
            async def body() -> None:
                async with stdio_server(max_frame_bytes=1000, stdin=io_.stdin,
                                        stdout=io_.stdout) as (_, write):
                    assert os.get_blocking(2)
                    assert not os.get_blocking(io_.stdin.fileno())
                    await write.send(SessionMessage(types.JSONRPCResponse(
                        jsonrpc="2.0", id=1, result={})))

            anyio.run(body)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        io_.stdout.close()
        assert json.loads(io_.output()) == {"jsonrpc": "2.0", "id": 1, "result": {}}


def test_a_limit_below_one_byte_is_refused() -> None:
    async def body() -> None:
        async with stdio_server(max_frame_bytes=0, stdin=io.BytesIO(), stdout=io.BytesIO()):
            pass  # pragma: no cover - never entered

    with pytest.raises(ValueError, match="at least 1"):
        anyio.run(body)


# -- the real gateway -------------------------------------------------------------------------

@dataclass
class RawGateway:
    process: subprocess.Popen[bytes]
    record: Path
    lines: queue.Queue[bytes | None] = field(default_factory=queue.Queue)

    def send(self, frame: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(frame + b"\n")
        self.process.stdin.flush()

    def answer(self) -> dict[str, Any]:
        line = self.lines.get(timeout=ANSWER_TIMEOUT_S)
        assert line is not None, f"the gateway closed stdout (exit {self.process.poll()})"
        message: dict[str, Any] = json.loads(line)
        return message

    def call(self, request_id: int, text: str) -> dict[str, Any]:
        self.send(call_frame(request_id, text))
        return self.answer()

    def peak_memory_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text("utf-8")
        return int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("VmHWM:")))

    def reached(self) -> list[str]:
        if not self.record.exists():
            return []
        return [json.loads(line)["arguments"]["text"]
                for line in self.record.read_text("utf-8").splitlines()]


def call_frame(request_id: int, text: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                       "params": {"name": "rec__echo", "arguments": {"text": text}}}).encode()


@contextmanager
def raw_gateway(tmp_path: Path) -> Iterator[RawGateway]:
    home = tmp_path / "home"
    with TrustDomain.init(home, "acme.example", settings={"strict": False}) as domain:
        _, key = domain.register_agent("bot", owner="ops", purpose="echoes")
        assert key is not None
        issued = domain.issue_credential("bot")
        _, token = domain.mint(agent="bot", task="echo",
                               tools=[warrants.parse_tool_spec("rec/echo")])
    record = tmp_path / "record.jsonl"
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({
        "servers": {"rec": {"command": [sys.executable, str(RECORDER), str(record)],
                            "unsafe_no_sandbox": True}},
        "limits": {"call_timeout_s": 10, "max_message_bytes": LIMIT}}), encoding="utf-8")
    env = {"WARRANT_HOME": str(home),
           "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT))),
           "WARRANT_CREDENTIAL": issued.token,
           "WARRANT_WARRANT": token, "WARRANT_AGENT_KEY_FILE": str(key)}
    process = subprocess.Popen([*command_prefix(), "gateway", "--config", str(config)], env=env,
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    gateway = RawGateway(process, record)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            gateway.lines.put(line)
        gateway.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        gateway.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}).encode())
        assert "result" in gateway.answer()
        gateway.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        yield gateway
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            pytest.fail("the gateway did not stop when its client left")


@pytest.mark.claim("gateway.fail-closed")
def test_an_oversized_stdio_frame_is_refused_unread_and_the_next_call_works(
        tmp_path: Path) -> None:
    with raw_gateway(tmp_path) as gateway:
        answer = gateway.call(1, "x" * LIMIT)  # the frame is longer than the limit
        assert answer["id"] == 1
        assert answer["error"]["code"] == types.INVALID_REQUEST
        assert answer["error"]["message"] == (
            f"message too large: {len(call_frame(1, 'x' * LIMIT))} bytes, more than the "
            f"{LIMIT} allowed (limits.max_message_bytes); it was not read")
        # Its id comes last (as some clients write it): it is answered with id null.
        gateway.send(b'{"method":"tools/call","params":{"name":"rec__echo","arguments":'
                     b'{"text":"' + b"y" * LIMIT + b'"}},"jsonrpc":"2.0","id":2}')
        answer = gateway.answer()
        assert answer["id"] is None and "message too large" in answer["error"]["message"]
        answer = gateway.call(3, "fits")
        assert answer["id"] == 3 and answer["result"]["content"][0]["text"] == "fits"
        assert gateway.reached() == ["fits"]


def test_an_endless_stdio_line_does_not_grow_the_gateways_memory(tmp_path: Path) -> None:
    with raw_gateway(tmp_path) as gateway:
        assert gateway.call(1, "warm")["id"] == 1
        before = gateway.peak_memory_kib()
        assert gateway.process.stdin is not None
        chunk = b"z" * (1 << 20)
        gateway.process.stdin.write(b'{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":"')
        for _ in range(64):  # 64 MiB in one line
            gateway.process.stdin.write(chunk)
        gateway.send(b'"}}')
        answer = gateway.answer()
        assert answer["id"] == 2 and "message too large" in answer["error"]["message"]
        # Reading the line whole would have cost at least its 64 MiB.
        assert gateway.peak_memory_kib() - before < 16 * 1024
        assert gateway.call(3, "after")["result"]["content"][0]["text"] == "after"
    assert gateway.reached() == ["warm", "after"]

"""The downstream stdio transport: newline-delimited JSON-RPC frames of bounded size.

The SDK's `stdio_server` reads a whole line before anything can look at it, so
a client that sends one endless line makes the gateway hold all of it in
memory. This transport reads at most `max_frame_bytes + 1` bytes of a frame; a
longer frame is skipped in small chunks (memory stays bounded by the limit),
answered with a JSON-RPC error, and the next frame is read as usual. The error
carries the request's id when the frame's beginning shows it is a request (a
top-level `"id"` and `"method"` within its first few KiB, as the SDK's clients
write them), else id null.

Everything else matches the SDK's transport, so both parse the same bytes the
same way: frames end with `\\n`; each is decoded as UTF-8 with replacement and
split at universal newlines (`\\r`, `\\r\\n`); a line that is not a JSON-RPC
message arrives on the read stream as the parser's `Exception` (the gateway
answers those). While serving, fd 0 reads /dev/null and fd 1 writes to stderr,
so stray output of the process or its children cannot corrupt the wire.

When the wire is a pipe or a socket (as under an MCP client), frames are read
and written on the event loop: the descriptors are made non-blocking while
serving and the loop waits for them to be ready (`PipeFrames`, `write_ready`).
Handing each frame to a worker thread instead (the SDK's way, and the fallback
here for ttys and regular files, which an event loop cannot wait on) cost two
thread hand-offs per call: ~6 more context switches and 9-13 % more of the
gateway's CPU per call (bench/README.md, "Non-blocking stdio").
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

log = logging.getLogger("warrant.gateway")

#: JSON-RPC 2.0's code for a message that is not a valid request (here: too large).
INVALID_REQUEST = types.INVALID_REQUEST
#: How much of an oversized frame is skipped per read (bounds memory while skipping).
SKIP_CHUNK = 64 * 1024
#: How much of an oversized frame's beginning is searched for its request id.
ID_WINDOW = 4096

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame longer than the limit: its size and, when cheaply known, its request id."""

    size: int
    request_id: str | int | None


def read_frame(source: BinaryIO, limit: int) -> bytes | Oversized | None:
    """The next frame of `source` without its `\\n` (blocking); None at end of input.

    Holds at most `limit + 1` bytes of a frame, plus `SKIP_CHUNK` while skipping one.
    """
    line = source.readline(limit + 1)
    if not line:
        return None
    if line.endswith(b"\n"):
        return line[:-1]
    if len(line) <= limit:  # the last frame, ended by the end of input
        return line
    size, head = len(line), line[:ID_WINDOW]
    del line  # only the head is kept while the rest is skipped
    while chunk := source.readline(SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            size += len(chunk) - 1
            break
        size += len(chunk)
    return Oversized(size=size, request_id=request_id(head))


class PipeFrames:
    """`read_frame` for a non-blocking pipe or socket, waiting on the event loop.

    Frames come out exactly as `read_frame` gives them for the same bytes. The
    buffer holds at most `limit` bytes plus one read of `SKIP_CHUNK`: a frame
    with no newline in its first `limit + 1` bytes is skipped chunk by chunk.
    """

    def __init__(self, fd: int, limit: int):
        self._fd, self._limit = fd, limit
        self._buffer = bytearray()
        self._scanned = 0  # how much of the buffer's beginning holds no newline
        self._eof = False

    async def next(self) -> bytes | Oversized | None:
        """The next frame without its `\\n`; None at end of input."""
        while True:
            end = self._buffer.find(b"\n", self._scanned, self._limit + 1)
            if end >= 0:
                return self._take(end, drop=1)
            self._scanned = min(len(self._buffer), self._limit + 1)
            if len(self._buffer) > self._limit:
                return await self._skip()
            if self._eof:  # the last frame, ended by the end of input
                return self._take(len(self._buffer), drop=0) if self._buffer else None
            await self._fill()

    def _take(self, end: int, *, drop: int) -> bytes:
        frame = bytes(self._buffer[:end])
        del self._buffer[:end + drop]
        self._scanned = 0
        return frame

    async def _skip(self) -> Oversized:
        head = bytes(self._buffer[:ID_WINDOW])
        size = 0
        while (end := self._buffer.find(b"\n", self._scanned)) < 0:
            size += len(self._buffer)
            self._buffer.clear()  # only the head is kept while the rest is skipped
            self._scanned = 0
            if self._eof:
                return Oversized(size=size, request_id=request_id(head))
            await self._fill()
        self._take(end, drop=1)
        return Oversized(size=size + end, request_id=request_id(head))

    async def _fill(self) -> None:
        while True:
            try:
                data = os.read(self._fd, SKIP_CHUNK)
            except BlockingIOError:
                await anyio.wait_readable(self._fd)
                continue
            if data:
                self._buffer += data
            else:
                self._eof = True
            return


async def write_ready(fd: int, data: bytes) -> None:
    """Write all of `data` to the non-blocking `fd`, waiting on the event loop when it is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await anyio.wait_writable(fd)


def request_id(head: bytes) -> str | int | None:
    """The `id` of the request that `head` begins, if its top level shows it; else None.

    Only members read in full before the head ends count, and only when there is a
    string `"method"` too: a response's or a notification's id is never answered,
    and a nested `"id"` (inside `params`) is never taken for the request's.
    """
    members = _top_level_members(head.decode("utf-8", "replace"))
    found = members.get("id")
    if not isinstance(members.get("method"), str) or isinstance(found, bool):
        return None
    return found if isinstance(found, str | int) else None


def _top_level_members(text: str) -> dict[str, Any]:
    """The members of the JSON object `text` begins that are complete within `text`."""
    members: dict[str, Any] = {}
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return members
    at += 1
    while True:
        at = _skip(text, at)
        try:
            key, at = _DECODER.raw_decode(text, at)
            at = _skip(text, at)
            if not isinstance(key, str) or not text.startswith(":", at):
                return members
            value, at = _DECODER.raw_decode(text, _skip(text, at + 1))
        except (ValueError, RecursionError):  # cut off by the window, or not JSON
            return members
        if key in members:  # a repeated key: which one a parser keeps is not ours to guess
            return {}
        members[key] = value
        at = _skip(text, at)
        if not text.startswith(",", at):
            return members
        at += 1


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def frame_lines(frame: bytes) -> list[str]:
    """`frame` as the SDK's transport reads it: UTF-8 with replacement, universal newlines."""
    if frame.endswith(b"\r"):  # `\r\n` ends one line, as in text mode
        frame = frame[:-1]
    text = frame.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def too_large(oversized: Oversized, limit: int) -> SessionMessage:
    """The JSON-RPC error answering an oversized frame."""
    return SessionMessage(types.JSONRPCError(
        jsonrpc="2.0", id=oversized.request_id, error=types.ErrorData(
            code=INVALID_REQUEST,
            message=f"message too large: {oversized.size} bytes, more than the "
                    f"{limit} allowed (limits.max_message_bytes); it was not read")))


@asynccontextmanager
async def stdio_server(
        *, max_frame_bytes: int, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
) -> AsyncIterator[tuple[MemoryObjectReceiveStream[SessionMessage | Exception],
                         MemoryObjectSendStream[SessionMessage]]]:
    """Serve JSON-RPC on stdin/stdout (or the given binary streams) until the input ends.

    Yields (read, write) like the SDK's `stdio_server`. Pipes and sockets are
    served on the event loop (given streams must not have been read from: what
    their buffer holds would be missed), anything else through worker threads.
    Raises ValueError for a limit below one byte.
    """
    if max_frame_bytes < 1:
        raise ValueError("max_frame_bytes must be at least 1")
    with ExitStack() as stack:
        if stdin is None or stdout is None:
            wire_in, wire_out = stack.enter_context(_claim_stdio())
            stdin, stdout = stdin or wire_in, stdout or wire_out
        source: BinaryIO | PipeFrames = stdin
        sink: BinaryIO | int = stdout
        if (fd_in := stack.enter_context(_non_blocking(stdin))) is not None:
            source = PipeFrames(fd_in, max_frame_bytes)
        stdout.flush()  # what was written before goes first
        if (fd_out := stack.enter_context(_non_blocking(stdout))) is not None:
            sink = fd_out
        read_send, read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_send, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
        reading = anyio.CancelScope()

        async def read_frames(source: BinaryIO | PipeFrames,
                              reply: MemoryObjectSendStream[SessionMessage]) -> None:
            with reading:
                async with read_send, reply:
                    await _read_frames(source, max_frame_bytes, read_send, reply)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_frames, source, write_send.clone())
            tg.start_soon(_write_frames, write_receive, sink)
            try:
                yield read_receive, write_send
            finally:
                # The reader may wait on input that never comes; the writer drains first.
                reading.cancel()
                write_send.close()


async def _read_frames(source: BinaryIO | PipeFrames, limit: int,
                       send: MemoryObjectSendStream[SessionMessage | Exception],
                       reply: MemoryObjectSendStream[SessionMessage]) -> None:
    try:
        while True:
            if isinstance(source, PipeFrames):
                frame = await source.next()
            else:
                # A blocked read cannot be interrupted; on cancel the thread is left to it.
                frame = await anyio.to_thread.run_sync(read_frame, source, limit,
                                                       abandon_on_cancel=True)
            if frame is None:
                return
            if isinstance(frame, Oversized):
                log.info("refused a stdio frame of %d bytes (limit %d)", frame.size, limit)
                await reply.send(too_large(frame, limit))
                continue
            for line in frame_lines(frame):
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception as exc:  # the parser's error goes on, as in the SDK
                    await send.send(exc)
                    continue
                await send.send(SessionMessage(message))
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        return  # the session stopped listening


async def _write_frames(receive: MemoryObjectReceiveStream[SessionMessage],
                        sink: BinaryIO | int) -> None:
    async with receive:
        async for message in receive:
            data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
            frame = data.encode("utf-8") + b"\n"
            if isinstance(sink, int):
                await write_ready(sink, frame)
            else:
                await anyio.to_thread.run_sync(_write_flush, sink, frame)


def _write_flush(sink: BinaryIO, frame: bytes) -> None:
    sink.write(frame)
    sink.flush()


@contextmanager
def _non_blocking(stream: BinaryIO) -> Iterator[int | None]:
    """`stream`'s descriptor made non-blocking while the block runs, when the event loop
    can wait on it (a pipe or a socket); else None.

    Not when the descriptor is stderr's pipe: non-blocking is a property of the
    open file, which fd 2 (the process's and its children's log) might share.
    """
    try:
        fd = stream.fileno()
        found = os.fstat(fd)
    except (AttributeError, OSError, ValueError):  # no descriptor (e.g. io.BytesIO)
        yield None
        return
    if (sys.platform == "win32" or not (stat.S_ISFIFO(found.st_mode)
                                        or stat.S_ISSOCK(found.st_mode))
            or _same_file(found, 2)):
        yield None
        return
    was_blocking = os.get_blocking(fd)
    os.set_blocking(fd, False)
    try:
        yield fd
    finally:
        if was_blocking:  # (an OSError: the caller closed it meanwhile, nothing to restore)
            with suppress(OSError):
                os.set_blocking(fd, True)


def _same_file(found: os.stat_result, fd: int) -> bool:
    try:
        other = os.fstat(fd)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (other.st_dev, other.st_ino)


@contextmanager
def _claim_stdio() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """The wire on private descriptors; meanwhile fd 0 reads /dev/null and fd 1 is stderr.

    The private descriptors are never closed: a worker thread may still be blocked
    reading one after the transport has stopped, and a reused number would be read.
    """
    wire_in, wire_out = os.dup(0), os.dup(1)  # not inheritable (PEP 446)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
    finally:
        os.close(null)
    try:
        yield (os.fdopen(wire_in, "rb", closefd=False),
               os.fdopen(wire_out, "wb", closefd=False))
    finally:
        os.dup2(wire_out, 1)
        os.dup2(wire_in, 0)

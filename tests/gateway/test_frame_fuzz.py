"""Fuzzing the gateway's frame parsing: random, malformed, oversized, deeply nested and
invalid-UTF-8 JSON-RPC frames sent to a REAL gateway, over stdio and streamable HTTP.

The gateway runs as a subprocess in front of `recording_server.py`, which writes
down every `tools/call` it receives. The warrant grants only
`rec/echo:text^=probe-`, so the only calls that may ever reach the upstream are
the test's own numbered probes. After each fuzzed frame a well-formed probe
call must come back with its echo: for every frame the gateway answers with a
JSON-RPC error (or nothing, for a frame without an id), never crashes, never
forwards the frame, and keeps serving the well-formed client.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.gateway._cli import command_prefix
from tests.gateway.conftest import ROOT
from tests.gateway.test_gateway_http import free_port, wait_for_port
from warrant import identity, warrants
from warrant.enforce import TrustDomain
from warrant.gateway._http import request_headers

RECORDER = Path(__file__).with_name("recording_server.py")
GRANT = "rec/echo:text^=probe-"
#: Small limits so that "oversized" is cheap to reach.
MAX_REQUEST_BYTES = 64_000
#: Bound on one answer from the gateway (a probe round trip is milliseconds).
ANSWER_TIMEOUT_S = 20
POST_HEADERS = {"Content-Type": "application/json",
                "Accept": "application/json, text/event-stream"}
FUZZ = settings(max_examples=200, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NOTIFY_ONLY = """version: 1
id: fuzz-notify-only
description: notify; no automatic containment
match:
  severities: [low, medium, high, critical]
steps:
  - action: notify
"""


@dataclass
class Domain:
    home: Path
    config: Path
    record: Path
    credential: str
    warrant: str
    key_file: Path

    def env(self, *, with_tokens: bool) -> dict[str, str]:
        env = {"WARRANT_HOME": str(self.home),
               "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT))),
               "PATH": os.environ.get("PATH", "")}
        if with_tokens:
            for name, text in (("credential", self.credential), ("warrant", self.warrant)):
                path = self.home.parent / name
                path.write_text(text, encoding="utf-8")
                os.chmod(path, 0o600)
                env[f"WARRANT_{name.upper()}_FILE"] = str(path)
            env["WARRANT_AGENT_KEY_FILE"] = str(self.key_file)
        return env

    def recorded(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    root = tmp_path_factory.mktemp("fuzz")
    home = root / "home"
    with TrustDomain.init(home, "acme.example") as created:
        _, key = created.register_agent("bot", owner="ops", purpose="echoes probes")
        assert key is not None
        issued = created.issue_credential("bot")
        _, token = created.mint(agent="bot", task="echo probes",
                                tools=[warrants.parse_tool_spec(GRANT)],
                                on_behalf_of="user:alice")
    # The recorder must write its record on the host, which only an unsandboxed
    # server may do, and a strict domain refuses those.
    settings_file = home / "config.toml"
    settings_file.write_text(settings_file.read_text(encoding="utf-8").replace(
        "strict = true", "strict = false"), encoding="utf-8")
    # Fuzzed calls are denied by the hundred; the shipped playbooks would rightly
    # revoke the task for it. Here detections only notify, so probes keep testing
    # forwarding rather than the (separately tested) containment.
    (home / "playbooks").mkdir()
    (home / "playbooks" / "notify-only.yaml").write_text(NOTIFY_ONLY, encoding="utf-8")
    record = root / "record.jsonl"
    config = root / "gateway.json"
    config.write_text(json.dumps({
        "servers": {"rec": {"command": [sys.executable, str(RECORDER), str(record)],
                            "unsafe_no_sandbox": True}},
        "limits": {"call_timeout_s": 10, "max_message_bytes": 200_000,
                   "max_request_bytes": MAX_REQUEST_BYTES}}), encoding="utf-8")
    return Domain(home=home, config=config, record=record, credential=issued.token,
                  warrant=token, key_file=key)


# -- frames -------------------------------------------------------------------------------

METHODS = ("tools/call", "tools/list", "initialize", "ping", "resources/read", "prompts/get",
           "notifications/initialized", "notifications/cancelled", "completion/complete",
           "logging/setLevel", "", "tools/call\x00", "TOOLS/CALL")
JSON_LEAF = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
             | st.floats(allow_nan=False) | st.text(max_size=40))
JSON = st.recursive(JSON_LEAF, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=20)
MISSING = object()


def _message(jsonrpc: object, request_id: object, method: object, params: object) -> dict[str, Any]:
    message = {"jsonrpc": jsonrpc, "id": request_id, "method": method, "params": params}
    return {k: v for k, v in message.items() if v is not MISSING}


#: Frames shaped like JSON-RPC with something wrong or hostile in them. A call to
#: `rec__echo` never carries a `text` starting with "probe-", so the warrant denies
#: any of them that parses: nothing here may reach the upstream.
CALL_PARAMS = st.fixed_dictionaries({"name": st.sampled_from(
    ("rec__echo", "rec__nope", "rec/echo", "echo", "__", "rec__", "rec__echo\x00"))
    | st.text(max_size=20)}, optional={"arguments": JSON | st.dictionaries(
        st.sampled_from(("text", "TEXT", "text\x00")), JSON), "_meta": JSON})
STRUCTURED = st.builds(
    _message,
    st.sampled_from(("2.0", "1.0", 2.0, None, "", MISSING)),
    st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=10) | st.none()
    | st.just(MISSING) | st.floats(allow_nan=False) | st.lists(st.integers(), max_size=2),
    st.sampled_from(METHODS) | st.text(max_size=12) | st.just(MISSING) | st.integers(),
    CALL_PARAMS | JSON | st.just(MISSING),
).map(lambda m: json.dumps(m).encode())


def _nested(depth: int, kind: str) -> bytes:
    inner = ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)
    return (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"rec__echo",'
            b'"arguments":{"text":' + inner.encode() + b"}}}")


NESTED = st.builds(_nested, st.integers(min_value=1, max_value=50_000),
                   st.sampled_from(("list", "dict")))


def _invalid_utf8(frame: bytes, position: int, junk: bytes) -> bytes:
    at = position % (len(frame) + 1)
    return frame[:at] + junk + frame[at:]


#: A lone 0xff, an overlong "/", a surrogate, a 5-byte form, a stray continuation, a cut-off.
BAD_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82")
INVALID_UTF8 = st.builds(_invalid_utf8, STRUCTURED, st.integers(min_value=0),
                         st.sampled_from(BAD_UTF8))
OVERSIZED = st.builds(lambda n, c: b'{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"x":"'
                      + c * n + b'"}}', st.integers(min_value=MAX_REQUEST_BYTES,
                                                    max_value=4 * MAX_REQUEST_BYTES),
                      st.sampled_from((b"a", b"\\u0000", b"\\ud800")))
GARBAGE = st.binary(max_size=2048)
FRAMES = GARBAGE | STRUCTURED | NESTED | INVALID_UTF8 | OVERSIZED


# -- what the transports parse --------------------------------------------------------------

def _lines(frame: bytes) -> list[str]:
    """`frame` as the stdio transport reads it: UTF-8 with replacement, universal newlines."""
    text = frame.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _request_ids(frame: bytes) -> set[int | str]:
    """Ids of the requests the SDK's own parser finds in `frame`: each must be answered."""
    ids: set[int | str] = set()
    for line in _lines(frame):
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError:  # pydantic's ValidationError: the transport drops the line
            continue
        if isinstance(message, types.JSONRPCRequest):
            ids.add(message.id)
    return ids


def _jsonrpc(line: bytes) -> dict[str, Any]:
    """One message the gateway wrote: it must be well-formed JSON-RPC 2.0."""
    message = json.loads(line)
    assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line[:300]
    assert ("method" in message) != ("result" in message or "error" in message), line[:300]
    if "error" in message:
        error = message["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str), line[:300]
    return message


@dataclass
class Probes:
    """What the upstream may have received: the probe calls sent so far, in order."""

    sent: list[str] = field(default_factory=list)

    def next(self) -> str:
        text = f"probe-{len(self.sent)}"
        self.sent.append(text)
        return text

    def assert_only_probes_reached(self, domain: Domain) -> None:
        texts = [entry["arguments"].get("text") for entry in domain.recorded()]
        assert texts == self.sent


def _probe_call(request_id: int, text: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                       "params": {"name": "rec__echo", "arguments": {"text": text}}}).encode()


def _echoed(answer: dict[str, Any]) -> str:
    result = answer.get("result")
    assert isinstance(result, dict) and not result.get("isError"), answer
    text: str = result["content"][0]["text"]
    return text


@pytest.fixture(scope="module")
def probes() -> Probes:
    return Probes()


# -- stdio --------------------------------------------------------------------------------

@dataclass
class StdioGateway:
    process: subprocess.Popen[bytes]
    lines: queue.Queue[bytes | None] = field(default_factory=queue.Queue)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(-1, -1))

    def start_reading(self) -> None:
        def pump() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.put(line)
            self.lines.put(None)  # end of output: the gateway closed its side

        threading.Thread(target=pump, daemon=True).start()

    def send(self, frame: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(frame + b"\n")
        self.process.stdin.flush()

    def exchange(self, frame: bytes, expect: set[int | str]) -> dict[int | str, dict[str, Any]]:
        """Send `frame`; wait for an answer to each id in `expect`; check every line on the way.

        Every expected id is awaited before the next frame goes out, so a fuzzed id
        that equals one of the test's own cannot be mistaken for it later.
        """
        self.send(frame)
        answers: dict[int | str, dict[str, Any]] = {}
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while not expect <= answers.keys():
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no answer to {sorted(map(str, expect - answers.keys()))} "
                            f"within {ANSWER_TIMEOUT_S}s")
            assert line is not None, f"the gateway closed stdout (exit {self.process.poll()})"
            message = _jsonrpc(line)
            if "method" not in message:
                answers[message["id"]] = message
        return answers

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self.ids)
        frame = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                            "params": params}).encode()
        return self.exchange(frame, {request_id})[request_id]

    def probe(self, text: str) -> None:
        request_id = next(self.ids)
        answer = self.exchange(_probe_call(request_id, text), {request_id})[request_id]
        assert _echoed(answer) == text


@contextmanager
def stdio_gateway(domain: Domain) -> Iterator[StdioGateway]:
    stderr = domain.config.with_name("stdio.stderr")
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [*command_prefix(), "gateway", "--config", str(domain.config)],
            env=domain.env(with_tokens=True), cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=err)
    gateway = StdioGateway(process)
    gateway.start_reading()
    try:
        answer = gateway.request("initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "fuzzer", "version": "0"}})
        assert "result" in answer, answer
        gateway.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        yield gateway
    finally:
        assert process.stdin is not None
        process.stdin.close()  # end of input: the gateway stops by itself
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            pytest.fail("the gateway did not stop when its client left")


@pytest.fixture(scope="module")
def stdio(domain: Domain) -> Iterator[StdioGateway]:
    with stdio_gateway(domain) as gateway:
        yield gateway


@pytest.mark.slow
@FUZZ
@given(frame=FRAMES)
def test_stdio_frames_are_answered_never_crash_and_never_reach_the_upstream(
        stdio: StdioGateway, domain: Domain, probes: Probes, frame: bytes) -> None:
    # Every request the transport can parse gets an answer with its id; then a
    # well-formed call still goes through, and nothing else reached the upstream.
    expect = _request_ids(frame)
    event("the transport parses a request in the frame" if expect else "no request parsed")
    stdio.exchange(frame, expect)
    stdio.probe(probes.next())
    assert stdio.process.poll() is None
    probes.assert_only_probes_reached(domain)


def test_invalid_utf8_in_a_stdio_call_is_decided_and_forwarded_as_the_same_text(
        stdio: StdioGateway, domain: Domain, probes: Probes) -> None:
    # The SDK's stdio transport decodes with replacement: the gateway decides on
    # U+FFFD and forwards exactly that, so there is no parser differential to exploit.
    # (Rejecting the frame would be stricter; see the report on issue 3.)
    text = probes.next()
    request_id = next(stdio.ids)
    frame = _probe_call(request_id, text).replace(text.encode(), text.encode() + b"\xff")
    answer = stdio.exchange(frame, {request_id})[request_id]
    probes.sent[-1] = text + "\ufffd"
    assert _echoed(answer) == text + "\ufffd"
    probes.assert_only_probes_reached(domain)
    # A frame that names the tool with invalid UTF-8 names no tool at all.
    request_id = next(stdio.ids)
    bad_name = _probe_call(request_id, "probe-x").replace(b"rec__echo", b"rec__ec\xffho")
    answer = stdio.exchange(bad_name, {request_id})[request_id]
    assert answer["result"]["isError"] and "unknown tool" in answer["result"]["content"][0]["text"]
    probes.assert_only_probes_reached(domain)


def test_an_unparseable_stdio_line_gets_a_json_rpc_error(stdio: StdioGateway) -> None:
    probe_id = next(stdio.ids)
    answers = stdio.exchange(b"{not json\n" + json.dumps(
        {"jsonrpc": "2.0", "id": probe_id, "method": "ping"}).encode(), {probe_id})
    assert None in answers


# -- streamable HTTP ------------------------------------------------------------------------

@dataclass
class HttpGateway:
    url: str
    client: httpx2.Client
    credential: str
    warrant: str
    key: Ed25519PrivateKey
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(-1, -1))

    def post(self, body: bytes) -> httpx2.Response:
        headers = request_headers(body, credential=self.credential, warrant=self.warrant,
                                  agent_key=self.key)
        return self.client.post(self.url, content=body, headers={**POST_HEADERS, **headers})

    def probe(self, text: str) -> None:
        request_id = next(self.ids)
        response = self.post(_probe_call(request_id, text))
        assert response.status_code == 200, response.text
        answer = _jsonrpc(response.content)
        assert answer["id"] == request_id and _echoed(answer) == text


@pytest.fixture(scope="module")
def http(domain: Domain) -> Iterator[HttpGateway]:
    port = free_port()
    stderr = domain.config.with_name("http.stderr")
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [*command_prefix(), "gateway", "--config", str(domain.config),
             "--listen", f"127.0.0.1:{port}"],
            env=domain.env(with_tokens=False), cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for_port(port, process, stderr)
        with httpx2.Client(timeout=ANSWER_TIMEOUT_S) as client:
            yield HttpGateway(url=f"http://127.0.0.1:{port}/mcp", client=client,
                              credential=domain.credential, warrant=domain.warrant,
                              key=identity.read_private_key(domain.key_file))
        assert process.poll() is None, "the gateway died while being fuzzed"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.slow
@FUZZ
@given(frame=FRAMES)
def test_http_bodies_get_a_json_rpc_error_never_crash_and_never_reach_the_upstream(
        http: HttpGateway, domain: Domain, probes: Probes, frame: bytes) -> None:
    response = http.post(frame)
    if len(frame) > MAX_REQUEST_BYTES:
        assert response.status_code == 413
    elif response.status_code == 202:  # a notification: accepted, nothing to answer
        assert not response.content
    else:
        # 200 for a parsed request (its result or error), 400 with a JSON-RPC error
        # (id null) for a body that is not one; never a 5xx.
        assert response.status_code in (200, 400), (response.status_code, response.text)
        answer = _jsonrpc(response.content)
        if response.status_code == 400:
            assert answer["id"] is None and "error" in answer
    http.probe(probes.next())
    probes.assert_only_probes_reached(domain)


def test_request_headers_survive_a_deeply_nested_body(domain: Domain) -> None:
    request_headers(_nested(50_000, "list"), credential=domain.credential,
                    warrant=domain.warrant, agent_key=identity.read_private_key(domain.key_file))

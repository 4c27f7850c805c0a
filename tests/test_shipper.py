"""The ``otlp`` transport's shipper against real OTLP servers: HTTP (protobuf, JSON) and gRPC.

Nothing is mocked: an in-process ``ThreadingHTTPServer`` and a real ``grpc.server`` with a
``LogsServiceServicer`` answer each request per a script (accept, 503 with ``Retry-After``,
400, a dropped connection, ...) and record what they accepted. Segments are written in the
spool's contract layout (``<root>/<instance>/seg-<stamp>Z-<n>.jsonl``) from real SDK records
by the project's encoder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from hypothesis import given
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from otel_audit._transport._shipper import OtlpConfigError, OtlpTarget, SegmentShipper
from otel_audit._transport._shipper_send import protobuf_request
from otel_audit._transport._spool import SpoolWriter
from otel_audit.archive._otlp_json import encode_logs_line

from .test_otlp_json_oracle import LIMITS, _doubles_as_repr, _raise, batches, examples

PROTOCOLS = ["http/protobuf", "http/json", "grpc"]
INSTANCE = "11111111-1111-4111-8111-111111111111"
WAIT = 20.0  # seconds a condition may take before the test gives up (not a timing assertion)

# -- spool segments in the contract layout ----------------------------------------------------


def records(bodies: list[str]) -> tuple[ReadableLogRecord, ...]:
    """Real SDK records, one per body."""
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(Resource({"service.name": "shop"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("otel_audit")
    for body in bodies:
        logger.emit(event_name="audit.test", body=body, attributes={"audit.event.id": body})
    return memory.get_finished_logs()


def line(*bodies: str) -> bytes:
    """One spool line holding one record per body."""
    return (encode_logs_line(records(list(bodies)), on_error=_raise) + "\n").encode()


def write_segment(folder: Path, number: int, bodies: list[str], *, is_open: bool = False) -> Path:
    """A segment with one line per body (closed unless ``is_open``)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"seg-20261130T120000.{number:06d}Z-{number:06d}.jsonl" + (".open" if is_open else "")
    path = folder / name
    path.write_bytes(b"".join(line(body) for body in bodies))
    return path


def bodies_of(request: dict[str, Any]) -> list[str]:
    """The record bodies of one OTLP/JSON request, in order."""
    return [
        record["body"]["stringValue"]
        for resource_logs in request.get("resourceLogs", [])
        for scope_logs in resource_logs["scopeLogs"]
        for record in scope_logs["logRecords"]
    ]


# -- scripted real servers --------------------------------------------------------------------


@dataclass
class Script:
    """What the server answers, request by request (``ok`` once the script runs out)."""

    steps: list[Any] = field(default_factory=list)
    received: list[str] = field(default_factory=list)  # bodies of every request it saw
    accepted: list[str] = field(default_factory=list)  # bodies of requests answered 2xx
    requests: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)  # of every request
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, bodies: list[str]) -> Any:
        with self.lock:
            self.requests += 1
            self.received.extend(bodies)
            step = self.steps.pop(0) if self.steps else "ok"
            if step == "ok" or (isinstance(step, tuple) and step[0] == "partial"):
                self.accepted.extend(bodies)
            return step


def _request_bodies(content_type: str, payload: bytes) -> list[str]:
    if content_type == "application/json":
        return bodies_of(json.loads(payload))
    request = ExportLogsServiceRequest.FromString(payload)
    return bodies_of(MessageToDict(request))


class _Handler(BaseHTTPRequestHandler):
    server: _HttpCollector

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers["Content-Length"]))
        content_type = self.headers["Content-Type"]
        self.server.script.headers.append({k.lower(): v for k, v in self.headers.items()})
        step = self.server.script.next(_request_bodies(content_type, payload))
        if step == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if step == "ok":
            self._answer(200, {}, b"")
        elif isinstance(step, tuple) and step[0] == "partial":
            if content_type == "application/json":
                body = json.dumps({"partialSuccess": {"rejectedLogRecords": str(step[1])}})
                self._answer(200, {}, body.encode())
            else:
                response = ExportLogsServiceResponse()
                response.partial_success.rejected_log_records = step[1]
                self._answer(200, {}, response.SerializeToString())
        else:
            status, headers = step
            self._answer(status, headers, b"no")

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _HttpCollector(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, script: Script) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.script = script


class _Servicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    def Export(self, request: Any, context: Any) -> ExportLogsServiceResponse:
        self.script.headers.append(dict(context.invocation_metadata()))
        step = self.script.next(bodies_of(MessageToDict(request)))
        response = ExportLogsServiceResponse()
        if isinstance(step, tuple) and step[0] == "partial":
            response.partial_success.rejected_log_records = step[1]
        elif step == "drop":
            context.abort(grpc.StatusCode.UNAVAILABLE, "dropped")
        elif step != "ok":
            context.abort(step[0], "scripted")
        return response


class Server:
    """One real OTLP server speaking ``protocol``, on a fixed port (so it can come back)."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.script = Script()
        self.port = _free_port()
        self._http: _HttpCollector | None = None
        self._grpc: Any = None

    def start(self) -> None:
        if self.protocol == "grpc":
            self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(  # type: ignore[no-untyped-call]
                _Servicer(self.script), self._grpc
            )
            self._grpc.add_insecure_port(f"127.0.0.1:{self.port}")
            self._grpc.start()
        else:
            self._http = _HttpCollector(self.port, self.script)
            threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(None).wait()
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def target(self) -> OtlpTarget:
        """The target the environment would name for this server."""
        target = OtlpTarget.from_env(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": self.protocol,
                "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20t0k",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
            }
        )
        assert target is not None
        return target

    def refusal(self) -> Any:
        """The scripted answer that refuses the data itself."""
        return (grpc.StatusCode.INVALID_ARGUMENT,) if self.protocol == "grpc" else (400, {})

    def busy(self) -> Any:
        """The scripted 'come back later' answer."""
        if self.protocol == "grpc":
            return (grpc.StatusCode.RESOURCE_EXHAUSTED,)
        return (503, {"Retry-After": "0"})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Counters:
    """What the shipper reported through its callbacks."""

    drops: list[tuple[str, int]] = field(default_factory=list)
    errors: list[tuple[str, BaseException | None]] = field(default_factory=list)

    def drop(self, reason: str, count: int) -> None:
        self.drops.append((reason, count))

    def error(self, reason: str, error: BaseException | None) -> None:
        self.errors.append((reason, error))


@pytest.fixture(params=PROTOCOLS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A running real server for each protocol."""
    running = Server(request.param)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def counters() -> Counters:
    """Fresh callback counters."""
    return Counters()


def make_shipper(root: Path, server: Server, counters: Counters, **options: Any) -> SegmentShipper:
    """A shipper of ``root/INSTANCE`` to ``server`` with fast polling and backoff."""
    options = {"poll_interval": 0.05, "max_backoff": 0.2, **options}
    return SegmentShipper(
        root, INSTANCE, server.target(), on_drop=counters.drop, on_error=counters.error, **options
    )


def wait_for(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (fails after WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached")
        time.sleep(0.02)


def closed_segments(folder: Path) -> list[str]:
    """Names of the closed segments left in ``folder``."""
    return sorted(path.name for path in folder.glob("seg-*.jsonl"))


EXPECTED = [f"e{segment}-{index}" for segment in range(3) for index in range(4)]


def write_three_segments(folder: Path) -> None:
    """Three closed segments of four one-record lines each, bodies as in EXPECTED."""
    for segment in range(3):
        write_segment(folder, segment + 1, EXPECTED[segment * 4 : segment * 4 + 4])


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_batch_bytes", [1, 1 << 20])
def test_every_line_arrives_once_in_order_and_open_is_never_read(
    tmp_path: Path, server: Server, counters: Counters, max_batch_bytes: int
) -> None:
    """All closed lines arrive exactly once, in order; segments go, the .open one stays."""
    folder = tmp_path / INSTANCE
    write_three_segments(folder)
    open_segment = write_segment(folder, 4, ["still-open"], is_open=True)
    before = open_segment.read_bytes()
    shipper = make_shipper(tmp_path, server, counters, max_batch_bytes=max_batch_bytes)
    shipper.start()
    wait_for(lambda: not closed_segments(folder))
    assert shipper.stop(timeout=5) is False  # the .open segment is still there
    assert server.script.received == EXPECTED
    assert open_segment.read_bytes() == before
    assert not list(folder.glob("*.shipped"))
    assert counters.drops == []
    if max_batch_bytes == 1:
        assert server.script.requests == len(EXPECTED)
    else:
        assert server.script.requests < len(EXPECTED)


def test_headers_from_the_environment_are_sent(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """OTEL_EXPORTER_OTLP_HEADERS reach the server (as gRPC metadata too), URL-decoded."""
    write_segment(tmp_path / INSTANCE, 1, ["a"])
    shipper = make_shipper(tmp_path, server, counters)
    shipper.start()
    wait_for(lambda: server.script.accepted == ["a"])
    assert shipper.stop(timeout=5) is True
    seen = server.script.headers[0]
    assert seen["x-tenant"] == "acme"
    assert seen["authorization"] == "Bearer t0k"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_down_at_first_then_up_gets_everything(
    tmp_path: Path, counters: Counters, protocol: str
) -> None:
    """With no server listening the shipper retries; once it is up everything arrives."""
    server = Server(protocol)
    write_three_segments(tmp_path / INSTANCE)
    shipper = make_shipper(tmp_path, server, counters)
    shipper.start()
    try:
        wait_for(lambda: len(counters.errors) >= 3)
        assert closed_segments(tmp_path / INSTANCE)  # nothing deleted while nobody listens
        server.start()
        wait_for(lambda: not closed_segments(tmp_path / INSTANCE))
        assert shipper.stop(timeout=5) is True
    finally:
        shipper.stop(timeout=0)
        server.stop()
    assert server.script.received == EXPECTED
    assert {reason for reason, _ in counters.errors} == {"export_retry"}


def test_busy_and_dropped_answers_are_retried(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """503/429-style answers and dropped connections resend the same lines, nothing lost."""
    server.script.steps = [server.busy(), "drop", server.busy(), "ok", "drop"]
    write_three_segments(tmp_path / INSTANCE)
    shipper = make_shipper(tmp_path, server, counters, max_batch_bytes=1)
    shipper.start()
    wait_for(lambda: not closed_segments(tmp_path / INSTANCE))
    assert shipper.stop(timeout=5) is True
    assert server.script.accepted == EXPECTED
    assert len(counters.errors) == 4
    assert counters.drops == []


def test_retry_after_is_honoured(tmp_path: Path, counters: Counters) -> None:
    """A 503 with Retry-After holds the next attempt back at least that long."""
    server = Server("http/json")
    server.script.steps = [(503, {"Retry-After": "1"})]
    server.start()
    write_segment(tmp_path / INSTANCE, 1, ["a"])
    shipper = make_shipper(tmp_path, server, counters, max_backoff=0.01)
    started = time.monotonic()
    shipper.start()
    try:
        wait_for(lambda: server.script.accepted == ["a"])
        # A lower bound the server imposed, not a speed measurement: backoff alone is 10 ms.
        assert time.monotonic() - started >= 1.0
    finally:
        shipper.stop(timeout=5)
        server.stop()


def test_restart_mid_segment_resends_at_most_the_line_in_flight(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """The sidecar keeps progress: after a restart only the unanswered line goes again."""
    folder = tmp_path / INSTANCE
    write_three_segments(folder)
    # Two lines accepted, then the third is received but never answered with a 2xx.
    server.script.steps = ["ok", "ok", *[server.busy()] * 10_000]
    first = make_shipper(tmp_path, server, counters, max_batch_bytes=1)
    first.start()
    wait_for(lambda: len(server.script.received) >= 3)
    assert first.stop(timeout=0) is False
    wait_for(lambda: first._thread is not None and not first._thread.is_alive())
    sidecar = folder / (closed_segments(folder)[0] + ".shipped")
    assert sidecar.read_text().strip() == "2"

    server.script.steps = []
    seen_before = len(server.script.received)
    second = make_shipper(tmp_path, server, counters, max_batch_bytes=1)
    second.start()
    wait_for(lambda: not closed_segments(folder))
    assert second.stop(timeout=5) is True
    assert server.script.accepted == EXPECTED  # each line accepted exactly once
    # The restart begins with the line that was in flight, nothing before it.
    assert server.script.received[seen_before:] == EXPECTED[2:]


def test_refused_segment_moves_to_rejected_and_is_counted(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """A refusal of the data moves the segment aside (never deleted) and counts its records."""
    folder = tmp_path / INSTANCE
    write_segment(folder, 1, ["a", "b"])
    bad = write_segment(folder, 2, ["c", "d", "e"])
    write_segment(folder, 3, ["f"])
    content = bad.read_bytes()
    # Segment 1 goes in one request; segment 2's batch is refused, then "c" is accepted
    # alone and "d" refused: "d" and "e" are what the collector will not take.
    server.script.steps = ["ok", server.refusal(), "ok", server.refusal()]
    shipper = make_shipper(tmp_path, server, counters)
    shipper.start()
    wait_for(lambda: not closed_segments(folder))
    assert shipper.stop(timeout=5) is True
    assert server.script.accepted == ["a", "b", "c", "f"]
    assert counters.drops == [("export_rejected", 2)]
    rejected = folder / "rejected"
    assert (rejected / bad.name).read_bytes() == content
    assert (rejected / (bad.name + ".shipped")).read_text().strip() == "1"


def test_partial_success_is_counted_and_not_resent(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """Records a 2xx answer says were rejected are counted as dropped; the segment goes."""
    server.script.steps = [("partial", 3)]
    write_segment(tmp_path / INSTANCE, 1, ["a", "b"])
    shipper = make_shipper(tmp_path, server, counters)
    shipper.start()
    wait_for(lambda: not closed_segments(tmp_path / INSTANCE))
    assert shipper.stop(timeout=5) is True
    assert counters.drops == [("export_rejected", 3)]
    assert server.script.requests == 1


def test_dead_instance_is_shipped_and_removed_and_live_one_left_alone(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """A folder whose lock is free is shipped and removed; a locked one is not touched."""
    dead, alive = tmp_path / "dead-instance", tmp_path / "live-instance"
    write_segment(dead, 1, ["d1", "d2"])
    write_segment(dead, 2, ["d3"])
    write_segment(alive, 1, ["alive"])
    for folder in (dead, alive):
        (folder / ".lock").touch()
        os.utime(folder / ".lock", (time.time() - 3600, time.time() - 3600))
    holder = os.open(alive / ".lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        shipper = make_shipper(tmp_path, server, counters)
        shipper.start()
        wait_for(lambda: not dead.exists())
        assert shipper.stop(timeout=5) is True
    finally:
        os.close(holder)
    assert server.script.received == ["d1", "d2", "d3"]
    assert closed_segments(alive) == ["seg-20261130T120000.000001Z-000001.jsonl"]


def test_dead_instance_with_an_open_segment_keeps_its_folder(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """A dead folder's .open segment is left to the next writer, so the folder stays."""
    dead = tmp_path / "dead-instance"
    write_segment(dead, 1, ["d1"])
    write_segment(dead, 2, ["torn"], is_open=True)
    (dead / ".lock").touch()
    os.utime(dead / ".lock", (0, 0))
    shipper = make_shipper(tmp_path, server, counters)
    shipper.start()
    wait_for(lambda: not closed_segments(dead))
    shipper.stop(timeout=5)
    assert server.script.received == ["d1"]
    assert (dead / "seg-20261130T120000.000002Z-000002.jsonl.open").exists()


def test_stop_reports_what_is_left(tmp_path: Path, counters: Counters) -> None:
    """With nobody listening, stop() gives up at its timeout and says the spool is not empty."""
    server = Server("http/protobuf")  # never started
    write_segment(tmp_path / INSTANCE, 1, ["a"])
    shipper = make_shipper(tmp_path, server, counters)
    shipper.start()
    wait_for(lambda: bool(counters.errors))
    assert shipper.stop(timeout=0.2) is False
    assert closed_segments(tmp_path / INSTANCE)


# -- conversion to protobuf is exact ----------------------------------------------------------


@LIMITS
@examples(200)
@given(batch=batches(oracle=True))
def test_protobuf_conversion_equals_the_sdk_encoder(batch: tuple[ReadableLogRecord, ...]) -> None:
    """A spool line converted to protobuf is the SDK's own protobuf request of the records."""
    ours = protobuf_request([encode_logs_line(batch, on_error=_raise).encode()])
    oracle = encode_logs(batch)
    assert _doubles_as_repr(MessageToDict(ours)) == _doubles_as_repr(MessageToDict(oracle))
    if "NaN" not in str(MessageToDict(oracle)):  # NaN payload bits may differ, nothing else
        assert ours.SerializeToString(deterministic=True) == oracle.SerializeToString(
            deterministic=True
        )


def test_lines_are_joined_in_order_into_one_request() -> None:
    """Several lines make one request whose resourceLogs keep the lines' order."""
    joined = protobuf_request([line("a", "b").strip(), line("c").strip()])
    assert bodies_of(MessageToDict(joined)) == ["a", "b", "c"]


# -- the target from the environment ----------------------------------------------------------

E = "OTEL_EXPORTER_OTLP_"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        (
            {f"{E}ENDPOINT": "http://collector:4318"},
            OtlpTarget("http/protobuf", "http://collector:4318/v1/logs", (), 10.0, True),
        ),
        (
            {f"{E}ENDPOINT": "https://c.example/otlp/", f"{E}PROTOCOL": "http/json"},
            OtlpTarget("http/json", "https://c.example/otlp/v1/logs", (), 10.0, False),
        ),
        (
            {
                f"{E}ENDPOINT": "http://ignored:4318",
                f"{E}LOGS_ENDPOINT": "http://logs:9/custom",
                f"{E}TIMEOUT": "2500",
                f"{E}LOGS_TIMEOUT": "500",
                f"{E}HEADERS": "a=1",
                f"{E}LOGS_HEADERS": " api%2Dkey = s%3Dcret , b=2 ",
            },
            OtlpTarget(
                "http/protobuf",
                "http://logs:9/custom",
                (("api-key", "s=cret"), ("b", "2")),
                0.5,
                True,
            ),
        ),
        (
            {f"{E}ENDPOINT": "http://collector:4317", f"{E}PROTOCOL": "grpc"},
            OtlpTarget("grpc", "collector:4317", (), 10.0, True),
        ),
        (
            {f"{E}LOGS_ENDPOINT": "collector", f"{E}LOGS_PROTOCOL": "grpc", f"{E}INSECURE": "true"},
            OtlpTarget("grpc", "collector:4317", (), 10.0, True),
        ),
        (
            {f"{E}ENDPOINT": "https://[::1]:4317", f"{E}PROTOCOL": "grpc"},
            OtlpTarget("grpc", "[::1]:4317", (), 10.0, False),
        ),
    ],
)
def test_target_from_environment(env: dict[str, str], expected: OtlpTarget | None) -> None:
    """The standard variables and their precedence give the expected target."""
    assert OtlpTarget.from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({f"{E}ENDPOINT": "collector:4318"}, f"{E}ENDPOINT"),
        ({f"{E}LOGS_ENDPOINT": "ftp://x/v1/logs"}, f"{E}LOGS_ENDPOINT"),
        ({f"{E}ENDPOINT": "http://x:99999"}, f"{E}ENDPOINT"),
        ({f"{E}ENDPOINT": "http://x", f"{E}PROTOCOL": "thrift"}, f"{E}PROTOCOL"),
        ({f"{E}ENDPOINT": "http://x", f"{E}LOGS_TIMEOUT": "soon"}, f"{E}LOGS_TIMEOUT"),
        ({f"{E}ENDPOINT": "http://x", f"{E}TIMEOUT": "-1"}, f"{E}TIMEOUT"),
        ({f"{E}ENDPOINT": "http://x", f"{E}HEADERS": "token"}, f"{E}HEADERS"),
        (
            {f"{E}ENDPOINT": "x:4317", f"{E}PROTOCOL": "grpc", f"{E}INSECURE": "yes"},
            f"{E}INSECURE",
        ),
    ],
)
def test_bad_environment_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    """A value the shipper cannot use is a ValueError that names its variable."""
    with pytest.raises(OtlpConfigError, match=variable) as raised:
        OtlpTarget.from_env(env)
    assert isinstance(raised.value, ValueError)
    assert raised.value.variable == variable


def test_header_values_stay_out_of_errors_and_repr() -> None:
    """A credential in the headers variable is never printed."""
    with pytest.raises(OtlpConfigError) as raised:
        OtlpTarget.from_env({f"{E}ENDPOINT": "http://x", f"{E}HEADERS": "ok=1,secret-token"})
    assert "secret" not in str(raised.value)
    target = OtlpTarget.from_env({f"{E}ENDPOINT": "http://x", f"{E}HEADERS": "auth=s3cr3t"})
    assert "s3cr3t" not in repr(target)


def test_segments_of_the_real_spool_writer_are_shipped(
    tmp_path: Path, server: Server, counters: Counters
) -> None:
    """What SpoolWriter writes (rotated by size, then closed) arrives whole, in order."""
    writer = SpoolWriter(tmp_path, INSTANCE, max_segment_bytes=600, on_drop=counters.drop)
    shipper = make_shipper(tmp_path, server, counters)
    shipper.start()
    for body in EXPECTED:
        commit = writer.append(line(body))
        assert commit is not None
        assert commit.wait(10)
        shipper.wake()
    writer.close()
    shipper.wake()
    wait_for(lambda: server.script.accepted == EXPECTED)
    assert shipper.stop(timeout=5) is True
    assert counters.drops == []

"""A loopback OTLP/HTTP sink: reads each export, answers 200, counts what arrived.

It shares a core with wrk, so the request path does as little as possible: parse the
head, read ``content-length`` bytes, keep them, answer. Counting the records inside the
protobuf bodies happens only when ``GET /stats`` asks, after the load has stopped.

Control endpoints: ``GET /stats`` (JSON: per path requests, bytes, items, the bodies that
contain a ``--needle`` value, and for ``/v1/logs`` the records carrying a request body) and
``POST /reset``. Run: ``python -m bench.sink --port PORT [--needle TEXT ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
_LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def _count_logs(body: bytes) -> int:
    request = ExportLogsServiceRequest.FromString(body)
    return sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)


def _count_request_bodies(body: bytes) -> int:
    """Log records with an ``audit.request.body`` attribute (the ``request`` audit level)."""
    request = ExportLogsServiceRequest.FromString(body)
    return sum(
        any(attribute.key == "audit.request.body" for attribute in record.attributes)
        for r in request.resource_logs
        for s in r.scope_logs
        for record in s.log_records
    )


def _count_spans(body: bytes) -> int:
    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


def _count_metrics(body: bytes) -> int:
    request = ExportMetricsServiceRequest.FromString(body)
    return sum(len(s.metrics) for r in request.resource_metrics for s in r.scope_metrics)


# Item = log record, span, or metric (per export): what a reader checks arrived.
_COUNTERS: dict[str, Callable[[bytes], int]] = {
    "/v1/logs": _count_logs,
    "/v1/traces": _count_spans,
    "/v1/metrics": _count_metrics,
}


@dataclass
class _PathStats:
    requests: int = 0
    size: int = 0
    bodies: list[bytes] = field(default_factory=list)


class Sink:
    """Per-path counters; bodies are kept (a few MB per run) to be decoded on demand."""

    def __init__(self, needles: tuple[bytes, ...] = ()) -> None:
        self.paths: dict[str, _PathStats] = {}
        # Values that must never leave an app in clear (protobuf keeps strings as raw bytes).
        self.needles = needles

    def received(self, path: str, body: bytes) -> None:
        stats = self.paths.setdefault(path, _PathStats())
        stats.requests += 1
        stats.size += len(body)
        if path in _COUNTERS:
            stats.bodies.append(body)

    def report(self) -> dict[str, dict[str, int]]:
        report: dict[str, dict[str, int]] = {}
        for path, stats in self.paths.items():
            count = _COUNTERS.get(path)
            items = sum(count(body) for body in stats.bodies) if count is not None else 0
            report[path] = {
                "requests": stats.requests,
                "bytes": stats.size,
                "items": items,
                "needle_bodies": sum(
                    any(needle in body for needle in self.needles) for body in stats.bodies
                ),
            }
            if path == "/v1/logs":
                report[path]["request_bodies"] = sum(map(_count_request_bodies, stats.bodies))
        return report

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Keep-alive loop: the OTLP exporters reuse one connection per signal.
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, header_block = head.decode("latin-1").partition("\r\n")
                method, target = request_line.split(" ", 2)[:2]
                length: int | None = None
                for line in header_block.split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length is None and method == "POST":
                    # Chunked uploads are not expected from the OTLP exporters: refuse
                    # loudly rather than mis-parse the stream.
                    writer.write(_LENGTH_REQUIRED)
                    await writer.drain()
                    break
                body = await reader.readexactly(length) if length else b""
                path = target.split("?", 1)[0]
                writer.write(self._answer(method, path, body))
                await writer.drain()
        writer.close()

    def _answer(self, method: str, path: str, body: bytes) -> bytes:
        if path == "/stats":
            payload = json.dumps(self.report()).encode()
            return (
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
        if path == "/reset" and method == "POST":
            self.paths.clear()
            return _OK
        self.received(path, body)
        return _OK


async def serve(port: int, needles: tuple[bytes, ...] = ()) -> None:
    sink = Sink(needles)
    server = await asyncio.start_server(sink.handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--needle", action="append", default=[], help="must never arrive")
    args = parser.parse_args()
    needles = tuple(needle.encode() for needle in args.needle)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, needles))


if __name__ == "__main__":
    main()

"""Audit trails written by the real spool transport, and the ways the CLI tests tamper with them.

A trail is one app lifetime: a FastAPI app instrumented with ``transport="spool"``, driven
with TestClient (each request records ``audit.http.request`` and ``audit.item.viewed``),
closed by its lifespan, which writes the closing record. Its segment holds one event per line
(seq n on line n), then record-less padding lines.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from otel_audit import AuditConfig, instrument_app, record
from otel_audit.cli import main

from .test_integrity import read_lines, rehash, set_attribute

Lines = list[bytes]
PADDING = b'{"resourceLogs":[]}\n'


def spool_trail(root: Path, requests: int = 12, *, chain_key: str | None = None) -> Path:
    """Write one app lifetime's trail under ``root``; returns its (only) closed segment."""
    before = set(root.glob("*/seg-*.jsonl"))
    app = FastAPI()
    instrument_app(app, AuditConfig(transport="spool", spool_dir=str(root), chain_key=chain_key))

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        record("item.viewed", resource_type="item", resource_id=item_id)
        return {"id": item_id}

    with TestClient(app) as client:  # the lifespan closes the trail
        for item_id in range(requests):
            assert client.get(f"/items/{item_id}").status_code == 200
    (segment,) = set(root.glob("*/seg-*.jsonl")) - before
    return segment


def records(path: Path) -> Lines:
    """The segment's event lines (without the padding)."""
    return [line for line in read_lines(path) if line != PADDING]


def rewrite(path: Path, lines: Lines) -> None:
    """Replace the file's content by ``lines``."""
    path.write_bytes(b"".join(lines))


def rechain(lines: Lines, start: int, key: bytes | None = None) -> Lines:
    """Re-link and re-hash every line from index ``start`` on, as a forger without the
    chain's secret (an unkeyed chain has none) would, so that the chain verifies again."""
    for index in range(start, len(lines)):
        if index:
            _, log = _log(lines[index - 1])
            prev = next(a for a in log["attributes"] if a["key"] == "audit.chain.hash")
            lines[index] = set_attribute(lines[index], "audit.chain.prev", prev["value"])
        lines[index] = rehash(lines[index], key)
    return lines


def _log(line: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    request = json.loads(line)
    return request, request["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]


@dataclass(frozen=True)
class Run:
    """What one ``otel-audit`` run printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    def failing(self) -> set[tuple[str, int | None, int | None]]:
        """(kind, seq, line) of every finding that fails the trail (``--format json``)."""
        return {(f["kind"], f["seq"], f["line"]) for f in self.json()["findings"] if f["failure"]}

    def kinds(self, *, failure: bool) -> set[str]:
        return {f["kind"] for f in self.json()["findings"] if f["failure"] is failure}

    def files(self, kind: str) -> set[str]:
        return {f["file"] for f in self.json()["findings"] if f["kind"] == kind}


def cli(*args: str | os.PathLike[str]) -> Run:
    """``otel-audit ARGS`` in this process (no chain key in the environment)."""
    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.pop("OTEL_AUDIT_CHAIN_KEY", None)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(arg) for arg in args])
    finally:
        if saved is not None:
            os.environ["OTEL_AUDIT_CHAIN_KEY"] = saved
    return Run(code, out.getvalue(), err.getvalue())


def command(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Run:
    """``python -m otel_audit ARGS`` as a real process (no OTEL_* variable inherited)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-m", "otel_audit", *map(str, args)],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)

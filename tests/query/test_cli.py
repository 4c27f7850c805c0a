"""``otel-audit query`` and ``stats``: output shapes, times, pseudonyms, and every bad input."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from otel_audit import Action, Actor, AuditConfig, instrument_app, record, set_actor
from otel_audit._scrub import Scrubber
from otel_audit.cli import main
from otel_audit.cli._render import CSV_COLUMNS
from otel_audit.query import EventFilter, pseudonym, to_logsql
from otel_audit.query._filter import PSEUDONYM_PREFIX
from otel_audit.query.views import as_table

from .conftest import Trail, keys, oracle
from .trail import PSEUDONYM_KEY, write_events

HOUR_NS = 3600 * 10**9


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines()]


def cli(*args: str | os.PathLike[str]) -> Run:
    """``otel-audit ARGS`` in this process (stdout is not a terminal: json by default)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as done:  # argparse's own usage errors
            code = int(done.code or 0)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """An archive with one event an hour ago and one three days ago."""
    now = time.time_ns()
    write_events(
        tmp_path / "archive" / "audit.jsonl",
        [
            {
                "timestamp_ns": now - 3 * 24 * HOUR_NS,
                "attributes": {"audit.action": "user.created", "audit.outcome": "success",
                               "audit.event.id": "old", "user.id": "alice"},
            },
            {
                "timestamp_ns": now - HOUR_NS,
                "attributes": {"audit.action": "auth.login_failed", "audit.outcome": "failure",
                               "audit.event.id": "new", "user.id": "bob",
                               "client.address": "10.9.9.9"},
            },
        ],
    )  # fmt: skip
    return tmp_path / "archive"


def test_json_lines_carry_the_contract_fields(trail: Trail) -> None:
    """One object per line: event_name, RFC 3339 timestamp, attributes, source file:line."""
    run = cli("query", *trail.paths, "--user", "user-7", "--format", "json")
    assert (run.code, run.err) == (0, "")
    objects = run.json_lines()
    expected = [r for r in trail.records if oracle(r, user="user-7")]
    assert len(objects) == len(expected) > 0
    for obj in objects:
        assert isinstance(obj["event_name"], str) and obj["event_name"].startswith("audit.")
        stamp = str(obj["timestamp"])
        assert stamp.endswith("Z") and datetime.fromisoformat(stamp).tzinfo is not None
        assert isinstance(obj["attributes"], dict) and obj["attributes"]["user.id"] == "user-7"
        assert obj["event_id"] == obj["attributes"]["audit.event.id"]
        assert set(obj) >= {"severity_text", "body", "trace_id", "span_id", "resource", "source"}
    file, _, line = str(objects[0]["source"]).rpartition(":")
    opener = gzip.open if file.endswith(".gz") else open
    with opener(file, "rt", encoding="utf-8") as stream:
        assert str(objects[0]["event_id"]) in stream.readlines()[int(line) - 1]


def test_json_is_the_default_off_a_terminal_and_limit_stops_early(trail: Trail) -> None:
    """Without --format, piped output is JSON lines; --limit N prints N."""
    run = cli("query", *trail.paths, "--action", "user.*", "--limit", "7")
    assert run.code == 0
    assert len(run.json_lines()) == 7


def test_csv_has_a_header_and_one_row_per_event(small: Path) -> None:
    """CSV: the documented columns, values quoted as needed."""
    run = cli("query", small, "--format", "csv")
    assert run.code == 0
    rows = list(csv.reader(io.StringIO(run.out)))
    assert rows[0] == [header for header, _ in CSV_COLUMNS]
    by_id = {row[13]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert set(by_id) == {"old", "new"}
    assert (by_id["new"]["action"], by_id["new"]["user"], by_id["new"]["client"]) == (
        "auth.login_failed", "bob", "10.9.9.9",
    )  # fmt: skip
    assert by_id["new"]["source"].endswith("audit.jsonl:2")


def test_table_lists_the_events(small: Path) -> None:
    """--format table prints a header and a row per event, whole cells."""
    run = cli("query", small, "--format", "table")
    assert run.code == 0
    assert "time (UTC)" in run.out and "auth.login_failed" in run.out and "user.created" in run.out


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        (["--since", "24h"], {"new"}),
        (["--until", "2d"], {"old"}),
        (["--since", "4d", "--until", "90m"], {"old"}),
        (["--since", "1w"], {"old", "new"}),
        (["--since", "2000-01-01"], {"old", "new"}),
        (["--until", "2000-01-01T00:00:00Z"], set()),
    ],
)
def test_relative_and_absolute_times(small: Path, options: list[str], ids: set[str]) -> None:
    """Durations count back from now; RFC 3339 and dates are absolute; since <= t < until."""
    run = cli("query", small, *options)
    assert run.code == 0, run.err
    assert {obj["event_id"] for obj in run.json_lines()} == ids


def test_pseudonym_is_the_librarys(tmp_path: Path) -> None:
    """The engine's pseudonym is what the library records for the same key."""
    config = AuditConfig(pseudonymization_key=PSEUDONYM_KEY.decode())
    assert pseudonym("user-7", PSEUDONYM_KEY) == Scrubber(config).identity("user-7")


def test_user_finds_events_the_library_pseudonymised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real app with a key records hmac-sha256 ids; --user RAW with the key finds them."""
    spool = tmp_path / "spool"
    app = FastAPI()
    config = AuditConfig(transport="spool", spool_dir=str(spool), pseudonymization_key="s3cret")
    instrument_app(app, config)

    @app.post("/roles/{user_id}")
    async def change(user_id: str) -> dict[str, str]:
        set_actor(Actor("alice", tenant="acme"))
        record(Action.USER_ROLE_CHANGED, resource_type="user", resource_id=user_id)
        return {"ok": "yes"}

    with TestClient(app) as client:
        assert client.post("/roles/u-9").status_code == 200
    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    monkeypatch.delenv("OTEL_AUDIT_PSEUDONYMIZATION_KEY", raising=False)
    without_key = cli("query", spool, "--user", "alice")
    assert (without_key.code, without_key.out) == (0, "")
    found = cli(
        "query", spool, "--user", "alice", "--tenant", "acme", "--pseudonym-key-file", key_file
    )
    assert found.code == 0, found.err
    actions = {obj["attributes"]["audit.action"] for obj in found.json_lines()}  # type: ignore[index]
    assert "user.role_changed" in actions
    assert all(
        str(obj["attributes"]["user.id"]).startswith(PSEUDONYM_PREFIX)  # type: ignore[index]
        for obj in found.json_lines()
    )
    monkeypatch.setenv("OTEL_AUDIT_PSEUDONYMIZATION_KEY", "s3cret")
    assert cli("query", spool, "--user", "alice").out == found.out
    (tmp_path / "other-key").write_text("not-the-key")
    wrong = cli("query", spool, "--user", "alice", "--pseudonym-key-file", tmp_path / "other-key")
    assert (wrong.code, wrong.out) == (0, "")  # a wrong key finds nothing (it cannot be told)


def test_user_with_key_over_the_trail(trail: Trail, tmp_path: Path) -> None:
    """With the key, --user matches raw and pseudonymised records alike."""
    key_file = tmp_path / "key"
    key_file.write_bytes(PSEUDONYM_KEY + b"\n")
    run = cli("query", *trail.paths, "--user", "user-7", "--pseudonym-key-file", key_file)
    assert run.code == 0
    got = Counter((_nanos(str(obj["timestamp"])), obj["event_id"]) for obj in run.json_lines())
    expected = keys(r for r in trail.records if oracle(r, user="user-7", keyed=True))
    assert got == expected
    assert any(str(r.attributes.get("user.id")).startswith(PSEUDONYM_PREFIX) for r in trail.records)


def _nanos(stamp: str) -> int:
    """RFC 3339 with nine fractional digits, as query writes it, to Unix nanoseconds."""
    seconds = int(datetime.fromisoformat(stamp[:19] + "+00:00").timestamp())
    return seconds * 10**9 + int(stamp[20:29])


def test_emit_logsql_prints_the_query_and_exits() -> None:
    """--emit-logsql needs no source and prints to_logsql of the filter."""
    run = cli("query", "--emit-logsql", "--user", 'o"x', "--action", "auth.*", "--since", "24h")
    assert run.code == 0
    expected = to_logsql(EventFilter.parse(user='o"x', action="auth.*", since="24h"))
    assert run.out == expected + "\n"
    assert 'user.id:="o\\"x"' in run.out and "_time:>=now-1d" in run.out


def test_emit_url_links_the_vmui_table_of_the_same_query() -> None:
    """--emit-url prints the vmui table of the filter's LogsQL; without a VictoriaLogs source
    it is a usage error (exit 2, one line)."""
    run = cli(
        "query", "--emit-url", "--user", "u-7", "--source", "victorialogs+http://vl.example:9428"
    )
    assert run.code == 0, run.err
    url = run.out.strip()
    assert url.startswith("http://vl.example:9428/select/vmui/?#/?")
    state = urllib.parse.parse_qs(url.split("#/?", 1)[1])
    flt = to_logsql(EventFilter.parse(user="u-7"))
    assert state["query"] == [as_table(flt)]
    assert state["view"] == ["table"]
    refused = cli("query", "--emit-url", "--user", "u-7")
    assert refused.code == 2
    assert refused.err.count("\n") == 1 and "--source victorialogs+http" in refused.err


def test_stats_json_counts(small: Path) -> None:
    """stats --format json: totals, dimensions, failed logins by address."""
    run = cli("stats", small, "--format", "json", "--bucket", "1d")
    assert run.code == 0, run.err
    stats = json.loads(run.out)
    assert stats["total"] == 2 and stats["bucket"] == "1d"
    assert stats["by_action"] == {"auth.login_failed": 1, "user.created": 1}
    assert stats["failed_logins_by_client"] == {"10.9.9.9": 1}
    assert stats["failed_logins_by_user"] == {"bob": 1}
    assert sum(stats["over_time"].values()) == 2
    table = cli("stats", small, "--format", "table")
    assert table.code == 0
    assert "failed logins by client address" in table.out and "10.9.9.9" in table.out


def test_ocsf_format_is_one_object_per_line_or_a_clean_refusal(small: Path) -> None:
    """--format ocsf streams otel_audit.ocsf's objects (or says it is unavailable, exit 2)."""
    run = cli("query", small, "--format", "ocsf")
    if run.code == 2:
        assert run.err.count("\n") == 1 and "ocsf" in run.err
    else:
        assert run.code == 0, run.err
        assert len(run.json_lines()) == 2


@pytest.mark.parametrize(("options", "found"), [([], 2), (["--user", "nobody"], 0)])
def test_damaged_lines_are_reported_with_their_place_and_the_rest_is_read(
    tmp_path: Path, options: list[str], found: int
) -> None:
    """Garbage, a torn last line and a broken gzip file: each named, others read, exit 3;
    a selective filter does not skip damaged lines unseen."""
    folder = tmp_path / "archive"
    now = time.time_ns()
    event = {"timestamp_ns": now, "attributes": {"audit.action": "user.created",
                                                "audit.outcome": "success"}}  # fmt: skip
    write_events(folder / "audit.jsonl", [event])
    with (folder / "audit.jsonl").open("a") as out:
        out.write("this is not json\n")
    write_events(folder / "audit.jsonl", [event])
    with (folder / "audit.jsonl").open("a") as out:
        out.write('{"resourceLogs":[{"resou')
    (folder / "audit-2026-11-01T00-00-00.000.jsonl.gz").write_bytes(b"\x1f\x8b\x08garbage")
    run = cli("query", folder, "--format", "json", *options)
    assert run.code == 3
    assert len(run.json_lines()) == found
    assert f"{folder / 'audit.jsonl'}:2: not valid JSON" in run.err
    assert f"{folder / 'audit.jsonl'}:4: incomplete last line" in run.err
    assert "audit-2026-11-01T00-00-00.000.jsonl.gz: could not read further" in run.err
    assert "Traceback" not in run.err


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["query", "{small}", "--outcome", "denied"], 2, "--category denied"),
        (["query", "{small}", "--outcome", "maybe"], 2, "--outcome: 'maybe'"),
        (["query", "{small}", "--since", "yesterday"], 2, "--since: 'yesterday'"),
        (["query", "{small}", "--since", "2026-01-02", "--until", "2026-01-01"], 2, "before"),
        (["query", "{small}", "--since", "0h"], 2, "positive"),
        (["query", "{small}", "--trace-id", "xyz"], 2, "32 hex"),
        (["query", "{small}", "--user", ""], 2, "--user: must not be empty"),
        (["query", "{small}", "--category", "weird"], 2, "--category"),
        (["query", "{small}", "--limit", "0"], 2, "--limit"),
        (["query", "{tmp}/missing"], 3, "no such file or directory"),
        (["query", "{small}", "--source", "victorialogs+http://127.0.0.1:9"], 2, "not both"),
        (["query"], 2, "give archive PATHs"),
        (["query", "--source", "http://127.0.0.1:9428"], 2, "victorialogs+http"),
        (["query", "--source", "victorialogs+http://127.0.0.1:{port}"], 4, "cannot reach"),
        (["stats", "--source", "victorialogs+http://127.0.0.1:{port}"], 4, "cannot reach"),
        (["query", "{small}", "--pseudonym-key-file", "{tmp}/nokey"], 5, "cannot read"),
        (["query", "{small}", "--pseudonym-key-file", "{tmp}/empty"], 5, "is empty"),
        (["stats", "{small}", "--bucket", "soon"], 2, "--bucket"),
        (["stats", "{small}", "--top", "0"], 2, "--top"),
        (["tail", "{tmp}/missing"], 3, "no such file or directory"),
        (["tail", "{small}", "-n", "-1"], 2, "-n"),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code(
    small: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    """Every bad input: a distinct exit code and one line on stderr, never a traceback."""
    (tmp_path / "empty").write_text("\n")
    values = {"small": str(small), "tmp": str(tmp_path), "port": str(_closed_port())}
    run = cli(*(arg.format(**values) for arg in args))
    assert run.code == code, run.err
    assert run.err.count("\n") == 1 and run.err.startswith(f"otel-audit {args[0]}: "), run.err
    assert message in run.err
    assert run.out == ""


def test_unknown_option_is_a_usage_error(small: Path) -> None:
    """argparse's own errors exit 2 too."""
    assert cli("query", small, "--colour", "red").code == 2


def test_closed_pipe_ends_quietly(trail: Trail) -> None:
    """`otel-audit query ... | head -1`: exit 0 and nothing on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_audit", "query", *map(str, trail.paths)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    assert json.loads(first)["event_name"].startswith("audit.")
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""

"""A synthetic audit trail written with the real encoder, and its oracle's view.

:func:`write_trail` writes ``count`` audit events of several service instances in the three
layouts the reader knows: a collector archive (``audit-<time>.jsonl`` backups, some gzipped,
and the live ``audit.jsonl``), the library's archive (``audit-<stamp>Z.jsonl`` backups) and
a spool (``<instance>/seg-*.jsonl`` and the open segment). Lines hold batches of records, as
the writers batch them; some records are written twice (at-least-once delivery). It returns
what it wrote as plain :class:`Written` records, which the tests' brute-force oracle reads
instead of the archive. Half the instances pseudonymise ``user.id``/``tenant.id``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_audit.archive._otlp_json import (
    encode_attribute,
    encode_log_fields,
    encode_resource,
    encode_scope,
    encode_single_group_line,
)

PSEUDONYM_KEY = b"query-tests-key"
DAY_NS = 86_400 * 10**9
SPAN_NS = 30 * DAY_NS
"""Events spread over the 30 days before ``now``."""
# Identifiers that need escaping in JSON and in LogsQL, and non-ASCII ones.
ODD_USERS = ('o\'brien "the admin"', "back\\slash", "zoë/ü", "tab\there")
ACTIONS = (
    ("http.request", 50),
    ("auth.login", 8),
    ("auth.login_failed", 6),
    ("auth.logout", 3),
    ("access.denied", 3),
    ("user.created", 4),
    ("user.updated", 4),
    ("user.deleted", 1),
    ("user.role_changed", 3),
    ("tenant.updated", 2),
    ("settings.updated", 2),
    ("data.exported", 2),
    ("api_key.created", 2),
)
ROUTES = ("/items/{item_id}", "/users/{user_id}", "/login", "/admin/tenants/{tenant_id}", "/ws")
STATUSES = (200, 200, 200, 200, 200, 201, 204, 400, 401, 403, 404, 500)
SEVERITY = {"success": (9, "INFO"), "failure": (13, "WARN"), "error": (17, "ERROR")}


@dataclass(slots=True)
class Written:
    """One record as the generator wrote it (what the oracle looks at)."""

    event_name: str
    timestamp_ns: int
    severity_number: int
    severity_text: str
    body: str
    attributes: dict[str, Any]
    resource: dict[str, str]
    trace_id: str
    span_id: str
    file: Path


@functools.cache
def pseudonym(value: str) -> str:
    digest = hmac.new(PSEUDONYM_KEY, value.encode(), hashlib.sha256).hexdigest()
    return "hmac-sha256:" + digest


def _event(rng: random.Random, now_ns: int, pseudonymise: bool) -> dict[str, Any]:
    action = rng.choices([a for a, _ in ACTIONS], [w for _, w in ACTIONS])[0]
    attributes: dict[str, Any] = {"audit.action": action}
    if action == "http.request":
        status = rng.choice(STATUSES)
        route = rng.choice(ROUTES)
        attributes |= {
            "http.route": route,
            "http.request.method": rng.choice(("GET", "POST", "PUT", "DELETE")),
            "http.response.status_code": status,
            "url.path": route.replace("{", "").replace("}", "") + str(rng.randrange(100)),
        }
        outcome = "error" if status >= 500 else "failure" if status >= 400 else "success"
    elif action in ("auth.login_failed", "access.denied"):
        outcome = "failure"
    else:
        outcome = rng.choices(("success", "failure", "error"), (85, 10, 5))[0]
    if action.startswith(("user.", "tenant.", "api_key.", "data.", "settings.")):
        kind = action.split(".")[0]
        attributes["audit.resource.type"] = kind
        attributes["audit.resource.id"] = f"{kind[:1]}-{rng.randrange(400)}"
    if action == "user.role_changed":
        attributes["audit.changes"] = json.dumps({"role": {"old": "viewer", "new": "admin"}})
    attributes["audit.outcome"] = outcome
    if rng.random() > 0.08:  # the rest are anonymous
        user = rng.choice(ODD_USERS) if rng.random() < 0.01 else f"user-{rng.randrange(300)}"
        tenant = f"tenant-{rng.randrange(25)}"
        attributes["user.id"] = pseudonym(user) if pseudonymise else user
        attributes["tenant.id"] = pseudonym(tenant) if pseudonymise else tenant
        attributes["user.roles"] = rng.sample(["admin", "viewer", "editor"], rng.randrange(1, 3))
        attributes["audit.actor.auth_method"] = rng.choice(("jwt", "api_key", "session"))
    if rng.random() < 0.97:
        attributes["client.address"] = (
            f"10.{rng.randrange(4)}.{rng.randrange(8)}.{rng.randrange(16)}"
            if rng.random() < 0.9
            else f"2001:db8::{rng.randrange(50):x}"
        )
    attributes["audit.request.id"] = f"req-{rng.getrandbits(48):012x}"
    attributes["user_agent.original"] = "pytest-trail/1.0"
    return attributes


def _uuid7(rng: random.Random, timestamp_ns: int) -> str:
    raw = f"{timestamp_ns // 1_000_000:012x}7{rng.getrandbits(76):019x}"  # random, not unique
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


@dataclass
class _Instance:
    resource: dict[str, str]
    pseudonymise: bool
    templates: list[tuple[dict[str, Any], str]]
    """Attribute sets (without ids) and their encoded text, drawn from per event."""
    lines: list[tuple[str, list[Written]]]
    seq: int = 0


TEMPLATES = 800
_NOWHERE = Path()
TIES = 12
"""Events sharing one timestamp, halfway through."""
"""Distinct attribute sets per instance: enough variety, and each is encoded once."""


def write_trail(root: Path, count: int, now_ns: int, seed: int = 7) -> list[Written]:
    """Write ``count`` events (plus copies) under ``root``; returns every record written."""
    rng = random.Random(seed)
    instances = []
    for i in range(6):
        pseudonymise = i % 2 == 1
        templates = []
        for _ in range(TEMPLATES):
            attributes = _event(rng, now_ns, pseudonymise)
            text = ",".join(encode_attribute(k, v) for k, v in attributes.items())
            templates.append((attributes, text))
        resource = {
            "service.name": f"svc-{i % 3}",
            "service.instance.id": f"instance-{i}",
            "deployment.environment.name": "test",
        }
        instances.append(_Instance(resource, pseudonymise, templates, []))
    scope_text = encode_scope(InstrumentationScope("otel_audit", "0.1.0"))
    start, span = now_ns - SPAN_NS, SPAN_NS - 60 * 10**9
    stamps = sorted(start + int(rng.random() * span) for _ in range(count))
    if count > TIES:  # events at the very same instant: pages must break ties by event id
        stamps[count // 2 : count // 2 + TIES] = [stamps[count // 2]] * TIES
    pending: dict[int, list[tuple[str, Written]]] = {i: [] for i in range(len(instances))}
    written: list[Written] = []
    for timestamp_ns in stamps:
        index = rng.randrange(len(instances))
        instance = instances[index]
        template, template_text = instance.templates[rng.randrange(TEMPLATES)]
        instance.seq += 1
        event_id = _uuid7(rng, timestamp_ns)
        attributes = template | {"audit.event.id": event_id, "audit.seq": instance.seq}
        action = attributes["audit.action"]
        severity_number, severity_text = SEVERITY[attributes["audit.outcome"]]
        actor, outcome = attributes.get("user.id", "anonymous"), attributes["audit.outcome"]
        body = f"{action} by {actor}: {outcome}"
        event_name = "audit." + action
        trace_id = f"{rng.getrandbits(128):032x}" if rng.random() < 0.95 else ""
        span_id = f"{rng.getrandbits(64):016x}" if trace_id else ""
        text = encode_log_fields(
            timestamp_ns=timestamp_ns,
            observed_timestamp_ns=timestamp_ns + 1000,
            severity_number=severity_number,
            severity_text=severity_text,
            body=body,
            attributes=None,
            attributes_text=template_text
            + ","
            + encode_attribute("audit.event.id", event_id)
            + ","
            + encode_attribute("audit.seq", instance.seq),
            trace_id=int(trace_id, 16) if trace_id else None,
            span_id=int(span_id, 16) if span_id else None,
            event_name=event_name,
        )
        record = Written(
            event_name, timestamp_ns, severity_number, severity_text, body,
            attributes, instance.resource, trace_id, span_id, _NOWHERE,
        )  # fmt: skip
        pending[index].append((text, record))
        if rng.random() < 0.004:  # at-least-once delivery: a record written twice
            pending[index].append((text, record))
        if len(pending[index]) >= rng.randrange(1, 40):
            _flush(instance, pending[index], scope_text)
    for index, instance in enumerate(instances):
        _flush(instance, pending[index], scope_text)
        written += _write_files(root, index, instance, rng)
    return written


def _flush(instance: _Instance, batch: list[tuple[str, Written]], scope_text: str) -> None:
    if batch:
        resource_text = encode_resource(Resource(instance.resource))
        line = encode_single_group_line(resource_text, scope_text, [text for text, _ in batch])
        instance.lines.append((line, [record for _, record in batch]))
        batch.clear()


def _write_files(root: Path, index: int, instance: _Instance, rng: random.Random) -> list[Written]:
    """Instances 0-1: collector archive; 2-3: the library's archive; 4-5: a spool."""
    lines = instance.lines
    chunks = [lines[i : i + 150] for i in range(0, len(lines), 150)]
    records: list[Written] = []
    for number, chunk in enumerate(chunks):
        last = number == len(chunks) - 1
        day, hour = 1 + number // 24, number % 24
        if index < 2:  # the collector's rotation names (lumberjack)
            folder = root / "collector"
            stamp = f"2026-11-{day:02d}T{hour:02d}-00-00.000"
            name = f"audit-{index}.jsonl" if last else f"audit-{index}-{stamp}.jsonl"
        elif index < 4:  # the library's archive exporter's
            folder = root / "library"
            stamp = f"202611{day:02d}T{hour:02d}0000000Z"
            name = f"audit-{index}.jsonl" if last else f"audit-{index}-{stamp}.jsonl"
        else:  # spool segments, the last one still open
            folder = root / "spool" / instance.resource["service.instance.id"]
            stamp = f"20261101T{number // 60:02d}{number % 60:02d}00.000000Z"
            name = f"seg-{stamp}-{number + 1:06d}.jsonl" + (".open" if last else "")
        folder.mkdir(parents=True, exist_ok=True)
        data = "".join(line + "\n" for line, _ in chunk).encode()
        path = folder / name
        if not last and index < 4 and rng.random() < 0.3:
            path = path.with_name(path.name + ".gz")
            path.write_bytes(gzip.compress(data, compresslevel=1))
        else:
            path.write_bytes(data)
        for _, batch in chunk:
            for record in batch:
                record.file = path
            records += batch
    return records


def write_events(path: Path, events: list[dict[str, Any]], *, mode: str = "a") -> None:
    """Append one line per event to ``path`` (``timestamp_ns`` and ``attributes`` given;
    the event name is ``audit.<action>``, the severity follows the outcome)."""
    resource_text = encode_resource(Resource({"service.name": "small", "service.instance.id": "i"}))
    scope_text = encode_scope(InstrumentationScope("otel_audit"))
    lines = []
    for event in events:
        attributes = event["attributes"]
        severity_number, severity_text = SEVERITY[attributes.get("audit.outcome", "success")]
        record = encode_log_fields(
            timestamp_ns=event["timestamp_ns"],
            observed_timestamp_ns=None,
            severity_number=severity_number,
            severity_text=severity_text,
            body=event.get("body", "something happened"),
            attributes=attributes,
            event_name=event.get("event_name", "audit." + attributes["audit.action"]),
        )
        lines.append(encode_single_group_line(resource_text, scope_text, [record]) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8") as out:
        out.write("".join(lines))

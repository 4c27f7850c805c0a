"""Hostile input: nothing crashes, nothing leaks, and the response is what it would have been."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_audit import AuditConfig, instrument_app

from .conftest import http_scope, make_telemetry
from .pii_corpus import PII_SAMPLES

_SAMPLES = [sample.value for sample in PII_SAMPLES]


def _routes(app: FastAPI) -> FastAPI:
    @app.get("/items/{item_id}")
    async def item(item_id: str, request: Request) -> dict[str, Any]:
        return {"id": item_id, "q": dict(request.query_params)}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    return app


TELEMETRY = make_telemetry()
PLAIN = _routes(FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False}))
AUDITED = _routes(
    FastAPI(
        telemetry={"tracer_provider": TELEMETRY.tracer_provider, "metrics": False, "logs": False}
    )
)
instrument_app(
    AUDITED,
    AuditConfig(
        jwt_key="fuzz-key-long-enough-for-hmac-sha256!",
        trusted_proxies=("10.0.0.0/8",),
        capture_headers=("x-forwarded-for", "referer", "x-custom"),
    ),
    logger_provider=TELEMETRY.logger_provider,
    meter_provider=TELEMETRY.meter_provider,
)

_header_names = st.sampled_from(
    [
        b"x-request-id",
        b"user-agent",
        b"x-forwarded-for",
        b"forwarded",
        b"authorization",
        b"referer",
        b"x-custom",
        b"cookie",
        b"content-type",
    ]
) | st.binary(min_size=1, max_size=30).map(lambda b: b.lower())
_pii = st.sampled_from(_SAMPLES)
_header_values = st.one_of(
    st.binary(max_size=300),
    st.binary(min_size=10_000, max_size=20_000),
    _pii.map(str.encode),
    st.sampled_from(
        [
            b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.",
            b"Bearer " + b"A" * 9000,
            b'for="[::1]:80";proto=http, for=unknown',
            b"1.2.3.4, 10.0.0.1, garbage, ::ffff:1.2.3.4",
            b"\xff\xfe\xfd",
            b"a" * 129,
        ]
    ),
)
_paths = st.one_of(
    st.text(max_size=80).map(lambda t: "/items/" + t),
    _pii.map(lambda s: "/items/" + s),
    st.sampled_from(["/echo", "/", "//", "/items/%00", "/nowhere/" + "x" * 5000]),
)


async def _call(app: FastAPI, scope: dict[str, Any], body: bytes) -> tuple[Any, ...]:
    messages: list[MutableMapping[str, Any]] = []
    delivered = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    try:
        await app(dict(scope), receive, send)
        error = None
    except Exception as exc:
        error = type(exc)
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    status = start["status"] if start else None
    headers = sorted((k, v) for k, v in (start or {}).get("headers", []) if k != b"x-request-id")
    body_out = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, headers, body_out, error


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=_paths,
    query=st.one_of(st.binary(max_size=200), _pii.map(lambda s: ("email=" + s).encode())),
    headers=st.lists(st.tuples(_header_names, _header_values), max_size=8),
    method=st.sampled_from(["GET", "POST", "FOO", "GET\x00"]),
    client=st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(["10.1.2.3", "203.0.113.9", "::1", "bogus"]), st.integers(0, 65535)
        ),
    ),
    body=st.binary(max_size=2000),
)
def test_hostile_requests_do_not_change_responses_or_leak(
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    method: str,
    client: Any,
    body: bytes,
) -> None:
    """Any request gets the same response audited or not, and no PII reaches an event."""
    scope = http_scope(path, method=method, query=query, headers=headers, client=client)
    TELEMETRY.logs.clear()
    expected = asyncio.run(_call(PLAIN, scope, body))
    actual = asyncio.run(_call(AUDITED, scope, body))
    assert actual == expected
    records = TELEMETRY.audit_records()
    assert len(records) == 1
    serialised = json.dumps(dict(records[0].attributes), default=str)
    serialised += str(records[0].body)
    for sample in _SAMPLES:
        assert sample not in serialised
        assert sample.lower() not in serialised.lower()

"""PII and secret samples that must never reach an audit archive, and look-alikes that must.

Every value is distinctive, so an end-to-end test can grep an archive for it and expect zero
hits. Card numbers and cloud keys are the vendors' published test values, not live ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PiiSample:
    """One value that redaction must mask, with the kind of data it is."""

    kind: str
    """Matches ``Finding.reason`` for value patterns: ``email``, ``card_number``, ``jwt``, ..."""
    value: str


JWT_HS256 = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJ1c2VyLTg0NzIiLCJuYW1lIjoiQWxpY2UgQ29tcGxpYW5jZSIsImlhdCI6MTc2Mzc5MDc3OCwiZXhwIjoxNzYzNzk0Mzc4fQ"
    ".CqVNIAo4Bn7p9PNuzIEIW8R3fqKx9_sCs_VSH-MM7A0"
)

PII_SAMPLES: list[PiiSample] = [
    PiiSample("email", "alice.compliance@example.org"),
    PiiSample("email", "bob+audit-trail@mail.example.co.uk"),
    PiiSample("email", "CAROL.UPPERCASE@EXAMPLE.NET"),
    PiiSample("email", "dave_o-neil@eu.sub.example.io"),
    PiiSample("card_number", "4111 1111 1111 1111"),
    PiiSample("card_number", "4111-1111-1111-1111"),
    PiiSample("card_number", "4111111111111111"),
    PiiSample("card_number", "5555555555554444"),
    PiiSample("card_number", "5555 5555 5555 4444"),
    PiiSample("card_number", "378282246310005"),
    PiiSample("card_number", "3782-822463-10005"),
    PiiSample("jwt", JWT_HS256),
    PiiSample("bearer_token", "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    PiiSample("bearer_token", "Basic YWxpY2U6czNjcjN0LXBhc3MtNzc4MQ=="),
    PiiSample("cloud_key", "AKIAIOSFODNN7EXAMPLE"),
    PiiSample("cloud_key", "ghp_R8xK2mQ9vL4nT7wZ1yB5cD3fG6hJ0kP2sA4u"),
    PiiSample("cloud_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    PiiSample("cloud_key", "xoxb-2048-1024-AbCdEfGhIjKlMnOpQrStUvWx"),
    PiiSample("cloud_key", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    PiiSample("api_key", "api_key=Zk93Lq7Wm2Xr5Tp1"),
    PiiSample("ssn", "536-22-8471"),
    PiiSample("ssn", "412-67-3095"),
    PiiSample("iban", "GB82 WEST 1234 5698 7654 32"),
    PiiSample("iban", "DE89370400440532013000"),
    PiiSample("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    PiiSample("phone", "+1-202-555-0143"),
    PiiSample("phone", "+44 20 7946 0958"),
    PiiSample("phone", "(202) 555-0143"),
    PiiSample("phone", "202-555-0187"),
    PiiSample("phone", "202.555.0164"),
    PiiSample("phone", "1-800-555-0199"),
]

# Values that are only secret because of the key they sit under.
SECRET_FIELDS: dict[str, str] = {
    "password": "hunter2-Correct-Horse",
    "client_secret": "cs-9Zq7Wm3Xr5Tp1Vn8",
    "api_key": "ak-live-Qm4Xz8Rt2Wp6Yv0",
    "refresh_token": "rt-7Hg3Kd9Lm2Np5Qs8",
    "X-Auth-Token": "xat-5Jd8Kf2Lg9Mh3Nq6",
    "db_password": "pg-Vx3Bn7Mc1Zl9Ka5",
    "sessionid": "sid-4Rf8Tg2Yh6Uj0Ik3",
    "cvv": "739",
}

# Look-alikes that must survive redaction unchanged.
NEGATIVE_SAMPLES: list[str] = [
    "/items/42",
    "/api/v1/tenants/acme/users/17",
    "/orders/1234567890123",
    "550e8400-e29b-41d4-a716-446655440000",
    "2026-11-22T05:52:58Z",
    "2026-11-22T05:52:58.123456+00:00",
    "2026-11-22",
    "22/11/2026 05:52",
    "ORD-2026-000123",
    "order 1234567890",
    "4111111111111112",
    "9111111111111110",
    "1732254778126",
    "10.0.0.1",
    "192.168.100.200",
    "255.255.255.0",
    "1.2.3",
    "v10.20.300",
    "3.14159265358979",
    "000-12-3456",
    "666-12-3456",
    "912-34-5678",
    "123-456-7890",
    "GB00WEST12345698765432",
    "Basic information about the author",
    "shipping to the company @ noon",
    "@example.com",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "traceparent 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
]

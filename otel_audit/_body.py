"""Request and response bodies: bounded capture, then rendering as a redacted attribute.

Independent of the ASGI plumbing: the caller feeds :class:`BodyCapture` the chunks it sees
(``http.request`` / ``http.response.body`` messages) and, once the policy has decided the
event's level, turns the capture into text with :func:`render_body`.

What gets recorded, and why:

* JSON (``application/json``, ``application/*+json``) and form bodies
  (``application/x-www-form-urlencoded``) are parsed and handed to ``redact`` as values, so
  secret-named keys are masked whole and PII is masked inside values, field by field.
* Everything else (multipart, binary, ``text/plain``, XML, ...) is recorded as its content
  type and size only. Free text has no keys to mask by, and pattern masking alone misses
  secrets with no recognisable shape (a password in a text note), so it is not copied.
* A body beyond the size cap is never parsed: a cut JSON document could end inside a secret
  whose key the parser never sees, so only a truncation marker with the full size is kept.
* Bodies that are not UTF-8, invalid JSON (``NaN`` included), or nested deeper than the
  parser can go are recorded as size and type with the reason.

A body that is not captured renders as ``{"captured": false, "content_type": ...,
"size": N, "truncated": bool, "reason": ...}`` and adds a finding ``<path>:<reason>`` (reasons:
``truncated``, ``unsupported_type``, ``charset``, ``not_utf8``, ``invalid_json``,
``too_deep``); an empty body renders the same with reason ``empty`` and no finding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl

from ._redaction import Finding

__all__ = ["BodyCapture", "render_body"]

Redact = Callable[[object, str, list[Finding]], str]
"""``(value, path, findings) -> JSON text``, e.g. ``Scrubber.json``."""

_FORM: Final = "application/x-www-form-urlencoded"
# RFC 6838 restricted names; anything else is not echoed (the header is client-controlled).
_MEDIA_TYPE_RE: Final = re.compile(
    r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
)
_UTF8_CHARSETS: Final = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class BodyCapture:
    """The first ``limit`` bytes of a body, its total size, and whether it was cut.

    Chunks are kept in a list and joined once when rendered, so many small chunks cost
    linear time; of a chunk crossing the cap only the part that fits is copied.
    """

    __slots__ = ("_chunks", "_kept", "content_type", "limit", "size", "truncated")

    def __init__(self, content_type: str | None, limit: int) -> None:
        if type(limit) is not int or limit < 0:
            raise ValueError(f"body capture limit must be a non-negative int, got {limit!r}")
        self.content_type = content_type
        """The ``Content-Type`` header as sent, or ``None``."""
        self.limit = limit
        """Most bytes kept."""
        self.size = 0
        """Bytes seen in total, kept or not."""
        self.truncated = False
        """Whether bytes beyond ``limit`` were seen (and dropped)."""
        self._chunks: list[bytes] = []
        self._kept = 0

    def add(self, chunk: bytes | bytearray | memoryview) -> None:
        """Account for one chunk, keeping what still fits under the cap."""
        length = len(chunk)
        if not length:
            return
        self.size += length
        room = self.limit - self._kept
        if length > room:
            self.truncated = True
            if room <= 0:
                return
            chunk = chunk[:room]
            length = room
        # bytes() of a bytes object is the object itself; a bytearray or memoryview is copied,
        # since the sender may reuse its buffer.
        self._chunks.append(bytes(chunk))
        self._kept += length

    @property
    def data(self) -> bytes:
        """The kept bytes (at most ``limit``)."""
        if len(self._chunks) > 1:
            self._chunks[:] = [b"".join(self._chunks)]
        return self._chunks[0] if self._chunks else b""


def render_body(capture: BodyCapture, redact: Redact, path: str, findings: list[Finding]) -> str:
    """The body as attribute text: redacted JSON for JSON and form bodies, else a summary."""
    media_type, charset = _parse_content_type(capture.content_type)
    is_json = media_type is not None and (
        media_type == "application/json"
        or (media_type.startswith("application/") and media_type.endswith("+json"))
    )
    reason = _reason_not_to_parse(capture, media_type, charset, is_json)
    if reason is None:
        value, reason = _decode(capture.data, is_json)
        if reason is None:
            return _valid_utf8(redact(value, path, findings))
    if reason != "empty":
        findings.append(Finding(path, reason))
    summary = {
        "captured": False,
        "content_type": media_type,
        "size": capture.size,
        "truncated": capture.truncated,
        "reason": reason,
    }
    # Through redact as well: the content type is client-controlled text.
    return _valid_utf8(redact(summary, path, findings))


def _reason_not_to_parse(
    capture: BodyCapture, media_type: str | None, charset: str | None, is_json: bool
) -> str | None:
    if capture.size == 0:
        return "empty"
    if capture.truncated:
        return "truncated"
    if not is_json and media_type != _FORM:
        return "unsupported_type"
    if charset is not None and charset not in _UTF8_CHARSETS:
        return "charset"
    return None


def _decode(data: bytes, is_json: bool) -> tuple[object, str | None]:
    """The parsed body, or why it could not be parsed."""
    try:
        text = data.decode("utf-8-sig")  # strict; a leading BOM is dropped
    except UnicodeDecodeError:
        return None, "not_utf8"
    if not is_json:
        return _form_fields(text), None
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except RecursionError:
        return None, "too_deep"
    except ValueError:  # JSONDecodeError, NaN/Infinity, integers beyond the digit limit
        return None, "invalid_json"


def _parse_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    if not content_type:
        return None, None
    main, _, parameters = content_type.partition(";")
    media_type: str | None = main.strip().lower()
    if media_type is None or not _MEDIA_TYPE_RE.fullmatch(media_type):
        media_type = None
    charset = None
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media_type, charset


def _form_fields(text: str) -> dict[str, object]:
    fields: dict[str, object] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        prior = fields.get(key)
        if prior is None:
            fields[key] = value
        elif isinstance(prior, list):
            prior.append(value)
        else:
            fields[key] = [prior, value]
    return fields


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON, and json.dumps would write them back out as invalid JSON.
    raise ValueError(f"{name} is not JSON")


def _valid_utf8(text: str) -> str:
    """JSON may decode "\\ud800" to a lone surrogate, which no exporter can encode: escape it."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text

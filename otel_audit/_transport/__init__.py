"""How audit records leave the process: the audit trail's own transport.

The OTel SDK's generic log pipeline is both the slowest and the lossiest part of the path
(``Logger.emit`` copies and checks every attribute, the OTLP encoder is pure Python on a
thread holding the GIL, the batch processor evicts when full and gives up on a failed batch).
So, like the Kubernetes API server's audit backends, the audit trail has its own transport:

* ``spool``: each event is encoded in-process as one OTLP JSON line and appended by one
  group-committing writer (one ``write`` + ``fsync`` per batch) to segments under
  ``<spool_dir>/<service.instance.id>/`` (``_spool``). A collector on the same host reads the
  closed segments (``otlpjsonfile`` receiver, ``file_storage`` checkpoints) and deletes them
  once read; with nothing reading it, the spool is the local archive.
* ``otlp``: the same spool, shipped by the library itself to the ``OTEL_EXPORTER_OTLP_*``
  endpoint from a background thread (``_shipper``); a segment is deleted only after the
  endpoint accepted every line: the spool is its persistent queue.
* ``sdk``: through the application's own ``LoggerProvider`` (its pipeline decides what is
  kept).

The default, when ``AuditConfig.transport`` / ``OTEL_AUDIT_TRANSPORT`` is unset
(:func:`choose_transport`): ``sdk`` when ``instrument_app()`` is given a ``logger_provider``
(the caller chose where records go), ``otlp`` when an OTLP logs endpoint is configured
(``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``), else ``spool``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, Protocol

TransportName = Literal["spool", "otlp", "sdk"]
_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def choose_transport(
    configured: TransportName | None,
    *,
    explicit_provider: bool,
    env: Mapping[str, str] | None = None,
) -> TransportName:
    """The transport to use: the configured one, else the default described above."""
    if configured is not None:
        return configured
    if explicit_provider:
        return "sdk"
    environ = os.environ if env is None else env
    if any(environ.get(name) for name in _OTLP_ENDPOINT_VARIABLES):
        return "otlp"
    return "spool"


class Durable(Protocol):
    """What a transport hands back for a record it accepted: a wait until it is on disk."""

    def wait(self, timeout: float | None = None) -> bool:
        """True once durable, False on timeout; raises if it never will be."""

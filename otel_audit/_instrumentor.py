"""Zero-code entry point: ``opentelemetry-instrument uvicorn app:app`` audits every app.

Registered under the ``opentelemetry_instrumentor`` entry point group. It wraps
``FastAPI.__init__`` so each application created afterwards is passed to
:func:`instrument_app` with a configuration read from ``OTEL_AUDIT_*`` variables alone.
Patching is reserved for this entry point; code that can call ``instrument_app`` should.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from ._config import AuditConfig
from .fastapi import _instrument

_ORIGINAL_INIT = "_otel_audit_original_init"


class AuditInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Audits every FastAPI application constructed after ``instrument()``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("fastapi >= 0.110",)

    def _instrument(self, **kwargs: Any) -> None:
        from fastapi.applications import FastAPI

        if hasattr(FastAPI, _ORIGINAL_INIT):
            return
        original = FastAPI.__init__
        config = AuditConfig()  # read once: a misconfiguration fails at start-up, loudly
        logger_provider = kwargs.get("logger_provider")
        meter_provider = kwargs.get("meter_provider")

        @functools.wraps(original)
        def audited_init(app: FastAPI, *args: Any, **init_kwargs: Any) -> None:
            original(app, *args, **init_kwargs)
            _instrument(app, config, logger_provider, None, meter_provider, automatic=True)

        setattr(FastAPI, _ORIGINAL_INIT, original)
        FastAPI.__init__ = audited_init  # type: ignore[method-assign,assignment]

    def _uninstrument(self, **kwargs: Any) -> None:
        from fastapi.applications import FastAPI

        original = getattr(FastAPI, _ORIGINAL_INIT, None)
        if original is not None:
            FastAPI.__init__ = original  # type: ignore[method-assign]
            delattr(FastAPI, _ORIGINAL_INIT)

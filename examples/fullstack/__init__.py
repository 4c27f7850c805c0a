"""A FastAPI service laid out the usual way, audited zero-code.

The shape of the "full-stack FastAPI template": routers with prefixes included into an API
router mounted at ``/api/v1``, OAuth2 password login issuing HS256 JWTs, a ``get_current_user``
dependency, a SQLite database behind a ``yield`` dependency, a mounted admin sub-application
and a WebSocket. The app never calls ``instrument_app``: run it as

    FULLSTACK_DATA_DIR=/tmp/fullstack opentelemetry-instrument uvicorn examples.fullstack.main:app

and otel_audit audits it from the environment alone. The app's own code names the actor
(``set_actor``) and records business events (``record``) where a real service would.
"""

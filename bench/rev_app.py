"""Child process of ``--compare-with REV``: a bench app whose ``otel_audit`` comes from REV.

Run by path (``python bench/rev_app.py MODE ...``) with ``PYTHONPATH`` and the working
directory set to REV's worktree (``bench/worktree.py``), so ``otel_audit`` and ``bench.apps``
are REV's. REV's ``bench.apps`` provides the app factories (``baseline_app``,
``audited_otlp_app``); this file adds today's endpoints (``bench/endpoints.py``, loaded by
path) that REV's app lacks, so both trees serve the same requests. It exits with an error
when ``otel_audit`` or ``bench.apps`` was imported from anywhere but the worktree: a
comparison of the working tree with itself would look like a perfect result.

Modes: ``serve UVICORN_ARGS...`` (uvicorn's command line, app ``__main__:<factory>``) and
``asgi-cost ARGS...`` (``bench/asgi_driver.py``, timing the factories in process).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
# Run by path, Python put this folder first on sys.path: nothing may be imported from it.
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    del sys.path[0]
_TREE = Path(os.environ["BENCH_REV_TREE"]).resolve()
sys.path.insert(0, str(_TREE))


def _check_from_tree(module: ModuleType) -> None:
    origin = Path(module.__file__ or "").resolve()
    if _TREE not in origin.parents:
        raise SystemExit(
            f"rev_app: {module.__name__} was imported from {origin}, not from {_TREE}; "
            "the comparison would measure the wrong code"
        )


import otel_audit  # noqa: E402

_check_from_tree(otel_audit)

from fastapi import FastAPI  # noqa: E402

from bench import apps as _rev_apps  # noqa: E402

_check_from_tree(_rev_apps)


def _load(name: str, path: Path) -> ModuleType:
    """A module of today's bench folder, by path, under a name REV's ``bench`` cannot shadow."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"rev_app: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


_endpoints = _load("bench_head_endpoints", _HERE / "endpoints.py")


def _with_endpoints(factory: Callable[[], FastAPI]) -> Callable[[], FastAPI]:
    def build() -> FastAPI:
        app = factory()
        _endpoints.add_endpoints(app)
        return app

    build.__name__ = factory.__name__
    return build


baseline_app = _with_endpoints(_rev_apps.baseline_app)
audited_otlp_app = _with_endpoints(_rev_apps.audited_otlp_app)
FACTORIES: dict[str, Callable[[], FastAPI]] = {
    "baseline_app": baseline_app,
    "audited_otlp_app": audited_otlp_app,
}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("serve", "asgi-cost"):
        raise SystemExit("usage: rev_app.py serve UVICORN_ARGS... | asgi-cost ARGS...")
    print(f"rev_app: otel_audit from {Path(otel_audit.__file__ or '').parent}", file=sys.stderr)
    if argv[0] == "serve":
        import uvicorn

        uvicorn.main(argv[1:])
    else:
        driver = _load("bench_head_asgi_driver", _HERE / "asgi_driver.py")
        driver.child_main(FACTORIES, argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])

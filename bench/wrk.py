"""Running wrk and reading its summary; any failed request fails the benchmark."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .processes import LOAD_CORE, pinned

# A realistic client sends a User-Agent; the audit middleware records (and scrubs) it.
_USER_AGENT = "otel-audit-bench/1.0 (wrk)"
_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS_RE = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_LATENCY_RE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


class WrkError(RuntimeError):
    """wrk failed, or some requests did not get a 2xx answer."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float


def post_script(directory: Path, body: bytes, content_type: str = "application/json") -> Path:
    """A wrk Lua script that makes every request a POST of ``body``, written to ``directory``.

    wrk sends one static request when the script only sets ``wrk.method``, ``wrk.body`` and
    ``wrk.headers`` (no ``request()`` function), so the script costs the load side nothing per
    request; wrk adds the ``Content-Length`` itself.
    """
    text = body.decode()
    if "]==]" in text:
        raise ValueError("the body would end the Lua long string early")
    script = directory / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = [==[{text}]==]\n'
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
    )
    return script


def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    script: Path | None = None,
) -> WrkResult:
    """Load ``url`` for ``seconds``; raise :class:`WrkError` on any error or non-2xx.

    ``script`` is a wrk Lua script (``-s``), e.g. :func:`post_script`; without it wrk GETs.
    """
    argv = pinned(
        LOAD_CORE,
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            # wrk's default (2 s) counts a request stalled by a busy machine as a socket
            # error, which fails the whole run; a lost request still shows as one here.
            "--timeout",
            "10s",
            "-H",
            f"User-Agent: {_USER_AGENT}",
            *(["-s", str(script)] if script is not None else []),
            url,
        ],
    )
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{output}")
    return parse_wrk(output)


def parse_wrk(output: str) -> WrkResult:
    """The numbers of a ``wrk --latency`` summary, after checking it reports no errors."""
    non_2xx = _NON_2XX_RE.search(output)
    if non_2xx is not None and int(non_2xx.group(1)) > 0:
        raise WrkError(f"{non_2xx.group(1)} non-2xx responses:\n{output}")
    socket_errors = _SOCKET_ERRORS_RE.search(output)
    if socket_errors is not None and any(int(n) for n in socket_errors.groups()):
        raise WrkError(f"socket errors:\n{output}")
    requests = _REQUESTS_RE.search(output)
    rps = _RPS_RE.search(output)
    if requests is None or rps is None:
        raise WrkError(f"unreadable wrk output:\n{output}")
    if int(requests.group(1)) == 0:
        raise WrkError(f"no request completed:\n{output}")
    latency = {
        m.group(1): float(m.group(2)) * _UNIT_MS[m.group(3)] for m in _LATENCY_RE.finditer(output)
    }
    return WrkResult(
        requests=int(requests.group(1)),
        requests_per_second=float(rps.group(1)),
        latency_p50_ms=latency.get("50", float("nan")),
        latency_p99_ms=latency.get("99", float("nan")),
    )

"""Every collector configuration is checked by the real binary's ``validate`` command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from examples.stack import ROOT, binary

CONFIGS = ROOT / "collector-config"
INVALID = CONFIGS / "testdata" / "invalid"

VALID = [
    pytest.param(["otelcol-audit.yaml"], id="otelcol-audit"),
    pytest.param(["agent.yaml"], id="agent"),
    pytest.param(["otelcol-audit.yaml", "gateway.yaml"], id="gateway-overlay"),
]

# Each invalid config with the words its error must contain: a config failing for some
# other reason (a typo in the test data) would not prove the check it is meant to.
INVALID_EXPECTED = {
    "archive-append-with-rotation.yaml": "append and rotation enabled at the same time",
    "archive-empty-path.yaml": "path must be non-empty",
    "redaction-bad-regex.yaml": "error compiling regex",
    "routing-empty-table.yaml": "the routing table is empty",
    "transform-bad-ottl.yaml": 'undefined function "scrub_everything"',
    "undefined-processor.yaml": 'references processor "redaction/audit" which is not configured',
    "unknown-component.yaml": 'unknown type: "kafka"',
}


def _validate(*configs: Path) -> subprocess.CompletedProcess[str]:
    command = [str(binary("otelcol-audit")), "validate"]
    for config in configs:
        command += ["--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("names", VALID)
def test_shipped_configs_are_valid(names: list[str]) -> None:
    """The configs we ship (and the gateway overlay merged onto the main one) validate."""
    result = _validate(*(CONFIGS / name for name in names))
    assert result.returncode == 0, result.stderr


def test_every_invalid_config_has_an_expectation() -> None:
    """Each file under testdata/invalid is covered by the table below, and vice versa."""
    assert {path.name for path in INVALID.glob("*.yaml")} == set(INVALID_EXPECTED)


@pytest.mark.parametrize(("name", "message"), sorted(INVALID_EXPECTED.items()))
def test_invalid_configs_are_rejected_for_the_right_reason(name: str, message: str) -> None:
    """validate fails on each broken config, naming what is wrong."""
    result = _validate(INVALID / name)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr

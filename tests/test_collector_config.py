"""Every collector configuration is checked by the real binary's ``validate`` command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from examples.stack import COLLECTOR_FLAGS, ROOT, binary
from otel_audit import AuditConfig

CONFIGS = ROOT / "collector-config"
INVALID = CONFIGS / "testdata" / "invalid"

VALID = [
    pytest.param(["otelcol-audit.yaml"], id="otelcol-audit"),
    pytest.param(["agent.yaml"], id="agent"),
    pytest.param(["otelcol-audit.yaml", "gateway.yaml"], id="gateway-overlay"),
    pytest.param(["agent.yaml", "agent-lb.yaml"], id="agent-lb-overlay"),
]

# Each invalid config with the words its error must contain: a config failing for some
# other reason (a typo in the test data) would not prove the check it is meant to.
INVALID_EXPECTED = {
    "archive-append-with-rotation.yaml": "append and rotation enabled at the same time",
    "audit-redaction-bad-regex.yaml": "blocked_values: error compiling regex",
    "audit-redaction-replace-without-keys.yaml": "replace_patterns[0]: no keys",
    "archive-empty-path.yaml": "path must be non-empty",
    "redaction-bad-regex.yaml": "error compiling regex",
    "routing-empty-table.yaml": "the routing table is empty",
    "spool-delete-from-end.yaml": "'delete_after_read' cannot be used with 'start_at: end'",
    "transform-bad-ottl.yaml": 'undefined function "scrub_everything"',
    "undefined-processor.yaml": 'references processor "redaction/audit" which is not configured',
    "unknown-component.yaml": 'unknown type: "kafka"',
}


# The library's embedded archive folder (contract). The collector must never share it: one
# process owns a file, and two writers appending to one archive would interleave records.
LIBRARY_ARCHIVE_VARIABLE = "OTEL_AUDIT_ARCHIVE_DIR"
COLLECTOR_ARCHIVE_VARIABLE = "OTEL_AUDIT_COLLECTOR_ARCHIVE_DIR"

# ${env:NAME} or ${env:NAME:-default}, as the collector's confmap env provider reads them.
ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# Every collector configuration in the repository (shipped, test data, the e2e sinks); the
# builder manifest is not one.
ALL_CONFIGS = sorted(
    path
    for path in [*CONFIGS.rglob("*.yaml"), *(ROOT / "tests" / "e2e" / "configs").rglob("*.yaml")]
    if path.name != "builder-config.yaml"
)


def _with_defaults(text: str) -> str:
    """``text`` with every ``${env:NAME:-default}`` replaced by its default (empty if none)."""
    return ENV_REFERENCE.sub(lambda match: match[2] or "", text)


def _file_exporter_paths(config: Path) -> list[str]:
    """The ``path`` of every file exporter in ``config``, as written (env references kept)."""
    exporters = (yaml.safe_load(config.read_text()) or {}).get("exporters") or {}
    return [
        str(settings["path"])
        for name, settings in exporters.items()
        if name.split("/")[0] == "file" and settings and settings.get("path")
    ]


def _folder(path: str) -> PurePosixPath:
    """A folder path made comparable: ``./a/b`` and ``a/b`` are the same folder."""
    return PurePosixPath(*PurePosixPath(path).parts)


def _validate(
    *configs: Path, flags: tuple[str, ...] = COLLECTOR_FLAGS
) -> subprocess.CompletedProcess[str]:
    command = [str(binary("otelcol-audit")), "validate", *flags]
    for config in configs:
        command += ["--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("names", VALID)
def test_shipped_configs_are_valid(names: list[str]) -> None:
    """The configs we ship (and the gateway overlay merged onto the main one) validate."""
    result = _validate(*(CONFIGS / name for name in names))
    assert result.returncode == 0, result.stderr


def test_spool_receiver_needs_the_deletion_gate() -> None:
    """Without --feature-gates=filelog.allowFileDeletion the shipped config is refused, by name."""
    result = _validate(CONFIGS / "otelcol-audit.yaml", flags=())
    assert result.returncode != 0
    assert "requires feature gate 'filelog.allowFileDeletion'" in result.stdout + result.stderr


def _spool_receiver() -> dict[str, object]:
    config = yaml.safe_load((CONFIGS / "otelcol-audit.yaml").read_text())
    return dict(config["receivers"]["otlpjsonfile/spool"])


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        # Closed segments only, from the spool root the library writes (its default too).
        ("include", ["${env:OTEL_AUDIT_SPOOL_DIR:-./otel-audit-archive}/*/*.jsonl"]),
        ("start_at", "beginning"),
        ("storage", "file_storage/spool"),
        ("delete_after_read", True),
        # log.file.name on every record would change the events the library chained.
        ("include_file_name", False),
    ],
)
def test_spool_receiver_setting(setting: str, expected: object) -> None:
    """The spool receiver reads the contract layout, from the start, with checkpoints."""
    assert _spool_receiver()[setting] == expected


def test_every_invalid_config_has_an_expectation() -> None:
    """Each file under testdata/invalid is covered by the table below, and vice versa."""
    assert {path.name for path in INVALID.glob("*.yaml")} == set(INVALID_EXPECTED)


@pytest.mark.parametrize(("name", "message"), sorted(INVALID_EXPECTED.items()))
def test_invalid_configs_are_rejected_for_the_right_reason(name: str, message: str) -> None:
    """validate fails on each broken config, naming what is wrong."""
    result = _validate(INVALID / name)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_library_archive_variable_is_the_library_contract() -> None:
    """The variable the collector must stay away from is the one the library really reads."""
    config = AuditConfig.from_env({LIBRARY_ARCHIVE_VARIABLE: "/somewhere/else"})
    assert config.archive_dir == "/somewhere/else"


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_collector_config_reads_the_library_archive_variable(config: Path) -> None:
    """No collector config reads the library's archive variable: the two archives stay apart."""
    variables = {match[1] for match in ENV_REFERENCE.finditer(config.read_text())}
    assert LIBRARY_ARCHIVE_VARIABLE not in variables


def test_collector_archive_has_its_own_variable() -> None:
    """The shipped archive's path comes from OTEL_AUDIT_COLLECTOR_ARCHIVE_DIR, with a default."""
    (path,) = _file_exporter_paths(CONFIGS / "otelcol-audit.yaml")
    variables = {match[1]: match[2] for match in ENV_REFERENCE.finditer(path)}
    assert list(variables) == [COLLECTOR_ARCHIVE_VARIABLE], path
    assert variables[COLLECTOR_ARCHIVE_VARIABLE], f"{path} has no default folder"


def _default_file_paths() -> list[tuple[Path, str]]:
    """(config, path) of every file exporter whose path resolves to a file with nothing set."""
    return [
        (config, path)
        for config in ALL_CONFIGS
        for path in map(_with_defaults, _file_exporter_paths(config))
        if PurePosixPath(path).name
    ]


@pytest.mark.parametrize(
    ("config", "path"),
    _default_file_paths(),
    ids=[f"{config.relative_to(ROOT)}:{path}" for config, path in _default_file_paths()],
)
def test_collector_default_archive_is_not_the_library_archive(config: Path, path: str) -> None:
    """With nothing set, no file a collector writes lies in the library's default folder."""
    library = _folder(AuditConfig.from_env({}).archive_dir)
    assert not _folder(path).is_relative_to(library), f"{config.name}: {path} is in {library}"

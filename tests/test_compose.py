"""docker-compose.yml checked against the compose spec and against what the tests really run.

No Docker engine runs where the tests run, so the compose deployment is never started here.
These checks keep it honest instead: it validates against the compose specification, every
file it names exists, its collector environment is the contract of
collector-config/otelcol-audit.yaml (and Jaeger's that of collector-config/jaeger.yaml), its
ports and endpoints are the ones those configs and examples/stack.py use, its images are
the versions pinned in scripts/versions.env, and the collector image it builds
(collector-config/Dockerfile) builds the manifest `make collector` builds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml

from examples.stack import (
    COLLECTOR_CONFIG,
    COLLECTOR_FLAGS,
    JAEGER_CONFIG,
    JAEGER_HEALTH_PATH,
    Stack,
    binary,
)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
VERSIONS_FILE = ROOT / "scripts" / "versions.env"

# ${env:NAME} or ${env:NAME:-default}, as the collector's confmap env provider reads them.
ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# Variables the compose collector may leave at the config's default, and why that is right.
CONTAINER_SAFE_DEFAULTS = {
    # Self-telemetry is served on the container's own loopback; nothing outside scrapes it.
    "OTEL_AUDIT_COLLECTOR_METRICS_PORT",
}


def _load_yaml(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(path.read_text()))


COMPOSE = _load_yaml(COMPOSE_FILE)
SERVICES = cast(dict[str, dict[str, Any]], COMPOSE["services"])


def _environment(service: str) -> dict[str, str]:
    """A service's environment, from either compose syntax (mapping or KEY=value list)."""
    raw = SERVICES[service].get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def _container_ports(service: str) -> set[int]:
    """Container-side ports a service publishes, from short or long port syntax."""
    ports = set()
    for entry in SERVICES[service].get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:  # "[host_ip:][published:]target[/protocol]"
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def _bind_mounts(service: str) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of a service's bind mounts; named volumes are left out."""
    mounts = []
    for entry in SERVICES[service].get("volumes", []):
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                mounts.append((entry["source"], entry["target"], bool(entry.get("read_only"))))
        else:
            source, target, *mode = str(entry).split(":")
            if source.startswith((".", "/", "~")):
                mounts.append((source, target, "ro" in "".join(mode).split(",")))
    return mounts


def _config_variables(config: Path = COLLECTOR_CONFIG) -> dict[str, str | None]:
    """Every variable ``config`` reads, with its default (None when it has none)."""
    return {match[1]: match[2] for match in ENV_REFERENCE.finditer(config.read_text())}


def _versions() -> dict[str, str]:
    lines = VERSIONS_FILE.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
    return {key: value.strip() for key, value in pairs}


def _dockerfile_sources(dockerfile: Path) -> list[str]:
    """The build-context paths a Dockerfile's COPY/ADD instructions read."""
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split(maxsplit=1)
        if len(words) < 2 or words[0].upper() not in {"COPY", "ADD"}:
            continue
        rest = words[1]
        arguments = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        if any(argument.startswith("--from=") for argument in arguments):
            continue  # from another stage or image, not the context
        sources += [argument for argument in arguments if not argument.startswith("--")][:-1]
    return sources


def _referenced_files() -> list[tuple[str, Path]]:
    """(what names it, path) for every file or folder the compose file depends on."""
    references = []
    for name, service in SERVICES.items():
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / (
                "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            )
            references += [(f"{name}: build context", context), (f"{name}: Dockerfile", dockerfile)]
            if dockerfile.is_file():
                references += [
                    (f"{name}: COPY {source}", context / source)
                    for source in _dockerfile_sources(dockerfile)
                ]
        references += [
            (f"{name}: mount {source}", (ROOT / source).resolve())
            for source, _, _ in _bind_mounts(name)
        ]
    return references


def _url_port(url: str) -> int | None:
    return urlsplit(url).port


def _address_port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_compose_file_matches_the_compose_specification() -> None:
    """check-jsonschema's bundled compose-spec schema accepts docker-compose.yml (offline)."""
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.fail("check-jsonschema is missing: pip install -e '.[dev]'")
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"),
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("reference", "path"), _referenced_files(), ids=[label for label, _ in _referenced_files()]
)
def test_referenced_file_exists(reference: str, path: Path) -> None:
    """Every build context, Dockerfile, COPY source and bind-mounted file exists in the repo."""
    assert path.exists(), f"{reference}: {path} does not exist"
    assert path.resolve().is_relative_to(ROOT), f"{reference}: {path} is outside the repository"


@pytest.mark.parametrize(
    "name", sorted(name for name in _environment("collector") if name.startswith("OTEL_AUDIT_"))
)
def test_collector_sets_only_variables_the_config_reads(name: str) -> None:
    """Each OTEL_AUDIT_* variable set on the compose collector is read by otelcol-audit.yaml."""
    assert name in _config_variables(), f"{name} is set in compose but unused by the config"


@pytest.mark.parametrize("name", sorted(_config_variables()))
def test_config_default_is_overridden_unless_right_in_a_container(name: str) -> None:
    """The config's loopback and working-directory defaults are replaced for the container."""
    assert name in _environment("collector") or name in CONTAINER_SAFE_DEFAULTS


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def _collector_command() -> list[str]:
    return _command("collector")


def _collector_flags() -> list[str]:
    """The compose collector's command-line flags other than its --config pair."""
    command = _collector_command()
    index = command.index("--config")
    return command[:index] + command[index + 2 :]


def test_compose_collector_has_the_feature_gates_the_tests_use() -> None:
    """The compose collector is started with the same feature gates as the local stack."""
    assert _collector_flags() == list(COLLECTOR_FLAGS)


def test_app_and_collector_share_the_spool() -> None:
    """App and collector name one spool folder, on one named volume mounted in both."""
    app, collector = _environment("app"), _environment("collector")
    assert app["OTEL_AUDIT_SPOOL_DIR"] == collector["OTEL_AUDIT_SPOOL_DIR"]

    def volume_at(service: str, target: str) -> str | None:
        for entry in SERVICES[service].get("volumes", []):
            if isinstance(entry, str) and entry.split(":")[1:2] == [target]:
                return entry.split(":")[0]
            if isinstance(entry, dict) and entry.get("target") == target:
                return str(entry.get("source"))
        return None

    volume = volume_at("app", app["OTEL_AUDIT_SPOOL_DIR"])
    assert volume is not None, "the app's spool folder is not on a volume"
    assert volume == volume_at("collector", collector["OTEL_AUDIT_SPOOL_DIR"])
    assert volume in COMPOSE["volumes"]


def test_collector_config_validates_with_the_compose_environment() -> None:
    """otelcol-audit accepts otelcol-audit.yaml with exactly the compose collector's variables."""
    result = subprocess.run(
        [
            str(binary("otelcol-audit")),
            "validate",
            *_collector_flags(),
            "--config",
            str(COLLECTOR_CONFIG),
        ],
        env=_environment("collector"),  # nothing from this shell, so no local value can help
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "port"),
    [
        ("OTEL_AUDIT_COLLECTOR_GRPC", 4317),
        ("OTEL_AUDIT_COLLECTOR_HTTP", 4318),
        ("OTEL_AUDIT_COLLECTOR_HEALTH", 13133),
    ],
)
def test_collector_listens_where_compose_expects(name: str, port: int) -> None:
    """The collector listens on all interfaces at the config's default port, and publishes it."""
    assert _environment("collector")[name] == f"0.0.0.0:{port}"
    default = _config_variables()[name]
    assert default is not None
    assert _address_port(default) == port, f"the config's default for {name} is {default}"
    assert port in _container_ports("collector"), f"{port} is not published"


@pytest.mark.parametrize(
    ("name", "service", "port"),
    [("OTEL_AUDIT_LOGS_ENDPOINT", "victorialogs", 9428)],
)
def test_backend_endpoint_names_the_backend_service(name: str, service: str, port: int) -> None:
    """The collector exports to the backend service's port, at the path the local stack uses."""
    endpoint = urlsplit(_environment("collector")[name])
    stack_path = urlsplit(Stack(ROOT / "unused").collector_env()[name]).path
    default = _config_variables()[name]
    assert default is not None
    assert endpoint.hostname == service
    assert endpoint.port == port == _url_port(default)
    assert endpoint.path == stack_path == urlsplit(default).path
    assert port in _container_ports(service)
    healthcheck = " ".join(SERVICES[service].get("healthcheck", {}).get("test", []))
    assert f":{port}/health" in healthcheck, f"{service} healthcheck probes another port"


def test_app_exports_to_the_collector_http_port() -> None:
    """The app sends OTLP/HTTP protobuf to the collector service's OTLP/HTTP port."""
    environment = _environment("app")
    endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
    http_port = _address_port(_environment("collector")["OTEL_AUDIT_COLLECTOR_HTTP"])
    assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "collector", http_port)
    assert environment.get("OTEL_SERVICE_NAME")


@pytest.mark.parametrize(
    ("service", "repository", "pin"),
    [
        ("victorialogs", "victoriametrics/victoria-logs", "VICTORIALOGS_VERSION"),
        ("jaeger", "jaegertracing/jaeger", "JAEGER_RELEASE"),
    ],
)
def test_image_is_the_pinned_version(service: str, repository: str, pin: str) -> None:
    """Each third-party image is the release scripts/versions.env pins for the local build."""
    assert SERVICES[service]["image"] == f"{repository}:{_versions()[pin]}"


@pytest.mark.parametrize(
    ("service", "config"), [("collector", COLLECTOR_CONFIG), ("jaeger", JAEGER_CONFIG)]
)
def test_service_runs_the_config_the_tests_run(service: str, config: Path) -> None:
    """The compose collector and Jaeger run the configs the tests run, mounted read-only."""
    command = _command(service)
    assert "--config" in command, command
    config_path = command[command.index("--config") + 1]
    mounted = {target: (source, ro) for source, target, ro in _bind_mounts(service)}
    assert config_path in mounted, f"{config_path} is not a bind mount"
    source, read_only = mounted[config_path]
    assert (ROOT / source).resolve() == config
    assert read_only, f"the {service} config should be mounted read-only"


# --- The collector image, built from the repository -----------------------------------------

COLLECTOR_DOCKERFILE = ROOT / "collector-config" / "Dockerfile"
BUILDER_MANIFEST = ROOT / "collector-config" / "builder-config.yaml"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments left out."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            instructions.append((word.upper(), " ".join(rest.split())))
            pending = ""
    return instructions


def _dockerfile_args(dockerfile: Path) -> dict[str, str]:
    """Default values of the Dockerfile's ARGs."""
    pairs = (rest.partition("=") for word, rest in _instructions(dockerfile) if word == "ARG")
    return {name: default for name, sep, default in pairs if sep}


def _builder_commands() -> list[str]:
    """The shell commands of the image's RUN instructions that run ocb."""
    runs = [rest for word, rest in _instructions(COLLECTOR_DOCKERFILE) if word == "RUN"]
    return [command for run in runs for command in run.split("&&") if " builder " in f" {command} "]


def test_collector_is_built_from_the_repository() -> None:
    """The compose collector is collector-config/Dockerfile built with the repository as context."""
    build = SERVICES["collector"]["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == COLLECTOR_DOCKERFILE
    assert "image" not in SERVICES["collector"], "a pulled image would stand in for the build"


def test_collector_image_pins_the_collector_release() -> None:
    """The image installs the builder of the release versions.env pins, on a new enough Go."""
    args, versions = _dockerfile_args(COLLECTOR_DOCKERFILE), _versions()
    assert args["OTELCOL_VERSION"] == versions["OTELCOL_VERSION"]
    go = tuple(int(part) for part in args["GO_VERSION"].split("."))
    assert go >= tuple(int(part) for part in versions["GO_MIN_VERSION"].split("."))
    froms = [rest for word, rest in _instructions(COLLECTOR_DOCKERFILE) if word == "FROM"]
    assert froms[0].startswith("golang:${GO_VERSION}-"), froms[0]
    runs = " ".join(rest for word, rest in _instructions(COLLECTOR_DOCKERFILE) if word == "RUN")
    assert "go install go.opentelemetry.io/collector/cmd/builder@v${OTELCOL_VERSION}" in runs


def test_collector_image_builds_the_manifest_and_its_local_components() -> None:
    """ocb runs on the manifest make collector uses, with every local component copied in."""
    manifest = _load_yaml(BUILDER_MANIFEST)
    (builder,) = _builder_commands()
    words = shlex.split(builder)
    assert words[words.index("--config") + 1] == str(BUILDER_MANIFEST.relative_to(ROOT))
    copies = [
        shlex.split(rest)
        for word, rest in _instructions(COLLECTOR_DOCKERFILE)
        if word == "COPY" and "--from=" not in rest
    ]
    # Each COPY keeps the repository layout (source and destination are the same path), so
    # the manifest's relative `path:` entries resolve inside the image as in the repository.
    copied = {Path(source) for *sources, destination in copies for source in sources}
    assert all(
        Path(destination) == Path(source) for *sources, destination in copies for source in sources
    ), copies
    local = [
        Path(module["path"])
        for kind in ("receivers", "processors", "exporters", "connectors", "extensions")
        for module in manifest.get(kind) or []
        if "path" in module
    ]
    assert local, "the manifest names no local component"
    for path in [*local, BUILDER_MANIFEST.relative_to(ROOT)]:
        assert any(path == c or c in path.parents for c in copied), f"{path} is not copied in"


def test_collector_image_ships_the_built_binary_alone() -> None:
    """The last stage copies the binary ocb wrote (output_path/name) and runs it, without Go."""
    dist = _load_yaml(BUILDER_MANIFEST)["dist"]
    built = Path(dist["output_path"]) / dist["name"]
    runs = " ".join(rest for word, rest in _instructions(COLLECTOR_DOCKERFILE) if word == "RUN")
    assert f"cp {built.as_posix().removeprefix('./')} /otelcol-audit" in runs
    instructions = _instructions(COLLECTOR_DOCKERFILE)
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    final = instructions[last_from:]
    assert not final[0][1].startswith("golang"), final[0]
    assert ("COPY", "--from=build /otelcol-audit /otelcol-audit") in final
    assert ("ENTRYPOINT", '["/otelcol-audit"]') in final
    assert ("USER", "10001:10001") in final, "docker-compose's volume-init chowns to 10001"


# --- Jaeger ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_config_variables(JAEGER_CONFIG)))
def test_jaeger_listens_on_every_interface_at_the_config_default(name: str) -> None:
    """Each address of jaeger.yaml is set for the container: all interfaces, the default port."""
    default = _config_variables(JAEGER_CONFIG)[name]
    assert default is not None, f"{name} has no default in jaeger.yaml"
    assert _environment("jaeger").get(name) == f"0.0.0.0:{_address_port(default)}"


def test_jaeger_sets_only_variables_its_config_reads() -> None:
    """Every variable set on the compose Jaeger is read by collector-config/jaeger.yaml."""
    assert set(_environment("jaeger")) <= set(_config_variables(JAEGER_CONFIG))


def test_collector_exports_traces_to_jaeger_otlp_http() -> None:
    """Traces go to Jaeger's OTLP/HTTP port, off 4317/4318, in compose, by default and locally."""
    compose = urlsplit(_environment("collector")["OTEL_AUDIT_TRACES_ENDPOINT"])
    default = _config_variables()["OTEL_AUDIT_TRACES_ENDPOINT"]
    jaeger_default = _config_variables(JAEGER_CONFIG)["OTEL_AUDIT_JAEGER_OTLP_HTTP"]
    assert default is not None and jaeger_default is not None
    stack = Stack(ROOT / "unused")
    local = urlsplit(stack.collector_env()["OTEL_AUDIT_TRACES_ENDPOINT"])
    assert compose.hostname == "jaeger"
    assert compose.port == _address_port(_environment("jaeger")["OTEL_AUDIT_JAEGER_OTLP_HTTP"])
    assert compose.port == urlsplit(default).port == _address_port(jaeger_default)
    assert compose.port not in {4317, 4318}
    assert local.port == stack.jaeger_otlp_http_port
    assert compose.path == urlsplit(default).path == local.path == "/v1/traces"


def test_jaeger_healthcheck_probes_its_health_endpoint() -> None:
    """The compose healthcheck asks Jaeger's health extension, where the local stack waits."""
    port = _address_port(_environment("jaeger")["OTEL_AUDIT_JAEGER_HEALTH"])
    probe = " ".join(SERVICES["jaeger"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}{JAEGER_HEALTH_PATH}" in probe


def test_jaeger_publishes_its_ui_and_query_api() -> None:
    """The web UI and query API port is published (on the host's loopback), OTLP is not."""
    jaeger = _environment("jaeger")
    published = _container_ports("jaeger")
    assert _address_port(jaeger["OTEL_AUDIT_JAEGER_QUERY_HTTP"]) in published
    assert _address_port(jaeger["OTEL_AUDIT_JAEGER_OTLP_HTTP"]) not in published
    assert all(str(entry).startswith("127.0.0.1:") for entry in SERVICES["jaeger"]["ports"])


def test_jaeger_config_validates_with_the_compose_environment() -> None:
    """The jaeger binary accepts jaeger.yaml with exactly the compose Jaeger's variables."""
    result = subprocess.run(
        [str(binary("jaeger")), "validate", "--config", str(JAEGER_CONFIG)],
        env=_environment("jaeger"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("service", "dependency"),
    [
        (name, dependency)
        for name, service in SERVICES.items()
        if isinstance(service.get("depends_on"), dict)
        for dependency, condition in service["depends_on"].items()
        if condition.get("condition") == "service_healthy"
    ],
)
def test_waited_for_service_has_a_healthcheck(service: str, dependency: str) -> None:
    """A service_healthy dependency has a healthcheck (compose would refuse to start without)."""
    assert "test" in SERVICES[dependency].get("healthcheck", {}), f"{service} -> {dependency}"

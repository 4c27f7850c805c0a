"""Scale-out on real clustered components, all on loopback (tests/e2e/cluster.py).

Two apps, each with its own agent (``agent.yaml`` + ``agent-lb.yaml``: loadbalancing exporter,
persistent queue) in front of two gateways (``otelcol-audit.yaml`` + ``gateway.yaml``), which
write their own archives and send to VictoriaLogs in cluster mode (vlinsert, vlselect, two
vlstorage). What the apps recorded is known by event id; every check counts
``audit.event.id`` in the union of the gateways' archives and through vlselect, and runs the
hash-chain verification over the union. The VictoriaLogs cluster and the gateways are shared
by the tests of this module (each test's apps have their own ``service.name``); a test that
stops one of them has it running again before the next.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from otel_audit.archive import ArchivedEvent, verify_events

from .cluster import (
    EmitterApp,
    ScaleOut,
    business_ids,
    closing_records,
    emitted_ids,
    run_name,
)
from .harness import poll

pytestmark = pytest.mark.e2e

APPS = 2
RATE = 40.0
"""Events per second per app."""
SETTLE = 120.0
"""Seconds for everything recorded to reach the archives and VictoriaLogs (2 shared cores)."""
UNDER_LOAD = 100
"""Events recorded (all apps) while a component is down, before it comes back."""


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleOut]:
    scale = ScaleOut(tmp_path_factory.mktemp("scale-out"))
    try:
        scale.start_backends()
        yield scale
    finally:
        scale.stop()


@pytest.fixture
def scale(shared: ScaleOut) -> ScaleOut:
    shared.ensure_backends()
    return shared


@dataclass
class Run:
    """One test's apps (one agent each), under one service.name."""

    scale: ScaleOut
    service_name: str
    apps: Sequence[EmitterApp]

    def emitted(self) -> list[str]:
        return emitted_ids(self.apps)

    def wait_emitted(self, count: int) -> None:
        """Wait until the apps have recorded ``count`` events in all."""
        poll(lambda: len(self.emitted()) >= count, timeout=60, what=f"{count} events recorded")

    def finish(self) -> list[str]:
        """Stop the apps (each closes and ships its trail); what they recorded, in order."""
        for app in self.apps:
            app.finish()
        return self.emitted()

    def archived(self) -> list[ArchivedEvent]:
        return self.scale.archived(self.service_name)

    def logged(self) -> Counter[str]:
        return self.scale.vl.event_ids(self.service_name)


@contextlib.contextmanager
def running_apps(scale: ScaleOut, prefix: str) -> Iterator[Run]:
    service_name = run_name(prefix)
    names: list[str] = []
    apps: list[EmitterApp] = []
    try:
        for number in range(1, APPS + 1):
            agent = scale.start(
                f"{service_name}-agent-{number}", scale.agent(f"{prefix}-agent-{number}")
            )
            names.append(f"{service_name}-agent-{number}")
            app = scale.app(f"{prefix}-app-{number}", service_name, agent, RATE)
            scale.start(f"{service_name}-app-{number}", app)
            names.append(f"{service_name}-app-{number}")
            apps.append(app)
        yield Run(scale, service_name, apps)
    finally:
        scale.stop(reversed(names))


def settle(run: Run, emitted: Sequence[str]) -> tuple[list[ArchivedEvent], Counter[str]]:
    """Read the archives and VictoriaLogs until both hold every emitted event (and the apps'
    closing records), or SETTLE seconds pass; what was read last, for the checks to judge."""
    expected = set(emitted)
    deadline = time.monotonic() + SETTLE
    while True:
        events, logged = run.archived(), Counter[str]()
        with contextlib.suppress(OSError):  # vlselect not answering yet
            logged = run.logged()
        complete = (
            expected <= business_ids(events).keys()
            and len(closing_records(events)) == len(run.apps)
            and expected <= logged.keys()
        )
        if complete or time.monotonic() > deadline:
            return events, logged
        time.sleep(0.5)


def check_complete(
    emitted: Sequence[str], events: Sequence[ArchivedEvent], logged: Counter[str]
) -> Counter[str]:
    """Every emitted event, and nothing else, in the archives and VictoriaLogs; the trail of
    each instance unbroken and closed across the gateways' archives. Returns the duplicates
    (id -> extra copies) in the archives and in VictoriaLogs together."""
    assert len(set(emitted)) == len(emitted), "an app returned the same event id twice"
    archived = business_ids(events)
    assert set(archived) == set(emitted), (
        f"{len(set(emitted) - set(archived))} missing, {len(set(archived) - set(emitted))} unknown"
    )
    assert set(logged) == set(emitted), (
        f"VictoriaLogs: {len(set(emitted) - set(logged))} missing,"
        f" {len(set(logged) - set(emitted))} unknown"
    )
    report = verify_events(events)
    assert report.clean, report.findings[:5]
    assert len(report.instances) == APPS
    assert all(instance.closed for instance in report.instances), report.instances
    return (archived - Counter(set(emitted))) + (logged - Counter(set(emitted)))


def test_every_event_arrives_once(scale: ScaleOut) -> None:
    """Both gateways share the load; every event is archived once and logged once."""
    with running_apps(scale, "steady") as run:
        run.wait_emitted(240)
        emitted = run.finish()
        events, logged = settle(run, emitted)
        per_gateway = scale.archived_by_gateway(run.service_name)
    duplicates = check_complete(emitted, events, logged)
    assert not duplicates, f"duplicates with no fault: {duplicates.most_common(3)}"
    shares = [sum(counts.values()) for counts in per_gateway]
    assert all(shares), f"a gateway got nothing: {shares}"
    print(f"\nsteady: {len(emitted)} events, per gateway {shares}, no duplicates")


def test_gateway_sigkill_under_load_loses_nothing(scale: ScaleOut) -> None:
    """A gateway SIGKILLed while the apps record: its share waits in the agents' persistent
    queues and reaches it when it is back; nothing is lost."""
    with running_apps(scale, "gw-kill") as run:
        poll(
            lambda: all(sum(c.values()) >= 20 for c in scale.archived_by_gateway(run.service_name)),
            timeout=SETTLE,
            what="both gateways archiving this run's events",
        )
        before = sum(scale.archived_by_gateway(run.service_name)[0].values())
        scale.services["gateway-1"].kill()
        killed_at = len(run.emitted())
        run.wait_emitted(killed_at + UNDER_LOAD)
        scale.start("gateway-1", scale.gateway(1))
        run.wait_emitted(len(run.emitted()) + UNDER_LOAD // 2)
        emitted = run.finish()
        events, logged = settle(run, emitted)
        after = sum(scale.archived_by_gateway(run.service_name)[0].values())
    duplicates = check_complete(emitted, events, logged)
    # The killed gateway's share of what was recorded while it was down reached it later.
    assert after > before, (before, after)
    print(
        f"\ngateway SIGKILL: {len(emitted)} events ({len(emitted) - killed_at} after the kill),"
        f" none lost; gateway-1 archived {before} before the kill, {after} in all;"
        f" duplicates {sum(duplicates.values())}"
    )


def test_storage_node_down_ingestion_continues(scale: ScaleOut) -> None:
    """The vlstorage node holding this run's events is stopped (SIGTERM, as for maintenance
    or a rolling restart): vlinsert sends everything to the other one, and once it is back
    vlselect answers every event once. (A SIGKILLed vlstorage loses the rows it had not yet
    flushed, up to -inmemoryDataFlushInterval, 5 s: collector-config/README.md.)"""
    with running_apps(scale, "vl-down") as run:

        def holding() -> list[int]:
            counts = [scale.vl.event_ids(run.service_name, storage_node=i) for i in (0, 1)]
            return [i for i, c in enumerate(counts) if sum(c.values()) >= 20]

        node = poll(holding, timeout=SETTLE, what="a storage node holding this run's events")[0]
        other = 1 - node
        name = f"vlstorage-{node + 1}"
        scale.services[name].stop()
        stopped_at = len(run.emitted())
        run.wait_emitted(stopped_at + UNDER_LOAD)
        during = set(run.emitted()[stopped_at : stopped_at + UNDER_LOAD])
        # Ingestion goes on: what was recorded with the node down is on the other node.
        poll(
            lambda: during <= scale.vl.event_ids(run.service_name, storage_node=other).keys(),
            timeout=SETTLE,
            what=f"events recorded with {name} down on the other node",
        )
        scale.start(name, scale.vl.storage(node))
        emitted = run.finish()
        events, logged = settle(run, emitted)
    duplicates = check_complete(emitted, events, logged)
    print(
        f"\n{name} down: {len(emitted)} events, {UNDER_LOAD} recorded while it was down found on"
        f" vlstorage-{other + 1}; duplicates {sum(duplicates.values())}"
    )

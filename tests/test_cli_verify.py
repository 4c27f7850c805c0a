"""``otel-audit verify`` on trails written by the real spool transport, then tampered with.

Every kind of tampering is named with its kind, seq, file and line; duplicates, read order and
open tails are notes that leave the trail clean; bad input is one line and its exit code.
Exit codes of the clean, dirty and bad-input cases are checked on a real
``python -m otel_audit`` process.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ._trails import Lines, cli, command, rechain, records, rewrite, spool_trail
from .test_integrity import FAILURE, rehash, set_attribute

KEY = "k-" + "7" * 30
REQUESTS = 12
EVENTS = 2 * REQUESTS + 1  # an http.request and an item.viewed per request, the closing record


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    spool_trail(root, REQUESTS)
    return root


@pytest.fixture(scope="module")
def pristine_keyed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine-keyed")
    spool_trail(root, REQUESTS, chain_key=KEY)
    return root


def copy(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the trail at ``root`` to tamper with, and its segment."""
    trail = tmp_path / "trail"
    shutil.copytree(root, trail)
    (segment,) = trail.glob("*/seg-*.jsonl")
    return trail, segment


@pytest.fixture
def trail(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    return copy(pristine, tmp_path)


def test_a_clean_trail_exits_0_and_says_so(trail: tuple[Path, Path]) -> None:
    """A real process: exit 0, every event, one closed instance, the documented JSON shape."""
    root, segment = trail

    run = command("verify", root, "--format", "json")

    assert run.code == 0, run.err
    document = run.json()
    assert document["format"] == "otel-audit/verify/1"
    assert document["clean"] and document["closed"] and document["exit_code"] == 0
    assert document["events"] == EVENTS and document["files"] == 1
    (instance,) = document["instances"]
    assert instance["instance_id"] == segment.parent.name
    assert (instance["first_seq"], instance["last_seq"], instance["closed"]) == (1, EVENTS, True)
    assert document["findings"] == [] and document["digests"] is None
    text = command("verify", root)
    assert text.code == 0 and text.out.startswith("CLEAN: 25 events in 1 file(s)")


def _modify(lines: Lines) -> Lines:
    lines[9] = set_attribute(lines[9], "audit.outcome", FAILURE)
    return lines


def _forge_insert(lines: Lines) -> Lines:
    lines.insert(10, rehash(set_attribute(lines[9], "audit.outcome", FAILURE)))
    return lines


def _delete(lines: Lines) -> Lines:
    del lines[9]
    return lines


def _rechain_after_modify(lines: Lines) -> Lines:
    return rechain(_modify(lines), 9)


def _insert_garbage(lines: Lines) -> Lines:
    lines.insert(5, b'{"resourceLogs":[{"resource":\n')
    return lines


def _cut_mid_line(lines: Lines) -> Lines:
    return [*lines[:14], lines[14][:300]]


# (tamper, exit code, failing findings as (kind, seq, line)); the segment is rewritten with
# the event lines only (its padding dropped), so line n holds seq n.
TAMPERING: list[tuple[Callable[[Lines], Lines], int, set[tuple[str, int | None, int | None]]]] = [
    (_modify, 1, {("modified", 10, 10)}),
    (_forge_insert, 1, {("conflict", 10, 11)}),
    (_delete, 1, {("gap", 10, 10), ("chain_break", 11, 10)}),
    # Rewritten and re-chained from seq 10: the chain verifies; only a seal catches this.
    (_rechain_after_modify, 0, set()),
    (_insert_garbage, 3, {("unreadable", None, 6)}),
    # A closed segment cut inside line 15: unreadable, and seqs 15.. are gone (an open tail).
    (_cut_mid_line, 3, {("unreadable", None, 15)}),
]


@pytest.mark.parametrize(
    ("tamper", "code", "expected"), TAMPERING, ids=lambda v: getattr(v, "__name__", None)
)
def test_each_tampering_is_named_with_file_and_line(
    trail: tuple[Path, Path],
    tamper: Callable[[Lines], Lines],
    code: int,
    expected: set[tuple[str, int | None, int | None]],
) -> None:
    """The exit code says how bad; each failing finding names its kind, seq and line."""
    root, segment = trail
    rewrite(segment, tamper(records(segment)))

    run = cli("verify", root, "--format", "json")

    assert run.code == code, run.out
    assert run.failing() == expected
    assert {f["file"] for f in run.json()["findings"]} <= {str(segment)}


@pytest.mark.parametrize(
    ("tamper", "note"),
    [
        (lambda lines: [*lines[:9], lines[10], lines[9], *lines[11:]], ("reordered", 10, 11)),
        (lambda lines: [*lines, lines[4]], ("duplicate", 5, EVENTS + 1)),
        (lambda lines: lines[:19], ("open_tail", 19, 19)),
    ],
    ids=["reordered", "duplicated", "deleted_tail"],
)
def test_notes_leave_the_trail_clean(
    trail: tuple[Path, Path],
    tamper: Callable[[Lines], Lines],
    note: tuple[str, int, int],
) -> None:
    """Read order, a redelivered line and a missing tail are reported, and exit 0."""
    root, segment = trail
    rewrite(segment, tamper(records(segment)))

    run = cli("verify", root, "--format", "json")

    assert run.code == 0, run.out
    findings = run.json()["findings"]
    assert [(f["kind"], f["seq"], f["line"]) for f in findings] == [note]
    assert findings[0]["failure"] is False and findings[0]["file"] == str(segment)


def test_a_deleted_tail_fails_when_every_instance_must_be_closed(
    trail: tuple[Path, Path],
) -> None:
    """--require-closed: the trail of a stopped service must end with its closing record."""
    root, segment = trail
    rewrite(segment, records(segment)[:19])

    run = cli("verify", root, "--require-closed", "--format", "json")

    assert run.code == 1
    assert run.failing() == {("open_tail", 19, 19)}
    assert "tail may be lost" in run.json()["findings"][0]["message"]


def test_text_summary_lists_problems_with_file_and_line(trail: tuple[Path, Path]) -> None:
    """The human summary: verdict, the instance table, then each problem as file:line."""
    root, segment = trail
    rewrite(segment, _delete(records(segment)))

    run = command("verify", root)

    assert run.code == 1
    assert run.out.startswith("NOT CLEAN: 2 problem(s) in 24 events")
    assert segment.parent.name in run.out
    assert f"  {segment}:10: gap: seq 10 missing (lost or deleted) before seq 11" in run.out
    assert f"  {segment}:10: chain_break: " in run.out


@pytest.fixture
def keyed(pristine_keyed: Path, tmp_path: Path) -> tuple[Path, Path]:
    return copy(pristine_keyed, tmp_path)


def test_a_keyed_trail_verifies_with_its_key_from_a_file_or_the_environment(
    keyed: tuple[Path, Path], tmp_path: Path
) -> None:
    """--key-file (trailing newline dropped) or OTEL_AUDIT_CHAIN_KEY: clean."""
    root, _ = keyed
    key_file = tmp_path / "chain.key"
    key_file.write_text(KEY + "\n")

    assert cli("verify", root, "--key-file", key_file).code == 0
    assert command("verify", root, env={"OTEL_AUDIT_CHAIN_KEY": KEY}).code == 0


def test_an_event_rewritten_without_the_key_is_forged(
    keyed: tuple[Path, Path], tmp_path: Path
) -> None:
    """Re-hashed with a guessed key: forged, alone (the key is right: no wrong-key hint)."""
    root, segment = keyed
    lines = records(segment)
    lines[9] = rehash(set_attribute(lines[9], "audit.outcome", FAILURE), key=b"guess")
    rewrite(segment, lines)

    run = command("verify", root, "--format", "json", env={"OTEL_AUDIT_CHAIN_KEY": KEY})

    assert run.code == 1
    assert run.failing() == {("forged", 10, 10), ("chain_break", 11, 11)}
    assert "wrong key?" not in run.out


@pytest.mark.parametrize(
    ("env", "hint"),
    [
        ({"OTEL_AUDIT_CHAIN_KEY": "not the key"}, "no chain hash verifies under the key given"),
        ({}, "the chain is keyed (hmac-sha256): pass --key-file or set OTEL_AUDIT_CHAIN_KEY"),
    ],
    ids=["wrong_key", "no_key"],
)
def test_a_key_problem_exits_5_and_says_what_to_do(
    keyed: tuple[Path, Path], env: dict[str, str], hint: str
) -> None:
    """A wrong chain key makes every event forged: the summary suspects the key first."""
    root, _ = keyed

    run = command("verify", root, env=env)

    assert run.code == 5
    assert run.out.startswith(f"NOT VERIFIED: {hint}")
    if env:
        assert "wrong key?" in run.out


def test_a_corrupt_gzip_file_is_unreadable_input(trail: tuple[Path, Path]) -> None:
    """A rotated file whose gzip stream is cut: exit 3, the file named, the rest still read."""
    root, segment = trail
    packed = gzip.compress(b"".join(records(segment)))
    damaged = root / "audit-2026-11-22T05-52-58.123.jsonl.gz"
    damaged.write_bytes(packed[: len(packed) // 2])

    run = cli("verify", root, "--format", "json")

    assert run.code == 3
    unreadable = [f for f in run.json()["findings"] if f["kind"] == "unreadable"]
    assert [f["file"] for f in unreadable] == [str(damaged)]
    assert run.json()["events"] > EVENTS  # the part before the cut, and the segment


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["verify", "{tmp}/nowhere"], 3, "otel-audit verify: no audit archive at {tmp}/nowhere"),
        (["verify", "{root}", "--key-file", "{tmp}/no.key"], 5, "cannot read the chain key"),
        (["verify", "{root}", "--digests", "{tmp}"], 2, "--digests needs --public-key"),
        (["verify", "{root}", "--public-key", "{tmp}/no.pub"], 5, "cannot read the public key"),
        (["verify", "{root}", "--public-key", "{segment}"], 5, "is not a PEM public key"),
        (["seal", "{root}", "--private-key", "{segment}"], 5, "is not a PEM private key"),
        (["verify", "{root}", "--format", "yaml"], 2, "invalid choice: 'yaml'"),
    ],
    ids=[
        "missing_path",
        "missing_chain_key",
        "digests_without_key",
        "missing_public_key",
        "not_a_public_key",
        "not_a_private_key",
        "bad_format",
    ],
)
def test_bad_input_is_one_line_and_its_exit_code(
    trail: tuple[Path, Path], tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    """No traceback: one line on stderr naming the problem, a distinct exit code."""
    root, segment = trail
    values = {"tmp": str(tmp_path), "root": str(root), "segment": str(segment)}

    run = command(*(arg.format(**values) for arg in args))

    assert run.code == code
    assert message.format(**values) in run.err
    assert "Traceback" not in run.err
    if code != 2:  # argparse prints its usage first
        assert len(run.err.strip().splitlines()) == 1

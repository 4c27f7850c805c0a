"""``otel-audit keygen``, ``seal`` and ``verify --public-key``: signed, chained digests.

Trails are written by the real spool transport (``tests/_trails.py``) and by the library's
rotating archive exporter; files and digests are then truncated, replaced, deleted, edited
or re-signed, and each is named with its file.
"""

from __future__ import annotations

import gzip
import json
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_audit._archive_exporter import ArchiveLogExporter
from otel_audit.archive import ChainState

from ._trails import cli, command, rechain, records, rewrite, spool_trail
from .test_integrity import (
    FAILURE,
    INSTANCE,
    T0,
    chained,
    event_attributes,
    read_lines,
    set_attribute,
)

DIGESTS = "otel-audit-digests"


@dataclass(frozen=True)
class Sealed:
    """A spool trail of two app lifetimes, sealed once after each."""

    root: Path
    segments: tuple[Path, Path]
    key: Path
    public: Path

    @property
    def digests(self) -> list[Path]:
        return sorted((self.root / DIGESTS).glob("digest-*.json"))

    def verify(self, *extra: str | Path) -> tuple[int, set[tuple[str, str]]]:
        """Exit code and the failing findings as (kind, file name)."""
        run = cli("verify", self.root, "--public-key", self.public, "--format", "json", *extra)
        failing = {
            (f["kind"], Path(f["file"]).name if f["file"] else "")
            for f in run.json()["findings"]
            if f["failure"]
        }
        return run.code, failing


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Sealed:
    base = tmp_path_factory.mktemp("sealed")
    root = base / "spool"
    assert cli("keygen", "--out", base / "seal").code == 0
    key, public = base / "seal.key", base / "seal.pub"
    first = spool_trail(root, 4)
    assert cli("seal", root, "--private-key", key).code == 0
    second = spool_trail(root, 4)
    assert cli("seal", root, "--private-key", key).code == 0
    return Sealed(root, (first, second), key, public)


@pytest.fixture
def sealed(pristine: Sealed, tmp_path: Path) -> Sealed:
    """A copy to damage (keys shared: they are not damaged)."""
    root = tmp_path / "spool"
    shutil.copytree(pristine.root, root)
    segments = tuple(root / s.relative_to(pristine.root) for s in pristine.segments)
    return Sealed(root, (segments[0], segments[1]), pristine.key, pristine.public)


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    """PREFIX.key is 0600 PKCS#8 PEM, PREFIX.pub public PEM; a second run overwrites nothing."""
    run = command("keygen", "--out", tmp_path / "k")

    assert run.code == 0, run.err
    private, public = tmp_path / "k.key", tmp_path / "k.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "key id:      ed25519:" in run.out
    before = private.read_bytes()

    again = command("keygen", "--out", tmp_path / "k")

    assert again.code == 3
    assert again.err.strip() == f"otel-audit keygen: {private} exists: refusing to overwrite a key"
    assert private.read_bytes() == before


def test_each_seal_covers_only_files_closed_since_the_last(pristine: Sealed) -> None:
    """Two digests, chained: the first lists the first segment, the second only the new one."""
    first, second = (json.loads(path.read_bytes()) for path in pristine.digests)

    assert [f["path"] for f in first["files"]] == [
        f"../{pristine.segments[0].parent.name}/{pristine.segments[0].name}"
    ]
    assert [Path(f["path"]).name for f in second["files"]] == [pristine.segments[1].name]
    assert (first["seq"], first["previous"], second["seq"]) == (1, None, 2)
    assert second["previous"]["file"] == pristine.digests[0].name
    entry = second["files"][0]
    assert entry["size"] == pristine.segments[1].stat().st_size
    (span,) = entry["chains"]
    assert (span["instance_id"], span["first_seq"], span["last_seq"], span["events"]) == (
        pristine.segments[1].parent.name,
        1,
        9,
        9,
    )
    assert len(second["chains"]) == 2  # both instances' heads, bound by the latest digest
    assert cli("seal", pristine.root, "--private-key", pristine.key).out.startswith(
        "nothing new to seal"
    )


def test_an_intact_sealed_trail_is_clean(pristine: Sealed) -> None:
    """A real process: exit 0, both digests valid, both files sealed."""
    run = command("verify", pristine.root, "--public-key", pristine.public, "--format", "json")

    assert run.code == 0, run.out
    digests = run.json()["digests"]
    assert (digests["count"], digests["last_seq"], digests["files_sealed"]) == (2, 2, 2)
    assert digests["head_file"] == str(pristine.digests[-1])


def _truncate(s: Sealed) -> None:
    rewrite(s.segments[0], records(s.segments[0])[:5])


def _replace_rechained(s: Sealed) -> None:
    # Valid-looking content: modified, then every later event re-linked and re-hashed; the
    # padding kept, so the file is as long as the sealed one.
    events = records(s.segments[0])
    padding = read_lines(s.segments[0])[len(events) :]
    events[3] = set_attribute(events[3], "audit.outcome", FAILURE)
    rewrite(s.segments[0], rechain(events, 3) + padding)


def _reorder(s: Sealed) -> None:
    lines = read_lines(s.segments[0])
    rewrite(s.segments[0], [*lines[:3], lines[4], lines[3], *lines[5:]])


def _delete_file(s: Sealed) -> None:
    s.segments[1].unlink()


def _remove_first_digest(s: Sealed) -> None:
    s.digests[0].unlink()


def _edit_digest(s: Sealed) -> None:
    path = s.digests[1]
    path.write_bytes(path.read_bytes().replace(b'"events": 9', b'"events": 8'))


def _insert_older_file(s: Sealed) -> None:
    folder = s.segments[0].parent
    shutil.copy(s.segments[1], folder / "seg-20000101T000000.000000Z-000000.jsonl")


# (damage, failing findings as (kind, file name)): {s0}/{s1} the segments, {d0}/{d1} the digests.
DAMAGE: list[tuple[Callable[[Sealed], None], set[tuple[str, str]]]] = [
    # The head digest binds seq 9 of the first instance: truncated away, it is missing.
    (_truncate, {("file_truncated", "{s0}"), ("chain_head", "{s0}")}),
    # The chain verifies again, but neither the bytes nor the bound head hash match.
    (_replace_rechained, {("file_modified", "{s0}"), ("chain_head", "{s0}")}),
    (_reorder, {("file_modified", "{s0}")}),
    (_delete_file, {("file_deleted", "{s1}")}),
    (_remove_first_digest, {("digest_missing", "{d0}")}),
    (_edit_digest, {("digest_invalid", "{d1}")}),
    (_insert_older_file, {("file_unsealed", "seg-20000101T000000.000000Z-000000.jsonl")}),
]


@pytest.mark.parametrize(("damage", "expected"), DAMAGE, ids=lambda v: getattr(v, "__name__", None))
def test_damage_to_sealed_files_and_digests_is_named(
    sealed: Sealed, damage: Callable[[Sealed], None], expected: set[tuple[str, str]]
) -> None:
    """Each kind of damage fails verify (exit 1) and names the file or digest."""
    names = {
        "s0": sealed.segments[0].name,
        "s1": sealed.segments[1].name,
        "d0": sealed.digests[0].name,
        "d1": sealed.digests[1].name,
    }
    damage(sealed)

    code, failing = sealed.verify()

    assert code == 1
    assert failing == {(kind, name.format(**names)) for kind, name in expected}


def test_a_dirty_sealed_trail_exits_1_in_a_real_process(sealed: Sealed) -> None:
    """The text summary names the truncated file, its digest, and the sizes."""
    _truncate(sealed)

    run = command("verify", sealed.root, "--public-key", sealed.public)

    assert run.code == 1
    assert f"  {sealed.segments[0]}: file_truncated: sealed in {sealed.digests[0].name}" in run.out


def test_another_public_key_exits_5(sealed: Sealed, tmp_path: Path) -> None:
    """Digests checked with a key that did not sign them: a key problem, not tampering."""
    assert cli("keygen", "--out", tmp_path / "other").code == 0

    run = command("verify", sealed.root, "--public-key", tmp_path / "other.pub")

    assert run.code == 5
    assert run.out.startswith("NOT VERIFIED: every digest is signed by another key")
    sealing = command("seal", sealed.root, "--private-key", tmp_path / "other.key")
    assert sealing.code == 5 and "signed by another key" in sealing.err


def test_seal_refuses_to_chain_onto_damaged_digests(sealed: Sealed) -> None:
    """A digest altered since: seal exits 1 and names it rather than covering it up."""
    _edit_digest(sealed)
    spool_trail(sealed.root, 1)

    run = command("seal", sealed.root, "--private-key", sealed.key)

    assert run.code == 1
    assert f"{sealed.digests[1]}: digest_invalid" in run.err
    assert len(sealed.digests) == 2


def test_no_digests_is_unreadable_input(pristine: Sealed, tmp_path: Path) -> None:
    """--public-key with no digests where they are looked for: exit 3, the folder named."""
    missing = tmp_path / "none"

    run = command("verify", pristine.root, "--public-key", pristine.public, "--digests", missing)

    assert run.code == 3
    assert run.err == f"otel-audit verify: no digests at {missing} (otel-audit seal writes them)\n"


def rotated_archive(folder: Path, batches: int) -> list[Path]:
    """The library's archive exporter rotating after every batch: closed files and a live one."""
    exporter = ArchiveLogExporter(folder, max_bytes=1, fsync=False)
    state = ChainState(None)
    for n in range(1, batches * 3 + 1):
        attributes = event_attributes(n)
        exporter.export([chained(state, INSTANCE, "audit.user.updated", attributes, T0 + n)])
    exporter.shutdown()
    return sorted(folder.glob("audit-*.jsonl"))


def test_rotated_files_are_sealed_and_the_live_file_never(tmp_path: Path) -> None:
    """Only rotated files are closed; one compressed after sealing is its own copy."""
    archive = tmp_path / "archive"
    rotated = rotated_archive(archive, 3)
    assert len(rotated) >= 2 and (archive / "audit.jsonl").exists()
    assert cli("keygen", "--out", tmp_path / "k").code == 0

    assert cli("seal", archive, "--private-key", tmp_path / "k.key").code == 0

    (digest,) = (archive / DIGESTS).glob("digest-*.json")
    listed = [Path(f["path"]).name for f in json.loads(digest.read_bytes())["files"]]
    assert listed == [path.name for path in rotated]
    packed = rotated[0].with_name(rotated[0].name + ".gz")
    packed.write_bytes(gzip.compress(rotated[0].read_bytes()))
    rotated[0].unlink()
    run = cli("verify", archive, "--public-key", tmp_path / "k.pub", "--format", "json")
    assert run.code == 0, run.out
    assert ("compressed", str(rotated[0])) in {
        (f["kind"], f["file"]) for f in run.json()["findings"]
    }

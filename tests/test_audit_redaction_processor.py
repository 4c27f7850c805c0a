"""The collector's own PII processor (collector-components/auditredactionprocessor) in CI.

Its Go tests compare it with the contrib redaction processor v0.145.0 (a test dependency of
the component's module) under every ``audit_redaction`` processor of collector-config/*.yaml:
on the PII corpus of tests/pii_corpus.py in the forms the e2e test sends it, on the
benchmark's export requests (bench/audit_payload.py), on random strings, invalid UTF-8 and
Unicode case-folding partners; and they fail when a configured pattern gets no prefilter.
This module hands them the Python side's data (a folder named by ``AUDIT_REDACTION_TESTDATA``)
and runs them, then fuzzes the comparison for a bounded time with Go's fuzzing engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from bench.audit_payload import batch_body, default_batch_body, trace_batch_body
from tests.pii_corpus import NEGATIVE_SAMPLES, PII_SAMPLES, SECRET_FIELDS

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = ROOT / "collector-components" / "auditredactionprocessor"
FUZZ_SECONDS = 20
BATCH = 500

# Go tests that must have run (not been skipped) for the comparison to mean anything.
REQUIRED_GO_TESTS = (
    "TestEquivalencePIICorpus",
    "TestEquivalenceBenchBatches",
    "TestEquivalenceRandomStrings",
    "TestEquivalenceFoldingAndInvalidUTF8",
    "TestEquivalenceEveryRule",
    "TestConfiguredPatternsHavePrefilters",
    "TestPrefilterNeverRejectsAMatch",
)


def corpus_forms(value: str) -> list[str]:
    """``value`` as tests/e2e/test_pii.py sends it: raw, URL-encoded both ways, in a query
    string beside the secret fields, in a path, a user agent, and JSON details and changes."""
    quoted_plus, quoted = urllib.parse.quote_plus(value), urllib.parse.quote(value, safe="")
    details = {"note": value, "sentence": f"reach me at {value} today", **SECRET_FIELDS}
    changes = {
        "contact": [f"was {value}", value],
        **{k: ["old", v] for k, v in SECRET_FIELDS.items()},
    }
    return [
        value,
        quoted_plus,
        quoted,
        f"note={quoted_plus}&ref={quoted}&{urllib.parse.urlencode(SECRET_FIELDS)}",
        f"/pii/{quoted}",
        f"agent {value}",
        json.dumps(details),
        json.dumps(changes),
    ]


def write_testdata(folder: Path) -> None:
    """The files the Go tests read from ``AUDIT_REDACTION_TESTDATA``."""
    values = [form for sample in PII_SAMPLES for form in corpus_forms(sample.value)]
    for key, secret in SECRET_FIELDS.items():
        values += [f"{key}={secret}", f'"{key}": "{secret}"', urllib.parse.urlencode({key: secret})]
    corpus = {"values": values, "negatives": NEGATIVE_SAMPLES}
    (folder / "pii_corpus.json").write_text(json.dumps(corpus, ensure_ascii=False, indent=1))
    (folder / "audit_logs.binpb").write_bytes(batch_body(BATCH))
    (folder / "default_logs.binpb").write_bytes(default_batch_body(BATCH))
    (folder / "traces.binpb").write_bytes(trace_batch_body(BATCH))


def _go() -> str:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        pytest.fail(
            "the collector component's tests need Go (>= GO_MIN_VERSION in scripts/versions.env)"
        )
    return go


@pytest.fixture(scope="module")
def testdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audit-redaction-testdata")
    write_testdata(folder)
    return folder


def _go_test(arguments: list[str], testdata: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "AUDIT_REDACTION_TESTDATA": str(testdata),
        # The module's go.sum is complete; nothing may be resolved anew, no toolchain fetched.
        "GOFLAGS": "-mod=readonly",
        "GOTOOLCHAIN": "local",
    }
    return subprocess.run(
        [_go(), "test", *arguments],
        cwd=COMPONENT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,  # a cold build of the test binaries (contrib and collector deps) included
        check=False,
    )


def _tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def test_testdata_holds_every_sample(testdata: Path) -> None:
    """The corpus handed to Go has every PII sample and look-alike, in every form."""
    corpus = json.loads((testdata / "pii_corpus.json").read_text())
    assert {s.value for s in PII_SAMPLES} <= set(corpus["values"])
    assert len(corpus["values"]) >= len(PII_SAMPLES) * len(corpus_forms("x"))
    assert corpus["negatives"] == NEGATIVE_SAMPLES


def test_go_tests_pass_against_the_contrib_processor(testdata: Path) -> None:
    """`go test` passes, with the corpus and benchmark comparisons run rather than skipped."""
    result = _go_test(["-count=1", "-v", "./..."], testdata)
    assert result.returncode == 0, _tail(result)
    for name in REQUIRED_GO_TESTS:
        assert f"--- PASS: {name} " in result.stdout, f"{name} did not run:\n{_tail(result)}"


def test_fuzzing_finds_no_difference(testdata: Path, tmp_path: Path) -> None:
    """FuzzEquivalence mutates inputs for a while without a difference or a prefilter miss."""
    # A fresh fuzz cache per run: Go's default one (in GOCACHE) keeps every interesting
    # input, and replaying a grown cache would eat the whole time budget before mutating.
    fuzz = ["-run=^$", "-fuzz=^FuzzEquivalence$", f"-fuzztime={FUZZ_SECONDS}s", "."]
    result = _go_test([*fuzz, "-args", f"-test.fuzzcachedir={tmp_path}"], testdata)
    # A failing input is saved under testdata/fuzz/FuzzEquivalence/: commit it, it becomes a
    # seed that plain `go test` replays.
    assert result.returncode == 0, _tail(result)
    executions = [int(n) for n in re.findall(r"execs: (\d+)", result.stdout + result.stderr)]
    assert executions and max(executions) > 0, f"the fuzzer never mutated:\n{_tail(result)}"

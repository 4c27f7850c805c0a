"""An earlier commit checked out next to the working tree, for before/after measurements.

``--compare-with REV`` runs the audited app a second time with ``otel_audit`` imported from
REV. The checkout is a detached ``git worktree`` made once and kept under
``.cache/bench-worktrees/<REV>`` (``.cache`` is git-ignored); later runs reuse it after
checking that it still holds REV. The child process that imports from it is
``bench/rev_app.py``, which refuses to run if ``otel_audit`` came from anywhere else.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .processes import APP_CORE, child_environment, pinned, python

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKTREES = PROJECT_ROOT / ".cache" / "bench-worktrees"
REV_TREE_ENV = "BENCH_REV_TREE"
_REV_APP = Path(__file__).resolve().parent / "rev_app.py"


def _git(*args: str, cwd: Path = PROJECT_ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def worktree(rev: str) -> Path:
    """The checkout of ``rev`` (a commit-ish), created on first use."""
    if not rev or "/" in rev or rev.startswith("."):
        raise ValueError(f"--compare-with wants a commit or tag name, got {rev!r}")
    commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    path = WORKTREES / rev
    if path.exists():
        held = _git("rev-parse", "HEAD", cwd=path)
        if held != commit:
            raise RuntimeError(f"{path} holds {held}, not {rev} ({commit}); remove it with"
                               f" `git worktree remove --force {path}`")  # fmt: skip
        return path
    WORKTREES.mkdir(parents=True, exist_ok=True)
    print(f"creating worktree {path} at {commit}", file=sys.stderr, flush=True)
    _git("worktree", "add", "--detach", str(path), commit)
    return path


def rev_environment(tree: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child environment with ``tree`` (not the working tree) on ``PYTHONPATH``."""
    env = child_environment(extra)
    env["PYTHONPATH"] = str(tree)
    env[REV_TREE_ENV] = str(tree)
    return env


def rev_argv(mode: str, args: list[str]) -> list[str]:
    """``bench/rev_app.py MODE ARGS`` on the app core; run it with :func:`rev_environment`."""
    return pinned(APP_CORE, [python(), str(_REV_APP), mode, *args])

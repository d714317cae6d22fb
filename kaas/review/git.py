"""Planning a stack at another git revision: a temporary worktree and the old code in a subprocess.

The old revision's code runs in its own interpreter (``python -m kaas plan`` inside a
detached worktree of that revision), so old and new code never share one process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kaas.offline.engine import Plan
from kaas.offline.planfile import plan_from_json


class GitError(Exception):
    """A git command failed (bad revision, not a repository, ...)."""


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def default_base(repo: Path) -> str:
    """The merge base of HEAD with ``main`` (or ``origin/main`` in a CI checkout)."""
    for branch in ("main", "origin/main"):
        try:
            return git(repo, "merge-base", "HEAD", branch).strip()
        except GitError:
            continue
    raise GitError("no merge base with main or origin/main; pass --base REV")


def resolve(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()


def changed_paths(repo: Path, base: str) -> list[str]:
    """Paths that differ between ``base`` and the working tree (committed, staged, unstaged, untracked)."""
    tracked = git(repo, "diff", "--name-only", "--no-renames", base).splitlines()
    untracked = git(repo, "ls-files", "--others", "--exclude-standard").splitlines()
    return sorted(set(tracked) | set(untracked))


def stacks_at(repo: Path, rev: str | None) -> set[str]:
    """Stack names in ``stacks/`` at ``rev`` (``None``: the working tree)."""
    if rev is None:
        return {p.stem for p in (repo / "stacks").glob("*.yaml")}
    listing = git(repo, "ls-tree", "--name-only", rev, "stacks/").splitlines()
    return {Path(p).stem for p in listing if p.endswith(".yaml")}


@contextmanager
def worktree(repo: Path, rev: str) -> Iterator[Path]:
    """A detached worktree of ``rev``, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="kaas-base-"))
    path = parent / "tree"
    git(repo, "worktree", "add", "--detach", "--quiet", str(path), rev)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=repo, capture_output=True, check=False)
        subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True, check=False)
        if parent.exists():
            shutil.rmtree(parent, ignore_errors=True)


class BasePlanError(Exception):
    """The base revision's program failed to plan the stack."""


def _plan_json(tree: Path, stack: str, show_secrets: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "kaas", "plan", "--stack", stack, "--json"]
    if show_secrets:
        command.append("--show-secrets")
    # Only the base tree's code: nothing from this checkout may leak in through PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise BasePlanError(f"planning {stack} at the base failed:\n{result.stderr.strip()}")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def plan_in_tree(tree: Path, stack: str) -> Plan | None:
    """Plan ``stack`` with the code in ``tree`` (``None`` when the stack does not exist there).

    Two runs: revealed values (to compare secrets) and masked ones (to know which values were secret).
    """
    if not (tree / "stacks" / f"{stack}.yaml").exists():
        return None
    with ThreadPoolExecutor(max_workers=2) as pool:
        revealed = pool.submit(_plan_json, tree, stack, True)
        masked = pool.submit(_plan_json, tree, stack, False)
        return plan_from_json(revealed.result(), masked.result())

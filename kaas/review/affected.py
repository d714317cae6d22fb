"""Which stacks a change affects (the preview workflow's matrix and ``kaas diff --all``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

# A change to any of these can change every stack's resources.
WHOLE_PROGRAM_DIRS = ("kaas/",)
WHOLE_PROGRAM_FILES = frozenset({"__main__.py", "Pulumi.yaml", "requirements.txt"})


def stack_of(path: str) -> str | None:
    """``stacks/acme-prod.yaml``, its rollout record ``stacks/rollout/acme-prod.yaml`` and
    ``Pulumi.acme-prod.yaml`` belong to stack ``acme-prod``."""
    pure = PurePosixPath(path)
    if pure.suffix != ".yaml":
        return None
    if len(pure.parts) == 2 and pure.parts[0] == "stacks":
        return pure.stem
    if len(pure.parts) == 3 and pure.parts[:2] == ("stacks", "rollout"):
        return pure.stem
    if len(pure.parts) == 1 and pure.name.startswith("Pulumi.") and pure.name != "Pulumi.yaml":
        return pure.name[len("Pulumi.") : -len(".yaml")]
    return None


def touches_program(path: str) -> bool:
    return path in WHOLE_PROGRAM_FILES or path.startswith(WHOLE_PROGRAM_DIRS)


def affected_stacks(changed_paths: Iterable[str], stacks: Iterable[str]) -> list[str]:
    """The stacks to diff for a change to ``changed_paths`` (repository-relative, ``/``-separated).

    ``stacks`` are the stacks that exist before or after the change. Program code
    (``kaas/``, ``__main__.py``, ``Pulumi.yaml``, the pinned runtime requirements)
    affects every stack; a stack's spec or its ``Pulumi.<stack>.yaml`` affects that
    stack only (including a stack added or deleted by the change); anything else
    (tests, docs, workflows) affects none.
    """
    known = set(stacks)
    changed = list(changed_paths)
    if any(touches_program(p) for p in changed):
        return sorted(known)
    selected = {stack_of(p) for p in changed}
    return sorted(s for s in selected if s is not None and s in known)

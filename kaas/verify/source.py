"""The stack outputs ``kaas verify`` reads when no ``--outputs FILE`` is given: the Automation API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from kaas.offline.planfile import SECRET_MASK
from kaas.outputs import OutputsError, StackOutputs, load_outputs


class OutputValueLike(Protocol):
    value: Any
    secret: bool


class StackLike(Protocol):
    def outputs(self) -> Mapping[str, OutputValueLike]: ...


def _select(stack: str, work_dir: Path) -> StackLike:
    from pulumi import automation

    selected: StackLike = automation.select_stack(stack_name=stack, work_dir=str(work_dir))
    return selected


def automation_outputs(stack: str, work_dir: Path, select: Callable[[str, Path], StackLike] = _select) -> StackOutputs:
    """``select_stack`` in the project directory, then its outputs (secrets stay masked and are
    skipped by :func:`load_outputs`, as in ``pulumi stack output --json``)."""
    source = f"stack {stack} (Pulumi Automation API)"
    try:
        outputs = select(stack, work_dir).outputs()
    except Exception as err:  # the Automation API raises CommandError, FileNotFoundError, ... alike
        raise OutputsError(
            source, [f"cannot read the outputs ({type(err).__name__}: {err}); pass --outputs FILE instead"]
        ) from None
    return load_outputs({key: SECRET_MASK if v.secret else v.value for key, v in outputs.items()}, source)

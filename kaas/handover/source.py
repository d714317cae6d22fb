"""Where a handover's outputs come from: a ``pulumi stack output --json`` file, or the offline plan.

Both are read by the same ``load_outputs``. A plan is a preview: its floating IPs
and IDs are the mocks' stand-ins, its CA the one the offline engine computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaas.offline.engine import Plan
from kaas.offline.planfile import plain
from kaas.outputs import OutputsError, StackOutputs, load_outputs
from kaas.spec import ClusterSpec


@dataclass(frozen=True)
class HandoverSource:
    """Validated outputs and whether they are a preview from an offline plan."""

    outputs: StackOutputs
    preview: bool
    origin: str


def handover_outputs(plan: Plan) -> StackOutputs:
    """The typed outputs an offline plan exports (its IPs and IDs are the mocks' stand-ins)."""
    return load_outputs(plain(plan.outputs), f"offline plan of {plan.stack}")


def read_outputs_file(path: Path) -> StackOutputs:
    """Outputs from ``pulumi stack output --json > FILE`` (OutputsError naming what is wrong)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputsError(source, ["no such file"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise OutputsError(source, [f"cannot read: {err}"]) from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise OutputsError(
            source,
            [f"not JSON (line {err.lineno}, column {err.colno}: {err.msg}); expected `pulumi stack output --json`"],
        ) from None
    return load_outputs(data, source)


def check_matches_spec(outputs: StackOutputs, spec: ClusterSpec, source: str) -> None:
    """Outputs of another cluster than the stack's spec are an error, not a document about the wrong cluster."""
    if outputs.cluster_name != spec.name:
        raise OutputsError(
            source,
            [
                f"clusterName: the outputs are of cluster {outputs.cluster_name!r}, but the stack's spec is {spec.name!r}"
            ],
        )

"""Where ``kaas roll`` stands: ``stacks/rollout/<stack>.roll.json`` beside the rollout record.

The rollout record says which revision every node runs (the program plans the next
``pulumi up`` from it). The position adds what the record cannot say: that the last
``pulumi up`` is applied but the in-cluster half after it (a learner promoted, an old
member removed, a node drained) is not finished yet, and which steps are done, with
their timings. It is written atomically after every phase of every step, so a rerun
after a crash, Ctrl-C or a failed gate continues where the last run stopped.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaas.rollout.model import ClusterState, Step, state_from_data, state_to_data
from kaas.rollout.planner import moves_between


def position_path(record: Path) -> Path:
    """``stacks/rollout/<stack>.yaml`` -> ``stacks/rollout/<stack>.roll.json``."""
    return record.with_name(f"{record.stem}.roll.json")


@dataclass
class Finished:
    number: int
    changes: dict[str, str]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "changes": self.changes, "seconds": round(self.seconds, 1)}


@dataclass
class Position:
    """``applied``: the state before the last ``pulumi up`` whose after-gates are not finished (None: none)."""

    stack: str
    finished: list[Finished] = field(default_factory=list)
    applied: ClusterState | None = None
    applied_number: int = 0
    failed: str | None = None

    def applied_step(self, cluster: str, recorded: ClusterState) -> Step | None:
        """The applied step, rebuilt from the state before it and the record it left."""
        if self.applied is None:
            return None
        return Step(cluster, self.applied, recorded, moves_between(self.applied, recorded))

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "finished": [f.to_json() for f in self.finished],
            "applied": None
            if self.applied is None
            else {"number": self.applied_number, "before": state_to_data(self.applied)},
            "failed": self.failed,
        }


def load_position(path: Path, stack: str) -> Position:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Position(stack)
    applied = data.get("applied")
    return Position(
        stack=str(data["stack"]),
        finished=[Finished(int(f["number"]), dict(f["changes"]), float(f["seconds"])) for f in data["finished"]],
        applied=None if applied is None else state_from_data(applied["before"]),
        applied_number=0 if applied is None else int(applied["number"]),
        failed=data.get("failed"),
    )


def save_position(path: Path, position: Position) -> None:
    """Write atomically (a temporary file renamed over the old one): a crash leaves the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(position.to_json(), stream, indent=1)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)

"""Day-2 rollouts: per-node revisions, the next safe step, and the invariants every step keeps.

- :mod:`kaas.rollout.model`: revisions, nodes, cluster states, steps (data only);
- :mod:`kaas.rollout.planner`: :func:`next_step` (spec + recorded state -> next ``pulumi up``);
- :mod:`kaas.rollout.invariants`: :func:`check_step`;
- :mod:`kaas.rollout.record`: the rollout record file beside the spec, and the spec's
  desired revisions.

Everything here is pure; the Pulumi components only apply a step (kaas.cluster_plan).
"""

from kaas.rollout.invariants import Violation, check_step
from kaas.rollout.model import (
    Action,
    ClusterState,
    Desired,
    Move,
    Node,
    Phase,
    Revision,
    Step,
    Tier,
    TierTarget,
)
from kaas.rollout.planner import RolloutError, converged, moves_between, next_step, rollout

__all__ = [
    "Action",
    "ClusterState",
    "Desired",
    "Move",
    "Node",
    "Phase",
    "Revision",
    "RolloutError",
    "Step",
    "Tier",
    "TierTarget",
    "Violation",
    "check_step",
    "converged",
    "moves_between",
    "next_step",
    "rollout",
]

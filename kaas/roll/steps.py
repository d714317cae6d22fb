"""The rollout as operators read it, and the resources each ``pulumi up`` of it targets. Pure.

The planner (:mod:`kaas.rollout.planner`) moves nodes in ``pulumi up`` steps; an operator
thinks in node operations. One planner step becomes one or two operations:

- ``add``: a new node (an etcd member joins as a learner, a master or worker registers);
- ``replace``: a node rebuilt in place under its own name (masters, ``max_surge: 0`` workers);
- ``remove``: a node leaves its tier (``etcdctl member remove``, out of the load balancer,
  cordoned and drained) and its server is deleted by the next ``pulumi up``; the
  deletion is the tail of the same operation and is not listed again;
- ``update``: a step that changes a node without moving it in or out of its tier (a
  planner step whose only change is a retired node's phase; not produced today, kept
  so the document's vocabulary is the issue's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaas.rollout.model import Action, ClusterState, Desired, Step, Tier
from kaas.rollout.planner import rollout

OPERATIONS: dict[Action, str] = {Action.CREATE: "add", Action.REPLACE: "replace", Action.RETIRE: "remove"}


@dataclass(frozen=True)
class Operation:
    """One entry of ``kaas roll --dry-run``: the nodes of one tier one ``pulumi up`` moves the same way."""

    up: int  # the planner step (1-based) that performs it
    tier: Tier
    action: str
    nodes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tier": str(self.tier), "nodes": list(self.nodes), "action": self.action}


def step_tier(step: Step) -> Tier:
    """The tier a step moves (the planner moves one tier per step; a retired node's deletion rides along)."""
    moving = [m for m in step.changes if m.action is not Action.DELETE] or list(step.changes)
    return moving[0].tier


def joining_nodes(step: Step) -> tuple[str, ...]:
    """The masters and workers ``step`` builds (created or rebuilt in place): each runs ``kubeadm join``
    and needs a bootstrap token that is valid now (kaas.roll.tokens)."""
    building = (Action.CREATE, Action.REPLACE)
    return tuple(m.name(step.cluster) for m in step.changes if m.tier is not Tier.ETCD and m.action in building)


def operations(step: Step, number: int) -> list[Operation]:
    """The operations of planner step ``number`` (a deletion of a node retired before is not one)."""
    found: list[Operation] = []
    for tier in (Tier.ETCD, Tier.MASTER, Tier.WORKER):
        for action, label in OPERATIONS.items():
            names = tuple(m.name(step.cluster) for m in step.moving(tier, action))
            if names:
                found.append(Operation(number, tier, label, names))
    return found


def planned_steps(desired: Desired, recorded: ClusterState | None, tier: Tier | None = None) -> list[Step]:
    """Every remaining ``pulumi up``; with ``tier``, only those up to the last one that moves it
    (a tier waits for the tiers before it: etcd, then masters, then workers)."""
    steps = [s for s in rollout(desired, recorded) if not s.bootstrap]
    if tier is None:
        return steps
    moving = [i for i, s in enumerate(steps) if step_tier(s) is tier]
    return steps[: moving[-1] + 1] if moving else []


def dry_run_document(stack: str, steps: Sequence[Step], tier: Tier | None = None) -> dict[str, Any]:
    """``kaas roll --dry-run --json``: ``{"stack": S, "steps": [{"tier", "nodes", "action"}, ...]}``."""
    entries = [op for number, step in enumerate(steps, 1) for op in operations(step, number)]
    return {"stack": stack, "steps": [op.to_json() for op in entries if tier is None or op.tier is tier]}


def resource_name(urn: str) -> str:
    """The name part of a URN (``urn:pulumi:<stack>::<project>::<type>::<name>``)."""
    return urn.rsplit("::", 1)[-1]


def belongs_to(name: str, cluster: str, node: str) -> bool:
    """True if a resource named ``name`` is part of ``node`` (``<cluster>-<tier>-<index>``).

    The program names a node's resources after it: the server ``node``, its port and
    volume ``node-*``, its certificates ``*-node``, and its API load balancer member
    ``<cluster>-api-<tier>-<index>``.
    """
    local = node.removeprefix(f"{cluster}-")
    return name == node or name.startswith(f"{node}-") or name.endswith(f"-{node}") or name == f"{cluster}-api-{local}"


@dataclass(frozen=True)
class StackResources:
    """The program's resources at one step (each URN with every URN it needs: its dependencies, its
    parent and its provider) and the URNs the stack's state holds now."""

    planned: Mapping[str, frozenset[str]]
    current: frozenset[str]

    @property
    def urns(self) -> frozenset[str]:
        return frozenset(self.planned) | self.current

    def with_new_prerequisites(self, targets: Iterable[str]) -> list[str]:
        """``targets`` and every resource they need that the update creates, transitively.

        ``pulumi up --target`` skips the creation of a resource it does not name and refuses a named
        one that depends on it ("depends on ... which was not specified in --target list",
        pkg/resource/deploy/step_generator.go): so a node's new certificate of a new generation, the
        kubeadm-certs Secret and kubeadm's ConfigMaps a joining master waits for, and their provider
        and component are named too. Resources that exist already stay untargeted (unchanged)."""
        found = set(targets)
        pending = list(found)
        while pending:
            for needed in self.planned.get(pending.pop(), frozenset()):
                if needed in self.planned and needed not in self.current and needed not in found:
                    found.add(needed)
                    pending.append(needed)
        return sorted(found)


def step_targets(step: Step, resources: StackResources) -> list[str]:
    """The URNs one ``pulumi up --target`` of ``step`` names: every resource of every node it
    changes, from the program's resources at this step and the stack's current ones (deletions),
    and every new resource those need (:meth:`StackResources.with_new_prerequisites`)."""
    nodes = [m.name(step.cluster) for m in step.changes]
    own = {u for u in resources.urns if any(belongs_to(resource_name(u), step.cluster, n) for n in nodes)}
    return resources.with_new_prerequisites(own)

"""The cluster's plan: computed once from the spec and the rollout record, handed to every component.

It holds every fact about the nodes the components and the outputs need: the API VIP,
each node's name, address, zone and revision, and the rollout step this ``pulumi up``
performs (:mod:`kaas.rollout`). Components read it; none re-derives it from the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kaas.openstack.addressing import api_vip, node_address
from kaas.rollout import Action, ClusterState, Phase, Revision, RolloutError, Step, Tier, next_step
from kaas.rollout.model import TIER_ORDER, Move, desired_to_data, node_name, state_to_data
from kaas.rollout.record import desired_from_spec, record_document
from kaas.spec import ClusterSpec, SpecError
from kaas.versions import parse_version


@dataclass(frozen=True)
class PlannedNode:
    """One node the program declares in this step (a node deleted by the step is not one)."""

    tier: Tier
    index: int
    name: str
    fixed_ip: str
    availability_zone: str
    revision: Revision
    phase: Phase
    action: Action
    # Rebuilt by ``kaas roll --heal`` in this update (config ``kaas:heal``): a replacement of a dead
    # server at the revision it runs, no rollout move (its ``action`` stays what the step says: keep).
    healed: bool = False

    @property
    def member(self) -> bool:
        """In service: an etcd member, an API load balancer member, a schedulable worker."""
        return self.phase is Phase.RUNNING

    @property
    def rebuilt(self) -> bool:
        """Rebuilt in place by this update: the step replaces it, or ``kaas roll --heal`` does (every other
        node keeps whatever its server was built with; a healed one gets the current user data, a join)."""
        return self.action is Action.REPLACE or self.healed

    @property
    def joining(self) -> bool:
        """A master or worker this update builds: it runs ``kubeadm join`` and needs a token valid now."""
        return self.tier is not Tier.ETCD and (self.action in (Action.CREATE, Action.REPLACE) or self.healed)


@dataclass(frozen=True)
class ClusterPlan:
    spec: ClusterSpec
    step: Step
    api_vip: str
    nodes: tuple[PlannedNode, ...]

    @property
    def first_deploy(self) -> bool:
        """No rollout record: this ``pulumi up`` builds the cluster (the first master runs ``kubeadm init``)."""
        return self.step.bootstrap

    def tier(self, tier: Tier | str) -> tuple[PlannedNode, ...]:
        return tuple(n for n in self.nodes if n.tier == tier)

    def members(self, tier: Tier | str) -> tuple[PlannedNode, ...]:
        return tuple(n for n in self.tier(tier) if n.member)

    @property
    def api_host(self) -> str:
        """The control-plane endpoint: the API's DNS name, or the VIP when the spec has no DNS."""
        from kaas.platform import API_HOST_LABEL

        return f"{API_HOST_LABEL}.{self.spec.cluster_domain}" if self.spec.dns.enabled else self.api_vip

    def oldest_version(self, tier: Tier) -> str:
        """The oldest version the tier's members run once this step is applied."""
        return min((n.revision.version for n in self.members(tier)), key=parse_version)

    @property
    def control_plane_version(self) -> str:
        """The Kubernetes version the cluster runs once this step is applied: its oldest API server."""
        return self.oldest_version(Tier.MASTER)

    def rollout_output(self) -> dict[str, Any]:
        """The ``rollout`` stack output: state, this step's moves, and what waits for later steps."""
        cluster = self.spec.name
        return {
            "state": "done" if not self.step.pending else "in progress",
            "step": {m.name(cluster): str(m.action) for m in self.step.changes},
            "pending": list(self.step.pending),
        }

    def rollout_facts(self) -> dict[str, Any]:
        """The ``kaasRollout`` input of the Cluster component: what the policy pack needs to rebuild
        this step from the plan's instances and check it (:func:`kaas.rollout.invariants.check_step`)."""
        return {
            "desired": desired_to_data(desired_from_spec(self.spec)),
            "recorded": None if self.first_deploy else state_to_data(self.step.before),
        }

    def node_revisions(self) -> dict[str, Any]:
        """The ``nodeRevisions`` stack output: the revision every node runs after this step (the record to write)."""
        document: dict[str, Any] = record_document(self.spec.name, self.step.after)["nodes"]
        return document


def cluster_policy_facts(spec: ClusterSpec) -> dict[str, Any]:
    """The ``kaasPolicy`` input of the Cluster component: spec facts the rules need (camelCase, plain data)."""
    services = spec.services
    return {
        "environment": str(spec.environment),
        "etcdBackupIntervalHours": spec.etcd_backup.interval_hours,
        "etcdBackupRetentionDays": spec.etcd_backup.retention_days,
        "monitoring": {
            "enabled": services.monitoring.enabled,
            "retentionDays": services.monitoring.prometheus_retention_days,
        },
        "logging": {"enabled": services.logging.enabled, "retentionDays": services.logging.retention_days},
    }


HEAL_CONFIG = "kaas:heal"


def _running(move: Move) -> bool:
    return move.before is not None and move.before.phase is Phase.RUNNING


def _check_healed(step: Step, healed: Sequence[str]) -> None:
    """Refuse (one line naming ``config kaas:heal``) what ``kaas roll --heal`` must not rebuild this way."""
    if not healed:
        return
    if step.bootstrap:
        reason = (
            f"{', '.join(healed)}: the stack has no rollout record (its first deployment, where the first master"
            " runs kubeadm init): nothing to heal yet"
        )
        raise SpecError(f"config {HEAL_CONFIG}", [reason])
    moves = {m.name(step.cluster): m for m in step.moves}
    unknown = [n for n in healed if n not in moves]
    etcd = [n for n in healed if n in moves and moves[n].tier is Tier.ETCD]
    moved = [n for n in healed if n in moves and n not in etcd and moves[n].action is not Action.KEEP]
    leaving = [n for n in healed if n in moves and n not in etcd + moved and not _running(moves[n])]
    problems = []
    if unknown:
        problems.append(f"{', '.join(unknown)}: no such node of {step.cluster}")
    if etcd:
        problems.append(
            f"{', '.join(etcd)}: an etcd member needs a membership change"
            f" (kaas roll --stack <STACK> --tier etcd), not a rebuild"
        )
    if moved:
        what = ", ".join(f"{n} ({moves[n].action})" for n in moved)
        problems.append(f"{what}: the next rollout step moves it anyway (kaas roll --stack <STACK>)")
    if leaving:
        problems.append(f"{', '.join(leaving)}: retired, leaving its tier (the next rollout step deletes it)")
    if problems:
        raise SpecError(f"config {HEAL_CONFIG}", ["; ".join(problems)])


def make_cluster_plan(
    spec: ClusterSpec,
    recorded: ClusterState | None,
    source: str | None = None,
    spec_source: str | None = None,
    healed: Sequence[str] = (),
) -> ClusterPlan:
    """The plan of this ``pulumi up``: the next rollout step from ``recorded`` (None: a new cluster).

    An edit the planner refuses raises :class:`SpecError` (``<file>: <field>: <why>``), the
    file being the spec (``spec_source``) for a spec field, the record (``source``) for the
    record's: nothing is planned.

    ``healed`` (config ``kaas:heal``, set by ``kaas roll --heal`` for one update) names the masters
    and workers whose dead servers this update replaces: each is :attr:`PlannedNode.rebuilt` (the
    current user data, no ``ignore_changes``) at the revision it runs, and the step is unchanged (no
    rollout move for the record, the outputs or the policy pack). Unknown nodes, etcd members, nodes
    the step moves anyway and a stack without a rollout record raise :class:`SpecError` (one line).
    """
    try:
        step = next_step(desired_from_spec(spec), recorded)
    except RolloutError as error:
        where = source if error.field == "nodes" else spec_source
        raise SpecError(where or spec.name, [str(error)]) from None
    healed = tuple(dict.fromkeys(healed))
    _check_healed(step, healed)
    actions = {(m.tier, m.index): m.action for m in step.moves}
    zones = spec.openstack.availability_zones
    cidr = spec.networking.node_cidr
    nodes = tuple(
        PlannedNode(
            tier=node.tier,
            index=node.index,
            name=node_name(spec.name, node.tier, node.index),
            fixed_ip=node_address(cidr, node.tier, node.index),
            availability_zone=zones[node.index % len(zones)],
            revision=node.revision,
            phase=node.phase,
            action=actions[(node.tier, node.index)],
            healed=node_name(spec.name, node.tier, node.index) in healed,
        )
        for tier in TIER_ORDER
        for node in step.after.tier(tier)
    )
    return ClusterPlan(spec=spec, step=step, api_vip=api_vip(cidr), nodes=nodes)

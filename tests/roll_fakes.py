"""Fakes for ``kaas roll`` tests: a Pulumi stack that records every ``up`` and its targets.

:class:`FakeStack` stands in for the Automation API stack only. Its "program" is the
project's own planner reading the rollout record file, as ``kaas/program.py`` does; an
``up`` applies that step only if every resource the step changes is targeted (Pulumi
skips untargeted changes, https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/),
and answers with the ``nodeRevisions`` output the real program exports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaas.roll.runner import RecordFile
from kaas.roll.steps import StackResources
from kaas.rollout import ClusterState, Desired, Step, next_step
from kaas.rollout.model import Tier
from kaas.rollout.record import record_document

# Resources of no node: a roll step must never target them.
SHARED = ("network", "subnet", "api", "api-masters", "api-vip", "etcd-group", "etcd-ca", "worker-group")


def urn(stack: str, type_token: str, name: str) -> str:
    return f"urn:pulumi:{stack}::kaas::kaas:openstack:NodeTier${type_token}::{name}"


def node_urns(stack: str, cluster: str, name: str, tier: Tier) -> list[str]:
    """The resources the program gives one node (names as in kaas/openstack and kaas/bootstrap)."""
    found = [
        urn(stack, "openstack:compute/instance:Instance", name),
        urn(stack, "openstack:networking/port:Port", f"{name}-port"),
        urn(stack, "openstack:blockstorage/volume:Volume", f"{name}-boot"),
    ]
    if tier is Tier.ETCD:
        found.append(urn(stack, "tls:index/locallySignedCert:LocallySignedCert", f"{cluster}-etcd-{name}"))
    if tier is Tier.MASTER:
        found.append(
            urn(stack, "openstack:loadbalancer/member:Member", f"{cluster}-api-{name.removeprefix(cluster + '-')}")
        )
    return found


def shared_urns(stack: str, cluster: str) -> list[str]:
    return [urn(stack, "kaas:openstack:Shared", f"{cluster}-{name}") for name in SHARED]


class CrashError(Exception):
    """The operator's machine died (or Ctrl-C) at this point."""


@dataclass
class FakeStack:
    desired: Desired
    records: RecordFile
    stack: str = "acme-prod"
    ups: list[list[str]] = field(default_factory=list)
    configs: list[dict[str, str]] = field(default_factory=list)  # the secret config of each up
    steps: list[Step] = field(default_factory=list)
    crash_before_answer: set[int] = field(default_factory=set)  # up numbers (1-based) applied, then a crash
    on_apply: Callable[[Step], None] = lambda _step: None
    deployed: ClusterState | None = None  # what the cloud runs (the stack's state), None: the record's

    def _urns(self, state: ClusterState) -> list[str]:
        cluster = self.desired.cluster
        return [u for n in state.nodes for u in node_urns(self.stack, cluster, n.name(cluster), n.tier)]

    def resources(self, step: Step) -> StackResources:
        # The node's own resources only (no shared prerequisites): what the planned URNs need is the
        # offline plan's business (tests/test_roll_automation.py runs that on the real program).
        planned = [*shared_urns(self.stack, self.desired.cluster), *self._urns(step.after)]
        current = [*shared_urns(self.stack, self.desired.cluster), *self._urns(step.before)]
        return StackResources({u: frozenset() for u in planned}, frozenset(current))

    def up(self, targets: Sequence[str], secret_config: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        self.ups.append(list(targets))
        self.configs.append(dict(secret_config or {}))
        recorded = self.records.load()
        step = next_step(self.desired, recorded)
        cluster = self.desired.cluster
        changed = {u for m in step.changes for u in node_urns(self.stack, cluster, m.name(cluster), m.tier)}
        if not changed <= set(targets):
            raise AssertionError(f"the up would skip changes: {sorted(changed - set(targets))}")
        deployed = self.deployed if self.deployed is not None else recorded
        if step.after != deployed:  # Pulumi diffs the program against the stack's state: nothing to do otherwise
            assert step.before == deployed, "the record disagrees with the deployed stack"
            self.steps.append(step)
            self.on_apply(step)
            self.deployed = step.after
        if len(self.ups) in self.crash_before_answer:
            raise CrashError(f"crash after up {len(self.ups)}")
        return {"nodeRevisions": record_document(cluster, step.after)["nodes"], "clusterName": cluster}

"""``kaas roll --heal``: replace masters and workers that stay NotReady, one at a time, behind gates.

Reference 001 promises that stateless masters and workers recover by themselves. A node
whose Ready condition has been ``False`` or ``Unknown`` for longer than the grace period
is rebuilt under its own name: its Node object goes (a dead kubelet cannot drain it; the
pod garbage collector removes the pods bound to it and the rebuilt kubelet registers
afresh), then ``pulumi up --replace <instance URN> --target <instance URN>`` rebuilds
its server, and the next node waits until this one is Ready again (a master also until
``/readyz`` answers through the load balancer).

The user data: every server ignores changes to what it was built with (``ignore_changes``,
kaas.openstack.nodes.BUILT_WITH) unless the rollout step rebuilds it, and Pulumi keeps the
*old* inputs of ignored properties, also for ``--replace`` (pulumi/pulumi#2657): a server
replaced that way would boot its original user data, with a bootstrap token long expired
(and, for a master-0 deployed before its rollout record existed, ``kubeadm init``). So the
healer sets config ``kaas:heal=<node>`` for that one update (the program marks the node
rebuilt: current user data, a ``kubeadm join``; kaas.cluster_plan.make_cluster_plan, which
also refuses etcd members, unknown nodes and nodes the rollout step moves) and a fresh
bootstrap token as the secret config ``kaas:joinToken`` (kaas.roll.tokens), minted just
before the update and deleted once the node is Ready (kept when it is not: a rerun within
its hour can still join). Both config values are removed after the update, also when it fails.

Why outside the cluster, not the OpenStack auto-healer of cloud-provider-openstack: the
servers belong to the Pulumi stack; a server replaced behind Pulumi's back leaves the
state pointing at a deleted server, and the next ``pulumi up`` would fight it. The same
Automation API stack ``kaas roll`` drives keeps state and cloud in step.

The gates (:func:`plan_heal`, pure):
- never an etcd node: a member needs a membership change (``kaas roll --tier etcd``);
- no replacement at all while more than ``max_workers_down`` of the workers are NotReady
  (that is a cloud or network outage, not node failures: page a person);
- a master only while a quorum of the masters is Ready (with fewer, the API's health is
  a person's problem), and never more than one master at a time;
- everything is observed again before each replacement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from kaas.cluster_plan import HEAL_CONFIG
from kaas.roll.gates import Waiting
from kaas.roll.kube import KubeClient
from kaas.roll.runner import JOIN_TOKEN_CONFIG, GateError
from kaas.roll.tokens import JoinToken
from kaas.rollout.model import Tier
from kaas.spec import ClusterSpec

DEFAULT_GRACE = 600.0
DEFAULT_MAX_WORKERS_DOWN = 0.34  # more than a third of the workers NotReady at once: an outage
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (90s, 10m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class NodeHealth:
    """One Node as the API reports it: its Ready condition's status and since when."""

    name: str
    tier: Tier | None  # None: not a node of this cluster (named otherwise)
    ready: str  # the Ready condition's status: "True", "False" or "Unknown" (no condition: "Unknown")
    since: datetime

    def down_for(self, now: datetime) -> float | None:
        """Seconds NotReady, None while Ready."""
        return None if self.ready == "True" else max(0.0, (now - self.since).total_seconds())

    def to_json(self, now: datetime) -> dict[str, Any]:
        down = self.down_for(now)
        return {
            "name": self.name,
            "tier": None if self.tier is None else str(self.tier),
            "ready": self.ready,
            "not_ready_seconds": None if down is None else round(down),
        }


def _time(text: str | None) -> datetime:
    if not text:
        return datetime.fromtimestamp(0, UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def node_health(spec: ClusterSpec, node: dict[str, Any]) -> NodeHealth:
    meta = node.get("metadata", {})
    name = str(meta.get("name", ""))
    match = re.fullmatch(rf"{re.escape(spec.name)}-(etcd|master|worker)-(\d+)", name)
    conditions = node.get("status", {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:  # never reported (a kubelet that registered and died): down since it was created
        return NodeHealth(
            name, Tier(match.group(1)) if match else None, "Unknown", _time(meta.get("creationTimestamp"))
        )
    return NodeHealth(
        name, Tier(match.group(1)) if match else None, str(ready.get("status")), _time(ready.get("lastTransitionTime"))
    )


@dataclass(frozen=True)
class HealPolicy:
    grace: float = DEFAULT_GRACE  # seconds NotReady before a node is replaced
    max_workers_down: float = DEFAULT_MAX_WORKERS_DOWN  # fraction of the workers; above it: page, replace nothing


@dataclass(frozen=True)
class Refusal:
    node: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"node": self.node, "reason": self.reason}


@dataclass
class HealPlan:
    """What one look at the nodes decides: the nodes to replace (in order), those still within
    the grace period, those refused, and why a person is needed (``page``), if one is."""

    replace: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    page: str | None = None


def _index(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def plan_heal(spec: ClusterSpec, nodes: Sequence[NodeHealth], now: datetime, policy: HealPolicy) -> HealPlan:
    """Which NotReady masters and workers to replace now (pure; see the module's gates)."""
    plan = HealPlan()
    ours = [n for n in nodes if n.tier is not None]
    down = {n.name: d for n in ours if (d := n.down_for(now)) is not None}
    for node in sorted(ours, key=lambda n: n.name):
        if node.tier is Tier.ETCD and node.name in down:
            plan.refused.append(
                Refusal(
                    node.name, "an etcd member needs a membership change: run kaas roll --stack <STACK> --tier etcd"
                )
            )
    workers = [n for n in ours if n.tier is Tier.WORKER]
    workers_down = [n for n in workers if n.name in down]
    total_workers = max(spec.workers.count, len(workers))
    if total_workers and len(workers_down) / total_workers > policy.max_workers_down:
        plan.page = (
            f"{len(workers_down)} of {total_workers} workers NotReady (more than {policy.max_workers_down:.0%}): "
            "a cloud or network outage, not node failures; nothing replaced"
        )
        return plan
    masters = [n for n in ours if n.tier is Tier.MASTER]
    total_masters = max(spec.masters.count, len(masters))
    quorum = total_masters // 2 + 1
    ready_masters = sum(1 for n in masters if n.name not in down)
    for tier in (Tier.MASTER, Tier.WORKER):
        for node in sorted((n for n in ours if n.tier is tier and n.name in down), key=lambda n: _index(n.name)):
            if down[node.name] < policy.grace:
                plan.waiting.append(node.name)
            elif tier is Tier.MASTER and ready_masters < quorum:
                plan.refused.append(
                    Refusal(node.name, f"only {ready_masters} of {total_masters} masters Ready (quorum {quorum})")
                )
                plan.page = f"only {ready_masters} of {total_masters} masters Ready: below quorum, nothing replaced"
            else:
                plan.replace.append(node.name)
    if plan.page is not None:
        plan.replace = []
    return plan


class NodeReplacer(Protocol):
    """What healing needs of the Pulumi stack (:class:`kaas.roll.automation.AutomationStack`)."""

    def instance_urn(self, node: str) -> str:
        """The URN of the node's server (``openstack:compute/instance:Instance`` named ``node``)."""
        ...

    def replace(
        self,
        urns: Sequence[str],
        config: Mapping[str, str] | None = None,
        secret_config: Mapping[str, str] | None = None,
    ) -> None:
        """``pulumi up --replace <urn> --target <urn>`` for each URN, with ``config`` and ``secret_config``
        set for that update only (removed afterwards, also when it fails)."""
        ...


class HealTokens(Protocol):
    """Bootstrap tokens in the live cluster (:class:`kaas.roll.tokens.JoinTokens`)."""

    def create(self, description: str) -> JoinToken: ...

    def delete(self, token_id: str) -> None: ...


@dataclass
class HealReport:
    nodes: list[NodeHealth] = field(default_factory=list)
    plan: HealPlan = field(default_factory=HealPlan)
    replaced: list[str] = field(default_factory=list)
    failure: GateError | None = None
    page: str | None = None

    def to_json(self, stack: str, policy: HealPolicy, now: datetime, dry_run: bool) -> dict[str, Any]:
        return {
            "stack": stack,
            "dry_run": dry_run,
            "grace_seconds": policy.grace,
            "max_workers_down": policy.max_workers_down,
            "nodes": [n.to_json(now) for n in self.nodes],
            "replace": list(self.plan.replace),
            "waiting": list(self.plan.waiting),
            "refused": [r.to_json() for r in self.plan.refused],
            "replaced": list(self.replaced),
            "failure": None if self.failure is None else str(self.failure),
            "page": self.page,
        }


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Healer:
    """Looks at the nodes, replaces the first overdue one, waits for it, looks again."""

    spec: ClusterSpec
    kube: KubeClient
    stack: NodeReplacer
    policy: HealPolicy = field(default_factory=HealPolicy)
    waiting: Waiting = field(default_factory=Waiting)
    api_via_lb: KubeClient | None = None
    log: Callable[[str], None] = lambda _line: None
    now: Callable[[], datetime] = utc_now
    join_tokens: HealTokens | None = None  # None: the node joins with the stack's first token (expired)

    def look(self) -> tuple[list[NodeHealth], HealPlan]:
        nodes = [node_health(self.spec, item) for item in self.kube.nodes()]
        return nodes, plan_heal(self.spec, nodes, self.now(), self.policy)

    def run(self, dry_run: bool = False) -> HealReport:
        report = HealReport()
        report.nodes, report.plan = self.look()
        report.page = report.plan.page
        if dry_run:
            return report
        plan = report.plan
        while plan.replace and plan.page is None:
            name = plan.replace[0]
            if name in report.replaced:
                report.failure = GateError("node-ready", name, "NotReady again after its replacement")
                return report
            try:
                self._replace(name)
            except GateError as failure:
                report.failure = failure
                return report
            report.replaced.append(name)
            _, plan = self.look()  # every gate again, before the next node
            report.page = plan.page
        return report

    def _replace(self, name: str) -> None:
        urn = self.stack.instance_urn(name)
        self.log(f"{name}: NotReady beyond {self.policy.grace:.0f}s: deleting its Node, replacing {urn}")
        self.kube.delete_node(name)
        token = self._join_token(name)
        secret_config = {} if token is None else {JOIN_TOKEN_CONFIG: token.value}
        # kaas:heal: the program rebuilds the server from the current user data (a join with the token).
        self.stack.replace([urn], config={HEAL_CONFIG: name}, secret_config=secret_config)
        # Not Ready in time: the token stays until it expires, so a rerun within its hour can still join.
        self.waiting.until("node-ready", name, partial(self._ready, name))
        if token is not None and self.join_tokens is not None:
            self.join_tokens.delete(token.token_id)  # joined: the credential is no longer needed
            self.log(f"{name}: bootstrap token {token.token_id} deleted")
        self.kube.set_unschedulable(name, False)
        if name.startswith(f"{self.spec.name}-master-") and self.api_via_lb is not None:
            self.waiting.until("api-readyz-through-load-balancer", name, partial(self._readyz, self.api_via_lb))
        self.log(f"{name}: replaced and Ready")

    def _join_token(self, name: str) -> JoinToken | None:
        """A bootstrap token minted now for the node's ``kubeadm join`` (kaas.roll.tokens)."""
        if self.join_tokens is None:
            return None
        token = self.join_tokens.create(f"kaas roll --heal: join of {name}")
        self.log(f"{name}: bootstrap token {token.token_id} (expires {token.expires:%H:%M} UTC)")
        return token

    def _ready(self, name: str) -> str | None:
        return None if self.kube.node_ready(name) else "the replacement is not Ready"

    @staticmethod
    def _readyz(lb: KubeClient) -> str | None:
        ready, answer = lb.readyz()
        return None if ready else f"/readyz: {answer}"

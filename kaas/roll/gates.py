"""The health gates: the in-cluster half of each rollout step, before and after its ``pulumi up``.

Every gate first observes the live cluster and skips what is already done, so a rerun
after a crash repeats nothing that finished (an etcd member is added once and removed
once). A gate that does not pass within its timeout raises
:class:`~kaas.roll.runner.GateError` naming the check and the node; the cluster is
left serving (nothing is removed before its replacement is healthy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from kaas.roll.etcd import EtcdCtl, EtcdError, Member
from kaas.roll.http import HttpError
from kaas.roll.kube import Eviction, KubeClient
from kaas.roll.octavia import OctaviaClient
from kaas.roll.runner import GateError
from kaas.rollout.model import Action, Move, Step, Tier


@dataclass(frozen=True)
class Waiting:
    """How long a gate waits, and how often it looks."""

    timeout: float = 600.0
    interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def until(self, check: str, node: str, probe: Callable[[], str | None]) -> None:
        """Call ``probe`` until it returns None (passed); its last answer is the failure's detail."""
        deadline = self.clock() + self.timeout
        while True:
            try:
                problem = probe()
            except (EtcdError, HttpError) as error:
                problem = str(error)
            if problem is None:
                return
            if self.clock() >= deadline:
                raise GateError(check, node, f"{problem} (after {self.timeout:.0f}s)")
            self.sleep(self.interval)


def _names(step: Step, tier: Tier, *actions: Action) -> list[str]:
    return [m.name(step.cluster) for m in step.moving(tier, *actions)]


@dataclass
class EtcdGate:
    """Member replacement done right: add as a learner, promote once caught up, remove the old
    one only while every other member is healthy, delete its server only once it is out."""

    etcd: EtcdCtl
    client_url: Callable[[str], str]
    peer_url: Callable[[str], str]
    waiting: Waiting = field(default_factory=Waiting)
    log: Callable[[str], None] = lambda _line: None

    def _endpoints(self, step: Step) -> list[str]:
        nodes = {n.name(step.cluster) for n in (*step.before.running(Tier.ETCD), *step.after.running(Tier.ETCD))}
        return [self.client_url(n) for n in sorted(nodes)]

    def _find(self, members: list[Member], name: str) -> Member | None:
        peer = self.peer_url(name)
        return next((m for m in members if peer in m.peer_urls or (m.name == name and m.name)), None)

    def _unhealthy(self, endpoints: list[str]) -> str | None:
        members = self.etcd.members(endpoints)
        learners = [m.name or m.peer_urls[0] for m in members if m.learner]
        if learners:
            return f"learner {', '.join(learners)} not promoted yet"
        voting = [m.client_urls[0] for m in members if not m.learner and m.client_urls]
        if not voting:
            return "no voting member answers"
        bad = {url: error for url, error in self.etcd.health(voting).items() if error is not None}
        return None if not bad else "; ".join(f"{url}: {error}" for url, error in sorted(bad.items()))

    def before_up(self, step: Step) -> None:
        endpoints = self._endpoints(step)
        for name in _names(step, Tier.ETCD, Action.DELETE):
            # The server of a member goes only once the member is out of the cluster.
            self.waiting.until("etcd-member-removed-before-delete", name, partial(self._removed, endpoints, name))
        for name in _names(step, Tier.ETCD, Action.CREATE):
            if self._find(self.etcd.members(endpoints), name) is not None:
                self.log(f"{name}: already a member (added by an earlier run)")
                continue
            self.waiting.until("etcd-healthy-before-add", name, partial(self._unhealthy, endpoints))
            # etcd refuses a membership change until every voting member has been connected for
            # 5 s ("etcdserver: unhealthy cluster", strict reconfiguration check): retried.
            self.waiting.until("etcd-learner-added", name, partial(self._add, endpoints, name))

    def after_up(self, step: Step) -> None:
        endpoints = self._endpoints(step)
        for name in _names(step, Tier.ETCD, Action.CREATE):
            self.waiting.until("etcd-member-promoted", name, partial(self._promote, endpoints, name))
            self.waiting.until("etcd-cluster-healthy", name, partial(self._unhealthy, endpoints))
            self.log(f"{name}: voting member, every member healthy")
        for name in _names(step, Tier.ETCD, Action.RETIRE):
            member = self._find(self.etcd.members(endpoints), name)
            if member is None:
                self.log(f"{name}: not a member any more (removed by an earlier run)")
                continue
            others = [self.client_url(n) for n in sorted({m.name(step.cluster) for m in step.after.running(Tier.ETCD)})]
            self.waiting.until("etcd-others-healthy-before-remove", name, partial(self._unhealthy, others))
            self._hand_over_leadership(member, others)
            self.waiting.until("etcd-member-removed", name, partial(self._remove, others, name))

    def _hand_over_leadership(self, leaving: Member, others: list[str]) -> None:
        """If the leaving member leads, move leadership to a healthy voting member first: a removed
        leader leaves the cluster without one until an election timeout passes."""
        if self.etcd.leader(others) != leaving.id:
            return
        members = self.etcd.members(others)
        successor = next((m for m in members if m.id != leaving.id and not m.learner and m.client_urls), None)
        if successor is not None and leaving.client_urls:
            self.etcd.move_leader(leaving.client_urls[0], successor)
            self.log(f"leadership moved from {leaving.name} to {successor.name}")

    def _add(self, endpoints: list[str], name: str) -> str | None:
        if self._find(self.etcd.members(endpoints), name) is None:
            member = self.etcd.add_learner(endpoints, name, self.peer_url(name))
            self.log(f"{name}: added as learner {member.hex_id}")
        return None

    def _remove(self, others: list[str], name: str) -> str | None:
        member = self._find(self.etcd.members(others), name)
        if member is not None:
            self.etcd.remove(others, member)
            self.log(f"{name}: removed from the etcd cluster ({member.hex_id})")
        return None

    def _removed(self, endpoints: list[str], name: str) -> str | None:
        return None if self._find(self.etcd.members(endpoints), name) is None else "still a member of the etcd cluster"

    def _promote(self, endpoints: list[str], name: str) -> str | None:
        member = self._find(self.etcd.members(endpoints), name)
        if member is None:
            return "not a member (was it removed by hand?)"
        if not member.learner:
            return None
        if not member.started:
            return "learner added but its etcd has not joined yet"
        try:
            self.etcd.promote(endpoints, member)
        except EtcdError as error:
            return f"learner not promoted yet: {error}"
        return None


@dataclass
class Drainer:
    """``kubectl drain --ignore-daemonsets``: cordon, then evict every other pod through the
    Eviction API until none is left; a PodDisruptionBudget (429) is waited out up to the timeout."""

    kube: KubeClient
    waiting: Waiting = field(default_factory=Waiting)

    def drain(self, node: str) -> None:
        if self.kube.node(node) is None:
            return
        self.kube.set_unschedulable(node, True)
        self.waiting.until("drain", node, lambda: self._evict_all(node))

    def _evict_all(self, node: str) -> str | None:
        pods = [p for p in self.kube.pods_on(node) if not (p.daemonset or p.mirror or p.finished)]
        blocked = [p for p in pods if self.kube.evict(p) == Eviction.BLOCKED]
        if not pods:
            return None
        if blocked:
            names = ", ".join(f"{p.namespace}/{p.name}" for p in blocked)
            return f"eviction refused by a PodDisruptionBudget (429) for {names}"
        return f"{len(pods)} pod(s) still terminating"


@dataclass
class KubernetesGate:
    """Masters and workers: drain before a node goes, Ready (and, for masters, ``/readyz``
    through the load balancer with the node an ONLINE pool member) before the next step."""

    kube: KubeClient
    drainer: Drainer
    waiting: Waiting = field(default_factory=Waiting)
    api_via_lb: KubeClient | None = None
    octavia: OctaviaClient | None = None
    pool: str = ""
    address: Callable[[str], str] = lambda name: name
    log: Callable[[str], None] = lambda _line: None

    def before_up(self, step: Step) -> None:
        for move in self._moves(step, Action.REPLACE):
            name = move.name(step.cluster)
            # kubeadm join refuses a name whose Node is Ready: drain, then the old Node object goes.
            self.drainer.drain(name)
            self.kube.delete_node(name)
            self.log(f"{name}: drained and its Node deleted before the rebuild")

    def after_up(self, step: Step) -> None:
        for move in self._moves(step, Action.CREATE, Action.REPLACE):
            name = move.name(step.cluster)
            if move.tier is Tier.MASTER:
                self._api_gate(name)
            self.waiting.until("node-ready", name, partial(self._ready, name))
            self.kube.set_unschedulable(name, False)
            self.log(f"{name}: Ready")
        for move in self._moves(step, Action.RETIRE):
            name = move.name(step.cluster)
            self.drainer.drain(name)
            self.log(f"{name}: cordoned and drained")
        for move in self._moves(step, Action.DELETE):
            self.kube.delete_node(move.name(step.cluster))

    def _ready(self, name: str) -> str | None:
        return None if self.kube.node_ready(name) else "not Ready"

    def _moves(self, step: Step, *actions: Action) -> list[Move]:
        return [m for m in step.changes if m.tier is not Tier.ETCD and m.action in actions]

    @staticmethod
    def _readyz(lb: KubeClient) -> str | None:
        ready, answer = lb.readyz()
        return None if ready else f"/readyz: {answer}"

    def _api_gate(self, name: str) -> None:
        if self.api_via_lb is not None:
            lb = self.api_via_lb
            self.waiting.until("api-readyz-through-load-balancer", name, partial(self._readyz, lb))
        if self.octavia is not None:
            octavia, address = self.octavia, self.address(name)

            def online() -> str | None:
                status = octavia.member_status(self.pool, address)
                return None if status == "ONLINE" else f"pool member {address} is {status or 'absent'}"

            self.waiting.until("load-balancer-member-online", name, online)


@dataclass
class ClusterGates:
    """The gates of every tier; a tier without one (None) has nothing to wait for."""

    etcd: EtcdGate | None = None
    nodes: KubernetesGate | None = None

    def before_up(self, step: Step) -> None:
        if self.etcd is not None:
            self.etcd.before_up(step)
        if self.nodes is not None:
            self.nodes.before_up(step)

    def after_up(self, step: Step) -> None:
        if self.etcd is not None:
            self.etcd.after_up(step)
        if self.nodes is not None:
            self.nodes.after_up(step)


class NoGates:
    """No in-cluster half (tests of the runner alone)."""

    def before_up(self, step: Step) -> None:
        return None

    def after_up(self, step: Step) -> None:
        return None

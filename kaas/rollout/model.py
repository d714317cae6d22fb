"""The data of a rollout: revisions, nodes, cluster states, steps. Pure; no Pulumi.

A node is ``(tier, index)``: its name is ``<cluster>-<tier>-<index>`` and its fixed
address is slot ``index`` of its tier's address block. A node runs one
:class:`Revision` for its whole life (OpenStack cannot change a running server's
image, user data or key pair); moving a node to another revision means a new server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from kaas.versions import parse_version


class Tier(StrEnum):
    """The node tiers, in the order a rollout moves them: etcd, then the control plane, then workers."""

    ETCD = "etcd"
    MASTER = "master"
    WORKER = "worker"


TIER_ORDER: tuple[Tier, ...] = (Tier.ETCD, Tier.MASTER, Tier.WORKER)


def minor_of(version: str) -> tuple[int, int]:
    major, minor, _ = parse_version(version)
    return major, minor


@dataclass(frozen=True, order=True)
class Revision:
    """What a node runs: everything that is fixed when its server is built.

    ``version`` is the tier's software: the Kubernetes version on masters and workers,
    the etcd version on etcd members. ``template`` is the bootstrap template revision
    (kaas.bootstrap.TEMPLATE_REVISION), bumped by hand when a template change must
    reach running nodes. ``volume_gb`` is the boot volume size (None: the flavor's disk).
    ``certificates`` is the generation of the certificates the program issues into the
    node's user data (etcd members: their serving and peer certificates; masters: the API
    server's etcd client certificate; workers carry none and stay at 1): raising it
    (spec ``security.etcd_certificates_generation``) re-issues them, and since a server
    keeps what it was built with, the rollout replaces the nodes to carry them.
    ``key_pair`` is recorded for the truth of it but never rolls a node by itself: a new
    key pair is for nodes built later (see :meth:`rolls_to`).
    """

    image: str
    version: str
    template: int
    flavor: str
    key_pair: str | None = None
    volume_gb: int | None = None
    certificates: int = 1

    def rolls_to(self, desired: Revision) -> bool:
        """True if a node running ``self`` must be rebuilt to run ``desired``.

        The key pair alone never rebuilds a node: SSH key rotation is for future nodes.
        """
        return (self.image, self.version, self.template, self.flavor, self.volume_gb, self.certificates) != (
            desired.image,
            desired.version,
            desired.template,
            desired.flavor,
            desired.volume_gb,
            desired.certificates,
        )

    def short(self) -> str:
        """One line for people: ``1.34.2 ubuntu-24.04 kaas.worker t1 key acme-ops`` (`` certs g2`` after a renewal)."""
        certificates = f" certs g{self.certificates}" if self.certificates != 1 else ""
        return f"{self.version} {self.image} {self.flavor} t{self.template} key {self.key_pair or '-'}{certificates}"


class Phase(StrEnum):
    """``running``: a member of its tier. ``leaving``: retired (out of the etcd cluster,
    out of the API load balancer, cordoned and drained), deleted by the next step."""

    RUNNING = "running"
    LEAVING = "leaving"


@dataclass(frozen=True, order=True)
class Node:
    tier: Tier
    index: int
    revision: Revision
    phase: Phase = Phase.RUNNING

    def name(self, cluster: str) -> str:
        return node_name(cluster, self.tier, self.index)

    @property
    def running(self) -> bool:
        return self.phase is Phase.RUNNING


def node_name(cluster: str, tier: str, index: int) -> str:
    """``<cluster>-<tier>-<index>`` (index from 0): the Nova name, the host name and the etcd member name."""
    return f"{cluster}-{tier}-{index}"


@dataclass(frozen=True)
class ClusterState:
    """Every node of a cluster and the revision it runs (recorded, or after a step)."""

    nodes: tuple[Node, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(sorted(self.nodes, key=lambda n: (TIER_ORDER.index(n.tier), n.index))))
        keys = [(n.tier, n.index) for n in self.nodes]
        if len(keys) != len(set(keys)):
            raise ValueError("a node (tier, index) appears twice")

    def tier(self, tier: Tier) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.tier is tier)

    def running(self, tier: Tier) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.tier is tier and n.running)

    def get(self, tier: Tier, index: int) -> Node | None:
        return next((n for n in self.nodes if n.tier is tier and n.index == index), None)


@dataclass(frozen=True)
class TierTarget:
    """What the spec wants of one tier.

    ``max_surge``: nodes built beside the old ones before the old ones go (0 replaces
    in place, delete first). ``max_unavailable``: nodes that may be out of service at
    once. ``min_count``: never fewer running nodes than this (3 etcd members in
    production).
    """

    tier: Tier
    count: int
    revision: Revision
    max_surge: int = 1
    max_unavailable: int = 1
    min_count: int = 1


@dataclass(frozen=True)
class Desired:
    """The spec, as far as the rollout is concerned."""

    cluster: str
    etcd: TierTarget
    masters: TierTarget
    workers: TierTarget
    production: bool = False

    def target(self, tier: Tier) -> TierTarget:
        return {Tier.ETCD: self.etcd, Tier.MASTER: self.masters, Tier.WORKER: self.workers}[tier]

    def initial_state(self) -> ClusterState:
        """A fresh cluster: every node at the desired revision, indices from 0."""
        return ClusterState(
            tuple(
                Node(tier, i, self.target(tier).revision) for tier in TIER_ORDER for i in range(self.target(tier).count)
            )
        )


class Action(StrEnum):
    """What one ``pulumi up`` does to one node."""

    KEEP = "keep"  # untouched
    CREATE = "create"  # a new server at the desired revision (new index)
    REPLACE = "replace"  # rebuilt in place, same name and address, the old server deleted first
    RETIRE = "retire"  # stays up, leaves its tier (etcd member remove, LB member out, drain); unprotected
    DELETE = "delete"  # a retired node's server goes


@dataclass(frozen=True)
class Move:
    """One node in one step: its state before (None if created) and after (None if deleted)."""

    tier: Tier
    index: int
    action: Action
    before: Node | None
    after: Node | None

    def name(self, cluster: str) -> str:
        return node_name(cluster, self.tier, self.index)


@dataclass(frozen=True)
class Step:
    """One ``pulumi up`` of a rollout: the state it starts from, every node's move, the state it leaves.

    ``bootstrap`` is the very first ``pulumi up`` of a cluster (no recorded state): every
    node is created at once, and no day-2 invariant applies.
    """

    cluster: str
    before: ClusterState
    after: ClusterState
    moves: tuple[Move, ...]
    pending: tuple[str, ...] = field(default=())
    bootstrap: bool = False

    @property
    def changes(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.action is not Action.KEEP)

    @property
    def done(self) -> bool:
        """True when this step changes nothing: the recorded state already is the spec."""
        return not self.changes and not self.pending

    def moving(self, tier: Tier, *actions: Action) -> tuple[Move, ...]:
        wanted = actions or tuple(a for a in Action if a is not Action.KEEP)
        return tuple(m for m in self.moves if m.tier is tier and m.action in wanted)


def with_phase(node: Node, phase: Phase) -> Node:
    return replace(node, phase=phase)


# Plain data (JSON-able) forms, for the Cluster component's inputs that the policy pack reads.


def revision_to_data(revision: Revision) -> dict[str, Any]:
    """Plain data; ``certificates`` only when re-issued (generation 1 is every node's first)."""
    data: dict[str, Any] = {
        "image": revision.image,
        "version": revision.version,
        "template": revision.template,
        "flavor": revision.flavor,
        "key_pair": revision.key_pair,
        "volume_gb": revision.volume_gb,
    }
    if revision.certificates != 1:
        data["certificates"] = revision.certificates
    return data


def revision_from_data(data: Mapping[str, Any]) -> Revision:
    return Revision(
        image=str(data["image"]),
        version=str(data["version"]),
        template=int(data["template"]),
        flavor=str(data["flavor"]),
        key_pair=data.get("key_pair"),
        volume_gb=data.get("volume_gb"),
        certificates=int(data.get("certificates", 1)),
    )


def state_to_data(state: ClusterState) -> list[dict[str, Any]]:
    return [
        {"tier": str(n.tier), "index": n.index, "phase": str(n.phase), "revision": revision_to_data(n.revision)}
        for n in state.nodes
    ]


def state_from_data(data: Sequence[Mapping[str, Any]]) -> ClusterState:
    return ClusterState(
        tuple(
            Node(Tier(n["tier"]), int(n["index"]), revision_from_data(n["revision"]), Phase(n["phase"])) for n in data
        )
    )


def desired_to_data(desired: Desired) -> dict[str, Any]:
    def target(t: TierTarget) -> dict[str, Any]:
        return {
            "count": t.count,
            "revision": revision_to_data(t.revision),
            "max_surge": t.max_surge,
            "max_unavailable": t.max_unavailable,
            "min_count": t.min_count,
        }

    return {
        "cluster": desired.cluster,
        "production": desired.production,
        **{str(tier): target(desired.target(tier)) for tier in TIER_ORDER},
    }


def desired_from_data(data: Mapping[str, Any]) -> Desired:
    def target(tier: Tier) -> TierTarget:
        t = data[str(tier)]
        return TierTarget(
            tier,
            int(t["count"]),
            revision_from_data(t["revision"]),
            int(t["max_surge"]),
            int(t["max_unavailable"]),
            int(t["min_count"]),
        )

    return Desired(
        str(data["cluster"]),
        target(Tier.ETCD),
        target(Tier.MASTER),
        target(Tier.WORKER),
        production=bool(data["production"]),
    )

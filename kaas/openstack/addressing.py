"""Fixed IP addresses for every node and the API VIP, computed as data from the spec.

Each tier owns a fixed block of the node subnet, so growing one tier never moves
an address of another, and node ``i`` of a tier always has the same address:

    offset 10            the API load balancer's VIP
    offsets 16..31       etcd nodes (at most 9)
    offsets 32..63       masters (at most 32)
    offsets 64..end-1    workers

Neutron keeps the network address, the gateway (offset 1) and a few DHCP ports
near the bottom; the broadcast address is never used.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kaas.spec.models import ClusterSpec

VIP_OFFSET = 10
ETCD_OFFSET = 16
MASTER_OFFSET = 32
WORKER_OFFSET = 64


@dataclass(frozen=True)
class AddressPlan:
    api_vip: str
    etcd: tuple[str, ...]
    masters: tuple[str, ...]
    workers: tuple[str, ...]


def node_name(cluster: str, tier: str, index: int) -> str:
    """``<cluster>-<tier>-<index>`` (index from 0): the Nova name, the host name and the etcd member name."""
    return f"{cluster}-{tier}-{index}"


def worker_capacity(node_cidr: str) -> int:
    return ipaddress.IPv4Network(node_cidr).num_addresses - WORKER_OFFSET - 1


TIER_OFFSETS = {"etcd": ETCD_OFFSET, "master": MASTER_OFFSET, "worker": WORKER_OFFSET}


def tier_capacity(node_cidr: str, tier: str) -> int:
    """How many node indices (0..capacity-1) the tier's address block holds."""
    if tier == "worker":
        return worker_capacity(node_cidr)
    return {"etcd": MASTER_OFFSET - ETCD_OFFSET, "master": WORKER_OFFSET - MASTER_OFFSET}[tier]


def node_address(node_cidr: str, tier: str, index: int) -> str:
    """The fixed address of node ``index`` of ``tier``: slot ``index`` of the tier's block."""
    if not 0 <= index < tier_capacity(node_cidr, tier):
        raise ValueError(f"{tier} index {index} is outside the tier's address block of {node_cidr}")
    return str(ipaddress.IPv4Network(node_cidr).network_address + TIER_OFFSETS[tier] + index)


def api_vip(node_cidr: str) -> str:
    return str(ipaddress.IPv4Network(node_cidr).network_address + VIP_OFFSET)


def plan_addresses(spec: ClusterSpec) -> AddressPlan:
    """Every address of a cluster whose nodes have indices ``0..count-1`` (a fresh cluster).

    The program reads node addresses from the cluster plan (kaas.cluster_plan), where a
    rollout may use other indices; this is the same arithmetic for tests and tools."""
    base = ipaddress.IPv4Network(spec.networking.node_cidr).network_address

    def block(tier: str, count: int) -> tuple[str, ...]:
        return tuple(str(base + TIER_OFFSETS[tier] + i) for i in range(count))

    return AddressPlan(
        api_vip=str(base + VIP_OFFSET),
        etcd=block("etcd", spec.etcd.count),
        masters=block("master", spec.masters.count),
        workers=block("worker", spec.workers.count),
    )

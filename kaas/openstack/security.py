"""Security groups per role, with the rules computed first as a data table from the spec.

:func:`security_rules` is the whole policy: every ingress rule of every group, as a
row naming its group, protocol, ports and either a remote CIDR or a remote group.
:class:`SecurityGroups` only turns the rows into Neutron resources.

Least privilege, by role (all rules are ingress; Neutron's default egress rules stay,
since nodes pull images and reach the OpenStack APIs):

- ``api-lb`` (the API VIP port): 6443/tcp from the spec's allowed API CIDRs, the only
  rule that may face the world.
- ``master``: 6443/tcp from the ``api-lb`` group and the node subnet (kubelets, the
  amphora's member port, the OVN health checks); with the ovn Octavia provider the
  client's source address reaches the masters unchanged, so also from the allowed API
  CIDRs.
- ``etcd``: 2379/tcp from masters and etcd, 2380/tcp from etcd only.
- kubelet 10250/tcp on masters and workers from masters, and from workers when
  metrics-server or monitoring (running on workers) scrape kubelets.
- NodePorts 30000-32767 tcp+udp on workers from the node subnet.
- CNI traffic only between masters and workers: Calico BGP 179/tcp (only when Calico
  runs BGP: IP-in-IP or unencapsulated) and Typha 5473/tcp, then IP-in-IP (protocol 4) or VXLAN 4789/udp per encapsulation, or, when
  unencapsulated, the pod CIDR itself; Canal (the operator's Calico VXLAN, BGP off)
  4789/udp and Typha; flannel VXLAN 8472/udp.
- Monitoring (only when it is enabled; Prometheus runs on the workers, masters are
  tainted): from workers to etcd 2381/tcp (etcd's plain-HTTP metrics listener) and
  9100/tcp (node exporter); to masters 10257/tcp (controller manager), 10259/tcp
  (scheduler), 10249/tcp (kube-proxy metrics) and 9100/tcp; to workers 10249/tcp and
  9100/tcp. See :func:`monitoring_rules`.
- ``admin`` (only when ``admin_ssh_cidrs`` is set, attached to every node): 22/tcp
  from those CIDRs. No SSH otherwise.
- k8s-keystone-auth listens on the masters' loopback (``KEYSTONE_AUTH_PORT``): no rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import pulumi
import pulumi_openstack as openstack

from kaas.platform import (
    API_SERVER_PORT,
    CONTROLLER_MANAGER_PORT,
    ETCD_CLIENT_PORT,
    ETCD_METRICS_PORT,
    ETCD_PEER_PORT,
    KUBE_PROXY_METRICS_PORT,
    KUBELET_PORT,
    NODE_EXPORTER_PORT,
    SCHEDULER_PORT,
)
from kaas.spec.models import CalicoEncapsulation, ClusterSpec, Cni, OctaviaProvider

NODEPORT_RANGE = (30000, 32767)
SSH_PORT = 22
CALICO_BGP_PORT = 179
CALICO_TYPHA_PORT = 5473
CALICO_VXLAN_PORT = 4789
FLANNEL_VXLAN_PORT = 8472
IPIP_PROTOCOL = "4"


class Role(StrEnum):
    ETCD = "etcd"
    MASTER = "master"
    WORKER = "worker"
    API_LB = "api-lb"
    ADMIN = "admin"


@dataclass(frozen=True)
class RuleRow:
    """One ingress rule: ``protocol`` None means any protocol (and then no ports)."""

    group: Role
    protocol: str | None
    port_min: int | None
    port_max: int | None
    description: str
    remote_cidr: str | None = None
    remote_group: Role | None = None
    direction: str = "ingress"

    def __post_init__(self) -> None:
        if (self.remote_cidr is None) == (self.remote_group is None):
            raise ValueError("a rule has exactly one remote: a CIDR or a group")

    @property
    def remote(self) -> str:
        return self.remote_cidr if self.remote_cidr is not None else str(self.remote_group)

    def covers(self, port: int) -> bool:
        if self.protocol is None:
            return True
        return self.port_min is not None and self.port_max is not None and self.port_min <= port <= self.port_max

    @property
    def key(self) -> str:
        """Stable, unique within a group: the resource name suffix of this rule."""
        ports = (
            "all"
            if self.port_min is None
            else f"{self.port_min}" + (f"-{self.port_max}" if self.port_max != self.port_min else "")
        )
        proto = {None: "any", IPIP_PROTOCOL: "ipip"}.get(self.protocol, self.protocol or "any")
        remote = re.sub(r"[^a-z0-9.-]", "-", self.remote.lower())
        return f"{proto}-{ports}-from-{remote}"


def roles(spec: ClusterSpec) -> tuple[Role, ...]:
    """The groups this spec needs: one per role, ``admin`` only when SSH is opened."""
    base = (Role.ETCD, Role.MASTER, Role.WORKER, Role.API_LB)
    return base + ((Role.ADMIN,) if spec.networking.admin_ssh_cidrs else ())


def _tcp(group: Role, port: int, description: str, *, cidr: str | None = None, src: Role | None = None) -> RuleRow:
    return RuleRow(group, "tcp", port, port, description, remote_cidr=cidr, remote_group=src)


def _between_nodes(protocol: str | None, port: int | None, description: str) -> list[RuleRow]:
    """A rule on masters and workers from masters and workers (the Kubernetes nodes)."""
    nodes = (Role.MASTER, Role.WORKER)
    return [RuleRow(g, protocol, port, port, description, remote_group=src) for g in nodes for src in nodes]


def calico_runs_bgp(spec: ClusterSpec) -> bool:
    """Calico's BIRD peers only with IP-in-IP or unencapsulated routing; VXLAN runs with BGP disabled.

    Mirrors ``bgp`` in :func:`kaas.services.values.calico_values` (Installation
    ``calicoNetwork.bgp``); Canal is VXLAN without BGP.
    """
    net = spec.networking
    return net.cni is Cni.CALICO and net.calico_encapsulation is not CalicoEncapsulation.VXLAN


def cni_rules(spec: ClusterSpec) -> list[RuleRow]:
    net = spec.networking
    rows: list[RuleRow] = []
    if net.cni is Cni.CALICO:
        if calico_runs_bgp(spec):
            rows += _between_nodes("tcp", CALICO_BGP_PORT, "Calico BGP")
        rows += _between_nodes("tcp", CALICO_TYPHA_PORT, "Calico Typha")
        if net.calico_encapsulation is CalicoEncapsulation.VXLAN:
            rows += _between_nodes("udp", CALICO_VXLAN_PORT, "Calico VXLAN")
        elif net.calico_encapsulation is CalicoEncapsulation.IPIP:
            rows += _between_nodes(IPIP_PROTOCOL, None, "Calico IP-in-IP (IP protocol 4)")
        else:
            # Unencapsulated: packets between nodes carry pod source addresses.
            for group in (Role.MASTER, Role.WORKER):
                rows.append(RuleRow(group, None, None, None, "Calico routed pod traffic", remote_cidr=net.pod_cidr))
    elif net.cni is Cni.CANAL:
        # kaas's Canal is the tigera-operator's Calico with a VXLAN pool and BGP off
        # (kaas.services.values.canal_values): Calico's VXLAN port, not flannel's.
        rows += _between_nodes("udp", CALICO_VXLAN_PORT, "Canal (Calico VXLAN)")
        rows += _between_nodes("tcp", CALICO_TYPHA_PORT, "Canal Typha")
    else:
        rows += _between_nodes("udp", FLANNEL_VXLAN_PORT, "Flannel VXLAN")
    return rows


# The metrics listeners outside the pod network, per tier (Prometheus scrapes pods over the CNI).
SCRAPED_PORTS: dict[Role, tuple[tuple[int, str], ...]] = {
    Role.ETCD: ((ETCD_METRICS_PORT, "etcd metrics"), (NODE_EXPORTER_PORT, "node exporter")),
    Role.MASTER: (
        (CONTROLLER_MANAGER_PORT, "kube-controller-manager metrics"),
        (SCHEDULER_PORT, "kube-scheduler metrics"),
        (KUBE_PROXY_METRICS_PORT, "kube-proxy metrics"),
        (NODE_EXPORTER_PORT, "node exporter"),
    ),
    Role.WORKER: ((KUBE_PROXY_METRICS_PORT, "kube-proxy metrics"), (NODE_EXPORTER_PORT, "node exporter")),
}
PROMETHEUS_TIER = Role.WORKER  # the masters' control-plane taint keeps Prometheus on the workers


def monitoring_rules(spec: ClusterSpec) -> list[RuleRow]:
    """Prometheus (on the workers) to every metrics listener outside the pod network, and nothing else."""
    if not spec.services.monitoring.enabled:
        return []
    return [
        _tcp(group, port, f"Prometheus scrape: {what}", src=PROMETHEUS_TIER)
        for group, ports in SCRAPED_PORTS.items()
        for port, what in ports
    ]


def security_rules(spec: ClusterSpec) -> list[RuleRow]:
    """Every ingress rule of every security group, derived from the spec alone."""
    net = spec.networking
    nodes = net.node_cidr
    rows: list[RuleRow] = [
        *(_tcp(Role.API_LB, API_SERVER_PORT, "Kubernetes API (allowed CIDR)", cidr=c) for c in net.allowed_api_cidrs),
        # Nodes and control-plane components reach the API at the VIP (kubeadm's controlPlaneEndpoint).
        _tcp(Role.API_LB, API_SERVER_PORT, "Kubernetes API from the node subnet (VIP)", cidr=nodes),
        _tcp(Role.MASTER, API_SERVER_PORT, "Kubernetes API from the load balancer", src=Role.API_LB),
        _tcp(Role.MASTER, API_SERVER_PORT, "Kubernetes API from the node subnet", cidr=nodes),
    ]
    if spec.openstack.octavia_provider is OctaviaProvider.OVN:
        rows += [
            _tcp(Role.MASTER, API_SERVER_PORT, "Kubernetes API via OVN LB (client source kept)", cidr=c)
            for c in net.allowed_api_cidrs
        ]
    rows += [
        _tcp(Role.ETCD, ETCD_CLIENT_PORT, "etcd clients: API servers", src=Role.MASTER),
        _tcp(Role.ETCD, ETCD_CLIENT_PORT, "etcd clients: members", src=Role.ETCD),
        _tcp(Role.ETCD, ETCD_PEER_PORT, "etcd peers", src=Role.ETCD),
    ]
    kubelet_clients = [Role.MASTER]
    if spec.services.metrics_server.enabled or spec.services.monitoring.enabled:
        kubelet_clients.append(Role.WORKER)
    rows += [
        _tcp(group, KUBELET_PORT, "kubelet API", src=src)
        for group in (Role.MASTER, Role.WORKER)
        for src in kubelet_clients
    ]
    rows += [
        RuleRow(Role.WORKER, proto, *NODEPORT_RANGE, "NodePorts from the node subnet", remote_cidr=nodes)
        for proto in ("tcp", "udp")
    ]
    rows += cni_rules(spec)
    rows += monitoring_rules(spec)
    rows += [_tcp(Role.ADMIN, SSH_PORT, "SSH from an admin CIDR", cidr=c) for c in net.admin_ssh_cidrs]
    # Neutron rejects duplicate rules (e.g. an allowed API CIDR equal to the node subnet).
    unique: dict[tuple[Role, str], RuleRow] = {}
    for row in rows:
        unique.setdefault((row.group, row.key), row)
    return list(unique.values())


def node_groups(spec: ClusterSpec, tier: Role) -> tuple[Role, ...]:
    """The groups a node port of ``tier`` carries: its own and, when SSH is enabled, ``admin``."""
    return (tier,) + ((Role.ADMIN,) if Role.ADMIN in roles(spec) else ())


def allowed_address_pairs(spec: ClusterSpec) -> tuple[str, ...]:
    """CIDRs Kubernetes node ports must accept as source/destination besides their own IP.

    Only unencapsulated Calico puts pod and service addresses on the wire of Neutron.
    """
    net = spec.networking
    if net.cni is Cni.CALICO and net.calico_encapsulation is CalicoEncapsulation.NONE:
        return (net.pod_cidr, net.service_cidr)
    return ()


class SecurityGroups(pulumi.ComponentResource):
    """One Neutron security group per role, filled from :func:`security_rules`."""

    groups: Mapping[Role, openstack.networking.SecGroup]
    rules: Sequence[RuleRow]

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        provider: openstack.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaas:openstack:SecurityGroups", name, None, opts)
        self.rules = security_rules(spec)
        self.groups = {
            role: openstack.networking.SecGroup(
                f"{name}-{role}",
                name=f"{name}-{role}",
                description=f"kaas {spec.name}: {role}",
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            for role in roles(spec)
        }
        for row in self.rules:
            group = self.groups[row.group]
            openstack.networking.SecGroupRule(
                f"{name}-{row.group}-{row.key}",
                security_group_id=group.id,
                direction=row.direction,
                ethertype="IPv4",
                protocol=row.protocol,
                port_range_min=row.port_min,
                port_range_max=row.port_max,
                remote_ip_prefix=row.remote_cidr,
                remote_group_id=self.groups[row.remote_group].id if row.remote_group else None,
                description=row.description,
                opts=pulumi.ResourceOptions(parent=group, provider=provider),
            )
        self.register_outputs({str(role): group.id for role, group in self.groups.items()})

    def ids(self, wanted: Sequence[Role]) -> list[pulumi.Output[str]]:
        """Group IDs for a port, in the given order."""
        return [self.groups[role].id for role in wanted]

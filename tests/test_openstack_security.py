"""The security rule table (pure) and the groups built from it (offline plan)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaas.bootstrap.userdata.etcd import EtcdMember, etcd_config, node_exporter_defaults
from kaas.bootstrap.userdata.kubeadm import kube_proxy_configuration, metrics_listeners
from kaas.offline import plan_spec
from kaas.openstack.security import (
    Role,
    RuleRow,
    allowed_address_pairs,
    cni_rules,
    monitoring_rules,
    roles,
    security_rules,
)
from kaas.platform import API_SERVER_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT
from tests.helpers import make_spec

SENSITIVE_PORTS = (ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT, 22)
NODES = {Role.MASTER, Role.WORKER}


def ports(rows: list[RuleRow]) -> set[tuple[str | None, int | None, int | None]]:
    return {(r.protocol, r.port_min, r.port_max) for r in rows}


@pytest.mark.parametrize(
    ("networking", "expected"),
    [
        (
            # VXLAN runs with BGP disabled (calico_values): no 179.
            {"cni": "calico", "calico_encapsulation": "vxlan"},
            {("tcp", 5473, 5473), ("udp", 4789, 4789)},
        ),
        (
            {"cni": "calico", "calico_encapsulation": "ipip"},
            {("tcp", 179, 179), ("tcp", 5473, 5473), ("4", None, None)},
        ),
        (
            {"cni": "calico", "calico_encapsulation": "none"},
            {("tcp", 179, 179), ("tcp", 5473, 5473), (None, None, None)},
        ),
        ({"cni": "flannel"}, {("udp", 8472, 8472)}),
        ({"cni": "canal"}, {("udp", 4789, 4789), ("tcp", 5473, 5473)}),
    ],
)
def test_cni_ports_per_plugin_and_mode(networking: dict[str, Any], expected: set[Any]) -> None:
    rows = cni_rules(make_spec(networking=networking))
    assert ports(rows) == expected
    # Only between the Kubernetes nodes: on masters/workers, from masters/workers (or the pod CIDR).
    assert {r.group for r in rows} == NODES
    for row in rows:
        assert row.remote_group in NODES or row.remote_cidr == "10.244.0.0/16"


def test_unencapsulated_calico_admits_only_the_pod_cidr_as_any_protocol() -> None:
    rows = [r for r in cni_rules(make_spec(networking={"calico_encapsulation": "none"})) if r.protocol is None]
    assert {(r.group, r.remote_cidr) for r in rows} == {(Role.MASTER, "10.244.0.0/16"), (Role.WORKER, "10.244.0.0/16")}


def test_control_plane_and_etcd_rules_are_exact() -> None:
    spec = make_spec(networking={"node_cidr": "10.20.0.0/22", "allowed_api_cidrs": ["198.51.100.0/24"]})
    rows = [r for r in security_rules(spec) if r.group in (Role.ETCD, Role.API_LB) or r.port_min == API_SERVER_PORT]
    assert {(r.group, r.port_min, r.remote) for r in rows} == {
        (Role.API_LB, 6443, "198.51.100.0/24"),
        (Role.API_LB, 6443, "10.20.0.0/22"),  # nodes reach the API at the VIP
        (Role.MASTER, 6443, "api-lb"),
        (Role.MASTER, 6443, "10.20.0.0/22"),
        (Role.ETCD, 2379, "master"),
        (Role.ETCD, 2379, "etcd"),
        (Role.ETCD, 2380, "etcd"),
        # Prometheus on the workers: etcd's plain-HTTP metrics listener and the node exporter.
        (Role.ETCD, 2381, "worker"),
        (Role.ETCD, 9100, "worker"),
    }


def test_metrics_listeners_open_exactly_to_the_workers_where_prometheus_runs() -> None:
    rows = monitoring_rules(make_spec())
    assert {(r.group, r.protocol, r.port_min, r.port_max, r.remote) for r in rows} == {
        (Role.ETCD, "tcp", 2381, 2381, "worker"),
        (Role.ETCD, "tcp", 9100, 9100, "worker"),
        (Role.MASTER, "tcp", 10257, 10257, "worker"),
        (Role.MASTER, "tcp", 10259, 10259, "worker"),
        (Role.MASTER, "tcp", 10249, 10249, "worker"),
        (Role.MASTER, "tcp", 9100, 9100, "worker"),
        (Role.WORKER, "tcp", 10249, 10249, "worker"),
        (Role.WORKER, "tcp", 9100, 9100, "worker"),
    }
    assert set(rows) <= set(security_rules(make_spec()))


def test_no_metrics_port_opens_without_monitoring() -> None:
    spec = make_spec(environment="demo", services={"monitoring": {"enabled": False}})
    assert monitoring_rules(spec) == []
    opened = {r.port_min for r in security_rules(spec)}
    assert opened.isdisjoint({2381, 9100, 10257, 10259, 10249})


def test_kubelet_open_to_workers_only_when_metrics_run_on_them() -> None:
    def kubelet_clients(**services: Any) -> set[str]:
        rows = security_rules(make_spec(environment="demo", services=services))
        return {r.remote for r in rows if r.port_min == KUBELET_PORT}

    assert kubelet_clients() == {"master", "worker"}
    assert kubelet_clients(metrics_server={"enabled": False}, monitoring={"enabled": False}) == {"master"}


def test_nodeports_from_the_node_subnet_tcp_and_udp_on_workers() -> None:
    rows = [r for r in security_rules(make_spec()) if r.port_min == 30000]
    assert {(r.group, r.protocol, r.port_max, r.remote) for r in rows} == {
        (Role.WORKER, "tcp", 32767, "10.0.0.0/22"),
        (Role.WORKER, "udp", 32767, "10.0.0.0/22"),
    }


def test_ssh_group_only_with_admin_cidrs() -> None:
    without = make_spec()
    assert Role.ADMIN not in roles(without)
    assert not [r for r in security_rules(without) if r.covers(22) and r.protocol == "tcp" and r.port_min == 22]
    spec = make_spec(networking={"admin_ssh_cidrs": ["192.0.2.0/24", "198.51.100.7/32"]})
    ssh = [r for r in security_rules(spec) if r.port_min == 22]
    assert {(r.group, r.remote) for r in ssh} == {(Role.ADMIN, "192.0.2.0/24"), (Role.ADMIN, "198.51.100.7/32")}


def test_ovn_masters_admit_the_allowed_api_cidrs_because_ovn_keeps_the_client_address() -> None:
    spec = make_spec(openstack={"octavia_provider": "ovn"}, networking={"allowed_api_cidrs": ["203.0.113.0/24"]})
    master_api = {r.remote for r in security_rules(spec) if r.group is Role.MASTER and r.port_min == API_SERVER_PORT}
    assert master_api == {"api-lb", "10.0.0.0/22", "203.0.113.0/24"}


def test_duplicate_rules_are_merged() -> None:
    spec = make_spec(openstack={"octavia_provider": "ovn"}, networking={"allowed_api_cidrs": ["10.0.0.0/22"]})
    keys = [(r.group, r.key) for r in security_rules(spec)]
    assert len(keys) == len(set(keys))


def test_allowed_address_pairs_only_for_unencapsulated_calico() -> None:
    assert allowed_address_pairs(make_spec(networking={"calico_encapsulation": "none"})) == (
        "10.244.0.0/16",
        "10.96.0.0/12",
    )
    for networking in ({"calico_encapsulation": "vxlan"}, {"calico_encapsulation": "ipip"}, {"cni": "flannel"}):
        assert allowed_address_pairs(make_spec(networking=networking)) == ()


cidrs = st.builds(
    lambda a, p: str(ipaddress.IPv4Network((a, p), strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)


@settings(max_examples=150, deadline=None)
@given(
    cni=st.sampled_from(["calico", "flannel", "canal"]),
    encapsulation=st.sampled_from(["vxlan", "ipip", "none"]),
    octavia=st.sampled_from(["amphora", "ovn"]),
    api_cidrs=st.lists(st.one_of(st.just("0.0.0.0/0"), cidrs), min_size=1, max_size=4),
    ssh_cidrs=st.lists(cidrs.filter(lambda c: not c.endswith("/0")), max_size=3),
    metrics=st.booleans(),
)
def test_sensitive_ports_never_face_the_world_and_etcd_only_the_control_plane(
    cni: str, encapsulation: str, octavia: str, api_cidrs: list[str], ssh_cidrs: list[str], metrics: bool
) -> None:
    spec = make_spec(
        environment="demo",
        openstack={"octavia_provider": octavia},
        networking={
            "cni": cni,
            "calico_encapsulation": encapsulation,
            "allowed_api_cidrs": api_cidrs,
            "admin_ssh_cidrs": ssh_cidrs,
        },
        services={"metrics_server": {"enabled": metrics}},
    )
    internal = {spec.networking.node_cidr, spec.networking.pod_cidr}
    rows = security_rules(spec)
    for row in rows:
        assert row.direction == "ingress"
        if row.remote_cidr is not None and ipaddress.IPv4Network(row.remote_cidr).prefixlen == 0:
            # The only world-facing rules are the API's, and only when the spec opens them.
            assert row.port_min == row.port_max == API_SERVER_PORT and row.remote_cidr in api_cidrs
        for port in SENSITIVE_PORTS:
            if row.covers(port) and row.remote_cidr is not None:
                if port == 22 and row.port_min == 22:
                    assert row.group is Role.ADMIN and row.remote_cidr in ssh_cidrs
                else:
                    assert row.remote_cidr in internal, row
    etcd_rows = [r for r in rows if r.group is Role.ETCD]
    # The etcd data ports only from the control plane; the workers (Prometheus) reach only
    # the metrics listener and the node exporter.
    assert {r.remote_group for r in etcd_rows if r.port_min in (ETCD_CLIENT_PORT, ETCD_PEER_PORT)} <= {
        Role.MASTER,
        Role.ETCD,
    }
    assert {r.port_min for r in etcd_rows if r.remote_group is Role.WORKER} == {2381, 9100}
    assert all(r.remote_cidr is None for r in etcd_rows)
    assert {r.remote_group for r in etcd_rows if r.port_min == ETCD_PEER_PORT} == {Role.ETCD}
    # etcd is reached through its own group only: no other group opens the etcd ports.
    assert not [r for r in rows if r.group is not Role.ETCD and r.protocol == "tcp" and r.covers(ETCD_CLIENT_PORT)]


def test_rules_become_resources_on_their_group_with_remote_groups_wired() -> None:
    spec = make_spec(networking={"admin_ssh_cidrs": ["192.0.2.0/24"]})
    plan = plan_spec(spec)
    groups = {r.name: r for r in plan.by_type("openstack:networking/secGroup:SecGroup")}
    assert set(groups) == {f"t1-{role}" for role in roles(spec)}
    rules = plan.by_type("openstack:networking/secGroupRule:SecGroupRule")
    assert len(rules) == len(security_rules(spec))
    peer = plan.find("openstack:networking/secGroupRule:SecGroupRule", "t1-etcd-tcp-2380-from-etcd")
    assert peer.parent == groups["t1-etcd"].urn
    assert peer.property_dependencies["remoteGroupId"] == [groups["t1-etcd"].urn]
    assert peer.property_dependencies["securityGroupId"] == [groups["t1-etcd"].urn]
    assert peer.inputs["direction"] == "ingress" and peer.inputs["ethertype"] == "IPv4"
    assert (peer.inputs["protocol"], peer.inputs["portRangeMin"], peer.inputs["portRangeMax"]) == ("tcp", 2380, 2380)
    assert "remoteIpPrefix" not in peer.inputs
    ssh = plan.find("openstack:networking/secGroupRule:SecGroupRule", "t1-admin-tcp-22-from-192.0.2.0-24")
    assert ssh.inputs["remoteIpPrefix"] == "192.0.2.0/24" and "remoteGroupId" not in ssh.inputs


def test_node_ports_carry_their_tier_group_and_the_admin_group() -> None:
    spec = make_spec(networking={"admin_ssh_cidrs": ["192.0.2.0/24"], "calico_encapsulation": "none"})
    plan = plan_spec(spec)
    group_urn = {r.name: r.urn for r in plan.by_type("openstack:networking/secGroup:SecGroup")}
    for tier in ("etcd", "master", "worker"):
        port = plan.find("openstack:networking/port:Port", f"t1-{tier}-0-port")
        assert port.property_dependencies["securityGroupIds"] == sorted(
            [group_urn[f"t1-{tier}"], group_urn["t1-admin"]]
        )
        pairs = [p["ipAddress"] for p in port.inputs.get("allowedAddressPairs", [])]
        assert pairs == ([] if tier == "etcd" else ["10.244.0.0/16", "10.96.0.0/12"])
    vip = plan.find("openstack:networking/port:Port", "t1-api-vip")
    assert vip.property_dependencies["securityGroupIds"] == [group_urn["t1-api-lb"]]


def listeners(spec: Any) -> set[tuple[Role, str | None, int | None]]:
    """What listens where, stated from the components themselves, not from the rule table.

    - API server 6443 on masters (kubeadm localAPIEndpoint) behind the api-lb VIP; etcd
      2379/2380 on etcd (kaas.bootstrap.userdata.etcd.etcd_config); kubelet 10250 on every
      Kubernetes node; NodePorts on workers; sshd on every node carrying ``admin``.
    - CNI, from the chart values the program sends: tigera-operator ``calicoNetwork.bgp``
      Enabled -> BIRD on 179; an ipPool ``encapsulation`` VXLAN -> Felix's vxlanPort (default
      4789, FelixConfiguration reference), IPIP -> IP protocol 4, None -> routed pod CIDR;
      Typha 5473 with the operator. Flannel's vxlan backend: the kernel's 8472 on Linux
      (flannel Documentation/backends.md, "Port").
    - Metrics (issue 16): etcd's plain-HTTP ``listen-metrics-urls`` and the etcd VMs' node
      exporter; on the Kubernetes nodes kube-proxy's ``metricsBindAddress``, the chart's node
      exporter DaemonSet, and on the masters the controller manager and scheduler bound to
      every address (kaas.bootstrap.userdata.kubeadm.metrics_listeners).
    """
    from kaas.services import values

    found: set[tuple[Role, str | None, int | None]] = {
        (Role.API_LB, "tcp", API_SERVER_PORT),
        (Role.MASTER, "tcp", API_SERVER_PORT),
        (Role.ETCD, "tcp", ETCD_CLIENT_PORT),
        (Role.ETCD, "tcp", ETCD_PEER_PORT),
        (Role.ADMIN, "tcp", 22),
        *((g, "tcp", KUBELET_PORT) for g in NODES),
        (Role.WORKER, "tcp", 30000),
        (Role.WORKER, "udp", 30000),
    }
    cni = spec.networking.cni
    node_ports: set[tuple[str | None, int | None]] = set()
    if cni == "flannel":
        assert values.flannel_values(spec)["flannel"]["backend"] == "vxlan"
        node_ports.add(("udp", 8472))
    else:
        network = (values.canal_values if cni == "canal" else values.calico_values)(spec)["installation"][
            "calicoNetwork"
        ]
        node_ports.add(("tcp", 5473))
        if network["bgp"] == "Enabled":
            node_ports.add(("tcp", 179))
        encapsulation = network["ipPools"][0]["encapsulation"]
        node_ports.add({"VXLAN": ("udp", 4789), "IPIP": ("4", None), "None": (None, None)}[encapsulation])
    found |= {(g, proto, port) for g in NODES for proto, port in node_ports}
    member = EtcdMember("etcd-0", "192.0.2.10")
    metrics_urls = etcd_config(member, [member], "new")["listen-metrics-urls"]
    assert f":{member.metrics_port}" in metrics_urls, metrics_urls
    found.add((Role.ETCD, "tcp", member.metrics_port))
    exporter = node_exporter_defaults()
    exporter_port = int(exporter.split("--web.listen-address=:")[1].split()[0].strip("\"'"))
    found.add((Role.ETCD, "tcp", exporter_port))
    proxy_port = int(kube_proxy_configuration()["metricsBindAddress"].rsplit(":", 1)[1])
    found |= {(g, "tcp", p) for g in NODES for p in (proxy_port, exporter_port)}
    bound = metrics_listeners()
    for section, port in (("controllerManager", 10257), ("scheduler", 10259)):
        assert {"name": "bind-address", "value": "0.0.0.0"} in bound[section]["extraArgs"]
        found.add((Role.MASTER, "tcp", port))
    return found


@settings(max_examples=120, deadline=None)
@given(
    cni=st.sampled_from(["calico", "flannel", "canal"]),
    encapsulation=st.sampled_from(["vxlan", "ipip", "none"]),
    octavia=st.sampled_from(["amphora", "ovn"]),
    api_cidrs=st.lists(st.one_of(st.just("0.0.0.0/0"), cidrs), min_size=1, max_size=3),
    ssh_cidrs=st.lists(cidrs.filter(lambda c: not c.endswith("/0")), max_size=2),
    metrics=st.booleans(),
    monitoring=st.booleans(),
)
def test_no_security_group_opens_a_port_without_a_listener_and_only_api_and_ingress_face_the_world(
    cni: str,
    encapsulation: str,
    octavia: str,
    api_cidrs: list[str],
    ssh_cidrs: list[str],
    metrics: bool,
    monitoring: bool,
) -> None:
    spec = make_spec(
        environment="demo",
        openstack={"octavia_provider": octavia},
        networking={
            "cni": cni,
            "calico_encapsulation": encapsulation,
            "allowed_api_cidrs": api_cidrs,
            "admin_ssh_cidrs": ssh_cidrs,
        },
        services={"metrics_server": {"enabled": metrics}, "monitoring": {"enabled": monitoring}},
    )
    heard = listeners(spec)
    for row in security_rules(spec):
        if row.protocol is None:
            # Any protocol: only the routed pod CIDR of unencapsulated Calico.
            assert (row.group, None, None) in heard and row.remote_cidr == spec.networking.pod_cidr, row
            continue
        assert (row.group, row.protocol, row.port_min) in heard, f"nothing listens for {row}"
        if row.remote_cidr is not None and ipaddress.IPv4Network(row.remote_cidr).prefixlen == 0:
            # Ingress traffic reaches the NGINX controller through its own Octavia LB (OCCM),
            # not through these groups; the API is the only world-facing rule here.
            assert row.port_min == API_SERVER_PORT and "0.0.0.0/0" in api_cidrs, row


def test_listener_check_catches_a_port_nobody_listens_on() -> None:
    spec = make_spec(networking={"cni": "calico", "calico_encapsulation": "vxlan"})
    assert (Role.MASTER, "tcp", 179) not in listeners(spec)
    assert (Role.MASTER, "tcp", 179) in listeners(make_spec(networking={"calico_encapsulation": "ipip"}))

"""The Octavia API load balancer: listener, pool, monitor, members, VIP and floating IP."""

from __future__ import annotations

import itertools

import pytest

from kaas.offline import Plan, ResourceRecord, plan_spec
from kaas.offline.mocks import floating_address
from tests.helpers import make_spec

LB = "openstack:loadbalancer/"
LOAD_BALANCER = LB + "loadBalancer:LoadBalancer"
LISTENER = LB + "listener:Listener"
POOL = LB + "pool:Pool"
MONITOR = LB + "monitor:Monitor"
MEMBER = LB + "member:Member"
PORT = "openstack:networking/port:Port"
FIP = "openstack:networking/floatingIp:FloatingIp"


@pytest.fixture(scope="module")
def amphora() -> Plan:
    return plan_spec(
        make_spec(
            masters={"count": 5},
            networking={"allowed_api_cidrs": ["198.51.100.0/24", "203.0.113.0/24"]},
            load_balancer={"monitor_delay_s": 7, "monitor_timeout_s": 4, "monitor_max_retries": 2},
        )
    )


def test_listener_is_tcp_6443_restricted_to_the_allowed_cidrs_and_the_node_subnet(amphora: Plan) -> None:
    [listener] = amphora.by_type(LISTENER)
    assert (listener.inputs["protocol"], listener.inputs["protocolPort"]) == ("TCP", 6443)
    # People's CIDRs, then the node subnet: kubelets and kube-proxy reach the API at the VIP.
    assert listener.inputs["allowedCidrs"] == ["198.51.100.0/24", "203.0.113.0/24", "10.0.0.0/22"]


def test_listener_idle_timeouts_fit_streaming(amphora: Plan) -> None:
    # Octavia's default timeout_client_data/timeout_member_data is 50 s (openstack/octavia
    # octavia/common/constants.py DEFAULT_TIMEOUT_CLIENT_DATA = 50000), which cuts
    # `kubectl exec`, `logs -f`, port-forwards and idle watches; streams get an hour.
    [listener] = amphora.by_type(LISTENER)
    assert listener.inputs["timeoutClientData"] == 3_600_000
    assert listener.inputs["timeoutMemberData"] == 3_600_000


def test_ovn_listener_sends_no_timeouts_it_does_not_support() -> None:
    # Octavia's feature-matrix-listener.ini: timeout_client_data / timeout-member-data are
    # "missing" for the ovn driver, which rejects options it does not support.
    plan = plan_spec(make_spec(openstack={"octavia_provider": "ovn"}))
    [listener] = plan.by_type(LISTENER)
    assert "timeoutClientData" not in listener.inputs and "timeoutMemberData" not in listener.inputs


def test_one_member_per_master_on_6443_at_the_planned_address(amphora: Plan) -> None:
    members = sorted(amphora.by_type(MEMBER), key=lambda r: r.name)
    assert [(m.inputs["address"], m.inputs["protocolPort"]) for m in members] == [
        (f"10.0.0.{32 + n}", 6443) for n in range(5)
    ]
    [pool] = amphora.by_type(POOL)
    assert all(m.property_dependencies["poolId"] == [pool.urn] for m in members)


def test_amphora_checks_readyz_over_https_with_the_spec_timings(amphora: Plan) -> None:
    [monitor] = amphora.by_type(MONITOR)
    [pool] = amphora.by_type(POOL)
    [lb] = amphora.by_type(LOAD_BALANCER)
    assert pool.inputs["lbMethod"] == "ROUND_ROBIN" and pool.inputs["protocol"] == "TCP"
    assert lb.inputs["loadbalancerProvider"] == "amphora"
    assert {k: monitor.inputs[k] for k in ("type", "urlPath", "httpMethod", "expectedCodes")} == {
        "type": "HTTPS",
        "urlPath": "/readyz",
        "httpMethod": "GET",
        "expectedCodes": "200",
    }
    assert (monitor.inputs["delay"], monitor.inputs["timeout"], monitor.inputs["maxRetries"]) == (7, 4, 2)


def test_ovn_balances_by_source_and_checks_tcp() -> None:
    plan = plan_spec(make_spec(openstack={"octavia_provider": "ovn"}))
    [monitor] = plan.by_type(MONITOR)
    [pool] = plan.by_type(POOL)
    assert pool.inputs["lbMethod"] == "SOURCE_IP_PORT"
    assert monitor.inputs["type"] == "TCP" and "urlPath" not in monitor.inputs
    assert plan.by_type(LOAD_BALANCER)[0].inputs["loadbalancerProvider"] == "ovn"


def test_octavia_children_are_chained_one_after_another(amphora: Plan) -> None:
    [lb] = amphora.by_type(LOAD_BALANCER)
    [listener] = amphora.by_type(LISTENER)
    [pool] = amphora.by_type(POOL)
    [monitor] = amphora.by_type(MONITOR)
    members = [amphora.find(MEMBER, f"t1-api-master-{n}") for n in range(5)]
    chain: list[ResourceRecord] = [lb, listener, pool, monitor, *members]
    for before, after in itertools.pairwise(chain):
        assert before.urn in after.dependencies, f"{after.name} does not wait for {before.name}"


def test_vip_port_is_shared_by_the_load_balancer_and_the_floating_ip(amphora: Plan) -> None:
    vip = amphora.find(PORT, "t1-api-vip")
    assert [f["ipAddress"] for f in vip.inputs["fixedIps"]] == ["10.0.0.10"]
    [lb] = amphora.by_type(LOAD_BALANCER)
    assert lb.property_dependencies["vipPortId"] == [vip.urn]
    fip = amphora.find(FIP, "t1-api-fip")
    assert fip.property_dependencies["portId"] == [vip.urn]
    assert fip.inputs["pool"] == "public"
    router_interface = amphora.find("openstack:networking/routerInterface:RouterInterface", "t1-router-interface")
    assert router_interface.urn in fip.dependencies
    assert amphora.outputs["api"]["floatingIp"] == floating_address("t1-api-fip")  # what the cloud assigned
    assert amphora.outputs["api"]["internalVip"] == "10.0.0.10"


def test_instances_do_not_wait_for_the_load_balancer(amphora: Plan) -> None:
    by_urn = {r.urn: r for r in amphora.resources}

    def upstream(record: ResourceRecord) -> set[str]:
        seen: set[str] = set()
        todo = list(record.dependencies)
        while todo:
            urn = todo.pop()
            if urn not in seen:
                seen.add(urn)
                todo.extend(by_urn[urn].dependencies)
        return seen

    lb_urns = {r.urn for r in amphora.resources if r.type.startswith(LB)} | {amphora.find(PORT, "t1-api-vip").urn}
    for instance in amphora.by_type("openstack:compute/instance:Instance"):
        assert not upstream(instance) & lb_urns, instance.name

"""Node tiers: counts, placement, stable names, data safety, explicit provider."""

from __future__ import annotations

from collections import Counter

import pulumi
import pulumi_openstack as openstack
import pytest

from kaas.offline import Plan, plan_spec, run_plan
from kaas.openstack.addressing import plan_addresses
from kaas.openstack.nodes import NodeTier
from kaas.openstack.security import Role
from tests.helpers import make_plan, make_spec

INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
SERVER_GROUP = "openstack:compute/serverGroup:ServerGroup"
CLUSTER_URN = "urn:pulumi:t1::kaas::pulumi:pulumi:Stack$kaas:index:Cluster::t1"


@pytest.fixture(scope="module")
def big() -> Plan:
    return plan_spec(
        make_spec(
            etcd={"count": 7},
            masters={"count": 5, "server_group_policy": "soft-anti-affinity"},
            workers={"count": 40, "boot_volume_gb": 60},
        )
    )


def tier_instances(plan: Plan, tier: str) -> list[dict]:  # type: ignore[type-arg]
    found = [r for r in plan.by_type(INSTANCE) if r.inputs["metadata"]["kaas-tier"] == tier]
    return [r.inputs for r in sorted(found, key=lambda r: int(r.name.rsplit("-", 1)[1]))]


def test_instances_ports_and_server_groups_per_tier(big: Plan) -> None:
    assert Counter(r.inputs["metadata"]["kaas-tier"] for r in big.by_type(INSTANCE)) == {
        "etcd": 7,
        "master": 5,
        "worker": 40,
    }
    assert len(big.by_type(PORT)) == 7 + 5 + 40 + 1  # one per node and the API VIP
    policies = {r.name: r.inputs["policies"] for r in big.by_type(SERVER_GROUP)}
    assert policies == {"t1-etcd": "anti-affinity", "t1-master": "soft-anti-affinity", "t1-worker": "anti-affinity"}


def test_zones_round_robin_and_server_group_hint(big: Plan) -> None:
    for tier, count in (("etcd", 7), ("master", 5), ("worker", 40)):
        instances = tier_instances(big, tier)
        assert [i["availabilityZone"] for i in instances] == [("az1", "az2", "az3")[n % 3] for n in range(count)]
        group_id = big.find(SERVER_GROUP, f"t1-{tier}")
        for n, inputs in enumerate(instances):
            assert inputs["name"] == f"t1-{tier}-{n}"
            assert inputs["schedulerHints"] == [{"group": inputs["schedulerHints"][0]["group"]}]
        hinted = {big.find(INSTANCE, f"t1-{tier}-{n}").property_dependencies["schedulerHints"][0] for n in range(count)}
        assert hinted == {group_id.urn}


def test_ports_have_the_planned_fixed_ips_and_instances_use_them(big: Plan) -> None:
    spec_plan = plan_addresses(make_spec(etcd={"count": 7}, masters={"count": 5}, workers={"count": 40}))
    for tier, addresses in (("etcd", spec_plan.etcd), ("master", spec_plan.masters), ("worker", spec_plan.workers)):
        for n, address in enumerate(addresses):
            port = big.find(PORT, f"t1-{tier}-{n}-port")
            assert [f["ipAddress"] for f in port.inputs["fixedIps"]] == [address]
            instance = big.find(INSTANCE, f"t1-{tier}-{n}")
            assert instance.property_dependencies["networks"] == [port.urn]


def test_boot_from_volume_only_where_the_spec_asks(big: Plan) -> None:
    worker = big.find(INSTANCE, "t1-worker-0").inputs
    assert "imageName" not in worker
    [device] = worker["blockDevices"]
    assert device["sourceType"] == "image" and device["destinationType"] == "volume"
    assert device["volumeSize"] == 60 and device["bootIndex"] == 0 and device["uuid"]
    master = big.find(INSTANCE, "t1-master-0").inputs
    assert master["imageName"] == "ubuntu-24.04" and "blockDevices" not in master
    assert master["flavorName"] == "kaas.master"


def test_etcd_is_protected_and_no_node_takes_a_spec_edit_outside_the_planner(big: Plan) -> None:
    built_with = {"imageName", "imageId", "userData", "blockDevices", "keyPair", "flavorName", "flavorId"}
    for record in big.by_type(INSTANCE) + big.by_type(PORT):
        tier = record.name.split("-")[1]
        assert record.options["protect"] is (tier == "etcd"), record.name
        if record.type == INSTANCE:
            # Only the rollout planner rebuilds a node (tests/test_rollout_scenarios.py): a spec edit
            # never replaces nodes by itself, even on a stack without a rollout record.
            assert set(record.options["ignoreChanges"]) == built_with, record.name
            # A replacement reuses the node's port, which only one server can hold.
            assert record.options["deleteBeforeReplace"] is True, record.name


def test_growing_workers_only_adds_the_new_node() -> None:
    before = plan_spec(make_spec(workers={"count": 3}))
    after = plan_spec(make_spec(workers={"count": 4}))
    old = {r.urn: (r.inputs, r.options, r.dependencies) for r in before.resources if r.type != "pulumi:pulumi:Stack"}
    new = {r.urn: (r.inputs, r.options, r.dependencies) for r in after.resources if r.type != "pulumi:pulumi:Stack"}
    added = set(new) - set(old)
    assert not set(old) - set(new)
    assert {urn.rsplit("::", 1)[1] for urn in added} == {"t1-worker-3", "t1-worker-3-port"}
    # The Cluster component's rollout facts (the desired worker count, for the policy pack) and the
    # customer namespaces' quotas (they follow the workers' capacity, in place) change, and with them
    # the guardrail reconciler's ConfigMap (the same quota for namespaces created later).
    changed = [urn.rsplit("::", 1)[1] for urn in old if old[urn] != new[urn]]
    quotas = [f"t1-quota-{ns}" for ns in make_spec().customer_namespaces]
    assert sorted(changed) == sorted(["t1", "t1-guardrails-configmap", *quotas])
    assert old[CLUSTER_URN][0]["kaasRollout"]["desired"]["worker"]["count"] == 3


def test_every_openstack_resource_uses_the_explicit_provider(big: Plan) -> None:
    [provider] = big.by_type("pulumi:providers:openstack")
    openstack_resources = [r for r in big.resources if r.custom and r.type.startswith("openstack:")]
    assert len(openstack_resources) > 100
    for record in openstack_resources:
        assert record.options["provider"].startswith(provider.urn + "::"), record.name


def test_plan_nodes_is_stable_under_growth() -> None:
    small = make_plan(make_spec(workers={"count": 5})).tier(Role.WORKER)
    large = make_plan(make_spec(workers={"count": 9})).tier(Role.WORKER)
    assert [n.name for n in large[:5]] == [n.name for n in small]
    assert [n.fixed_ip for n in large[:5]] == [n.fixed_ip for n in small]
    assert [n.availability_zone for n in large] == ["az1", "az2", "az3"] * 3


def test_user_data_goes_to_its_node_and_must_match_the_count() -> None:
    spec = make_spec(masters={"count": 3})

    nodes = make_plan(spec).tier(Role.MASTER)

    def program(user_data: list[str]) -> None:
        provider = openstack.Provider("os", cloud="c")
        NodeTier(
            "c1",
            spec,
            Role.MASTER,
            nodes,
            network_id="net",
            subnet_id="subnet",
            security_group_ids=["sg"],
            provider=provider,
            user_data={n.name: pulumi.Output.secret(u) for n, u in zip(nodes, user_data, strict=False)},
        )

    plan = run_plan(lambda: program(["#cloud-config a", "#cloud-config b", "#cloud-config c"]), stack="unit")
    assert [plan.find(INSTANCE, f"t1-master-{n}").inputs["userData"].value for n in range(3)] == [
        "#cloud-config a",
        "#cloud-config b",
        "#cloud-config c",
    ]
    with pytest.raises(Exception, match=r"user data for .* nodes"):
        run_plan(lambda: program(["a", "b"]), stack="unit")

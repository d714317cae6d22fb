"""The real acme-prod graph has the shape the time-to-ready simulation relies on.

These are properties of the plan's dependency graph and the duration table, not
timings: instances never wait for Octavia, Helm releases fan out after the CNI
(only storage users wait for Cinder CSI), the Kubernetes provider waits for the
readiness gate, the gate waits for the API path and for kubeadm init, and the
makespan stays within 10% of the unavoidable chain.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from kaas.offline import Plan, durations
from kaas.offline.plan import plan_stack
from kaas.offline.schedule import Task, schedule
from kaas.offline.timeline import cni_release, lower_bound_chain, plan_tasks, readiness_gate, time_to_ready

RELEASE = durations.HELM_RELEASE
STORAGE_USERS = {"kube-prometheus-stack", "opensearch", "harbor"}  # docs/architecture.md, services layer


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_stack("acme-prod")


@pytest.fixture(scope="module")
def tasks(plan: Plan) -> dict[str, Task]:
    return plan_tasks(plan)


def ancestors(tasks: Mapping[str, Task], key: str) -> set[str]:
    seen: set[str] = set()
    stack = list(tasks[key].deps)
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(tasks[dep].deps)
    return seen


def types_of(plan: Plan, urns: set[str]) -> set[str]:
    known = {r.urn: r.type for r in plan.resources}
    return {known[u] for u in urns if u in known}


def test_instances_never_wait_for_the_load_balancer(plan: Plan, tasks: dict[str, Task]) -> None:
    instances = plan.by_type(durations.INSTANCE)
    assert len(instances) == 11
    for instance in instances:
        waits_for = types_of(plan, ancestors(tasks, instance.urn))
        assert not {t for t in waits_for if t.startswith("openstack:loadbalancer/")}, instance.name
        assert "openstack:networking/port:Port" in waits_for


def test_releases_fan_out_after_the_cni_and_only_storage_users_wait_for_cinder_csi(
    plan: Plan, tasks: dict[str, Task]
) -> None:
    cni = cni_release(plan)
    names = {r.urn: r.name for r in plan.by_type(RELEASE)}
    others = [r for r in plan.by_type(RELEASE) if r.urn != cni.urn]
    assert len(others) == 12
    for release in others:
        waited = {names[u] for u in ancestors(tasks, release.urn) if u in names}
        expected = {cni.name, "cinder-csi"} if release.name in STORAGE_USERS else {cni.name}
        assert waited == expected, release.name
    assert not {names[u] for u in ancestors(tasks, cni.urn) if u in names}


def test_storage_users_wait_for_the_storage_classes(plan: Plan, tasks: dict[str, Task]) -> None:
    classes = {r.urn for r in plan.by_type("kubernetes:storage.k8s.io/v1:StorageClass")}
    assert len(classes) == 2
    for release in plan.by_type(RELEASE):
        assert (classes <= ancestors(tasks, release.urn)) == (release.name in STORAGE_USERS), release.name


def test_kubernetes_provider_and_everything_in_the_cluster_wait_for_the_readiness_gate(
    plan: Plan, tasks: dict[str, Task]
) -> None:
    gate = readiness_gate(plan).urn
    (provider,) = plan.by_type("pulumi:providers:kubernetes")
    assert gate in tasks[provider.urn].deps
    in_cluster = [r for r in plan.resources if r.custom and r.type.startswith("kubernetes:")]
    assert len(in_cluster) > 30
    assert all(gate in ancestors(tasks, r.urn) for r in in_cluster)


def test_readiness_gate_waits_for_the_api_path_and_kubeadm_init(plan: Plan, tasks: dict[str, Task]) -> None:
    gate = readiness_gate(plan)
    direct = types_of(plan, set(gate.dependencies))
    # Semantically required: /readyz through the floating IP needs the members (after the
    # listener, pool and monitor) and the floating IP; the masters run the API server.
    assert {
        "openstack:loadbalancer/member:Member",
        "openstack:networking/floatingIp:FloatingIp",
        "openstack:dns/recordSet:RecordSet",  # the kubeconfig's server is api.<cluster>.<domain>
        durations.INSTANCE,
    } <= direct
    (kubeadm,) = [k for k in tasks[gate.urn].deps if k not in {r.urn for r in plan.resources}]
    first = durations.first_master(plan)
    assert first.name == "acme-prod-master-0"
    assert first.urn in tasks[kubeadm].deps
    assert tasks[kubeadm].duration == durations.KUBEADM_INIT
    assert tasks[gate.urn].duration == durations.READINESS_POLL


def test_real_plan_schedules_without_a_cycle_and_every_dependency_is_a_task(tasks: dict[str, Task]) -> None:
    result = schedule(tasks)  # raises CycleError / KeyError otherwise
    assert set(result.finish) == set(tasks)
    assert result.makespan < result.serial


def test_acme_prod_makespan_is_within_ten_percent_of_the_unavoidable_chain(plan: Plan) -> None:
    result = time_to_ready(plan)
    assert result.ratio <= 1.10, [(s.label, s.finish) for s in result.critical_path]
    # The chain is the documented one, every duration from the table.
    steps = [s for s, _ in lower_bound_chain(plan)]
    assert steps[:4] == [
        "Network acme-prod-network",
        "Subnet acme-prod-subnet",
        "Port acme-prod-master-0-port",
        "Instance acme-prod-master-0",
    ]
    assert steps[4].startswith("kubeadm init") and steps[6] == "Release calico"
    assert steps[7] == "Release harbor (slowest service)"
    assert result.lower_bound == sum(d for _, d in result.lower_bound_chain) == 703
    # The Octavia chain is off the critical path: the gate waits for it, but kubeadm init takes longer.
    assert not any("loadbalancer" in s.key for s in result.critical_path)


def test_boot_from_volume_and_the_octavia_provider_change_durations(plan: Plan) -> None:
    worker = plan.find(durations.INSTANCE, "acme-prod-worker-0")
    master = plan.find(durations.INSTANCE, "acme-prod-master-0")
    assert durations.duration(worker) == durations.duration(master) + durations.BOOT_VOLUME
    lb = plan.by_type(durations.LOAD_BALANCER)[0]
    assert lb.inputs["loadbalancerProvider"] == "amphora"
    assert durations.duration(lb) == durations.BY_TYPE[durations.LOAD_BALANCER]
    ovn = type(lb)(**{**lb.__dict__, "inputs": {**lb.inputs, "loadbalancerProvider": "ovn"}})
    assert durations.duration(ovn) == durations.OVN_LOAD_BALANCER

from __future__ import annotations

import pytest

from kaas.spec import ClusterSpec, SpecError
from kaas.spec.models import Cni, Environment, ServerGroupPolicy
from tests.helpers import make_spec


def problems_of(**override: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        make_spec(**override)
    return caught.value.problems


def test_defaults_are_the_platform_promises() -> None:
    spec = make_spec()
    assert spec.environment is Environment.PRODUCTION
    assert (spec.etcd.count, spec.masters.count, spec.workers.count) == (5, 3, 3)
    worker = spec.workers.flavor
    assert (worker.vcpus, worker.ram_gb, worker.disk_gb) == (4, 8, 40)
    assert spec.etcd_backup.interval_hours == 8
    assert spec.services.monitoring.prometheus_retention_days == 3
    assert spec.services.monitoring.app_prometheus_retention_days == 3
    assert spec.services.logging.retention_days == 7
    assert spec.services.ingress.replicas == 2
    assert spec.services.registry.database_gb == 10
    assert spec.provider_name == "kaas"
    assert spec.platform_namespace == "kaas-system"
    assert spec.networking.cni is Cni.CALICO
    assert spec.etcd.server_group_policy is ServerGroupPolicy.ANTI_AFFINITY


def test_derived_names_follow_the_cluster_name() -> None:
    spec = make_spec(provider_name="rackspace")
    assert spec.platform_namespace == "rackspace-system"
    assert spec.admin_role_name == "t1-cluster-admin"
    assert spec.container_name("etcd_backups") == "t1-etcd-backups"
    assert spec.cluster_domain == "t1.k8s.example.com"


def test_spec_is_immutable() -> None:
    spec = make_spec()
    with pytest.raises(ValueError):
        spec.workers.count = 4  # type: ignore[misc]


def test_unknown_key_is_named() -> None:
    assert problems_of(workers={"count": 3, "flavour": "x"}) == ["workers.flavour: is not a known field"]


def test_worker_count_must_be_positive() -> None:
    assert problems_of(workers={"count": 0}) == ["workers.count: must be >= 1; got 0"]


@pytest.mark.parametrize("count", [2, 4, 1])
def test_production_etcd_count_must_be_odd_between_3_and_9(count: int) -> None:
    (problem,) = problems_of(etcd={"count": count})
    assert problem.startswith("etcd.count: must be odd and between 3 and 9")


def test_single_etcd_member_only_for_demo() -> None:
    assert "single member is allowed only with environment: demo" in problems_of(etcd={"count": 1})[0]
    spec = make_spec(environment="demo", etcd={"count": 1}, masters={"count": 1})
    assert spec.etcd.count == 1


def test_demo_still_needs_an_odd_etcd_tier() -> None:
    (problem,) = problems_of(environment="demo", etcd={"count": 2})
    assert problem.startswith("etcd.count:")


def test_overlapping_cidrs_are_rejected() -> None:
    assert problems_of(networking={"pod_cidr": "10.0.0.0/16"}) == [
        "networking.pod_cidr: 10.0.0.0/16 overlaps networking.node_cidr 10.0.0.0/22"
    ]


def test_cidr_with_host_bits_is_rejected() -> None:
    (problem,) = problems_of(networking={"node_cidr": "10.0.0.1/22"})
    assert problem.startswith("networking.node_cidr: '10.0.0.1/22' is not an IPv4 CIDR")


@pytest.mark.parametrize("name", ["Acme", "acme_prod", "-acme", "a" * 64])
def test_cluster_name_must_be_a_dns_label(name: str) -> None:
    (problem,) = problems_of(name=name)
    assert problem.startswith("name: ") and "is not a DNS label" in problem


def test_domain_labels_are_checked() -> None:
    (problem,) = problems_of(domain="k8s..example.com")
    assert problem.startswith("domain: ")


def test_retention_must_be_positive() -> None:
    assert problems_of(services={"logging": {"retention_days": 0}}) == [
        "services.logging.retention_days: must be >= 1; got 0"
    ]


def test_worker_flavor_below_minimum() -> None:
    problems = problems_of(workers={"flavor": {"name": "tiny", "vcpus": 1, "ram_gb": 2, "disk_gb": 10}})
    assert problems == [
        "workers.flavor.vcpus: must be >= 2 vCPUs for a worker; got 1",
        "workers.flavor.ram_gb: must be >= 4 GB for a worker; got 2",
        "workers.flavor.disk_gb: must be >= 20 GB for a worker; got 10",
    ]


def test_unknown_cni() -> None:
    (problem,) = problems_of(networking={"cni": "weave"})
    assert problem.startswith("networking.cni: must be 'calico', 'flannel' or 'canal'")


def test_ssh_from_the_world_is_rejected() -> None:
    assert problems_of(networking={"admin_ssh_cidrs": ["0.0.0.0/0"]}) == [
        "networking.admin_ssh_cidrs.0: SSH must not be open to the whole internet (0.0.0.0/0)"
    ]


def test_production_rules_and_their_demo_relaxation() -> None:
    relaxed = {
        "masters": {"count": 1},
        "etcd": {"server_group_policy": "soft-anti-affinity"},
        "etcd_backup": {"interval_hours": 24},
        "services": {"logging": {"enabled": False}},
    }
    problems = problems_of(**relaxed)
    assert [p.split(":")[0] for p in problems] == [
        "masters.count",
        "etcd.server_group_policy",
        "etcd_backup.interval_hours",
        "services.logging.enabled",
    ]
    assert make_spec(environment="demo", **relaxed).masters.count == 1


def test_existing_network_needs_both_ids() -> None:
    (problem,) = problems_of(networking={"existing_network_id": "abc"})
    assert "existing_network_id and existing_subnet_id must be given together" in problem


def test_all_problems_are_reported_at_once() -> None:
    problems = problems_of(name="Bad", workers={"count": 0}, networking={"cni": "weave"})
    assert len(problems) == 3


def test_model_round_trips() -> None:
    spec = make_spec()
    assert ClusterSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_node_cidr_must_hold_the_workers() -> None:
    assert problems_of(networking={"node_cidr": "10.0.0.0/25"}, workers={"count": 64}) == [
        "workers.count: networking.node_cidr 10.0.0.0/25 has room for 63 workers; got 64 (use a larger node_cidr)"
    ]


def test_etcd_tier_is_capped_at_nine() -> None:
    assert problems_of(etcd={"count": 11}) == ["etcd.count: must be <= 9; got 11"]


# Let's Encrypt refuses contacts on reserved domains (letsencrypt/boulder policy/pa.go
# validEmail: "contact email has forbidden domain"), so no certificate would ever be issued.
@pytest.mark.parametrize(
    "email", ["hostmaster@example.com", "ops@k8s.example.org", "me@acme.example", "a@b.test", "x@host.invalid"]
)
def test_production_refuses_an_acme_contact_on_a_reserved_domain(email: str) -> None:
    (problem,) = problems_of(services={"ingress": {"acme_email": email}})
    assert problem.startswith("services.ingress.acme_email:") and "reserved" in problem


def test_production_needs_an_acme_contact_while_cert_manager_runs() -> None:
    (problem,) = problems_of(services={"ingress": {"acme_email": None}})
    assert problem.startswith("services.ingress.acme_email:")
    demo = make_spec(environment="demo", services={"ingress": {"acme_email": None}})
    from kaas.services.values import cluster_issuer_spec

    # A demo registers its ACME account without a contact rather than with a refused one.
    assert "email" not in cluster_issuer_spec(demo)["acme"]
    assert cluster_issuer_spec(make_spec())["acme"]["email"] == "certificates@t1-operations.net"


def test_logging_needs_cert_manager_for_its_certificates() -> None:
    (problem,) = problems_of(environment="demo", services={"ingress": {"cert_manager": False}})
    assert problem.startswith("services.logging.enabled:") and "cert-manager" in problem

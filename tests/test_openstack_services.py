"""Designate records, Swift containers and Keystone access, planned offline."""

from __future__ import annotations

import hashlib

import pulumi
import pytest

from kaas.cluster import KaasCluster
from kaas.offline import Plan, Secret, plan_spec, plan_stack, run_plan
from kaas.offline.mocks import floating_address, stable_id
from kaas.openstack.credentials import Consumer
from kaas.openstack.dns import dns_names
from tests.helpers import make_plan, make_spec

FIP = "openstack:networking/floatingIp:FloatingIp"
RECORD = "openstack:dns/recordSet:RecordSet"
ZONE = "openstack:dns/zone:Zone"
CONTAINER = "openstack:objectstorage/container:Container"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_spec(make_spec(identity={"initial_admin_user": "alice", "project": "team-a"}))


def test_dns_names_are_fully_qualified_under_the_cluster() -> None:
    names = dns_names(make_spec(name="c9", domain="k8s.example.org"))
    assert (names.zone, names.api, names.wildcard) == (
        "c9.k8s.example.org.",
        "api.c9.k8s.example.org.",
        "*.c9.k8s.example.org.",
    )


def test_api_record_points_at_the_api_floating_ip_and_wildcard_at_the_ingress_ip(plan: Plan) -> None:
    [zone] = plan.by_type(ZONE)
    assert zone.inputs["name"] == "t1.k8s.example.com." and zone.inputs["email"] == "hostmaster@example.com"
    api = plan.find(RECORD, "t1-api-record")
    wildcard = plan.find(RECORD, "t1-wildcard-record")
    assert (api.inputs["name"], api.inputs["type"]) == ("api.t1.k8s.example.com.", "A")
    assert api.inputs["records"] == [floating_address("t1-api-fip")]
    assert api.property_dependencies["records"] == [plan.find(FIP, "t1-api-fip").urn]
    assert wildcard.inputs["name"] == "*.t1.k8s.example.com."
    assert wildcard.inputs["records"] == [floating_address("t1-ingress-fip")]
    assert wildcard.property_dependencies["records"] == [plan.find(FIP, "t1-ingress-fip").urn]
    for record in (api, wildcard):
        assert record.property_dependencies["zoneId"] == [zone.urn] and record.inputs["ttl"] == 300
    ingress = plan.find(FIP, "t1-ingress-fip")
    assert "portId" not in ingress.inputs and ingress.inputs["pool"] == "public"
    assert plan.outputs["networking"]["ingress"]["floatingIp"] == floating_address("t1-ingress-fip")


def test_existing_zone_is_used_and_disabled_dns_still_allocates_the_ingress_ip() -> None:
    existing = plan_spec(make_spec(dns={"existing_zone_id": "zone-123"}))
    assert existing.by_type(ZONE) == []
    assert {r.inputs["zoneId"] for r in existing.by_type(RECORD)} == {"zone-123"}
    disabled = plan_spec(make_spec(dns={"enabled": False}))
    assert disabled.by_type(ZONE) == [] and disabled.by_type(RECORD) == []
    assert disabled.find(FIP, "t1-ingress-fip")
    assert disabled.outputs["networking"]["ingress"]["floatingIp"] == floating_address("t1-ingress-fip")


def test_containers_are_named_from_the_cluster_protected_and_retained() -> None:
    plan = plan_spec(make_spec(object_storage={"registry": "shared-registry"}))
    containers = {r.inputs["name"]: r for r in plan.by_type(CONTAINER)}
    assert set(containers) == {"t1-etcd-backups", "shared-registry", "t1-cluster-backups"}
    for record in containers.values():
        assert record.options["protect"] and record.options["retainOnDelete"]
    assert plan.outputs["etcd"]["backupContainer"] == "t1-etcd-backups"
    assert plan.outputs["services"]["registry"]["container"] == "shared-registry"
    assert plan.outputs["services"]["backups"]["container"] == "t1-cluster-backups"


SECRET_OUTPUTS = ["adminKubeconfig", "breakGlassKubeconfig", "etcdBackupKey", "etcdClientKeyPem"]


def test_credentials_are_secrets_for_the_layers_that_consume_them() -> None:
    spec = make_spec()

    def program() -> None:
        cluster = KaasCluster(spec.name, make_plan(spec))
        pulumi.export("ec2Access", cluster.identity.backup_access_key)
        pulumi.export("ec2Secret", cluster.identity.backup_secret_key)
        velero = cluster.identity.application_credentials[Consumer.VELERO]
        pulumi.export("appCredentialId", velero.id)
        pulumi.export("appCredentialSecret", velero.secret)

    plan = run_plan(program, stack="secrets")
    ec2_id = stable_id("openstack:identity/ec2CredentialV3:Ec2CredentialV3", "t1-backup-writer")
    # A new credential (its name carries the generation's date) gets a new ID and secret, as Keystone's does.
    rid = stable_id("openstack:identity/applicationCredential:ApplicationCredential", "t1-velero")
    generation = "t1-velero-20261201"
    app_id = stable_id(rid, generation)
    assert plan.outputs["ec2Secret"] == Secret(hashlib.sha256(ec2_id.encode()).hexdigest())
    assert isinstance(plan.outputs["ec2Access"], Secret)
    assert plan.outputs["appCredentialId"] == app_id
    assert plan.outputs["appCredentialSecret"] == Secret(
        hashlib.sha256(("appcred" + rid + generation).encode()).hexdigest()
    )
    # The stack outputs of the program itself are plain facts; the only secrets are the kubeconfigs,
    # the etcd backup key and kaas roll's etcd client key (its certificate and the etcd CA are plain).
    plain = plan_spec(spec).outputs
    assert sorted(k for k, v in plain.items() if isinstance(v, Secret)) == SECRET_OUTPUTS
    assert "BEGIN CERTIFICATE" in plain["etcdClientCertPem"] and "BEGIN CERTIFICATE" in plain["etcdCaCertPem"]
    assert not {str(v) for v in plain.values()} & {str(plan.outputs["ec2Secret"].value)}


def test_admin_role_assigned_to_the_initial_admin_on_the_named_project(plan: Plan) -> None:
    role = plan.find("openstack:identity/role:Role", "t1-cluster-admin")
    assert role.inputs["name"] == "t1-cluster-admin"
    assignment = plan.find("openstack:identity/roleAssignment:RoleAssignment", "t1-cluster-admin-alice")
    assert assignment.property_dependencies["roleId"] == [role.urn]
    assert assignment.inputs["userId"] == stable_id("user", "alice").replace("-", "")
    assert assignment.inputs["projectId"] == stable_id("project", "team-a").replace("-", "")
    assert plan.outputs["rbac"]["roleName"] == "t1-cluster-admin"
    assert plan.outputs["rbac"]["groupId"] == stable_id("openstack:identity/role:Role", "t1-cluster-admin").replace(
        "-", ""
    )


def test_without_a_project_the_role_is_assigned_on_the_deploying_scope() -> None:
    plan = plan_spec(make_spec(identity={"initial_admin_user": "bob", "admin_role_name": "k8s-admins"}))
    assignment = plan.find("openstack:identity/roleAssignment:RoleAssignment", "t1-cluster-admin-bob")
    assert assignment.inputs["projectId"] == stable_id("project", "operator-project").replace("-", "")
    assert plan.outputs["rbac"]["roleName"] == "k8s-admins"


def test_registry_gets_its_own_keystone_user_with_a_secret_password(plan: Plan) -> None:
    user = plan.find("openstack:identity/user:User", "t1-registry")
    assert isinstance(user.inputs["password"], Secret) and len(user.inputs["password"].value) == 32
    assert user.inputs["defaultProjectId"] == stable_id("project", "team-a").replace("-", "")
    grant = plan.find("openstack:identity/roleAssignment:RoleAssignment", "t1-registry-swift-acl")
    acl_role = plan.find("openstack:identity/role:Role", "t1-swift-acl")
    assert acl_role.inputs["name"] == "t1-swift-acl"
    assert grant.property_dependencies["roleId"] == [acl_role.urn]
    assert grant.property_dependencies["userId"] == [user.urn]


def test_no_registry_no_registry_user() -> None:
    plan = plan_spec(make_spec(services={"registry": {"enabled": False}}))
    assert [u.name for u in plan.by_type("openstack:identity/user:User")] == ["t1-etcd-backup"]
    assert [r.name for r in plan.resources if r.name.startswith("t1-registry-")] == []


def test_acme_prod_plan_shows_the_whole_openstack_layer() -> None:
    plan = plan_stack("acme-prod")
    components = {r.type for r in plan.resources if not r.custom}
    assert {
        "kaas:openstack:ClusterNetwork",
        "kaas:openstack:SecurityGroups",
        "kaas:openstack:ApiLoadBalancer",
        "kaas:openstack:NodeTier",
        "kaas:openstack:ClusterDns",
        "kaas:openstack:ObjectStorage",
        "kaas:openstack:KeystoneAccess",
    } <= components
    assert plan.outputs["api"]["url"] == "https://api.acme-prod.k8s.acme.example:6443"
    assert plan.outputs["layout"]["etcd"]["addresses"] == [f"10.20.0.{16 + n}" for n in range(5)]
    assert sorted(k for k, v in plan.outputs.items() if isinstance(v, Secret)) == SECRET_OUTPUTS
    [provider] = plan.by_type("pulumi:providers:openstack")
    for record in plan.resources:
        if record.custom and record.type.startswith("openstack:"):
            assert record.options["provider"].startswith(provider.urn + "::"), record.name

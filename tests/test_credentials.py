"""Every OpenStack credential the plan creates: who holds it, what it may do, against a reviewed allow-list.

A credential is an application credential, an EC2 credential, or a Keystone user with
a password. Its secret values (as the offline engine's mocks produce them) are searched
in every recorded input of the plan: the user data of each node, every Kubernetes
Secret, and everything else (ConfigMaps, release values, other resources), so a
credential that reaches a place the allow-list does not name fails the test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any

import pytest

from kaas.offline import Plan, Secret, plan_spec, plan_stack
from kaas.offline.mocks import HANDLERS, stable_id
from kaas.offline.planfile import plain
from tests.helpers import make_spec

APP_CREDENTIAL = "openstack:identity/applicationCredential:ApplicationCredential"
EC2_CREDENTIAL = "openstack:identity/ec2CredentialV3:Ec2CredentialV3"
USER = "openstack:identity/user:User"
ROLE = "openstack:identity/role:Role"
ROLE_ASSIGNMENT = "openstack:identity/roleAssignment:RoleAssignment"
CONTAINER = "openstack:objectstorage/container:Container"
INSTANCE = "openstack:compute/instance:Instance"
K8S_SECRET = "kubernetes:core/v1:Secret"


@dataclass(frozen=True)
class Grant:
    """A credential as reviewed: where it lives and what it may do."""

    holders: frozenset[str]
    roles: frozenset[str]
    access_rule_services: frozenset[str] = frozenset()
    containers: frozenset[str] = frozenset()  # containers whose ACLs name the credential's user


ETCD_NODES = frozenset(f"user data of acme-prod-etcd-{n}" for n in range(5))

# Reviewed: issue 18. Each consumer holds exactly one credential; none holds the deploying user's roles.
ALLOW_LIST: dict[tuple[str, str], Grant] = {
    ("application credential", "acme-prod-cloud-controller"): Grant(
        holders=frozenset({"Secret kube-system/cloud-config"}), roles=frozenset({"member"})
    ),
    ("application credential", "acme-prod-cinder-csi"): Grant(
        holders=frozenset({"Secret kube-system/cinder-csi-cloud-config"}),
        roles=frozenset({"member"}),
        access_rule_services=frozenset({"volumev3", "compute"}),
    ),
    ("application credential", "acme-prod-velero"): Grant(
        holders=frozenset({"Secret kaas-system/velero-openstack"}),
        roles=frozenset({"member"}),
        access_rule_services=frozenset({"object-store", "volumev3"}),
    ),
    ("EC2 credential", "acme-prod-backup-writer"): Grant(
        holders=ETCD_NODES, roles=frozenset({"acme-prod-swift-acl"}), containers=frozenset({"acme-prod-etcd-backups"})
    ),
    ("user password", "acme-prod-registry"): Grant(
        holders=frozenset({"Secret kaas-system/harbor-swift"}),
        roles=frozenset({"acme-prod-swift-acl"}),
        containers=frozenset({"acme-prod-registry"}),
    ),
}


def _computed(record: Any) -> dict[str, Any]:
    """The outputs the offline engine's mock gives this resource (what the cloud would return)."""
    rid = stable_id(record.type, record.name)
    handler = HANDLERS.get(record.type)
    state = handler(SimpleNamespace(inputs=record.inputs, name=record.name), rid) if handler else {}
    return {"id": rid, **state}


def _places(plan: Plan) -> dict[str, str]:
    """Every place a value can reach, as text: node user data, Kubernetes Secrets, everything else."""
    places: dict[str, str] = {}
    for record in plan.resources:
        text = json.dumps(plain(record.inputs, show_secrets=True), sort_keys=True)
        if record.type == INSTANCE:
            places[f"user data of {record.name}"] = text
        elif record.type == K8S_SECRET:
            meta = plain(record.inputs["metadata"])
            places[f"Secret {meta['namespace']}/{meta['name']}"] = text
        elif record.type not in (APP_CREDENTIAL, EC2_CREDENTIAL, USER) and "random:" not in record.type:
            places[f"{record.type} {record.name}"] = text
    places["stack outputs"] = json.dumps(plain(plan.outputs, show_secrets=True), sort_keys=True)
    return places


def _roles_of_user(plan: Plan, user_urn: str) -> frozenset[str]:
    names = set()
    for grant in plan.by_type(ROLE_ASSIGNMENT):
        if grant.property_dependencies.get("userId") == [user_urn]:
            (role_urn,) = grant.property_dependencies["roleId"]
            names.add(plan.get(role_urn).inputs["name"])
    return frozenset(names)


def _containers_naming(plan: Plan, user_id: str) -> frozenset[str]:
    found = set()
    for container in plan.by_type(CONTAINER):
        acls = [container.inputs.get("containerRead") or "", container.inputs.get("containerWrite") or ""]
        if any(user_id in acl for acl in acls):
            found.add(container.inputs["name"])
    return frozenset(found)


def inventory(plan: Plan) -> dict[tuple[str, str], Grant]:
    """Every credential of the plan with its holders and scope."""
    places = _places(plan)

    def holders(*secrets: str) -> frozenset[str]:
        return frozenset(place for place, text in places.items() if any(s in text for s in secrets))

    found: dict[tuple[str, str], Grant] = {}
    for record in plan.by_type(APP_CREDENTIAL):
        computed = _computed(record)
        rules = record.inputs.get("accessRules") or []
        found[("application credential", record.name)] = Grant(
            holders=holders(computed["id"], computed["secret"]),
            roles=frozenset(record.inputs.get("roles") or ["<all of the deploying user's roles>"]),
            access_rule_services=frozenset(rule["service"] for rule in rules),
        )
    users = {r.urn: r for r in plan.by_type(USER)}
    for record in plan.by_type(EC2_CREDENTIAL):
        computed = _computed(record)
        (user_urn,) = record.property_dependencies.get("userId") or ["<the deploying user>"]
        user = users.get(user_urn)
        found[("EC2 credential", record.name)] = Grant(
            holders=holders(computed["access"], computed["secret"]),
            roles=_roles_of_user(plan, user_urn) if user else frozenset({"<all of the deploying user's roles>"}),
            containers=_containers_naming(plan, _computed(user)["id"]) if user else frozenset(),
        )
    for user in users.values():
        password = user.inputs.get("password")
        if password is None:
            continue
        found[("user password", user.name)] = Grant(
            holders=holders(plain(password, show_secrets=True)),
            roles=_roles_of_user(plan, user.urn),
            containers=_containers_naming(plan, _computed(user)["id"]),
        )
    return found


@cache
def acme_prod() -> Plan:
    return plan_stack("acme-prod")


def test_every_credential_is_on_the_reviewed_allow_list_with_its_holders_and_scope() -> None:
    assert inventory(acme_prod()) == ALLOW_LIST


def test_no_credential_of_the_deploying_user_reaches_a_node_or_a_secret() -> None:
    plan = acme_prod()
    created_users = {r.urn for r in plan.by_type(USER)}
    for ec2 in plan.by_type(EC2_CREDENTIAL):
        assert ec2.property_dependencies.get("userId", [None])[0] in created_users, ec2.name
    for credential in plan.by_type(APP_CREDENTIAL):
        inputs = credential.inputs
        assert inputs["unrestricted"] is False and inputs["roles"] == ["member"], credential.name
        assert inputs["expiresAt"] == "2027-12-01T00:00:00Z", credential.name
    # The operator's own identity (the mock's get_auth_scope user) appears nowhere.
    operator = stable_id("user", "operator").replace("-", "")
    assert not any(operator in text for text in _places(plan).values())


def test_credential_secrets_are_pulumi_secrets_wherever_they_are_held() -> None:
    plan = acme_prod()
    for record in plan.by_type(INSTANCE):
        assert isinstance(record.inputs["userData"], Secret), record.name
    for name in ("acme-prod-cloud-config", "acme-prod-cinder-csi-cloud-config", "acme-prod-velero-credentials"):
        assert isinstance(plan.find(K8S_SECRET, name).inputs["stringData"], Secret), name
    for record in (*plan.by_type(APP_CREDENTIAL), *plan.by_type(EC2_CREDENTIAL)):
        assert {"secret"} <= set(record.options["additionalSecretOutputs"]), record.name


def test_the_inventory_sees_a_credential_that_leaks_into_a_place_not_on_the_list() -> None:
    """The check can fail: a plan where the backup writer's key also reached a master is caught."""
    plan = acme_prod()
    ec2 = plan.find(EC2_CREDENTIAL, "acme-prod-backup-writer")
    master = plan.find(INSTANCE, "acme-prod-master-0")
    leaked = Plan(plan.stack, [r for r in plan.resources if r is not master], plan.outputs)
    copy = type(master)(**{**master.__dict__, "inputs": {**master.inputs, "userData": _computed(ec2)["secret"]}})
    leaked.resources.append(copy)
    holders = inventory(leaked)[("EC2 credential", "acme-prod-backup-writer")].holders
    assert (
        "user data of acme-prod-master-0" in holders
        and holders != ALLOW_LIST[("EC2 credential", "acme-prod-backup-writer")].holders
    )


@pytest.mark.parametrize("issued", ["2027-03-01"])
def test_rotation_renames_every_application_credential_and_moves_the_expiry(issued: str) -> None:
    plan = plan_spec(make_spec(identity={"initial_admin_user": "admin", "credentials_issued": issued}))
    names = sorted(r.inputs["name"] for r in plan.by_type(APP_CREDENTIAL))
    assert names == ["t1-cinder-csi-20270301", "t1-cloud-controller-20270301", "t1-velero-20270301"]
    assert {r.inputs["expiresAt"] for r in plan.by_type(APP_CREDENTIAL)} == {"2028-02-29T00:00:00Z"}
    # The Pulumi resource names stay: a rotation replaces each credential (create before delete).
    assert sorted(r.name for r in plan.by_type(APP_CREDENTIAL)) == ["t1-cinder-csi", "t1-cloud-controller", "t1-velero"]


def test_backup_containers_name_only_their_writer_and_can_keep_versions() -> None:
    plan = plan_spec(make_spec(object_storage={"versioning": True}))
    containers = {r.inputs["name"]: r for r in plan.by_type(CONTAINER)}
    writer = _computed(plan.find(USER, "t1-etcd-backup"))["id"]
    registry = _computed(plan.find(USER, "t1-registry"))["id"]
    project = stable_id("project", "operator-project").replace("-", "")
    etcd = containers["t1-etcd-backups"].inputs
    assert etcd["containerRead"] == etcd["containerWrite"] == f"{project}:{writer}"
    assert containers["t1-registry"].inputs["containerWrite"] == f"{project}:{registry}"
    assert "containerWrite" not in containers["t1-cluster-backups"].inputs
    assert etcd["versioning"] is True and containers["t1-cluster-backups"].inputs["versioning"] is True
    assert "versioning" not in containers["t1-registry"].inputs


def test_access_rules_can_be_switched_off_for_clouds_with_other_service_types() -> None:
    plan = plan_spec(make_spec(identity={"initial_admin_user": "admin", "access_rules": False}))
    assert all("accessRules" not in r.inputs for r in plan.by_type(APP_CREDENTIAL))

"""identity.roles end to end, on the plan of every shipped stack.

Each spec'd role yields exactly its Keystone role, one k8s-keystone-auth
``role-mappings`` entry (keystone-role -> its group; the format of
kubernetes/cloud-provider-openstack pkg/identity/keystone/sync.go ``roleMap``:
``keystone-role``, ``groups``) and its bindings; no binding gives a mapped group more
than the spec asks. Bad mappings are refused with one-line errors naming the field.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kaas.offline import Plan, plan_stack
from kaas.openstack import credentials
from kaas.outputs import build_stack_outputs
from kaas.services import access
from kaas.spec import ClusterSpec, load_stack_spec, parse_spec
from kaas.spec.loader import SpecError
from tests.helpers import make_facts, make_plan, make_spec, spec_data

STACKS = sorted(p.stem for p in (Path(__file__).parent.parent / "stacks").glob("*.yaml"))
RBAC = "kubernetes:rbac.authorization.k8s.io/v1:"


@cache
def _plan(stack: str) -> Plan:
    return plan_stack(stack)


def _bindings(plan: Plan) -> list[dict[str, Any]]:
    return [r.inputs for r in plan.resources if r.type in (RBAC + "ClusterRoleBinding", RBAC + "RoleBinding")]


def test_every_shipped_stack_maps_roles_beyond_admin() -> None:
    assert all(load_stack_spec(stack).identity.roles for stack in STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_has_exactly_its_keystone_role(stack: str) -> None:
    spec = load_stack_spec(stack)
    roles = [r.inputs["name"] for r in _plan(stack).by_type("openstack:identity/role:Role")]
    # Besides the mapped roles: the admin role and the Swift users' ACL-scope role (issue 18),
    # which reaches no Kubernetes group (it is in no sync mapping).
    expected = [spec.admin_role_name, credentials.acl_role_name(spec), *(m.keystone_role for m in spec.identity.roles)]
    assert sorted(roles) == sorted(expected)


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_has_exactly_its_sync_mapping(stack: str) -> None:
    spec = load_stack_spec(stack)
    (config_map,) = [
        r for r in _plan(stack).by_type("kubernetes:core/v1:ConfigMap") if r.name.endswith("keystone-sync")
    ]
    mappings = yaml.safe_load(config_map.inputs["data"]["syncConfig"])["role-mappings"]
    admin, *others = mappings
    assert admin["keystone-role"] == spec.admin_role_name
    assert others == [{"keystone-role": m.keystone_role, "groups": [group]} for m, group in spec.role_mappings]
    assert all(set(entry) == {"keystone-role", "groups"} for entry in mappings)


def _expected(spec: ClusterSpec) -> set[tuple[str, str | None, str, str, str]]:
    """(binding kind, namespace, group, role kind, role name) per spec'd role and namespace."""
    found = set()
    for mapping, group in spec.role_mappings:
        role = ("ClusterRole", mapping.cluster_role) if mapping.cluster_role else ("Role", mapping.role)
        if not mapping.namespaces:
            found.add(("ClusterRoleBinding", None, group, *role))
        for namespace in mapping.namespaces:
            found.add(("RoleBinding", namespace, group, *role))
    return found  # type: ignore[return-value]


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_has_exactly_its_bindings_and_nothing_more(stack: str) -> None:
    spec = load_stack_spec(stack)
    groups = {group for _, group in spec.role_mappings}
    granted = set()
    for binding in _bindings(_plan(stack)):
        for subject in binding["subjects"]:
            if subject["kind"] == "Group" and subject["name"] in groups:
                granted.add(
                    (binding["kind"], binding["metadata"].get("namespace"), subject["name"],
                     binding["roleRef"]["kind"], binding["roleRef"]["name"])
                )  # fmt: skip
    assert granted == _expected(spec)
    assert not any(kind == "ClusterRoleBinding" and role != "view" for kind, _, _, _, role in granted)
    assert not any(ns in spec.reserved_namespaces for _, ns, _, _, _ in granted)


@pytest.mark.parametrize("stack", STACKS)
def test_role_bindings_wait_for_their_namespace(stack: str) -> None:
    plan = _plan(stack)
    for record in plan.by_type(RBAC + "RoleBinding"):
        namespace = record.inputs["metadata"]["namespace"]
        assert any(plan.get(urn).type == "kubernetes:core/v1:Namespace"
                   and plan.get(urn).inputs["metadata"]["name"] == namespace for urn in record.dependencies)  # fmt: skip


def _roles_spec(*roles: dict[str, Any], **services: Any) -> ClusterSpec:
    data = copy.deepcopy(spec_data())
    data["identity"] = {**data["identity"], "roles": list(roles)}
    if services:
        data["services"] = {**data.get("services", {}), **services}
    return ClusterSpec.model_validate(data)


def test_bindings_are_valid_kubernetes_objects() -> None:
    spec = _roles_spec(
        {"keystone_role": "viewers", "cluster_role": "view"},
        {"keystone_role": "devs", "cluster_role": "edit", "namespaces": ["apps", "shop"]},
        {"keystone_role": "ops", "role": "deployer", "namespaces": ["shop"]},
        customer_namespaces=["shop"],
    )
    manifests = access.role_bindings(spec)
    assert [m["kind"] for m in manifests] == ["ClusterRoleBinding", "RoleBinding", "RoleBinding", "RoleBinding"]
    assert manifests[-1]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"}
    for manifest in manifests:
        kubernetes_validate.validate(manifest, spec.versions.kubernetes, strict=True)


@pytest.mark.parametrize(
    ("roles", "field", "message"),
    [
        ([{"keystone_role": "x", "cluster_role": "superuser"}], "identity.roles.0.cluster_role", "'view', 'edit' or 'admin'"),
        ([{"keystone_role": "x", "cluster_role": "cluster-admin"}], "identity.roles.0.cluster_role", "'view', 'edit' or 'admin'"),
        ([{"keystone_role": "x", "cluster_role": "view"}, {"keystone_role": "x", "cluster_role": "view"}],
         "identity.roles.1.keystone_role", "already mapped"),
        ([{"keystone_role": "t1-cluster-admin", "cluster_role": "view"}], "identity.roles.0.keystone_role",
         "already mapped by identity.admin_role_name"),
        ([{"keystone_role": "a", "group": "g", "cluster_role": "view"},
          {"keystone_role": "b", "group": "g", "cluster_role": "view"}], "identity.roles.1.group", "already the group"),
        ([{"keystone_role": "x", "group": "system:masters", "cluster_role": "view"}], "identity.roles.0.group",
         "'system:' prefix"),
        ([{"keystone_role": "break-glass", "cluster_role": "view"}], "identity.roles.0", "platform binding"),
        ([{"keystone_role": "default-cluster-admin", "cluster_role": "view"}], "identity.roles.0", "platform binding"),
        ([{"keystone_role": "x", "cluster_role": "edit", "namespaces": ["kube-system"]}],
         "identity.roles.0.namespaces.0", "platform namespace"),
        ([{"keystone_role": "x", "cluster_role": "admin", "namespaces": ["kaas-system"]}],
         "identity.roles.0.namespaces.0", "platform namespace"),
        ([{"keystone_role": "x", "cluster_role": "edit"}], "identity.roles.0.namespaces", "only view"),
        ([{"keystone_role": "x", "role": "mine"}], "identity.roles.0.namespaces", "only view"),
        ([{"keystone_role": "x", "cluster_role": "view", "role": "mine", "namespaces": ["apps"]}],
         "identity.roles.0", "exactly one"),
        ([{"keystone_role": "x", "cluster_role": "edit", "namespaces": ["nowhere"]}],
         "identity.roles.0.namespaces.0", "not a customer namespace"),
    ],
)  # fmt: skip
def test_bad_role_mappings_are_refused_in_one_line(roles: list[dict[str, Any]], field: str, message: str) -> None:
    data = copy.deepcopy(spec_data())
    data["identity"]["roles"] = roles
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "<test>")
    problems = [p for p in caught.value.problems if p.startswith(field + ":")]
    assert problems and message in problems[0], caught.value.problems
    assert all("\n" not in p for p in caught.value.problems)


def test_the_loader_reports_a_bad_mapping_with_file_and_field(tmp_path: Path) -> None:
    from kaas.spec import load_spec_file

    data = copy.deepcopy(spec_data())
    data["identity"]["roles"] = [{"keystone_role": "x", "cluster_role": "god"}]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert "identity.roles.0.cluster_role" in str(caught.value)


def test_handover_lists_each_role_with_its_grant_command() -> None:
    spec = _roles_spec({"keystone_role": "devs", "cluster_role": "edit", "namespaces": ["apps"]})
    outputs = build_stack_outputs(make_plan(spec), make_facts())
    (role,) = outputs.rbac.roles
    assert role.group == "kaas:devs"
    assert role.grants == "ClusterRole `edit` in `apps`"
    assert role.command == "openstack role add --user USER --user-domain Default --project PROJECT devs"


def test_default_spec_has_no_extra_roles_and_a_default_namespace() -> None:
    spec = make_spec()
    assert spec.identity.roles == ()
    assert spec.customer_namespaces == ("apps",)
    assert make_spec(services={"default_namespace": None}).customer_namespaces == ()


# --- Customer namespace guardrails -----------------------------------------------------------------

GUARDED = {"ResourceQuota", "LimitRange", "NetworkPolicy", "Secret"}
# The customer guardrails by name (the platform namespace has NetworkPolicies of its own).
GUARDRAIL_NAMES = {"default-quota", "default-limits", "default-deny", "registry-pull"}


def _guardrails(plan: Plan) -> dict[str, set[str]]:
    """Namespace -> the guardrail kinds the plan puts there (the pull Secret is the dockerconfigjson one)."""
    found: dict[str, set[str]] = {}
    for record in plan.resources:
        kind = record.inputs.get("kind")
        name = record.inputs.get("metadata", {}).get("name")
        if kind not in GUARDED or name not in GUARDRAIL_NAMES:
            continue
        found.setdefault(record.inputs["metadata"]["namespace"], set()).add(str(kind))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_customer_namespace_and_no_other_gets_the_guardrails(stack: str) -> None:
    spec = load_stack_spec(stack)
    expected = {"ResourceQuota", "LimitRange"}
    expected |= {"NetworkPolicy"} if spec.services.default_deny_network_policy else set()
    expected |= {"Secret"} if spec.services.registry.enabled else set()
    guardrails = _guardrails(_plan(stack))
    assert spec.customer_namespaces, "every stack has its default customer namespace"
    assert guardrails == dict.fromkeys(spec.customer_namespaces, expected)
    # Platform namespaces get none. A namespace created later in the cluster gets none either
    # (no policy engine in the catalog: docs/architecture.md, "Customer namespaces").
    assert not set(guardrails) & set(spec.reserved_namespaces)


def test_limit_range_defaults_fit_under_the_quota_and_validate() -> None:
    from kaas.services import objects

    spec = make_spec()
    limits = objects.limit_range(spec, "apps")
    kubernetes_validate.validate(limits, spec.versions.kubernetes, strict=True)
    (item,) = limits["spec"]["limits"]
    # The quota counts requests.cpu, requests.memory and limits.memory: a pod without them
    # is refused unless the LimitRange supplies all three.
    quota = set(objects.resource_quota(spec, "apps")["spec"]["hard"])
    supplied = {f"requests.{r}" for r in item["defaultRequest"]} | {f"limits.{r}" for r in item["default"]}
    assert {q for q in quota if q.startswith(("requests.", "limits."))} <= supplied

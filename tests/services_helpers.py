"""Plans of ManagedServices alone, fed plain and secret inputs like the other layers produce."""

from __future__ import annotations

from functools import cache
from typing import Any

import pulumi

from kaas.offline import Plan, ResourceRecord, run_plan
from kaas.services import ManagedServices, ServiceInputs
from kaas.spec import ClusterSpec
from tests.helpers import make_spec

ROLE_ID = "f6120fe6406a473682c3b25cdea4510a"
INGRESS_IP = "203.0.113.80"
APP_CRED_ID = "appcred-id-1"
APP_CRED_SECRET = "appcred-secret-1"
SWIFT_PASSWORD = "swift-pw-1"


def inputs() -> ServiceInputs:
    return ServiceInputs(
        kubeconfig=pulumi.Output.secret("apiVersion: v1\nkind: Config\n"),
        ingress_ip=INGRESS_IP,
        external_network_id="ext-net-id",
        subnet_id="subnet-id",
        admin_role_id=ROLE_ID,
        app_credential_id=pulumi.Output.secret(APP_CRED_ID),
        app_credential_secret=pulumi.Output.secret(APP_CRED_SECRET),
        keystone_auth_cert_pem=pulumi.Output.secret("-----BEGIN CERTIFICATE-----\n"),
        keystone_auth_key_pem=pulumi.Output.secret("-----BEGIN PRIVATE KEY-----\n"),
        registry_swift_username="t1-registry",
        registry_swift_password=pulumi.Output.secret(SWIFT_PASSWORD),
    )


def plan_services(spec: ClusterSpec) -> Plan:
    return run_plan(lambda: ManagedServices(spec.name, spec, inputs()), stack="services")


@cache
def default_plan() -> Plan:
    return plan_services(make_spec(services={"customer_namespaces": ["shop"], "default_deny_network_policy": True}))


def releases(plan: Plan) -> dict[str, ResourceRecord]:
    return {r.name: r for r in plan.by_type("kubernetes:helm.sh/v3:Release")}


def names_of(plan: Plan, urns: list[str]) -> set[str]:
    return {plan.get(u).name for u in urns}


def values(record: ResourceRecord) -> Any:
    return record.inputs["values"]

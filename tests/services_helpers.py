"""Plans of ManagedServices alone, fed plain and secret inputs like the other layers produce."""

from __future__ import annotations

from functools import cache
from typing import Any

import pulumi

from kaas.offline import Plan, ResourceRecord, run_plan
from kaas.openstack.identity import ApplicationCredential as AppCredential
from kaas.services import ManagedServices, ServiceInputs
from kaas.spec import ClusterSpec
from tests.helpers import make_spec

ROLE_ID = "f6120fe6406a473682c3b25cdea4510a"
INGRESS_IP = "203.0.113.80"
PROJECT_ID = "5e1b2c3d4e5f40718293a4b5c6d7e8f9"
APP_CREDENTIALS = {
    consumer: (f"appcred-id-{consumer}", f"appcred-secret-{consumer}")
    for consumer in ("cloud-controller", "cinder-csi", "velero")
}
SWIFT_PASSWORD = "swift-pw-1"


def inputs() -> ServiceInputs:
    return ServiceInputs(
        kubeconfig=pulumi.Output.secret("apiVersion: v1\nkind: Config\n"),
        ingress_ip=INGRESS_IP,
        external_network_id="ext-net-id",
        subnet_id="subnet-id",
        admin_role_id=ROLE_ID,
        app_credentials={
            consumer: AppCredential(pulumi.Output.from_input(cid), pulumi.Output.secret(secret))
            for consumer, (cid, secret) in APP_CREDENTIALS.items()
        },
        project_id=PROJECT_ID,
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

"""Logging: OpenSearch without its demo security (certificates from the platform CA, users
from Secrets), OpenSearch Dashboards, Fluent Bit, and the index lifecycle policy.

The releases that mount cert-manager-issued Secrets (OpenSearch, Dashboards, Fluent Bit)
do not wait for cert-manager: the kubelet retries a Secret volume until it exists, and
cert-manager issues them within seconds of starting, long before Helm's 900 s timeout;
waiting would queue every logging release behind the cert-manager release. Only the
Jobs that call OpenSearch wait for it (and for the admin certificate they present).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from kaas.services import names, objects, values
from kaas.services.catalog import ChartName
from kaas.services.wiring.deps import ServiceDeps, ServiceGroup, Wired
from kaas.services.wiring.kube import password


def _account(
    deps: ServiceDeps, group: ServiceGroup, secret_name: str, username: str, **extra: pulumi.Input[str]
) -> pulumi.Resource:
    # Mixed classes: OpenSearch's REST API refuses weak passwords (score-based validation).
    name, spec = deps.name, deps.spec
    account_password = password(f"{name}-{secret_name}", group)
    data = {"username": username, "password": account_password.result, **extra}
    return deps.kube.apply(
        f"{name}-{secret_name}",
        objects.secret(spec, secret_name, spec.platform_namespace, data),
        group,
        (deps.platform_namespace,),
    )


def _certificates(deps: ServiceDeps, group: ServiceGroup, cert_manager: k8s.helm.v3.Release) -> pulumi.Resource:
    """The platform CA and OpenSearch's certificates (cert-manager); returns the admin certificate."""
    name, spec, kube = deps.name, deps.spec, deps.kube
    ca_deps: list[pulumi.Resource] = [cert_manager, deps.platform_namespace]
    for manifest in objects.platform_ca_objects(spec):
        ca_deps = [
            cert_manager,
            kube.apply(f"{name}-{manifest['kind'].lower()}-{manifest['metadata']['name']}", manifest, group, ca_deps),
        ]
    _node_cert, admin_cert = (
        kube.apply(f"{name}-certificate-{m['metadata']['name']}", m, group, ca_deps)
        for m in objects.opensearch_certificates(spec)
    )
    return admin_cert


def wire_logging(deps: ServiceDeps, cert_manager: k8s.helm.v3.Release | None) -> Wired:
    if cert_manager is None:
        raise ValueError("services.logging needs cert-manager (services.ingress.cert_manager) for its certificates")
    name, spec, kube = deps.name, deps.spec, deps.kube
    namespace_name = deps.platform_namespace_name
    group = deps.group("Logging")
    admin = _account(deps, group, names.OPENSEARCH_ADMIN, "admin")
    writer = _account(deps, group, names.OPENSEARCH_FLUENT_BIT, values.OPENSEARCH_FLUENT_BIT_USER)
    cookie = password(f"{name}-opensearch-dashboards-cookie", group)
    dashboards_account = _account(
        deps, group, names.OPENSEARCH_DASHBOARDS, values.OPENSEARCH_DASHBOARDS_USER, cookie=cookie.result
    )
    admin_cert = _certificates(deps, group, cert_manager)
    opensearch = kube.release(
        "opensearch",
        ChartName.OPENSEARCH,
        spec.services.logging.chart_version,
        namespace_name,
        values.opensearch_values(spec),
        group,
        deps.data,
    )
    kube.apply(
        f"{name}-opensearch-security",
        objects.opensearch_security_job(spec),
        group,
        (opensearch, admin_cert, admin, writer, dashboards_account),
    )
    dashboards = kube.release(
        "opensearch-dashboards",
        ChartName.OPENSEARCH_DASHBOARDS,
        None,
        namespace_name,
        values.opensearch_dashboards_values(spec),
        group,
        (*deps.pods, dashboards_account),
    )
    shipper = kube.release(
        "fluent-bit",
        ChartName.FLUENT_BIT,
        None,
        namespace_name,
        values.fluent_bit_values(spec),
        group,
        (deps.cni, writer),
    )
    policy = kube.apply(f"{name}-ism-policy", objects.ism_policy_config_map(spec), group, (deps.platform_namespace,))
    kube.apply(f"{name}-ism-policy-job", objects.ism_policy_job(spec), group, (opensearch, policy, admin_cert))
    group.done()
    releases = {"logging": opensearch, "logging_dashboards": dashboards, "logging_shipper": shipper}
    return Wired(group=group, releases=releases)

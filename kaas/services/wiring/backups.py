"""Backups: Velero with its own application credential and a protected Kopia repository password."""

from __future__ import annotations

import pulumi
import pulumi_random as random

from kaas.services import monitoring as monitoring_values
from kaas.services import names, objects, values
from kaas.services.catalog import ChartName
from kaas.services.inputs import CloudCredential
from kaas.services.passwords import password_arguments
from kaas.services.wiring.deps import ServiceDeps, Wired
from kaas.services.wiring.monitoring import Monitoring


def wire_backups(deps: ServiceDeps, credential: CloudCredential, monitoring: Monitoring | None) -> Wired:
    """Velero; with monitoring, its ServiceMonitor and alert rules (in the Monitoring group, so
    they go with either switch)."""
    name, spec, kube = deps.name, deps.spec, deps.kube
    namespace, ns = deps.platform_namespace, spec.platform_namespace
    group = deps.group("Backups")
    openstack_credentials: dict[str, pulumi.Input[str]] = {
        "OS_AUTH_URL": spec.openstack.auth_url,
        "OS_REGION_NAME": spec.openstack.region,
        "OS_APPLICATION_CREDENTIAL_ID": pulumi.Output.secret(credential.id),
        "OS_APPLICATION_CREDENTIAL_SECRET": pulumi.Output.secret(credential.secret),
    }
    credentials = kube.apply(
        f"{name}-velero-credentials",
        objects.secret(spec, names.VELERO_CREDENTIALS, ns, openstack_credentials),
        group,
        (namespace,),
    )
    # Velero encrypts its Kopia repositories (file-system backups) with this password; without
    # the Secret it would create one holding a fixed, published default. Protected: the key to backups.
    repo_password = random.RandomPassword(
        f"{name}-velero-repository",
        **password_arguments(),
        opts=pulumi.ResourceOptions(parent=group, protect=True, additional_secret_outputs=["result"]),
    )
    repository = kube.apply(
        f"{name}-velero-repository",
        objects.secret(spec, names.VELERO_REPOSITORY, ns, {"repository-password": repo_password.result}),
        group,
        (namespace,),
    )
    velero = kube.release(
        "velero",
        ChartName.VELERO,
        spec.services.backups.chart_version,
        deps.platform_namespace_name,
        values.velero_values(spec, values.config_checksum(pulumi.Output.all(**openstack_credentials))),
        group,
        (deps.cni, credentials, repository),
    )
    if monitoring is not None:
        # Watched: its metrics scraped, failures alerted (CRDs from kube-prometheus-stack).
        after = (velero, monitoring.stack)
        watch = monitoring.group
        kube.apply(f"{name}-velero-monitor", monitoring_values.velero_service_monitor(spec), watch, after)
        kube.apply(f"{name}-velero-rules", monitoring_values.velero_prometheus_rule(spec), watch, after)
    group.done()
    return Wired(group=group, releases={"backups": velero})

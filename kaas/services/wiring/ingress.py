"""The ingress controller, and cert-manager with its ClusterIssuer."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from kaas.services import names, objects, values
from kaas.services.catalog import ChartName
from kaas.services.wiring.deps import ServiceDeps, Wired


@dataclass(frozen=True, kw_only=True)
class Ingress(Wired):
    controller: k8s.helm.v3.Release
    cert_manager: k8s.helm.v3.Release | None  # with services.ingress.cert_manager


def wire_ingress(deps: ServiceDeps, ingress_ip: pulumi.Input[str]) -> Ingress:
    name, spec, kube, svc = deps.name, deps.spec, deps.kube, deps.spec.services
    group = deps.group("Ingress")
    controller = kube.release(
        names.INGRESS_RELEASE,
        ChartName.NGINX_INGRESS,
        svc.ingress.chart_version,
        deps.platform_namespace_name,
        values.ingress_values(spec, ingress_ip),
        group,
        deps.pods,
    )
    releases = {"ingress": controller}
    cert_manager = None
    if svc.ingress.cert_manager:
        cert_manager = kube.release(
            "cert-manager",
            ChartName.CERT_MANAGER,
            None,
            deps.platform_namespace_name,
            values.cert_manager_values(spec),
            group,
            deps.pods,
        )
        releases["cert_manager"] = cert_manager
        kube.apply(f"{name}-cluster-issuer", objects.cluster_issuer(spec), group, (cert_manager, controller))
    group.done()
    return Ingress(group=group, releases=releases, controller=controller, cert_manager=cert_manager)

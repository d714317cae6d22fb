"""The CNI (flannel, or Calico/Canal through the Tigera operator): nothing schedules a pod before it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_kubernetes as k8s

from kaas.services import values
from kaas.services.catalog import ChartName
from kaas.services.wiring.deps import ServiceScope, Wired
from kaas.spec.models import Cni as CniName


@dataclass(frozen=True, kw_only=True)
class Cni(Wired):
    release: k8s.helm.v3.Release


def wire_cni(scope: ServiceScope) -> Cni:
    spec, kube = scope.spec, scope.kube
    chart_version = spec.services.cni.chart_version
    group = scope.group("Cni")
    if spec.networking.cni is CniName.FLANNEL:
        release = kube.release(
            "flannel",
            ChartName.FLANNEL,
            chart_version,
            "kube-flannel",
            values.flannel_values(spec),
            group,
            (),
            create_namespace=True,
        )
    else:
        cni_values = values.canal_values(spec) if spec.networking.cni is CniName.CANAL else values.calico_values(spec)
        release = kube.release(
            "calico",
            ChartName.TIGERA_OPERATOR,
            chart_version,
            "tigera-operator",
            cni_values,
            group,
            (),
            create_namespace=True,
        )
    group.done(release=release.status)
    return Cni(group=group, releases={"cni": release}, release=release)

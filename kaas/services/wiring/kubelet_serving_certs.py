"""Kubelet serving certificates: kubelets request them from the cluster CA (serverTLSBootstrap);
the approver approves requests from the cluster's nodes."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from kaas.services import objects
from kaas.services.wiring.deps import ServiceDeps, Wired


@dataclass(frozen=True, kw_only=True)
class KubeletServingCerts(Wired):
    approver: pulumi.Resource  # kubelets serve with cluster-CA certificates once it runs


def wire_kubelet_serving_certs(deps: ServiceDeps) -> KubeletServingCerts:
    name, spec, kube = deps.name, deps.spec, deps.kube
    group = deps.group("KubeletServingCerts")
    approver_rbac = [
        kube.apply(f"{name}-kubelet-csr-approver-{suffix}", manifest, group)
        for suffix, manifest in (
            ("sa", objects.kubelet_csr_approver_service_account(spec)),
            ("role", objects.kubelet_csr_approver_cluster_role(spec)),
            ("binding", objects.kubelet_csr_approver_cluster_role_binding(spec)),
        )
    ]
    approver = kube.apply(
        f"{name}-kubelet-csr-approver",
        objects.kubelet_csr_approver_deployment(spec),
        group,
        (deps.cni, *approver_rbac),
    )
    group.done()
    return KubeletServingCerts(group=group, approver=approver)

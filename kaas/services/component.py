"""ManagedServices: every managed service, released into the cluster in dependency order.

One explicit Kubernetes provider, built here from the generated kubeconfig, serves
every Kubernetes resource. Each service is a small ``kaas:services:<Service>``
component wired by its own function in :mod:`kaas.services.wiring`, present only when
the spec enables it. Dependencies (see docs/architecture.md): every Helm release and
every pod-running object waits for the CNI; storage users wait for the Cinder CSI
release and its StorageClasses; plain Ingress objects and the ClusterIssuer wait for
the ingress controller (Helm releases that contain Ingresses do not); nothing else is
serialised.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import pulumi
import pulumi_kubernetes as k8s

from kaas.services.inputs import VELERO, ServiceInputs
from kaas.services.wiring.access_bindings import wire_access_bindings
from kaas.services.wiring.backups import wire_backups
from kaas.services.wiring.cni import wire_cni
from kaas.services.wiring.dashboard import wire_dashboard
from kaas.services.wiring.deps import ServiceDeps, ServiceGroup, ServiceScope, Wired
from kaas.services.wiring.ingress import wire_ingress
from kaas.services.wiring.keystone_auth import wire_keystone_auth
from kaas.services.wiring.kube import Kube
from kaas.services.wiring.kubelet_serving_certs import wire_kubelet_serving_certs
from kaas.services.wiring.logs import wire_logging
from kaas.services.wiring.metrics_server import wire_metrics_server
from kaas.services.wiring.monitoring import wire_monitoring
from kaas.services.wiring.namespaces import wire_customer_namespaces, wire_platform_namespace
from kaas.services.wiring.openstack_integration import wire_openstack_integration
from kaas.services.wiring.registry import wire_registry
from kaas.spec.models import ClusterSpec

_W = TypeVar("_W", bound=Wired)


class ManagedServices(pulumi.ComponentResource):
    """The managed services of one cluster (CNI, OpenStack integration, Keystone RBAC, ingress, ...)."""

    cni: k8s.helm.v3.Release
    namespace: pulumi.Resource
    groups: dict[str, ServiceGroup]
    releases: dict[str, k8s.helm.v3.Release]

    def __init__(
        self, name: str, spec: ClusterSpec, inputs: ServiceInputs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kaas:services:ManagedServices", name, None, opts)
        self.spec = spec
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(inputs.kubeconfig),
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[inputs.ready] if inputs.ready else []),
        )
        self.groups = {}
        self.releases = {}
        svc = spec.services
        scope = ServiceScope(
            name=name, spec=spec, kube=Kube(self.provider, inputs.cluster or self.provider), owner=self
        )

        platform = self._add(wire_platform_namespace(scope))  # API-only: it needs no pods and so no CNI
        self.namespace = platform.namespace
        self.cni = self._add(wire_cni(scope)).release  # first: nothing schedules a pod before it
        deps = ServiceDeps(
            name=name,
            spec=spec,
            kube=scope.kube,
            owner=self,
            platform_namespace=platform.namespace,
            platform_namespace_name=platform.namespace_name,
            cni=self.cni,
        )
        if svc.cloud_controller.enabled or svc.cinder_csi.enabled:
            integration = self._add(wire_openstack_integration(deps, inputs))
            deps = dataclasses.replace(deps, storage=integration.storage)
        if svc.keystone_auth.enabled:
            self._add(wire_keystone_auth(deps, inputs))
        ingress = self._add(wire_ingress(deps, inputs.ingress_ip)) if svc.ingress.enabled else None
        if ingress is not None:
            deps = dataclasses.replace(deps, ingress=(ingress.controller,))
        kubelet_certs = self._add(wire_kubelet_serving_certs(deps))
        if svc.metrics_server.enabled:
            self._add(wire_metrics_server(deps, kubelet_certs.approver))
        # Releases with Ingresses (Grafana, OpenSearch Dashboards, Harbor, Headlamp) do NOT wait
        # for the ingress controller: the API server accepts an Ingress before its controller
        # runs (the F5 chart installs no admission webhook), the controller serves the existing
        # Ingresses when it starts, and `helm install --wait` does not wait on Ingresses. The
        # controller's release waits for its Octavia load balancer; queuing Harbor behind it
        # would add minutes to every new cluster. Plain Ingress objects keep the edge
        # (ServiceDeps.ingress): Pulumi's await for an Ingress is its controller publishing the address.
        cert_manager = ingress.cert_manager if ingress else None
        monitoring = self._add(wire_monitoring(deps, inputs, cert_manager)) if svc.monitoring.enabled else None
        if svc.logging.enabled:
            self._add(wire_logging(deps, cert_manager))
        registry = self._add(wire_registry(deps, inputs)) if svc.registry.enabled else None
        if svc.backups.enabled:
            self._add(wire_backups(deps, inputs.app_credentials[VELERO], monitoring))
        if svc.dashboard.enabled:
            self._add(wire_dashboard(deps))
        customer_namespaces = wire_customer_namespaces(deps, platform, registry)
        if svc.keystone_auth.enabled and spec.identity.roles:
            self._add(wire_access_bindings(deps, customer_namespaces))

        self.register_outputs({"releases": {k: r.status for k, r in self.releases.items()}})

    def _add(self, wired: _W) -> _W:
        self.groups[wired.group.kind] = wired.group
        self.releases.update(wired.releases)
        return wired

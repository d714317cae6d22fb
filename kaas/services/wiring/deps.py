"""What the services share (``ServiceScope``, ``ServiceDeps``) and what each hands back (``Wired``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kaas.services.wiring.kube import Kube
from kaas.spec.models import ClusterSpec


class ServiceGroup(pulumi.ComponentResource):
    """One managed service (``kaas:services:<kind>``): the unit a spec switches on or off."""

    def __init__(self, kind: str, name: str, parent: pulumi.Resource) -> None:
        super().__init__(f"kaas:services:{kind}", name, None, pulumi.ResourceOptions(parent=parent))
        self.kind = kind

    def done(self, **outputs: Any) -> None:
        self.register_outputs(outputs)


def _kebab(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()


@dataclass(frozen=True, kw_only=True)
class ServiceScope:
    """Where a service's resources go: named after the cluster, created through one provider."""

    name: str  # the cluster's name, the prefix of every resource name
    spec: ClusterSpec
    kube: Kube
    owner: pulumi.Resource  # ManagedServices: the parent of every service group

    def group(self, kind: str) -> ServiceGroup:
        return ServiceGroup(kind, f"{self.name}-{_kebab(kind)}", self.owner)


@dataclass(frozen=True, kw_only=True)
class ServiceDeps(ServiceScope):
    """What every service after the CNI may wait for: the readiness gates, as far as they exist yet."""

    platform_namespace: pulumi.Resource  # objects in the platform namespace wait for it
    platform_namespace_name: pulumi.Input[str]  # its name, for Helm releases (an output of the Namespace)
    cni: k8s.helm.v3.Release  # nothing runs a pod before it
    storage: tuple[pulumi.Resource, ...] = ()  # Cinder CSI and its StorageClasses, when enabled
    ingress: tuple[pulumi.Resource, ...] = ()  # the ingress controller, when enabled: plain Ingresses wait

    @property
    def pods(self) -> tuple[pulumi.Resource, ...]:
        """What a release that runs pods (and maybe has Ingresses) waits for."""
        return (self.cni,)

    @property
    def data(self) -> tuple[pulumi.Resource, ...]:
        """What a release with persistent volumes waits for."""
        return (self.cni, *self.storage)


@dataclass(frozen=True, kw_only=True)
class Wired:
    """A wired service: its group, and its Helm releases by key (``ManagedServices.releases``)."""

    group: ServiceGroup
    releases: Mapping[str, k8s.helm.v3.Release] = field(default_factory=dict)

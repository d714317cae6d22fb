"""The platform namespace (first: API-only, no pods, no CNI) and the customer namespaces (last)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from kaas.services import names, objects
from kaas.services.wiring.deps import ServiceDeps, ServiceScope, Wired
from kaas.services.wiring.registry import Registry


@dataclass(frozen=True, kw_only=True)
class PlatformNamespace(Wired):
    namespace: pulumi.Resource
    namespace_name: pulumi.Input[str]


def wire_platform_namespace(scope: ServiceScope) -> PlatformNamespace:
    """The ``<provider>-system`` namespace and the break-glass binding; the group stays open for the customer namespaces."""
    name, spec, kube = scope.name, scope.spec, scope.kube
    group = scope.group("Namespaces")
    namespace = kube.apply(f"{name}-ns-platform", objects.platform_namespace(spec), group)
    kube.apply(f"{name}-break-glass", objects.break_glass_cluster_role_binding(spec), group)
    return PlatformNamespace(
        group=group,
        namespace=namespace,
        namespace_name=namespace.metadata.name,  # type: ignore[attr-defined]
    )


def wire_customer_namespaces(
    deps: ServiceDeps, platform: PlatformNamespace, registry: Registry | None
) -> dict[str, pulumi.Resource]:
    """Customer namespaces (the default one and the listed ones): quota, default requests and
    limits, optional default-deny, the registry pull secret. Closes the Namespaces group."""
    name, spec, kube, group = deps.name, deps.spec, deps.kube, platform.group
    customer_ns: dict[str, pulumi.Resource] = {}
    for customer in spec.customer_namespaces:
        ns = kube.apply(f"{name}-ns-{customer}", objects.customer_namespace(spec, customer), group)
        customer_ns[customer] = ns
        kube.apply(f"{name}-quota-{customer}", objects.resource_quota(spec, customer), group, (ns,))
        kube.apply(f"{name}-limits-{customer}", objects.limit_range(spec, customer), group, (ns,))
        if spec.services.default_deny_network_policy:
            kube.apply(f"{name}-deny-{customer}", objects.default_deny(spec, customer), group, (ns,))
        if registry is not None:
            pull_secret = objects.secret(
                spec,
                names.HARBOR_PULL,
                customer,
                {".dockerconfigjson": pulumi.Output.secret(registry.pull_config)},
                secret_type="kubernetes.io/dockerconfigjson",
            )
            kube.apply(f"{name}-pull-{customer}", pull_secret, registry.group, (ns,))
    group.done()
    return customer_ns

"""The platform namespace (first: API-only, no pods, no CNI) and the customer namespaces (last)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from kaas.services import guardrails, objects
from kaas.services.wiring.deps import ServiceDeps, ServiceScope, Wired
from kaas.services.wiring.registry import Registry, wire_robot_job


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
    """Customer namespaces (the default one and the listed ones) with their guardrails
    (:mod:`kaas.services.guardrails`: quota, default requests and limits, optional
    default-deny, the registry pull secret), and the in-cluster reconciler that gives
    namespaces created later the same guardrails. Closes the Namespaces group."""
    name, spec, kube, group = deps.name, deps.spec, deps.kube, platform.group
    customer_ns: dict[str, pulumi.Resource] = {}
    pull_secrets: list[pulumi.Resource] = []
    suffixes = {"ResourceQuota": "quota", "LimitRange": "limits", "NetworkPolicy": "deny"}
    for customer in spec.customer_namespaces:
        ns = kube.apply(f"{name}-ns-{customer}", objects.customer_namespace(spec, customer), group)
        customer_ns[customer] = ns
        for guardrail in guardrails.namespace_guardrails(spec):
            manifest = guardrails.in_namespace(guardrail, customer)
            kube.apply(f"{name}-{suffixes[guardrail['kind']]}-{customer}", manifest, group, (ns,))
        if registry is not None:
            pull_secret = guardrails.pull_secret(spec, customer, pulumi.Output.secret(registry.pull_config))
            pull_secrets.append(kube.apply(f"{name}-pull-{customer}", pull_secret, registry.group, (ns,)))
    # Namespaces created later: the same guardrails from an in-cluster reconciler.
    reconciler_deps: list[pulumi.Resource] = [platform.namespace]
    reconciler_parts: list[pulumi.Resource] = []
    if registry is not None:
        pull_source = kube.apply(
            f"{name}-guardrails-pull-source",
            guardrails.pull_source(spec, pulumi.Output.secret(registry.pull_config)),
            registry.group,
            (platform.namespace,),
        )
        reconciler_deps.append(pull_source)
        pull_secrets.append(pull_source)
    for manifest in guardrails.reconciler(spec, with_pull_secret=registry is not None):
        # The Role and binding that read the pull source exist with the registry alone.
        parent = registry.group if registry is not None and manifest["kind"] in ("Role", "RoleBinding") else group
        created = kube.apply(f"{name}-guardrails-{manifest['kind'].lower()}", manifest, parent, tuple(reconciler_deps))
        if manifest["kind"] in ("ClusterRole", "ConfigMap", "CronJob"):
            reconciler_parts.append(created)
    if registry is not None:
        # The robot Job retires older robots: after the program's pull Secrets and the reconciler
        # that replaces the other namespaces' copies are up to date.
        wire_robot_job(deps, registry, [*pull_secrets, *reconciler_parts])
    group.done()
    return customer_ns

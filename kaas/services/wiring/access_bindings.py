"""The RBAC bindings of ``identity.roles`` (:mod:`kaas.services.access`), after their namespaces."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from kaas.services import access
from kaas.services.wiring.deps import ServiceDeps, Wired


def wire_access_bindings(deps: ServiceDeps, customer_namespaces: Mapping[str, pulumi.Resource]) -> Wired:
    group = deps.group("Access")
    for manifest in access.role_bindings(deps.spec):
        namespace = manifest["metadata"].get("namespace")
        role = manifest["metadata"]["name"].split(":", 1)[1]
        suffix = f"{role}-{namespace}" if namespace else role
        needs = (customer_namespaces[namespace],) if namespace else ()
        deps.kube.apply(f"{deps.name}-rbac-{suffix}", manifest, group, needs)
    group.done()
    return Wired(group=group)

"""The dashboard (Headlamp)."""

from __future__ import annotations

from kaas.services import values
from kaas.services.catalog import ChartName
from kaas.services.wiring.deps import ServiceDeps, Wired


def wire_dashboard(deps: ServiceDeps) -> Wired:
    spec = deps.spec
    group = deps.group("Dashboard")
    release = deps.kube.release(
        "headlamp",
        ChartName.HEADLAMP,
        spec.services.dashboard.chart_version,
        deps.platform_namespace_name,
        values.headlamp_values(spec),
        group,
        deps.pods,
    )
    group.done()
    return Wired(group=group, releases={"dashboard": release})

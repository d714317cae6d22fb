"""metrics-server: it scrapes kubelets over their cluster-CA serving certificates."""

from __future__ import annotations

import pulumi

from kaas.services import names, values
from kaas.services.catalog import ChartName
from kaas.services.wiring.deps import ServiceDeps, Wired


def wire_metrics_server(deps: ServiceDeps, approver: pulumi.Resource) -> Wired:
    spec = deps.spec
    group = deps.group("MetricsServer")
    release = deps.kube.release(
        "metrics-server",
        ChartName.METRICS_SERVER,
        spec.services.metrics_server.chart_version,
        names.KUBE_SYSTEM,
        values.metrics_server_values(spec),
        group,
        (deps.cni, approver),
    )
    group.done()
    return Wired(group=group, releases={"metrics_server": release})

"""Monitoring: kube-prometheus-stack (Grafana's admin, one basic-auth login for the web UIs),
the certificate-expiry rule, and the Prometheus that scrapes the customers' applications."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from kaas.services import alerts, names, objects, values
from kaas.services import monitoring as monitoring_values
from kaas.services.catalog import ChartName
from kaas.services.inputs import ServiceInputs
from kaas.services.wiring.deps import ServiceDeps, Wired
from kaas.services.wiring.kube import password


@dataclass(frozen=True, kw_only=True)
class Monitoring(Wired):
    stack: k8s.helm.v3.Release  # kube-prometheus-stack: its CRDs (ServiceMonitor, PrometheusRule) come with it


def _web_auth(deps: ServiceDeps, group: pulumi.Resource) -> list[pulumi.Resource]:
    """Prometheus, apps-Prometheus and Alertmanager have no login: one generated account guards
    their Ingresses (values.BASIC_AUTH_ANNOTATIONS); operators read it from web-login."""
    name, spec, kube = deps.name, deps.spec, deps.kube
    web_pw = password(f"{name}-web-login", group)
    htpasswd: pulumi.Output[str] = pulumi.Output.secret(
        web_pw.result.apply(lambda p: values.htpasswd_line(names.WEB_USER, p))
    )
    return [
        kube.apply(
            f"{name}-web-basic-auth",
            objects.secret(
                spec, names.WEB_AUTH, spec.platform_namespace, {"htpasswd": htpasswd}, secret_type="nginx.org/htpasswd"
            ),
            group,
            (deps.platform_namespace,),
        ),
        kube.apply(
            f"{name}-web-login",
            objects.secret(
                spec, names.WEB_LOGIN, spec.platform_namespace, {"username": names.WEB_USER, "password": web_pw.result}
            ),
            group,
            (deps.platform_namespace,),
        ),
    ]


def _alert_receivers(deps: ServiceDeps, inputs: ServiceInputs, group: pulumi.Resource) -> list[pulumi.Resource]:
    """The Secret Alertmanager mounts: one key per receiver (and the heartbeat), each a Pulumi secret."""
    spec = deps.spec
    keys = monitoring_values.secret_keys(spec)
    if not keys:
        return []
    missing = sorted({config for config in keys.values() if config not in inputs.alerting_secrets})
    if missing:
        raise ValueError(f"alert receivers need the kaas config secrets {missing}; ServiceInputs has none for them")
    data: dict[str, pulumi.Input[str]] = {
        key: pulumi.Output.secret(inputs.alerting_secrets[config]) for key, config in keys.items()
    }
    manifest = objects.secret(spec, monitoring_values.RECEIVERS_SECRET, spec.platform_namespace, data)
    return [deps.kube.apply(f"{deps.name}-alertmanager-receivers", manifest, group, (deps.platform_namespace,))]


def wire_monitoring(deps: ServiceDeps, inputs: ServiceInputs, cert_manager: k8s.helm.v3.Release | None) -> Monitoring:
    """kube-prometheus-stack and what it watches; with cert-manager, its certificates' expiry too."""
    name, spec, kube = deps.name, deps.spec, deps.kube
    namespace = deps.platform_namespace
    group = deps.group("Monitoring")
    grafana_pw = password(f"{name}-grafana-admin", group)
    grafana_secret = kube.apply(
        f"{name}-grafana-admin",
        objects.secret(
            spec,
            names.GRAFANA_ADMIN,
            spec.platform_namespace,
            {"admin-user": "admin", "admin-password": grafana_pw.result},
        ),
        group,
        (namespace,),
    )
    web_auth = _web_auth(deps, group)
    receivers = _alert_receivers(deps, inputs, group)
    stack = kube.release(
        "kube-prometheus-stack",
        ChartName.KUBE_PROMETHEUS_STACK,
        spec.services.monitoring.chart_version,
        deps.platform_namespace_name,
        alerts.with_certificate_report(values.monitoring_values(spec)),
        group,
        (*deps.data, grafana_secret, *web_auth, *receivers),
    )
    # The PrometheusRule CRD comes with the chart.
    kube.apply(f"{name}-certificate-expiry", alerts.certificate_expiry_rule(spec), group, (stack,))
    # The platform's CronJobs (the namespace guardrail reconciler), read by the chart's kube-state-metrics.
    kube.apply(f"{name}-platform-cronjob-rules", alerts.platform_jobs_rule(spec), group, (stack,))
    if cert_manager is not None:  # its certificates' expiry, as Velero's backups (wiring.backups)
        after = (cert_manager, stack)
        cert_manager_monitor = monitoring_values.cert_manager_service_monitor(spec)
        kube.apply(f"{name}-cert-manager-monitor", cert_manager_monitor, group, after)
        kube.apply(f"{name}-cert-manager-rules", alerts.cert_manager_rule(spec), group, after)
    rbac = [
        kube.apply(f"{name}-apps-prometheus-{m['kind'].lower()}", m, group, (namespace,))
        for m in objects.app_prometheus_rbac(spec)
    ]
    kube.apply(f"{name}-apps-prometheus", objects.app_prometheus(spec), group, (stack, *deps.storage, *rbac))
    if monitoring_values.replicas(spec) > 1:
        kube.apply(f"{name}-apps-prometheus-pdb", objects.app_prometheus_pdb(spec), group, (namespace,))
    for m in objects.app_prometheus_exposure(spec):
        # The Ingress needs the ingress controller; the Service only its namespace.
        needs = (namespace, *deps.ingress) if m["kind"] == "Ingress" else (namespace,)
        kube.apply(f"{name}-apps-prometheus-{m['kind'].lower()}", m, group, needs)
    group.done()
    return Monitoring(group=group, releases={"monitoring": stack}, stack=stack)

"""What the platform Prometheus scrapes, which alerts it adds, and where Alertmanager sends them.

Pure functions from the spec to pieces of kube-prometheus-stack 88.5.3 values (merged by
:func:`kaas.services.values.monitoring_values`) and to the Velero chart's rules. Nothing
secret passes through here: receivers' credentials are files Alertmanager reads from the
mounted Secret :data:`RECEIVERS_SECRET` (``alertmanagerSpec.secrets`` mounts each listed
Secret at ``/etc/alertmanager/secrets/<name>/``; Alertmanager's ``*_file`` fields read them).

Targets outside the pod network (every one needs a bind address and a security group
rule, see :mod:`kaas.openstack.security` and :mod:`kaas.bootstrap.userdata`):

- etcd members: the chart's ``kubeEtcd`` with ``endpoints`` = the members' addresses (the
  chart then renders an ``Endpoints`` object instead of a pod selector), plain HTTP on
  etcd's metrics listener; job ``kube-etcd``, which the chart's etcd rules match
  (``job=~".*etcd.*"``).
- the etcd VMs' node exporters: a static scrape job named ``node-exporter``, so the
  chart's node rules (disk, memory, clock) cover them as they cover the Kubernetes nodes,
  and the etcd backup metrics (textfile collector) reach the backup alerts.
- controller manager / scheduler: the chart's defaults (HTTPS 10257/10259 on the static
  pods selected by ``component: <name>``); kube-proxy: 10249 plain HTTP.
"""

from __future__ import annotations

from typing import Any

from kaas.openstack.addressing import plan_addresses
from kaas.platform import ETCD_METRICS_PORT, NODE_EXPORTER_PORT
from kaas.spec.models import AlertReceiver, ClusterSpec, ReceiverKind

Values = dict[str, Any]

RECEIVERS_SECRET = "alertmanager-receivers"
SECRETS_MOUNT = f"/etc/alertmanager/secrets/{RECEIVERS_SECRET}"
NULL_RECEIVER = "null"
DEAD_MANS_SWITCH = "dead-mans-switch"
DEAD_MANS_SWITCH_KEY = "dead-mans-switch"
ETCD_NODE_EXPORTER_JOB = "node-exporter"  # the job name the chart's node-exporter rules select
BACKUP_ALERT_MARGIN_HOURS = 1
VELERO_MAX_AGE_HOURS = 25  # a daily schedule plus a margin


def replicas(spec: ClusterSpec) -> int:
    """Two replicas of each Prometheus and of Alertmanager, one per worker (hard anti-affinity)."""
    return min(2, spec.workers.count)


def deep_merge(base: Values, extra: Values) -> Values:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- Scraping --------------------------------------------------------------------------


def etcd_node_exporter_scrape_config(spec: ClusterSpec) -> Values:
    """The etcd VMs' node exporters (Debian ``prometheus-node-exporter``, installed by cloud-init)."""
    return {
        "job_name": ETCD_NODE_EXPORTER_JOB,
        "static_configs": [
            {
                "targets": [f"{ip}:{NODE_EXPORTER_PORT}" for ip in plan_addresses(spec).etcd],
                "labels": {"tier": "etcd"},
            }
        ],
    }


def scrape_values(spec: ClusterSpec) -> Values:
    return {
        "kubeEtcd": {
            "enabled": True,
            "endpoints": list(plan_addresses(spec).etcd),
            "service": {"enabled": True, "port": ETCD_METRICS_PORT, "targetPort": ETCD_METRICS_PORT},
            "serviceMonitor": {"enabled": True, "scheme": "http"},
        },
        # kubeadm's static pods, bound to every address by kaas.bootstrap.userdata.kubeadm.metrics_listeners.
        "kubeControllerManager": {"enabled": True},
        "kubeScheduler": {"enabled": True},
        # kubeadm's kube-proxy DaemonSet (no CNI here replaces it), metricsBindAddress 0.0.0.0:10249.
        "kubeProxy": {"enabled": True},
        "prometheus": {
            "prometheusSpec": {
                "additionalScrapeConfigs": [etcd_node_exporter_scrape_config(spec)],
                # Rules of every chart in the platform namespaces (Velero's), not only this release's.
                "ruleSelectorNilUsesHelmValues": False,
            }
        },
    }


def ha_values(spec: ClusterSpec) -> Values:
    """Prometheus and Alertmanager survive a node loss: 2 replicas on different nodes, PDBs."""
    n = replicas(spec)
    spread = {"replicas": n, "podAntiAffinity": "hard", "podAntiAffinityTopologyKey": "kubernetes.io/hostname"}
    pdb = {"enabled": n > 1, "minAvailable": 1}
    return {
        "prometheus": {"prometheusSpec": dict(spread), "podDisruptionBudget": pdb},
        "alertmanager": {"alertmanagerSpec": dict(spread), "podDisruptionBudget": dict(pdb)},
    }


# --- Alert routing ---------------------------------------------------------------------


def _secret_file(key: str) -> str:
    return f"{SECRETS_MOUNT}/{key}"


def receiver_config(receiver: AlertReceiver) -> Values:
    """One Alertmanager receiver; its credential is read from the mounted Secret's key ``<name>``."""
    path = _secret_file(receiver.name)
    config: Values
    if receiver.kind is ReceiverKind.WEBHOOK:
        config = {"webhook_configs": [{"url_file": path, "send_resolved": True}]}
    elif receiver.kind is ReceiverKind.PAGERDUTY:
        config = {"pagerduty_configs": [{"routing_key_file": path, "send_resolved": True}]}
    elif receiver.kind is ReceiverKind.OPSGENIE:
        config = {"opsgenie_configs": [{"api_key_file": path, "send_resolved": True}]}
    else:
        email: Values = {
            "to": receiver.email_to,
            "from": receiver.email_from,
            "smarthost": receiver.smarthost,
            "send_resolved": True,
        }
        if receiver.email_username is not None:
            email |= {"auth_username": receiver.email_username, "auth_password_file": path}
        config = {"email_configs": [email]}
    return {"name": receiver.name, **config}


def alertmanager_config(spec: ClusterSpec) -> Values:
    """Alertmanager's configuration: severity routes to the receivers, the Watchdog to the heartbeat.

    The chart's inhibition rules are kept (a critical alert mutes its warnings; the
    ``InfoInhibitor`` mutes info alerts), as is its ``null`` receiver for what nobody
    should be paged for (``InfoInhibitor`` itself, and the Watchdog without a heartbeat).
    """
    alerting = spec.services.monitoring.alerting
    receivers: list[Values] = [{"name": NULL_RECEIVER}]
    routes: list[Values] = []
    watchdog = NULL_RECEIVER
    if alerting.dead_mans_switch is not None:
        watchdog = DEAD_MANS_SWITCH
        receivers.append(
            {
                "name": DEAD_MANS_SWITCH,
                "webhook_configs": [{"url_file": _secret_file(DEAD_MANS_SWITCH_KEY), "send_resolved": False}],
            }
        )
    minutes = alerting.dead_mans_switch.repeat_interval_minutes if alerting.dead_mans_switch else 5
    routes.append(
        {
            "receiver": watchdog,
            "matchers": ['alertname = "Watchdog"'],
            "group_wait": "0s",
            "group_interval": f"{minutes}m",
            "repeat_interval": f"{minutes}m",
        }
    )
    routes.append({"receiver": NULL_RECEIVER, "matchers": ['alertname = "InfoInhibitor"']})
    for receiver in alerting.receivers:
        receivers.append(receiver_config(receiver))
        severities = "|".join(s.value for s in receiver.severities)
        routes.append({"receiver": receiver.name, "matchers": [f'severity =~ "{severities}"'], "continue": True})
    return {
        "global": {"resolve_timeout": "5m"},
        "inhibit_rules": [
            {
                "source_matchers": ['severity = "critical"'],
                "target_matchers": ['severity =~ "warning|info"'],
                "equal": ["namespace", "alertname"],
            },
            {
                "source_matchers": ['severity = "warning"'],
                "target_matchers": ['severity = "info"'],
                "equal": ["namespace", "alertname"],
            },
            {
                "source_matchers": ['alertname = "InfoInhibitor"'],
                "target_matchers": ['severity = "info"'],
                "equal": ["namespace"],
            },
            {"target_matchers": ['alertname = "InfoInhibitor"']},
        ],
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": ["namespace", "alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": routes,
        },
        "receivers": receivers,
        "templates": ["/etc/alertmanager/config/*.tmpl"],
    }


def secret_keys(spec: ClusterSpec) -> dict[str, str]:
    """Key in :data:`RECEIVERS_SECRET` -> the ``kaas`` config secret it holds."""
    alerting = spec.services.monitoring.alerting
    keys = {r.name: r.secret_config for r in alerting.receivers}
    if alerting.dead_mans_switch is not None:
        keys[DEAD_MANS_SWITCH_KEY] = alerting.dead_mans_switch.secret_config
    return keys


def alertmanager_values(spec: ClusterSpec) -> Values:
    mount = {"secrets": [RECEIVERS_SECRET]} if secret_keys(spec) else {}
    return {"alertmanager": {"config": alertmanager_config(spec), "alertmanagerSpec": mount}}


# --- Rules the chart does not ship ------------------------------------------------------


def etcd_backup_rules(spec: ClusterSpec) -> list[Values]:
    """Alerts on the etcd backup script's textfile metrics (kaas/bootstrap/scripts/etcd-backup)."""
    limit_h = spec.etcd_backup.interval_hours + BACKUP_ALERT_MARGIN_HOURS
    selector = f'job="{ETCD_NODE_EXPORTER_JOB}",tier="etcd"'
    return [
        {
            "alert": "EtcdBackupFailed",
            "expr": f"kaas_etcd_backup_last_run_success{{{selector}}} == 0",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The etcd backup failed on {{ $labels.instance }}.",
                "description": "journalctl -u etcd-backup on the member shows why; the next run is at the "
                "next timer tick.",
            },
        },
        {
            "alert": "EtcdBackupTooOld",
            "expr": f"time() - max(kaas_etcd_backup_last_success_timestamp_seconds{{{selector}}}) > {limit_h * 3600}",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": f"No etcd snapshot was uploaded in the last {limit_h} hours.",
                "description": f"Backups run every {spec.etcd_backup.interval_hours} h on the leader.",
            },
        },
        {
            # A fresh cluster uploads its first snapshot within one interval: wait that long.
            "alert": "EtcdBackupMissing",
            "expr": f"absent(kaas_etcd_backup_last_success_timestamp_seconds{{{selector}}})",
            "for": f"{limit_h}h",
            "labels": {"severity": "critical"},
            "annotations": {"summary": f"No etcd member has reported a snapshot upload for {limit_h} hours."},
        },
    ]


def rules_values(spec: ClusterSpec) -> Values:
    return {"additionalPrometheusRulesMap": {"kaas-etcd-backup": {"groups": [
        {"name": "kaas-etcd-backup", "rules": etcd_backup_rules(spec)}
    ]}}}  # fmt: skip


def velero_rules() -> list[Values]:
    """Velero's metrics (pkg/metrics/metrics.go): a failed scheduled backup, or none for a day.

    ``velero_backup_last_successful_timestamp`` is 0 for a schedule that has not succeeded
    yet, so the age rule ignores 0 (a fresh cluster is not late); failures count in
    ``velero_backup_failure_total`` and ``velero_backup_partial_failure_total``.
    """
    return [
        {
            "alert": "VeleroBackupFailed",
            "expr": 'increase(velero_backup_failure_total{schedule!=""}[1h]) > 0',
            "labels": {"severity": "critical"},
            "annotations": {"summary": "Velero backup of schedule {{ $labels.schedule }} failed."},
        },
        {
            "alert": "VeleroBackupPartiallyFailed",
            "expr": 'increase(velero_backup_partial_failure_total{schedule!=""}[1h]) > 0',
            "labels": {"severity": "warning"},
            "annotations": {"summary": "Velero backup of schedule {{ $labels.schedule }} partially failed."},
        },
        {
            "alert": "VeleroBackupTooOld",
            "expr": (
                f'(time() - velero_backup_last_successful_timestamp{{schedule!=""}}) > {VELERO_MAX_AGE_HOURS * 3600}'
                ' and velero_backup_last_successful_timestamp{schedule!=""} > 0'
            ),
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": f"Schedule {{{{ $labels.schedule }}}} has no successful backup for {VELERO_MAX_AGE_HOURS} h."
            },
        },
    ]


VELERO_SELECTOR = {"app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": "velero"}


def velero_service_monitor(spec: ClusterSpec) -> Values:
    """Scrapes the metrics Service the Velero chart renders (``metrics.enabled``, port ``http-monitoring``).

    Our object rather than the chart's ``metrics.serviceMonitor``: that needs the
    monitoring CRDs when Velero installs, which would queue Velero behind
    kube-prometheus-stack; this waits for both instead, and nothing waits for it.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "velero", "namespace": spec.platform_namespace},
        "spec": {
            "selector": {"matchLabels": dict(VELERO_SELECTOR)},
            "namespaceSelector": {"matchNames": [spec.platform_namespace]},
            "endpoints": [{"port": "http-monitoring", "path": "/metrics", "interval": "30s"}],
        },
    }


def velero_prometheus_rule(spec: ClusterSpec) -> Values:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "velero", "namespace": spec.platform_namespace},
        "spec": {"groups": [{"name": "velero", "rules": velero_rules()}]},
    }


# cert-manager v1.21.1's release (kaas.services.component, release name "cert-manager"): its
# chart renders a metrics Service per component when ``prometheus.enabled`` (the default):
# ``cert-manager`` (port ``http-metrics``), ``cert-manager-webhook`` (port ``metrics``) and
# ``cert-manager-cainjector`` (port ``http-metrics``), each 9402 -> the container port named
# ``http-metrics`` (templates/service.yaml, webhook-service.yaml, cainjector-service.yaml).
CERT_MANAGER_RELEASE = "cert-manager"
CERT_MANAGER_COMPONENTS = {"cert-manager": "controller", "webhook": "webhook", "cainjector": "cainjector"}
CERT_MANAGER_JOB = "cert-manager"  # the controller's Service name, which exports the certificate metrics


def cert_manager_service_monitor(spec: ClusterSpec) -> Values:
    """Scrapes cert-manager's controller, webhook and cainjector (the chart's ServiceMonitor, as our object).

    The same selector and endpoint as the chart's ``prometheus.servicemonitor``
    (templates/servicemonitor.yaml: ``targetPort: http-metrics``, since the webhook's Service
    names its port ``metrics``), but created by us for the reason of
    :func:`velero_service_monitor`: the chart's needs the ServiceMonitor CRD when cert-manager
    installs, which would queue cert-manager (and every certificate) behind
    kube-prometheus-stack. No ``jobLabel``: the job is the Service's name (``cert-manager``,
    ``cert-manager-webhook``, ``cert-manager-cainjector``) instead of the chart's bare
    ``webhook``/``cainjector``.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": CERT_MANAGER_RELEASE, "namespace": spec.platform_namespace},
        "spec": {
            "selector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": list(CERT_MANAGER_COMPONENTS)},
                    {"key": "app.kubernetes.io/instance", "operator": "In", "values": [CERT_MANAGER_RELEASE]},
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": list(CERT_MANAGER_COMPONENTS.values()),
                    },
                ]
            },
            "namespaceSelector": {"matchNames": [spec.platform_namespace]},
            "endpoints": [
                {"targetPort": "http-metrics", "path": "/metrics", "interval": "60s", "scrapeTimeout": "30s"}
            ],
        },
    }

"""Certificate expiry alerts: a PrometheusRule that fires 30 days before any platform
certificate expires, and the node-exporter setting that lets Prometheus read the
masters' certificate report.

Sources, each a metric that exists on a kaas cluster:
- ``kaas_certificate_expiry_timestamp_seconds``: written daily by the masters'
  ``kaas-cert-renew`` timer (kubeadm's certificates and kubeconfigs, the CAs, the
  API server's etcd client certificate and every etcd member's serving certificate),
  read through node-exporter's textfile collector (``--collector.textfile.directory``).
- ``apiserver_client_certificate_expiration_seconds``: the API server's histogram of
  the client certificates presented to it (kubelets, controller manager, scheduler,
  the program's admin credential, the break-glass credential).
- ``kubelet_certificate_manager_client_ttl_seconds`` / ``..._server_ttl_seconds``:
  the kubelets' own rotating certificates.

Renewal runs 90 days ahead (kubeadm's certificates) or through a rollout (etcd's: raise
``security.etcd_certificates_generation``, which ``KaasEtcdCertificateRenewalDue`` asks for 90
days ahead), so an alert 30 days ahead means renewal failed and leaves a month to act.

cert-manager's certificates (the ingress hosts' ACME certificates, the platform CA and the
certificates it signs) have their own PrometheusRule, :func:`cert_manager_rule`, on the
controller's metrics (scraped by :func:`kaas.services.monitoring.cert_manager_service_monitor`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from kaas.bootstrap.userdata.nodes import CERT_METRICS_DIR
from kaas.openstack import credentials
from kaas.services import guardrails
from kaas.services.monitoring import CERT_MANAGER_JOB
from kaas.spec.models import ClusterSpec

ALERT_BEFORE_DAYS = 30
ALERT_BEFORE_SECONDS = ALERT_BEFORE_DAYS * 86400
# etcd's certificates renew only through a rollout (kaas.rollout.model.Revision.certificates):
# a warning 90 days ahead leaves room to replace five members and three masters calmly.
ETCD_RENEWAL_DUE_DAYS = 90
# The certificate label the masters' report gives etcd's certificates (kaas-cert-renew.sh.j2).
ETCD_CERTIFICATES = 'certificate=~"etcd-member .*|apiserver-etcd-client.crt"'
PROMETHEUS_STACK_RELEASE = "kube-prometheus-stack"
RULE_NAME = "kaas-certificate-expiry"
CERT_MANAGER_RULE_NAME = "kaas-cert-manager-certificates"
PLATFORM_JOBS_RULE_NAME = "kaas-platform-cronjobs"
# cert-manager renews a certificate at 2/3 of its life by default (ACME: 30 of 90 days left;
# the platform's: renewBefore 720h): two weeks left means renewal has failed for weeks.
CERT_MANAGER_WARNING_DAYS = 14
CERT_MANAGER_CRITICAL_DAYS = 3
# prometheus-node-exporter mounts the host's / at /host/root (hostRootFsMount).
TEXTFILE_DIRECTORY = f"/host/root{CERT_METRICS_DIR}"
# kube-prometheus-stack 88.5.3's own prometheus-node-exporter.extraArgs, kept: setting
# the list replaces the chart's.
_NODE_EXPORTER_DEFAULT_ARGS = (
    "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run/containerd/.+|var/lib/docker/.+"
    "|var/lib/kubelet/.+)($|/)",
    "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs"
    "|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs"
    "|sysfs|tracefs|erofs)$",
)


def _alert(name: str, expr: str, summary: str, for_: str = "1h", severity: str = "warning") -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def certificate_alerts() -> list[dict[str, Any]]:
    soon = ALERT_BEFORE_SECONDS
    return [
        _alert(
            "KaasCertificateExpiresSoon",
            f"kaas_certificate_expiry_timestamp_seconds - time() < {soon}",
            "Certificate {{ $labels.certificate }} (seen from {{ $labels.node }}) expires within "
            f"{ALERT_BEFORE_DAYS} days: its renewal failed.",
        ),
        _alert(
            "KaasEtcdCertificateRenewalDue",
            f"kaas_certificate_expiry_timestamp_seconds{{{ETCD_CERTIFICATES}}} - time() < {ETCD_RENEWAL_DUE_DAYS * 86400}",
            "etcd certificate {{ $labels.certificate }} expires within "
            f"{ETCD_RENEWAL_DUE_DAYS} days and nothing renews it on the nodes: raise "
            "security.etcd_certificates_generation in the stack's spec and run kaas roll (it replaces the etcd "
            "members one at a time, then the masters).",
        ),
        _alert(
            "KaasCertificateReportStale",
            'time() - node_textfile_mtime_seconds{file=~".*certificates.prom"} > 2 * 86400',
            "The certificate check on {{ $labels.instance }} has not run for two days.",
        ),
        _alert(
            "KaasCertificateReportMissing",
            'absent(node_textfile_mtime_seconds{file=~".*certificates.prom"})',
            "No master reports its certificates (kaas-cert-renew.timer or node-exporter's textfile collector).",
            for_="1d",
        ),
        _alert(
            "KaasClientCertificateExpiresSoon",
            'apiserver_client_certificate_expiration_seconds_count{job="apiserver"} > 0 and on (job) '
            'histogram_quantile(0.01, sum by (job, le) (rate(apiserver_client_certificate_expiration_seconds_bucket{job="apiserver"}[5m]))) '
            f"< {soon}",
            f"A client certificate used against the API server expires within {ALERT_BEFORE_DAYS} days.",
        ),
        _alert(
            "KaasKubeletCertificateExpiresSoon",
            f"kubelet_certificate_manager_client_ttl_seconds < {soon} or kubelet_certificate_manager_server_ttl_seconds < {soon}",
            f"The kubelet on {{{{ $labels.node }}}} holds a certificate that expires within {ALERT_BEFORE_DAYS} days.",
        ),
    ]


def _prometheus_rule(spec: ClusterSpec, name: str, group: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """A PrometheusRule; the chart's Prometheus selects rules labelled with its release."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "namespace": spec.platform_namespace,
            "labels": {"app.kubernetes.io/managed-by": spec.provider_name, "release": PROMETHEUS_STACK_RELEASE},
        },
        "spec": {"groups": [{"name": group, "rules": rules}]},
    }


# The in-cluster OpenStack application credentials (cloud controller, Cinder CSI, Velero) all
# expire at one instant the spec fixes (kaas.openstack.credentials.expires_at): a static
# threshold is exact, and the alert needs no metric that could be missing.
CREDENTIALS_WARNING_DAYS = 30
CREDENTIALS_CRITICAL_DAYS = 3


def credentials_expiry_timestamp(spec: ClusterSpec) -> int:
    """The Unix time at which this generation of application credentials expires."""
    at = datetime.datetime.fromisoformat(credentials.expires_at(spec).replace("Z", "+00:00"))
    return int(at.timestamp())


def credential_alerts(spec: ClusterSpec) -> list[dict[str, Any]]:
    expiry = credentials_expiry_timestamp(spec)
    when = credentials.expires_at(spec)
    consumers = ", ".join(c.value for c in credentials.Consumer)
    action = (
        "set identity.credentials_issued to today in the stack's spec and run pulumi up (the next "
        "generation is created before the old one is deleted, and the Secrets follow)"
    )
    return [
        _alert(
            "KaasCloudCredentialsExpireSoon",
            f"vector(time()) > {expiry - CREDENTIALS_WARNING_DAYS * 86400}",
            f"The OpenStack application credentials of {consumers} expire at {when}: {action}.",
        ),
        _alert(
            "KaasCloudCredentialsExpireVerySoon",
            f"vector(time()) > {expiry - CREDENTIALS_CRITICAL_DAYS * 86400}",
            f"The OpenStack application credentials of {consumers} expire at {when} (volumes, load balancers "
            f"and backups stop working then): {action}.",
            for_="10m",
            severity="critical",
        ),
    ]


def certificate_expiry_rule(spec: ClusterSpec) -> dict[str, Any]:
    """Certificates and the cloud credentials: everything of the platform that expires."""
    return _prometheus_rule(spec, RULE_NAME, "kaas-certificates", certificate_alerts() + credential_alerts(spec))


def cert_manager_alerts() -> list[dict[str, Any]]:
    """Alerts on cert-manager's certificate metrics.

    Names and labels from cert-manager pkg/metrics/certificates.go (``UpdateCertificate``)
    and its test pkg/metrics/certificates_test.go:
    ``certmanager_certificate_expiration_timestamp_seconds{name, namespace, issuer_*}`` is the
    certificate's ``status.notAfter`` as a Unix time, **0 before the first issuance** (hence
    ``> 0``; a certificate that never becomes ready is the not-ready alert's);
    ``certmanager_certificate_ready_status{condition="True"|"False"|"Unknown", ...}`` is 1 for
    the Ready condition's current status, 0 for the other two. The certificate's own
    ``namespace`` label meets the scrape target's: Prometheus keeps the target's and renames
    the exported one to ``exported_namespace`` (``honorLabels`` false).
    """
    expiry = "certmanager_certificate_expiration_timestamp_seconds"
    left = f"({expiry} - time())"
    warning_s, critical_s = CERT_MANAGER_WARNING_DAYS * 86400, CERT_MANAGER_CRITICAL_DAYS * 86400
    which = "{{ $labels.exported_namespace }}/{{ $labels.name }}"
    return [
        _alert(
            "CertManagerCertificateExpiresSoon",
            f"{expiry} > 0 and {left} < {warning_s} and {left} >= {critical_s}",
            f"cert-manager certificate {which} expires within {CERT_MANAGER_WARNING_DAYS} days: its renewal "
            "failed (kubectl describe certificate shows why).",
        ),
        _alert(
            "CertManagerCertificateExpiresVerySoon",
            f"{expiry} > 0 and {left} < {critical_s}",
            f"cert-manager certificate {which} expires within {CERT_MANAGER_CRITICAL_DAYS} days.",
            for_="10m",
            severity="critical",
        ),
        _alert(
            "CertManagerCertificateNotReady",
            'certmanager_certificate_ready_status{condition="False"} == 1',
            f"cert-manager certificate {which} has not been Ready for an hour (issuance or renewal fails).",
        ),
        # Without the controller's metrics the alerts above cannot fire: say so.
        _alert(
            "CertManagerAbsent",
            f'absent(up{{job="{CERT_MANAGER_JOB}"}} == 1)',
            "Prometheus has not scraped cert-manager for 30 minutes: certificate expiry is not watched.",
            for_="30m",
        ),
    ]


def cert_manager_rule(spec: ClusterSpec) -> dict[str, Any]:
    return _prometheus_rule(spec, CERT_MANAGER_RULE_NAME, "kaas-cert-manager", cert_manager_alerts())


# --- The platform's own CronJobs ------------------------------------------------------------
#
# Metric names and labels are kube-state-metrics v2.20.0's, the appVersion of the
# kube-state-metrics 8.4.0 subchart that kube-prometheus-stack 88.5.3 ships
# (docs/metrics/workload/cronjob-metrics.md, job-metrics.md; internal/store/cronjob.go, job.go):
# - kube_cronjob_status_last_successful_time{namespace, cronjob}: status.lastSuccessfulTime as a
#   Unix time, absent until the first success (hence ``or kube_cronjob_created``);
# - kube_cronjob_created{namespace, cronjob}, kube_cronjob_info{namespace, cronjob, schedule, ...},
#   kube_cronjob_spec_suspend{namespace, cronjob} (1 when spec.suspend);
# - kube_job_failed{namespace, job_name, condition="true"|"false"|"unknown"}: the Job's Failed
#   condition (backoffLimit or activeDeadlineSeconds exhausted), 1 for its status;
# - kube_job_status_start_time{namespace, job_name}: status.startTime as a Unix time.
# The chart's kube-state-metrics ServiceMonitor has honorLabels: the object's ``namespace`` is kept.
# The CronJob controller names a run's Job ``<cronjob>-<scheduled time in Unix minutes>`` (v1.34.2
# pkg/controller/cronjob/utils.go getJobName; pinned on the real controller in tests/test_job_alerts.py).
# One-off Jobs (OpenSearch's, Harbor's robot) are the chart's default KubeJobFailed's.


@dataclass(frozen=True)
class WatchedCronJob:
    namespace: str
    name: str
    stale_after_seconds: int


def platform_cronjobs(spec: ClusterSpec) -> list[WatchedCronJob]:
    """The CronJobs the program creates, named as their manifests name them."""
    reconciler = guardrails.reconciler_cronjob(spec)["metadata"]
    return [WatchedCronJob(reconciler["namespace"], reconciler["name"], guardrails.STALE_AFTER_SECONDS)]


def cronjob_alerts(cronjob: WatchedCronJob) -> list[dict[str, Any]]:
    """A CronJob that stops succeeding, whose newest run failed, that is suspended, or that is gone."""
    ns, name = cronjob.namespace, cronjob.name
    selector = f'{{namespace="{ns}", cronjob="{name}"}}'
    jobs = f'{{namespace="{ns}", job_name=~"{name}-[0-9]+"'
    # The last success, or the creation when it never succeeded.
    since = f"(kube_cronjob_status_last_successful_time{selector} or kube_cronjob_created{selector})"
    which = f"CronJob {ns}/{name}"
    return [
        _alert(
            "KaasCronJobNotSucceeding",
            f"time() - {since} > {cronjob.stale_after_seconds}",
            f"{which} has not completed a run for {cronjob.stale_after_seconds // 60} minutes "
            f"(kubectl -n {ns} get jobs; its failed Jobs' pod logs say why).",
            for_="15m",
        ),
        # Failed Jobs stay (failedJobsHistoryLimit): only a failure after the last success counts.
        _alert(
            "KaasCronJobFailing",
            f'(kube_job_failed{jobs}, condition="true"}} == 1) and on (namespace, job_name) '
            f"(kube_job_status_start_time{jobs}}} > on (namespace) group_left () max by (namespace) {since})",
            f"Job {{{{ $labels.namespace }}}}/{{{{ $labels.job_name }}}} of {which} failed and no run "
            "succeeded since (kubectl logs job/{{ $labels.job_name }}).",
            for_="10m",
        ),
        _alert(
            "KaasCronJobSuspended",
            f"kube_cronjob_spec_suspend{selector} == 1",
            f"{which} is suspended: it does not run.",
            for_="1h",
        ),
        _alert(
            "KaasCronJobMissing",
            f"absent(kube_cronjob_info{selector})",
            f"{which} does not exist (or kube-state-metrics is not scraped).",
            for_="30m",
        ),
    ]


def platform_jobs_rule(spec: ClusterSpec) -> dict[str, Any]:
    rules = [rule for cronjob in platform_cronjobs(spec) for rule in cronjob_alerts(cronjob)]
    return _prometheus_rule(spec, PLATFORM_JOBS_RULE_NAME, "kaas-platform-cronjobs", rules)


def node_exporter_textfile_values() -> dict[str, Any]:
    """kube-prometheus-stack values: node-exporter reads the masters' certificate report."""
    return {
        "prometheus-node-exporter": {
            "extraArgs": [*_NODE_EXPORTER_DEFAULT_ARGS, f"--collector.textfile.directory={TEXTFILE_DIRECTORY}"]
        }
    }


def with_certificate_report(release_values: dict[str, Any]) -> dict[str, Any]:
    """``release_values`` with node-exporter reading the certificate report; extra arguments are appended."""
    exporter = dict(release_values.get("prometheus-node-exporter", {}))
    args = list(exporter.get("extraArgs", _NODE_EXPORTER_DEFAULT_ARGS))
    wanted = node_exporter_textfile_values()["prometheus-node-exporter"]["extraArgs"]
    exporter["extraArgs"] = args + [a for a in wanted if a not in args]
    return {**release_values, "prometheus-node-exporter": exporter}

"""The platform watches itself: metrics listeners on the nodes, alert routing, HA, backup alerts.

What the rendered charts make of these values (targets, rules, objects) is proven with
real Helm in tests/test_helm_render.py; here: the spec, the node configuration, the
plan's secrets and the pure values.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import yaml

from kaas import platform
from kaas.bootstrap import cloudinit
from kaas.offline import Plan, Secret, plan_spec, plan_stack, render, run_plan
from kaas.offline.plan import OFFLINE_SECRET
from kaas.program import main
from kaas.services import monitoring, values
from kaas.spec import SpecError, load_stack_spec
from tests.bootstrap_fixtures import bootstrap_plan
from tests.helpers import make_spec

SECRET_TYPE = "kubernetes:core/v1:Secret"
RELEASE = "kubernetes:helm.sh/v3:Release"
PAGER = {"name": "oncall", "kind": "pagerduty", "secret_config": "pagerKey", "severities": ["critical"]}
HOOK = {"name": "chat", "kind": "webhook", "secret_config": "chatUrl", "severities": ["warning", "info"]}


def _alerting(**alerting: Any) -> Any:
    return make_spec(services={"monitoring": {"alerting": alerting}})


@functools.cache
def acme() -> Plan:
    return plan_stack("acme-prod")


# --- etcd and node configuration ----------------------------------------------------------


def _files(text: str) -> dict[str, str]:
    doc = yaml.safe_load(text)
    return {f["path"]: f["content"] for f in doc["write_files"]}


def test_etcd_metrics_listener_is_plain_http_on_the_node_address_and_loopback() -> None:
    member = cloudinit.EtcdMember("m0", "10.0.0.16")
    config = cloudinit.etcd_config(member, [member], "token")
    # etcd --listen-metrics-urls: a second listener that serves only /metrics and /health.
    assert config["listen-metrics-urls"] == "http://10.0.0.16:2381,http://127.0.0.1:2381"
    assert config["listen-client-urls"].startswith("https://")
    assert member.metrics_port == platform.ETCD_METRICS_PORT


def test_every_etcd_vm_installs_and_configures_the_node_exporter() -> None:
    bp = bootstrap_plan("acme-prod")
    texts = bp.texts("etcdUserData")
    assert len(texts) == bp.spec.etcd.count
    for text in texts:
        doc = yaml.safe_load(text)
        assert "prometheus-node-exporter" in doc["packages"]
        files = _files(text)
        args = files[cloudinit.NODE_EXPORTER_DEFAULTS_PATH]
        assert "--web.listen-address=:9100" in args
        assert f"--collector.textfile.directory={platform.NODE_EXPORTER_TEXTFILE_DIR}" in args
        # The backup script writes its metrics where that collector reads.
        env = files[cloudinit.BACKUP_ENV_PATH]
        assert f'METRICS_FILE="{platform.NODE_EXPORTER_TEXTFILE_DIR}/etcd-backup.prom"' in env
        config = yaml.safe_load(files[cloudinit.ETCD_CONFIG_PATH])
        node_ip = config["advertise-client-urls"].split("//")[1].split(":")[0]
        assert f"http://{node_ip}:2381" in config["listen-metrics-urls"].split(",")


def test_control_plane_metrics_listen_beyond_loopback() -> None:
    bp = bootstrap_plan("acme-prod")
    first = _files(bp.texts("masterUserData")[0])[cloudinit.KUBEADM_CONFIG_PATH]
    docs = {d["kind"]: d for d in yaml.safe_load_all(first)}
    cluster = docs["ClusterConfiguration"]
    # kubeadm's defaults are --bind-address=127.0.0.1 (static pod manifests) and
    # metricsBindAddress 127.0.0.1:10249 (kube-proxy); Prometheus on a worker could reach neither.
    for component in ("controllerManager", "scheduler"):
        assert {"name": "bind-address", "value": "0.0.0.0"} in cluster[component]["extraArgs"]
    proxy = docs["KubeProxyConfiguration"]
    assert proxy["apiVersion"] == "kubeproxy.config.k8s.io/v1alpha1"
    assert proxy["metricsBindAddress"] == "0.0.0.0:10249"


# --- Scrape values ------------------------------------------------------------------------


def test_kube_etcd_endpoints_are_the_planned_etcd_members() -> None:
    spec = load_stack_spec("acme-prod")
    stack = values.monitoring_values(spec)
    etcd = stack["kubeEtcd"]
    assert etcd["endpoints"] == ["10.20.0.16", "10.20.0.17", "10.20.0.18", "10.20.0.19", "10.20.0.20"]
    assert etcd["service"]["port"] == etcd["service"]["targetPort"] == 2381
    assert etcd["serviceMonitor"]["scheme"] == "http"
    (job,) = stack["prometheus"]["prometheusSpec"]["additionalScrapeConfigs"]
    assert job["job_name"] == "node-exporter"
    assert job["static_configs"][0]["targets"] == [f"{ip}:9100" for ip in etcd["endpoints"]]


# --- HA -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "expected"), [(3, 2), (2, 2), (1, 1)])
def test_monitoring_runs_two_replicas_spread_over_nodes(workers: int, expected: int) -> None:
    spec = make_spec(environment="demo", workers={"count": workers})
    stack = values.monitoring_values(spec)
    for part in (stack["prometheus"]["prometheusSpec"], stack["alertmanager"]["alertmanagerSpec"]):
        assert part["replicas"] == expected
        assert part["podAntiAffinity"] == "hard"
    assert stack["prometheus"]["podDisruptionBudget"]["enabled"] is (expected > 1)
    apps = values.app_prometheus_spec(spec)
    assert apps["replicas"] == expected
    term = apps["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_apps_prometheus_has_a_disruption_budget_in_the_plan() -> None:
    plan = acme()
    pdb = plan.find("kubernetes:policy/v1:PodDisruptionBudget", "acme-prod-apps-prometheus-pdb")
    assert pdb.inputs["spec"]["minAvailable"] == 1
    assert pdb.inputs["spec"]["selector"]["matchLabels"] == {"prometheus": "apps"}


# --- Alert routing --------------------------------------------------------------------------


def test_receivers_are_validated() -> None:
    with pytest.raises(SpecError, match="email_to, email_from and smarthost"):
        _alerting(receivers=[{"name": "m", "kind": "email", "secret_config": "k"}])
    with pytest.raises(SpecError, match="unique"):
        _alerting(receivers=[PAGER, PAGER])
    with pytest.raises(SpecError, match="reserved"):
        _alerting(receivers=[{**PAGER, "name": "null"}])
    with pytest.raises(SpecError, match="email_\\* and smarthost are for email receivers"):
        _alerting(receivers=[{**PAGER, "email_to": "a@b"}])


def test_alerts_route_by_severity_and_the_watchdog_goes_to_the_heartbeat() -> None:
    spec = _alerting(receivers=[PAGER, HOOK], dead_mans_switch={"secret_config": "hb", "repeat_interval_minutes": 2})
    config = monitoring.alertmanager_config(spec)
    route = config["route"]
    assert route["receiver"] == "null"
    watchdog, inhibitor, pager, hook = route["routes"]
    assert watchdog["matchers"] == ['alertname = "Watchdog"'] and watchdog["receiver"] == "dead-mans-switch"
    assert watchdog["repeat_interval"] == "2m"
    assert inhibitor["receiver"] == "null"
    assert pager == {"receiver": "oncall", "matchers": ['severity =~ "critical"'], "continue": True}
    assert hook["matchers"] == ['severity =~ "warning|info"']
    receivers = {r["name"]: r for r in config["receivers"]}
    mount = "/etc/alertmanager/secrets/alertmanager-receivers"
    assert receivers["oncall"]["pagerduty_configs"] == [{"routing_key_file": f"{mount}/oncall", "send_resolved": True}]
    assert receivers["chat"]["webhook_configs"][0]["url_file"] == f"{mount}/chat"
    assert receivers["dead-mans-switch"]["webhook_configs"][0]["url_file"] == f"{mount}/dead-mans-switch"
    assert monitoring.alertmanager_values(spec)["alertmanager"]["alertmanagerSpec"] == {
        "secrets": ["alertmanager-receivers"]
    }


def test_without_a_heartbeat_the_watchdog_goes_to_the_null_receiver() -> None:
    config = monitoring.alertmanager_config(_alerting(receivers=[PAGER]))
    assert config["route"]["routes"][0]["receiver"] == "null"
    assert "dead-mans-switch" not in {r["name"] for r in config["receivers"]}


def test_receiver_credentials_are_pulumi_secrets_and_never_in_the_values() -> None:
    plan = acme()
    secret = plan.find(SECRET_TYPE, "acme-prod-alertmanager-receivers")
    data = secret.inputs["stringData"]
    assert isinstance(data, Secret)  # the whole stringData is secret in the plan (and in the state)
    assert render.plain(data, show_secrets=True) == {
        "oncall": f"{OFFLINE_SECRET}:alertingPagerdutyRoutingKey",
        "ops-mail": f"{OFFLINE_SECRET}:alertingSmtpPassword",
        "dead-mans-switch": f"{OFFLINE_SECRET}:alertingHeartbeatUrl",
    }
    stack = plan.find(RELEASE, "kube-prometheus-stack")
    assert OFFLINE_SECRET not in repr(stack.inputs["values"])
    assert secret.urn in stack.dependencies  # mounted before Alertmanager starts
    email = next(r for r in stack.inputs["values"]["alertmanager"]["config"]["receivers"] if r["name"] == "ops-mail")
    assert email["email_configs"][0]["auth_password_file"].endswith("/ops-mail")


def test_pulumi_up_without_a_receiver_secret_fails_naming_the_config_key() -> None:
    # program.main as `pulumi up -s acme-prod` runs it, with no kaas:alerting* config set.
    with pytest.raises(Exception, match="alertingPagerdutyRoutingKey"):
        run_plan(main, stack="acme-prod")


def test_no_receiver_secret_without_alerting() -> None:
    plan = plan_spec(make_spec(environment="demo"))
    assert not [r for r in plan.by_type(SECRET_TYPE) if r.name.endswith("alertmanager-receivers")]
    stack = plan.find(RELEASE, "kube-prometheus-stack").inputs["values"]
    assert "secrets" not in stack["alertmanager"]["alertmanagerSpec"]


# --- Backup rules ---------------------------------------------------------------------------


def test_etcd_backup_alert_thresholds_follow_the_backup_interval() -> None:
    spec = make_spec(etcd_backup={"interval_hours": 6})
    rules = {r["alert"]: r for r in monitoring.etcd_backup_rules(spec)}
    assert set(rules) == {"EtcdBackupFailed", "EtcdBackupTooOld", "EtcdBackupMissing"}
    assert rules["EtcdBackupTooOld"]["expr"].endswith(f"> {7 * 3600}")
    assert rules["EtcdBackupMissing"]["for"] == "7h"
    assert "kaas_etcd_backup_last_run_success" in rules["EtcdBackupFailed"]["expr"]


def test_velero_is_scraped_and_alerted_only_with_monitoring() -> None:
    on = values.velero_values(make_spec())["metrics"]
    assert on["serviceMonitor"] == {"enabled": True, "autodetect": False}
    assert {r["alert"] for r in on["prometheusRule"]["spec"]} == {
        "VeleroBackupFailed",
        "VeleroBackupPartiallyFailed",
        "VeleroBackupTooOld",
    }
    off = values.velero_values(make_spec(environment="demo", services={"monitoring": {"enabled": False}}))
    assert off["metrics"] == {"enabled": True}

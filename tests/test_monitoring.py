"""The platform watches itself: metrics listeners on the nodes, alert routing, HA, backup alerts.

What the rendered charts make of these values (targets, rules, objects) is proven with
real Helm in tests/test_helm_render.py; here: the spec, the node configuration, the
plan's secrets and the pure values.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaas import platform
from kaas.bootstrap.userdata.etcd import (
    BACKUP_ENV_PATH,
    ETCD_CONFIG_PATH,
    NODE_EXPORTER_DEFAULTS_PATH,
    RSYSLOG_FORWARD_PATH,
    EtcdMember,
    etcd_config,
    rsyslog_forward_config,
)
from kaas.bootstrap.userdata.kubeadm import KUBEADM_CONFIG_PATH
from kaas.offline import Plan, Secret, plan_spec, plan_stack, planfile
from kaas.offline.engine import run_project
from kaas.offline.plan import OFFLINE_SECRET
from kaas.openstack.addressing import plan_addresses
from kaas.openstack.security import Role, security_rules
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
    member = EtcdMember("m0", "10.0.0.16")
    config = etcd_config(member, [member], "token")
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
        args = files[NODE_EXPORTER_DEFAULTS_PATH]
        assert "--web.listen-address=:9100" in args
        assert f"--collector.textfile.directory={platform.NODE_EXPORTER_TEXTFILE_DIR}" in args
        # The backup script writes its metrics where that collector reads.
        env = files[BACKUP_ENV_PATH]
        assert f'METRICS_FILE="{platform.NODE_EXPORTER_TEXTFILE_DIR}/etcd-backup.prom"' in env
        config = yaml.safe_load(files[ETCD_CONFIG_PATH])
        node_ip = config["advertise-client-urls"].split("//")[1].split(":")[0]
        assert f"http://{node_ip}:2381" in config["listen-metrics-urls"].split(",")


def test_control_plane_metrics_listen_beyond_loopback() -> None:
    bp = bootstrap_plan("acme-prod")
    first = _files(bp.texts("masterUserData")[0])[KUBEADM_CONFIG_PATH]
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
    assert planfile.plain(data, show_secrets=True) == {
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
    # __main__.py as `pulumi up -s acme-prod` runs it, with no kaas:alerting* config set.
    with pytest.raises(Exception, match="alertingPagerdutyRoutingKey"):
        run_project("acme-prod")


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
    custom = "kubernetes:monitoring.coreos.com/v1:"
    on = plan_spec(make_spec(environment="demo"))
    monitor = on.find(custom + "ServiceMonitor", "t1-velero-monitor").inputs
    assert monitor["spec"]["endpoints"][0]["port"] == "http-monitoring"
    rules = on.find(custom + "PrometheusRule", "t1-velero-rules").inputs["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {"VeleroBackupFailed", "VeleroBackupPartiallyFailed", "VeleroBackupTooOld"}
    off = plan_spec(make_spec(environment="demo", services={"monitoring": {"enabled": False}}))
    assert not [r for r in off.resources if r.type.startswith(custom)]
    assert values.velero_values(make_spec(), "checksum")["metrics"] == {"enabled": True}


# --- etcd nodes' logs ------------------------------------------------------------------------

# Fluent Bit conf/parsers.conf, parser "syslog-rfc5424" (the one fluent_bit_inputs names), in
# Python's named-group syntax.
FLUENT_BIT_RFC5424 = re.compile(
    r"^\<(?P<pri>[0-9]{1,5})\>1 (?P<time>[^ ]+) (?P<host>[^ ]+) (?P<ident>[^ ]+) (?P<pid>[-0-9]+) "
    r"(?P<msgid>[^ ]+) (?P<extradata>(\[(.*?)\]|-)) (?P<message>.+)$"
)


def test_etcd_nodes_forward_their_logs_to_the_first_workers_fluent_bit() -> None:
    bp = bootstrap_plan("acme-prod")
    workers = plan_addresses(bp.spec).workers
    for text in bp.texts("etcdUserData"):
        assert "rsyslog" in yaml.safe_load(text)["packages"]
        config = _files(text)[RSYSLOG_FORWARD_PATH]
        assert re.findall(r'target="([^"]+)" port="(\d+)"', config) == [
            (workers[0], "30514"),
            (workers[1], "30514"),
        ]
    # Without logging nothing is forwarded (dev disables it).
    for text in bootstrap_plan("dev").texts("etcdUserData"):
        assert RSYSLOG_FORWARD_PATH not in _files(text)


def test_adding_workers_leaves_the_etcd_user_data_alone() -> None:
    three = bootstrap_plan("acme-prod").texts("etcdUserData")
    spec = load_stack_spec("acme-prod")
    bigger = spec.model_copy(update={"workers": spec.workers.model_copy(update={"count": 7})})
    targets = plan_addresses(bigger).workers[: platform.ETCD_LOG_TARGETS]
    assert targets == plan_addresses(spec).workers[: platform.ETCD_LOG_TARGETS]
    assert all(rsyslog_forward_config(targets) in _files(t)[RSYSLOG_FORWARD_PATH] for t in three)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_real_rsyslog_forwards_in_the_format_fluent_bits_parser_reads(tmp_path: Path) -> None:
    """rsyslogd runs the generated forwarding rules: the first target is down, the fallback receives."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(1)  # re-send until rsyslogd is up (UDP before it listens is lost)
    port = listener.getsockname()[1]
    udp = _free_port(socket.SOCK_DGRAM)
    dead = "127.0.0.2"  # nothing listens there: the primary action suspends
    config = tmp_path / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{tmp_path}")\n'
        'module(load="imudp")\n'
        f'input(type="imudp" address="127.0.0.1" port="{udp}")\n'
        + rsyslog_forward_config([dead, "127.0.0.1"], port=port)
    )
    check = subprocess.run(["rsyslogd", "-N1", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    daemon = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(config), "-i", str(tmp_path / "rsyslogd.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        received = b""
        deadline = time.monotonic() + 20
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            while b"\n" not in received and time.monotonic() < deadline:
                sender.sendto(
                    b"<30>Dec  1 10:00:00 acme-prod-etcd-0 etcd[4242]: slow fdatasync took 1.2s", ("127.0.0.1", udp)
                )
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                connection.settimeout(10)
                with connection:
                    while b"\n" not in received:
                        chunk = connection.recv(4096)
                        if not chunk:
                            break
                        received += chunk
        line = received.split(b"\n")[0].decode()
        parsed = FLUENT_BIT_RFC5424.match(line)
        assert parsed, line
        assert parsed["host"] == "acme-prod-etcd-0" and parsed["ident"] == "etcd" and parsed["pid"] == "4242"
        assert parsed["message"].strip() == "slow fdatasync took 1.2s"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        listener.close()


def test_fluent_bit_listens_for_the_etcd_nodes_on_the_node_port() -> None:
    from tests.render_fixtures import rendered

    objects = rendered("acme-prod", "fluent-bit")
    (service,) = [o for o in objects if o["kind"] == "Service"]
    syslog = next(p for p in service["spec"]["ports"] if p["name"] == "syslog")
    assert syslog["nodePort"] == platform.ETCD_LOG_NODE_PORT and service["spec"]["type"] == "NodePort"
    (daemon_set,) = [o for o in objects if o["kind"] == "DaemonSet"]
    ports = {
        p["name"]: p["containerPort"] for c in daemon_set["spec"]["template"]["spec"]["containers"] for p in c["ports"]
    }
    assert ports["syslog"] == platform.FLUENT_BIT_SYSLOG_PORT
    config = "\n".join(next(o for o in objects if o["kind"] == "ConfigMap")["data"].values())
    assert f"Port {platform.FLUENT_BIT_SYSLOG_PORT}" in config and "Parser syslog-rfc5424" in config
    # The planned security groups: NodePorts on the workers are open to the node subnet, where the etcd VMs are.
    rows = [r for r in security_rules(load_stack_spec("acme-prod")) if r.group is Role.WORKER and r.covers(30514)]
    etcd = plan_addresses(load_stack_spec("acme-prod")).etcd
    assert any(
        r.protocol == "tcp"
        and r.remote_cidr
        and all(ipaddress.ip_address(ip) in ipaddress.ip_network(r.remote_cidr) for ip in etcd)
        for r in rows
    )

"""The certificate expiry alert: valid for the CRD, selected by the chart's Prometheus,
its expressions parsed by a PromQL parser, and its data source wired.

The planned kube-prometheus-stack release is rendered by real ``helm template``
(``tests/helm.py``): the PrometheusRule is checked against the CRD's own schema from
that chart, the rendered ``Prometheus`` must select it (``ruleSelector`` matchLabels
``release: <release name>`` when ``ruleSelectorNilUsesHelmValues``, templates/
prometheus/prometheus.yaml; ``ruleNamespaceSelector`` matching the platform
namespace's labels), and the rendered node-exporter DaemonSet must read the
directory the masters' renewal timer writes (host / mounted at ``/host/root``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import promql_parser
import pytest

from kaas.bootstrap.cloudinit import CERT_METRICS_DIR
from kaas.offline import Plan, ResourceRecord
from kaas.offline.plan import plan_spec
from kaas.offline.planfile import plain
from kaas.services import alerts, objects
from tests.helm import render_release
from tests.helpers import make_spec

RELEASE = "kubernetes:helm.sh/v3:Release"


@cache
def plan() -> Plan:
    return plan_spec(make_spec())


def rule_record() -> ResourceRecord:
    [record] = [r for r in plan().resources if r.name == "t1-certificate-expiry"]
    return record


def rule_manifest() -> dict[str, Any]:
    record = rule_record()
    inputs = plain(record.inputs, show_secrets=True)
    return {"apiVersion": inputs["apiVersion"], "kind": inputs["kind"], **inputs}


@cache
def rendered_stack() -> list[dict[str, Any]]:
    [release] = [r for r in plan().by_type(RELEASE) if r.name == alerts.PROMETHEUS_STACK_RELEASE]
    return render_release(release)


def test_every_alert_expression_parses_and_every_alert_fires_30_days_ahead() -> None:
    rules = rule_manifest()["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {
        "KaasCertificateExpiresSoon",
        "KaasClientCertificateExpiresSoon",
        "KaasKubeletCertificateExpiresSoon",
        "KaasCertificateReportStale",
    }
    for rule in rules:
        promql_parser.parse(rule["expr"])  # raises on a syntax error
        if rule["alert"].endswith("ExpiresSoon"):
            assert str(30 * 86400) in rule["expr"], rule["alert"]
    with pytest.raises(ValueError):
        promql_parser.parse("kaas_certificate_expiry_timestamp_seconds - time( < 1")


def test_rule_is_valid_for_the_charts_prometheusrule_crd() -> None:
    [crd] = [
        m
        for m in rendered_stack()
        if m.get("kind") == "CustomResourceDefinition"
        and m["metadata"]["name"] == "prometheusrules.monitoring.coreos.com"
    ]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    # Not jsonschema.validate: it checks the schema's own patterns as Python regexes, and
    # the CRD's are Go's ("^(?i)(abort|warn)?$").
    validator = jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])
    manifest = rule_manifest()
    validator.validate(manifest)
    broken = {**manifest, "spec": {"groups": [{"rules": manifest["spec"]["groups"][0]["rules"]}]}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)  # a group without its name


def test_the_charts_prometheus_selects_the_rule() -> None:
    [prometheus] = [m for m in rendered_stack() if m.get("kind") == "Prometheus"]
    spec = prometheus["spec"]
    labels = rule_manifest()["metadata"]["labels"]
    assert spec["ruleSelector"].get("matchLabels", {}).items() <= labels.items()
    namespace_labels = objects.platform_namespace(make_spec())["metadata"]["labels"]
    assert spec["ruleNamespaceSelector"]["matchLabels"].items() <= namespace_labels.items()
    assert rule_manifest()["metadata"]["namespace"] == make_spec().platform_namespace
    assert rule_record().dependencies and any(alerts.PROMETHEUS_STACK_RELEASE in d for d in rule_record().dependencies)


def test_node_exporter_reads_the_masters_certificate_report() -> None:
    [daemonset] = [
        m for m in rendered_stack() if m.get("kind") == "DaemonSet" and "node-exporter" in m["metadata"]["name"]
    ]
    pod = daemonset["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == "node-exporter"]
    assert f"--collector.textfile.directory=/host/root{CERT_METRICS_DIR}" in container["args"]
    assert any(m["mountPath"] == "/host/root" for m in container["volumeMounts"])
    # The chart's own arguments survive (setting extraArgs replaces the chart's list).
    assert any(a.startswith("--collector.filesystem.mount-points-exclude=") for a in container["args"])
    # Masters are tainted: the DaemonSet must tolerate them to read their report.
    assert any(t.get("operator") == "Exists" and t.get("effect") == "NoSchedule" for t in pod.get("tolerations", []))


def test_extra_node_exporter_arguments_are_kept() -> None:
    merged = alerts.with_certificate_report({"prometheus-node-exporter": {"extraArgs": ["--collector.systemd"]}})
    assert merged["prometheus-node-exporter"]["extraArgs"][0] == "--collector.systemd"
    assert merged["prometheus-node-exporter"]["extraArgs"][-1].startswith("--collector.textfile.directory=")

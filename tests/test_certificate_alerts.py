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

import datetime
from functools import cache
from typing import Any

import jsonschema
import promql_parser
import pytest

from kaas.bootstrap.userdata.nodes import CERT_METRICS_DIR
from kaas.offline import Plan, ResourceRecord
from kaas.offline.plan import plan_spec
from kaas.offline.planfile import plain
from kaas.openstack import credentials
from kaas.services import alerts, objects
from tests.helm import render_release
from tests.helpers import make_spec, promql_selectors

RELEASE = "kubernetes:helm.sh/v3:Release"


@cache
def plan() -> Plan:
    return plan_spec(make_spec())


def rule_record(name: str = "t1-certificate-expiry") -> ResourceRecord:
    [record] = [r for r in plan().resources if r.name == name]
    return record


def rule_manifest(name: str = "t1-certificate-expiry") -> dict[str, Any]:
    record = rule_record(name)
    inputs = plain(record.inputs, show_secrets=True)
    return {"apiVersion": inputs["apiVersion"], "kind": inputs["kind"], **inputs}


CERT_MANAGER_RULES = "t1-cert-manager-rules"


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


@pytest.mark.parametrize("name", ["t1-certificate-expiry", CERT_MANAGER_RULES])
def test_rule_is_valid_for_the_charts_prometheusrule_crd(name: str) -> None:
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
    manifest = rule_manifest(name)
    validator.validate(manifest)
    broken = {**manifest, "spec": {"groups": [{"rules": manifest["spec"]["groups"][0]["rules"]}]}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)  # a group without its name


@pytest.mark.parametrize("name", ["t1-certificate-expiry", CERT_MANAGER_RULES])
def test_the_charts_prometheus_selects_the_rule(name: str) -> None:
    [prometheus] = [m for m in rendered_stack() if m.get("kind") == "Prometheus"]
    spec = prometheus["spec"]
    labels = rule_manifest(name)["metadata"]["labels"]
    assert spec["ruleSelector"].get("matchLabels", {}).items() <= labels.items()
    namespace_labels = objects.platform_namespace(make_spec())["metadata"]["labels"]
    assert spec["ruleNamespaceSelector"]["matchLabels"].items() <= namespace_labels.items()
    assert rule_manifest(name)["metadata"]["namespace"] == make_spec().platform_namespace
    dependencies = rule_record(name).dependencies
    assert dependencies and any(alerts.PROMETHEUS_STACK_RELEASE in d for d in dependencies)


# --- cert-manager's certificates ---------------------------------------------------------
#
# cert-manager pkg/metrics/certificates.go (UpdateCertificate) and pkg/metrics/certificates_test.go:
# the metrics the controller exports per Certificate, with these labels.
CERT_MANAGER_METRICS = {
    "certmanager_certificate_expiration_timestamp_seconds": {"name", "namespace", "issuer_name", "issuer_kind",
                                                             "issuer_group"},
    "certmanager_certificate_ready_status": {"name", "namespace", "condition", "issuer_name", "issuer_kind",
                                             "issuer_group"},
    "up": {"job"},  # Prometheus' own series per target
}  # fmt: skip


def _cert_manager_rules() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in rule_manifest(CERT_MANAGER_RULES)["spec"]["groups"][0]["rules"]}


def test_cert_manager_alerts_read_the_metrics_cert_manager_exports() -> None:
    rules = _cert_manager_rules()
    assert set(rules) == {
        "CertManagerCertificateExpiresSoon",
        "CertManagerCertificateExpiresVerySoon",
        "CertManagerCertificateNotReady",
        "CertManagerAbsent",
    }
    for name, rule in rules.items():
        selectors = promql_selectors(promql_parser.parse(rule["expr"]))
        assert selectors, name
        for selector in selectors:
            assert selector.name in CERT_MANAGER_METRICS, (name, selector.name)
            for matcher in selector.matchers.matchers:
                assert matcher.name in CERT_MANAGER_METRICS[selector.name], (name, matcher.name)
    # The certificate's namespace arrives as exported_namespace (honorLabels false: the target's wins).
    assert "exported_namespace" in rules["CertManagerCertificateNotReady"]["annotations"]["summary"]


def test_cert_manager_expiry_alerts_fire_14_and_3_days_ahead_and_ignore_unissued_certificates() -> None:
    rules = _cert_manager_rules()
    soon, very_soon = rules["CertManagerCertificateExpiresSoon"], rules["CertManagerCertificateExpiresVerySoon"]
    assert (soon["labels"]["severity"], very_soon["labels"]["severity"]) == ("warning", "critical")
    assert f"< {14 * 86400}" in soon["expr"] and f">= {3 * 86400}" in soon["expr"]  # no warning beside the critical
    assert f"< {3 * 86400}" in very_soon["expr"]
    for rule in (soon, very_soon):
        # The expiry is 0 until the first issuance; `and` binds looser than the comparisons.
        expr = promql_parser.parse(rule["expr"])
        while isinstance(expr, promql_parser.BinaryExpr) and str(expr.op) == "and":
            expr = expr.lhs
        assert str(expr) == "certmanager_certificate_expiration_timestamp_seconds{} > 0", rule["expr"]


def test_cert_manager_not_ready_fires_only_when_sustained() -> None:
    rules = _cert_manager_rules()
    not_ready = rules["CertManagerCertificateNotReady"]
    assert 'condition="False"' in not_ready["expr"] and not_ready["for"] == "1h"
    assert rules["CertManagerAbsent"]["for"] == "30m"


def test_cert_manager_monitor_and_rules_wait_for_both_releases() -> None:
    for name in ("t1-cert-manager-monitor", CERT_MANAGER_RULES):
        dependencies = rule_record(name).dependencies
        assert any(d.endswith("::cert-manager") for d in dependencies), dependencies
        assert any(d.endswith("::" + alerts.PROMETHEUS_STACK_RELEASE) for d in dependencies), dependencies
    # And the cert-manager release does not wait for monitoring (the reason they are our objects).
    [release] = [r for r in plan().by_type(RELEASE) if r.name == "cert-manager"]
    assert not any(alerts.PROMETHEUS_STACK_RELEASE in d for d in release.dependencies)


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


def _threshold(expr: str) -> float:
    """``vector(time()) > N``: the instant N after which the alert's vector is not empty."""
    node = promql_parser.parse(expr)
    assert isinstance(node, promql_parser.BinaryExpr) and str(node.op) == ">"
    assert isinstance(node.lhs, promql_parser.Call) and node.lhs.func.name == "vector"
    assert isinstance(node.rhs, promql_parser.NumberLiteral)
    return float(node.rhs.val)


@pytest.mark.parametrize("issued", ["2026-12-01", "2027-06-15"])
def test_cloud_credentials_alert_30_and_3_days_before_the_spec_says_they_expire(issued: str) -> None:
    spec = make_spec(identity={"initial_admin_user": "admin", "credentials_issued": issued})
    # The instant Keystone ends them: the expires_at the program gives every application credential.
    expiry = datetime.datetime.fromisoformat(credentials.expires_at(spec)).timestamp()
    assert (
        expiry
        == (datetime.datetime.fromisoformat(issued) + datetime.timedelta(days=spec.identity.credential_lifetime_days))
        .replace(tzinfo=datetime.UTC)
        .timestamp()
    )
    rules = {r["alert"]: r for r in alerts.certificate_expiry_rule(spec)["spec"]["groups"][0]["rules"]}
    warning, critical = rules["KaasCloudCredentialsExpireSoon"], rules["KaasCloudCredentialsExpireVerySoon"]
    assert _threshold(warning["expr"]) == expiry - 30 * 86400
    assert _threshold(critical["expr"]) == expiry - 3 * 86400
    assert critical["labels"]["severity"] == "critical"
    assert credentials.expires_at(spec) in warning["annotations"]["summary"]
    assert "identity.credentials_issued" in warning["annotations"]["summary"]


def test_the_planned_rule_carries_the_credential_alerts() -> None:
    rules = {r["alert"] for r in rule_manifest()["spec"]["groups"][0]["rules"]}
    assert {"KaasCloudCredentialsExpireSoon", "KaasCloudCredentialsExpireVerySoon"} <= rules

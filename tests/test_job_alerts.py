"""The platform's CronJobs raise alerts: a PrometheusRule on kube-state-metrics' CronJob and
Job metrics, valid for the chart's CRD, selected by the chart's Prometheus, reading only the
series kube-state-metrics exports, for the CronJobs the plan actually creates.

The planned kube-prometheus-stack release is rendered by real ``helm template``
(``tests/helm.py``), as in tests/test_certificate_alerts.py.
"""

from __future__ import annotations

import datetime
import re
import time
from functools import cache
from typing import Any

import jsonschema
import promql_parser
import pytest

from kaas.offline import Plan, ResourceRecord
from kaas.offline.plan import plan_spec
from kaas.offline.planfile import plain
from kaas.services import alerts, guardrails, objects
from tests.controlplane import ControlPlane
from tests.helm import render_release
from tests.helpers import make_spec, promql_selectors

RELEASE = "kubernetes:helm.sh/v3:Release"
RULES = "t1-platform-cronjob-rules"

# kube-state-metrics v2.20.0 (the appVersion of kube-prometheus-stack 88.5.3's kube-state-metrics
# 8.4.0 subchart, asserted below), docs/metrics/workload/cronjob-metrics.md and job-metrics.md:
# the series the rule may read, each with its labels.
KSM_VERSION = "2.20.0"
KSM_METRICS = {
    "kube_cronjob_status_last_successful_time": {"namespace", "cronjob"},
    "kube_cronjob_created": {"namespace", "cronjob"},
    "kube_cronjob_info": {"namespace", "cronjob", "schedule", "concurrency_policy", "timezone"},
    "kube_cronjob_spec_suspend": {"namespace", "cronjob"},
    "kube_job_failed": {"namespace", "job_name", "condition"},
    "kube_job_status_start_time": {"namespace", "job_name"},
}


@cache
def plan() -> Plan:
    return plan_spec(make_spec())


def record(name: str) -> ResourceRecord:
    [found] = [r for r in plan().resources if r.name == name]
    return found


def manifest(name: str = RULES) -> dict[str, Any]:
    inputs = plain(record(name).inputs, show_secrets=True)
    return {"apiVersion": inputs["apiVersion"], "kind": inputs["kind"], **inputs}


def rules() -> list[dict[str, Any]]:
    [group] = manifest()["spec"]["groups"]
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def planned_cronjobs() -> set[tuple[str, str]]:
    """(namespace, name) of every CronJob in the plan."""
    found = set()
    for r in plan().resources:
        inputs = plain(r.inputs, show_secrets=True)
        if isinstance(inputs, dict) and inputs.get("kind") == "CronJob":
            found.add((inputs["metadata"]["namespace"], inputs["metadata"]["name"]))
    return found


@cache
def rendered_stack() -> list[dict[str, Any]]:
    [release] = [r for r in plan().by_type(RELEASE) if r.name == alerts.PROMETHEUS_STACK_RELEASE]
    return render_release(release)


def _matchers(selector: Any) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op), m.value) for m in selector.matchers.matchers}


def test_every_expression_parses_and_reads_only_kube_state_metrics_series() -> None:
    assert rules()
    for rule in rules():
        selectors = promql_selectors(promql_parser.parse(rule["expr"]))  # raises on a syntax error
        assert selectors, rule["alert"]
        for selector in selectors:
            assert selector.name in KSM_METRICS, (rule["alert"], selector.name)
            assert set(_matchers(selector)) <= KSM_METRICS[selector.name], (rule["alert"], selector.name)


def test_every_planned_cronjob_has_its_alerts_with_its_own_namespace_and_name() -> None:
    cronjobs = planned_cronjobs()
    assert (make_spec().platform_namespace, guardrails.RECONCILER) in cronjobs
    watched: dict[tuple[str, str], set[str]] = {}
    for rule in rules():
        for selector in promql_selectors(promql_parser.parse(rule["expr"])):
            matchers = _matchers(selector)
            op, namespace = matchers["namespace"]
            assert op == "MatchOp.Equal", matchers
            if "cronjob" in matchers:
                op, name = matchers["cronjob"]
                assert op == "MatchOp.Equal", matchers
            else:  # a run's Job: <cronjob>-<scheduled time in minutes>
                op, pattern = matchers["job_name"]
                assert op == "MatchOp.Re" and pattern.endswith("-[0-9]+"), pattern
                name = pattern.removesuffix("-[0-9]+")
            assert (namespace, name) in cronjobs, (rule["alert"], namespace, name)
            watched.setdefault((namespace, name), set()).add(rule["alert"])
    expected = {"KaasCronJobNotSucceeding", "KaasCronJobFailing", "KaasCronJobSuspended", "KaasCronJobMissing"}
    assert watched == dict.fromkeys(cronjobs, expected)


def test_not_succeeding_fires_after_15_runs_and_counts_from_creation_when_never_successful() -> None:
    [stale] = [r for r in rules() if r["alert"] == "KaasCronJobNotSucceeding"]
    assert guardrails.SCHEDULE == "* * * * *"  # every minute: 15 minutes are 15 runs
    assert stale["expr"].endswith(f"> {15 * 60}") and stale["for"] == "15m"
    names = {s.name for s in promql_selectors(promql_parser.parse(stale["expr"]))}
    assert names == {"kube_cronjob_status_last_successful_time", "kube_cronjob_created"}
    [failing] = [r for r in rules() if r["alert"] == "KaasCronJobFailing"]
    failed = [s for s in promql_selectors(promql_parser.parse(failing["expr"])) if s.name == "kube_job_failed"]
    # Failed Jobs stay (failedJobsHistoryLimit): only their Failed condition, and only runs since the last success.
    assert [_matchers(s)["condition"] for s in failed] == [("MatchOp.Equal", "true")]
    assert "> on (namespace) group_left" in failing["expr"]


def test_rule_is_valid_for_the_charts_prometheusrule_crd() -> None:
    [crd] = [
        m
        for m in rendered_stack()
        if m.get("kind") == "CustomResourceDefinition"
        and m["metadata"]["name"] == "prometheusrules.monitoring.coreos.com"
    ]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    validator = jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])  # Go regexes: no validate()
    validator.validate(manifest())
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]


def test_the_charts_prometheus_selects_the_rule_created_after_the_monitoring_release() -> None:
    [prometheus] = [m for m in rendered_stack() if m.get("kind") == "Prometheus"]
    spec = prometheus["spec"]
    labels = manifest()["metadata"]["labels"]
    assert spec["ruleSelector"].get("matchLabels", {}).items() <= labels.items()
    namespace_labels = objects.platform_namespace(make_spec())["metadata"]["labels"]
    assert spec["ruleNamespaceSelector"]["matchLabels"].items() <= namespace_labels.items()
    assert manifest()["metadata"]["namespace"] == make_spec().platform_namespace
    assert any(d.endswith("::" + alerts.PROMETHEUS_STACK_RELEASE) for d in record(RULES).dependencies)


def test_the_charts_kube_state_metrics_runs_at_the_cited_version_and_sees_the_platform_namespace() -> None:
    [deployment] = [
        m
        for m in rendered_stack()
        if m.get("kind") == "Deployment" and m["metadata"]["name"].endswith("kube-state-metrics")
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].split("@")[0].endswith(f"kube-state-metrics:v{KSM_VERSION}")
    args = container["args"]
    [resources] = [a.removeprefix("--resources=").split(",") for a in args if a.startswith("--resources=")]
    assert {"cronjobs", "jobs"} <= set(resources)
    platform = make_spec().platform_namespace
    for arg in args:  # no namespace restriction that leaves the platform namespace out
        if arg.startswith("--namespaces="):
            assert platform in arg.removeprefix("--namespaces=").split(","), arg
        if arg.startswith("--namespaces-denylist="):
            assert platform not in arg.removeprefix("--namespaces-denylist=").split(","), arg
        assert not arg.startswith(("--metric-denylist=", "--metric-allowlist=")), arg
    # The objects' own namespace label survives the scrape (honorLabels), so namespace="..." matches.
    [monitor] = [
        m
        for m in rendered_stack()
        if m.get("kind") == "ServiceMonitor" and m["metadata"]["name"].endswith("kube-state-metrics")
    ]
    assert all(endpoint.get("honorLabels") for endpoint in monitor["spec"]["endpoints"])
    # One-off Jobs (OpenSearch's, Harbor's robot) are left to the chart's own KubeJobFailed.
    chart_alerts = {
        r.get("alert")
        for m in rendered_stack()
        if m.get("kind") == "PrometheusRule"
        for g in m["spec"]["groups"]
        for r in g["rules"]
    }
    assert "KubeJobFailed" in chart_alerts


@pytest.mark.xdist_group("controlplane")
def test_the_real_cronjob_controller_names_a_run_as_the_failing_alert_expects(control_plane: ControlPlane) -> None:
    """kube-controller-manager's CronJob controller (v1.34.2 pkg/controller/cronjob/utils.go,
    ``getJobName``: ``<cronjob>-<scheduled time in Unix minutes>``) names the Jobs the
    ``KaasCronJobFailing`` alert selects by ``job_name``; pinned on the real controller."""
    spec = make_spec()
    cronjob = guardrails.reconciler_cronjob(spec)
    name = cronjob["metadata"]["name"]
    namespace = "cronjob-naming"
    cronjob = {**cronjob, "metadata": {**cronjob["metadata"], "namespace": namespace}}
    started = int(time.time()) // 60
    assert control_plane.request("POST", "/api/v1/namespaces", admin=True, body={"metadata": {"name": namespace}}).ok
    try:
        created = control_plane.request(
            "POST", f"/apis/batch/v1/namespaces/{namespace}/cronjobs", admin=True, body=cronjob
        )
        assert created.ok, created.text
        deadline = time.monotonic() + 150  # the next minute boundary, and the controller's resync
        jobs: list[dict[str, Any]] = []
        while not jobs and time.monotonic() < deadline:
            time.sleep(1)
            listed = control_plane.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs", admin=True)
            jobs = listed.json()["items"]
        assert jobs, "the CronJob controller created no Job within 150 s"
        job = jobs[0]["metadata"]
        scheduled = datetime.datetime.fromisoformat(
            job["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        )
        assert job["name"] == f"{name}-{int(scheduled.timestamp()) // 60}"
        assert started <= int(scheduled.timestamp()) // 60 <= int(time.time()) // 60
        # The alert's Job selector takes it, and only the runs of this CronJob.
        (failing,) = [
            r for r in alerts.cronjob_alerts(alerts.platform_cronjobs(spec)[0]) if r["alert"] == "KaasCronJobFailing"
        ]
        patterns = {
            m.value
            for selector in promql_selectors(promql_parser.parse(failing["expr"]))
            for m in selector.matchers.matchers
            if m.name == "job_name"
        }
        assert patterns and all(re.fullmatch(p, job["name"]) for p in patterns)
        assert not any(re.fullmatch(p, f"{name}-manual") for p in patterns)
    finally:
        control_plane.request("DELETE", f"/api/v1/namespaces/{namespace}", admin=True)

"""Every planned Helm release rendered by real Helm, validated, and the seeds' promises read off the objects.

For every stack in stacks/ and the service-switch variants (tests/render_fixtures.py):
``helm template`` of each planned release with its planned values and namespace against
Kubernetes 1.34 must succeed; every rendered object validates (built-in kinds with
kubernetes-validate, strict; custom resources against the openAPIV3Schema of the CRD a
chart ships); and the promises are asserted on what Helm renders, not on our values.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from kaas.offline.mocks import floating_address
from kaas.offline.planfile import plain
from kaas.services.catalog import CATALOG, ChartName, chart_for
from kaas.spec import load_stack_spec
from tests.amtool import ALERTMANAGER_VERSION, amtool_bin
from tests.helm import KUBE_VERSION, ToolsMissingError, chart_archive, render_release
from tests.render_fixtures import VARIANTS, all_rendered, plan_of, release_params, releases, rendered, spec_of

PROMISE_STACKS = ("acme-prod", "demo")
# Type tokens kubernetes:<group>/<version>:<Kind> of built-in API groups (kubernetes-validate's).
BUILT_IN_GROUPS = {"core", "apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                   "storage.k8s.io", "pulumi", "providers"}  # fmt: skip
Obj = dict[str, Any]


def of_kind(objects: list[Obj] | tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj] | tuple[Obj, ...], kind: str, name: str) -> Obj:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


# --- CRD schemas --------------------------------------------------------------------------


def _go_regex(node: Any) -> Any:
    """CRD patterns are Go regexps; Python wants inline flags such as ``(?i)`` at the start."""
    if isinstance(node, dict):
        out = {k: _go_regex(v) for k, v in node.items()}
        pattern = out.get("pattern")
        if isinstance(pattern, str) and "(?i)" in pattern:
            out["pattern"] = "(?i)" + pattern.replace("(?i)", "")
        return out
    if isinstance(node, list):
        return [_go_regex(v) for v in node]
    return node


@cache
def crd_schemas() -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) -> openAPIV3Schema, from every CRD any rendered chart ships."""
    schemas: dict[tuple[str, str], Obj] = {}
    for variant, release in release_params():
        for crd in of_kind(rendered(variant, release), "CustomResourceDefinition"):
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = _go_regex(version["schema"]["openAPIV3Schema"])
    return schemas


def validate(obj: Obj) -> None:
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        key = (obj["apiVersion"], obj["kind"])
        assert key in crd_schemas(), f"{key}: neither a Kubernetes kind nor a CRD any chart ships"
        jsonschema.Draft7Validator(crd_schemas()[key]).validate(obj)


# --- Every release renders and validates ---------------------------------------------------


@pytest.mark.parametrize(("variant", "release"), release_params())
def test_planned_release_renders_and_every_object_validates(variant: str, release: str) -> None:
    objects = rendered(variant, release)
    assert objects, f"{release} rendered nothing"
    for obj in objects:
        try:
            validate(obj)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            pytest.fail(f"{variant}/{release}: {obj['kind']} {obj['metadata'].get('name')}: {error}")


@pytest.mark.parametrize("variant", ["acme-prod", "demo", "dev"])
def test_planned_custom_resources_validate_against_the_charts_crds(variant: str) -> None:
    """Our own objects of chart-defined kinds (apps Prometheus, ClusterIssuer, Velero's monitor and rules)."""
    custom = [
        r
        for r in plan_of(variant).resources
        if r.type.startswith("kubernetes:") and r.custom and "helm.sh" not in r.type
        and r.type.split(":")[1].split("/")[0] not in BUILT_IN_GROUPS
    ]  # fmt: skip
    kinds = set()
    for record in custom:
        manifest = plain(record.inputs, show_secrets=True)
        assert (manifest["apiVersion"], manifest["kind"]) in crd_schemas(), record.type
        validate(manifest)
        kinds.add(manifest["kind"])
    velero_watched = {"ServiceMonitor", "PrometheusRule"} if spec_of(variant).services.backups.enabled else set()
    assert {"Prometheus", "ClusterIssuer"} | velero_watched <= kinds


def test_validation_catches_a_broken_custom_resource() -> None:
    prometheus = dict(
        named(rendered("acme-prod", "kube-prometheus-stack"), "Prometheus", "kube-prometheus-stack-prometheus")
    )
    prometheus["spec"] = {**prometheus["spec"], "replicas": "two"}
    with pytest.raises(jsonschema.ValidationError):
        validate(prometheus)


def test_every_variant_plans_each_switch_off_at_least_once() -> None:
    present = {variant: set(releases(plan_of(variant))) for variant in VARIANTS}
    everything = set().union(*present.values())
    for release in everything - {"calico", "flannel", "openstack-ccm", "cinder-csi"}:
        assert any(release not in names for names in present.values()), release


# --- A catalog bump without its package fails, naming the package ----------------------------


def test_catalog_bump_without_a_package_fails_naming_the_missing_package() -> None:
    bumped = chart_for(ChartName.KUBE_PROMETHEUS_STACK, "88.6.0")
    with pytest.raises(ToolsMissingError, match=re.escape("kube-prometheus-stack-88.6.0.tgz")):
        chart_archive(bumped.name, bumped.version)
    # The same through a planned release whose spec pins the new version.
    from kaas.offline import plan_spec
    from tests.helpers import make_spec

    plan = plan_spec(make_spec(environment="demo", services={"monitoring": {"chart_version": "88.6.0"}}))
    with pytest.raises(ToolsMissingError, match=re.escape("kube-prometheus-stack-88.6.0.tgz")):
        render_release(releases(plan)["kube-prometheus-stack"])


def test_every_catalog_entry_has_its_package() -> None:
    for chart in CATALOG.values():
        assert chart_archive(chart.name, chart.version).is_file()


# --- The seeds' promises, on the rendered objects ----------------------------------------------


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_both_prometheus_keep_three_days_and_alertmanager_and_grafana_run(stack: str) -> None:
    objects = rendered(stack, "kube-prometheus-stack")
    platform = named(objects, "Prometheus", "kube-prometheus-stack-prometheus")
    assert platform["spec"]["retention"] == "3d"
    # The customer-apps Prometheus is our own object, validated against the chart's CRD.
    apps = plain(
        next(
            r for r in plan_of(stack).resources if r.name.endswith("-apps-prometheus") and "Prometheus" in r.type
        ).inputs,
        show_secrets=True,
    )
    manifest = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus", **apps}
    validate(manifest)
    assert manifest["spec"]["retention"] == "3d"
    assert of_kind(objects, "Alertmanager")
    grafana = named(objects, "Deployment", "kube-prometheus-stack-grafana")
    assert grafana["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_monitoring_survives_a_node_loss(stack: str) -> None:
    objects = rendered(stack, "kube-prometheus-stack")
    for kind, name in (("Prometheus", "prometheus"), ("Alertmanager", "alertmanager")):
        cr = named(objects, kind, f"kube-prometheus-stack-{name}")
        assert cr["spec"]["replicas"] == 2
        required = cr["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert required[0]["topologyKey"] == "kubernetes.io/hostname"
        pdb = named(objects, "PodDisruptionBudget", f"kube-prometheus-stack-{name}")
        assert pdb["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_opensearch_deletes_log_indices_after_seven_days(stack: str) -> None:
    # The ISM policy is our ConfigMap, applied by our Job to the rendered OpenSearch.
    config_map = next(r for r in plan_of(stack).resources if r.name.endswith("-ism-policy"))
    policy = json.loads(next(iter(plain(config_map.inputs, show_secrets=True)["data"].values())))
    hot = next(s for s in policy["policy"]["states"] if s["name"] == "hot")
    assert hot["transitions"] == [{"state_name": "delete", "conditions": {"min_index_age": "7d"}}]
    assert policy["policy"]["ism_template"][0]["index_patterns"] == ["logs-*"]
    assert of_kind(rendered(stack, "opensearch"), "StatefulSet")


def _fluent_bit_sections(config: str) -> list[tuple[str, dict[str, str]]]:
    sections: list[tuple[str, dict[str, str]]] = []
    for line in config.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            sections.append((stripped[1:-1], {}))
        elif sections:
            key, _, value = stripped.partition(" ")
            sections[-1][1][key.lower()] = value.strip()
    return sections


def _matches(pattern: str, tag: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), tag) is not None


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_fluent_bit_ships_container_and_node_logs_to_opensearch(stack: str) -> None:
    objects = rendered(stack, "fluent-bit")
    config_map = named(objects, "ConfigMap", "fluent-bit")
    sections = _fluent_bit_sections("\n".join(config_map["data"].values()))
    inputs = [s for kind, s in sections if kind == "INPUT"]
    outputs = [s for kind, s in sections if kind == "OUTPUT" and s.get("name") == "opensearch"]
    containers = next(i for i in inputs if i.get("path") == "/var/log/containers/*.log")
    journal = next(i for i in inputs if i.get("name") == "systemd")
    etcd_vms = next(i for i in inputs if i.get("name") == "syslog")
    audit = next(i for i in inputs if i.get("path") == "/var/log/kubernetes/audit/audit.log")
    assert len(inputs) == 4, inputs  # a new input is checked below too: add it to the expectations
    # Each input's records go to exactly one index series (a record no output matches is
    # dropped): the audit log to its own ``logs-audit-*``, the rest to ``logs-*``.
    for source, series in ((containers, "logs"), (journal, "logs"), (etcd_vms, "logs"), (audit, "logs-audit")):
        tag = source["tag"].replace("*", "x")
        shipped = [
            o["logstash_prefix"]
            for o in outputs
            if _matches(o.get("match", ""), tag) or re.search(o.get("match_regex", "(?!)"), tag)
        ]
        assert shipped == [series], (source, shipped)
    # Logs and the audit log (its own index): the Service the rendered OpenSearch chart
    # creates, in the same namespace, on 9200.
    assert len(outputs) == 2, outputs
    for output in outputs:
        service = named(rendered(stack, "opensearch"), "Service", output["host"])
        assert output["port"] == "9200" and any(p["port"] == 9200 for p in service["spec"]["ports"])
    daemon_set = named(objects, "DaemonSet", "fluent-bit")
    mounts = {m["mountPath"] for c in daemon_set["spec"]["template"]["spec"]["containers"] for m in c["volumeMounts"]}
    assert "/var/log" in mounts or "/var/log/" in mounts


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_two_ingress_replicas_spread_behind_the_planned_floating_ip(stack: str) -> None:
    objects = rendered(stack, "ingress-nginx")
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (service,) = [s for s in of_kind(objects, "Service") if s["spec"].get("type") == "LoadBalancer"]
    (fip,) = [r for r in plan_of(stack).resources if r.name.endswith("-ingress-fip")]
    assert service["spec"]["loadBalancerIP"] == floating_address(fip.name)
    assert of_kind(objects, "PodDisruptionBudget")


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_harbor_scans_with_trivy_and_stores_images_in_swift_with_a_database_volume(stack: str) -> None:
    spec = load_stack_spec(stack)
    objects = rendered(stack, "harbor")
    assert named(objects, "StatefulSet", "harbor-trivy")
    import yaml

    registry = yaml.safe_load(named(objects, "ConfigMap", "harbor-registry")["data"]["config.yml"])
    swift = registry["storage"]["swift"]
    assert swift["authurl"] == spec.openstack.auth_url
    assert swift["region"] == spec.openstack.region
    assert swift["domain"] == spec.identity.domain
    assert swift["tenantid"]  # the planned project's ID
    assert swift["container"] == spec.container_name("registry")
    database = named(objects, "StatefulSet", "harbor-database")
    (claim,) = database["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == f"{spec.services.registry.database_gb}Gi"
    assert claim["spec"]["storageClassName"] == "cinder-retain"


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_velero_backs_up_to_swift_and_snapshots_cinder(stack: str) -> None:
    spec = load_stack_spec(stack)
    objects = rendered(stack, "velero")
    (location,) = of_kind(objects, "BackupStorageLocation")
    assert location["spec"]["provider"] == "community.openstack.org/openstack"
    assert location["spec"]["objectStorage"]["bucket"] == spec.container_name("cluster_backups")
    (snapshots,) = of_kind(objects, "VolumeSnapshotLocation")
    assert snapshots["spec"]["provider"] == "community.openstack.org/openstack-cinder"
    (schedule,) = of_kind(objects, "Schedule")
    assert schedule["spec"]["template"]["storageLocation"] == location["metadata"]["name"]
    # Watched: the chart's metrics Service is what our ServiceMonitor selects, on its port.
    (service,) = of_kind(objects, "Service")
    monitor = next(
        plain(r.inputs, show_secrets=True)
        for r in plan_of(stack).resources
        if r.type.endswith(":ServiceMonitor") and r.name.endswith("-velero-monitor")
    )
    manifest = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", **monitor}
    validate(manifest)
    assert manifest["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert manifest["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_etcd_is_scraped_at_its_members_and_its_rules_ship(stack: str) -> None:
    spec = load_stack_spec(stack)
    from kaas.openstack.addressing import plan_addresses

    objects = rendered(stack, "kube-prometheus-stack")
    endpoints = named(objects, "Endpoints", "kube-prometheus-stack-kube-etcd")
    (subset,) = endpoints["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == list(plan_addresses(spec).etcd)
    assert subset["ports"][0]["port"] == 2381
    service = named(objects, "Service", "kube-prometheus-stack-kube-etcd")
    assert "selector" not in service["spec"]  # the Endpoints above, not pods
    monitor = named(objects, "ServiceMonitor", "kube-prometheus-stack-kube-etcd")
    assert monitor["spec"]["endpoints"][0].get("scheme", "http") == "http"
    rules = named(objects, "PrometheusRule", "kube-prometheus-stack-etcd")
    alerts = {r.get("alert") for g in rules["spec"]["groups"] for r in g["rules"]}
    assert {"etcdInsufficientMembers", "etcdNoLeader", "etcdMembersDown"} <= alerts


def test_all_rendered_is_every_release() -> None:
    assert len(all_rendered("dev")) == sum(len(rendered("dev", r)) for r in releases(plan_of("dev")))


# --- Alertmanager reads the rendered configuration and routes as the spec says --------------


def _rendered_alertmanager_config(stack: str) -> str:
    import base64

    secret = named(
        rendered(stack, "kube-prometheus-stack"), "Secret", "alertmanager-kube-prometheus-stack-alertmanager"
    )
    return base64.b64decode(secret["data"]["alertmanager.yaml"]).decode()


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(amtool_bin()), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_amtool_is_the_version_of_the_rendered_alertmanager(stack: str) -> None:
    """The checks below ask the Alertmanager the chart deploys, not another version's parser."""
    (alertmanager,) = of_kind(rendered(stack, "kube-prometheus-stack"), "Alertmanager")
    assert alertmanager["spec"]["version"] == ALERTMANAGER_VERSION
    assert alertmanager["spec"]["image"].rsplit(":", 1)[1] == ALERTMANAGER_VERSION


@pytest.mark.parametrize("stack", PROMISE_STACKS)
def test_alertmanager_accepts_the_rendered_configuration(stack: str, tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yaml"
    config.write_text(_rendered_alertmanager_config(stack))
    check = _amtool("check-config", str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    # Not a rubber stamp: a field Alertmanager does not know is refused.
    config.write_text("bogus_field: 1\n" + _rendered_alertmanager_config(stack))
    assert _amtool("check-config", str(config)).returncode != 0


def test_alertmanager_routes_acme_prods_alerts_by_severity_and_the_watchdog_to_the_heartbeat(
    tmp_path: Path,
) -> None:
    config = tmp_path / "alertmanager.yaml"
    config.write_text(_rendered_alertmanager_config("acme-prod"))

    def receivers(*labels: str) -> str:
        routed = _amtool("config", "routes", "test", f"--config.file={config}", *labels)
        assert routed.returncode == 0, routed.stderr
        return routed.stdout.strip()

    # stacks/acme-prod.yaml: oncall (PagerDuty) gets critical, ops-mail critical and warning.
    assert receivers("alertname=EtcdBackupTooOld", "severity=critical") == "oncall,ops-mail"
    assert receivers("alertname=KubePodCrashLooping", "severity=warning") == "ops-mail"
    assert receivers("alertname=Watchdog", "severity=none") == "dead-mans-switch"
    assert receivers("alertname=InfoInhibitor", "severity=none") == "null"
    assert receivers("alertname=Something", "severity=info") == "null"

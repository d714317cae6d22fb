"""The managed services under mocks: catalog pins, spec numbers in values, the dependency graph, secrets."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from kaas.offline import Plan, Secret
from kaas.offline.planfile import plain as planned_value
from kaas.services import catalog, objects, values
from kaas.services.catalog import CATALOG, ChartName
from kaas.spec.models import Cni
from tests.helpers import make_spec
from tests.services_helpers import (
    APP_CREDENTIALS,
    INGRESS_IP,
    PROJECT_ID,
    ROLE_ID,
    default_plan,
    names_of,
    plan_services,
    releases,
)

RELEASE_CHARTS = {
    "calico": ChartName.TIGERA_OPERATOR,
    "openstack-ccm": ChartName.OPENSTACK_CLOUD_CONTROLLER_MANAGER,
    "cinder-csi": ChartName.OPENSTACK_CINDER_CSI,
    "ingress-nginx": ChartName.NGINX_INGRESS,
    "cert-manager": ChartName.CERT_MANAGER,
    "kube-prometheus-stack": ChartName.KUBE_PROMETHEUS_STACK,
    "metrics-server": ChartName.METRICS_SERVER,
    "opensearch": ChartName.OPENSEARCH,
    "opensearch-dashboards": ChartName.OPENSEARCH_DASHBOARDS,
    "fluent-bit": ChartName.FLUENT_BIT,
    "harbor": ChartName.HARBOR,
    "velero": ChartName.VELERO,
    "headlamp": ChartName.HEADLAMP,
}


def plain(value: object) -> object:
    """The recorded value with secrets revealed."""
    return planned_value(value, show_secrets=True)


def test_every_release_comes_from_the_catalog() -> None:
    found = releases(default_plan())
    assert set(found) == set(RELEASE_CHARTS)
    for name, chart in RELEASE_CHARTS.items():
        inputs = found[name].inputs
        pinned = CATALOG[chart]
        assert (inputs["chart"], inputs["repositoryOpts"]["repo"], inputs["version"]) == (
            pinned.name.value,
            pinned.repo,
            pinned.version,
        ), name


def test_spec_chart_version_overrides_the_catalog() -> None:
    spec = make_spec(services={"monitoring": {"chart_version": "80.0.0"}, "cni": {"chart_version": "v3.30.0"}})
    found = releases(plan_services(spec))
    assert found["kube-prometheus-stack"].inputs["version"] == "80.0.0"
    assert found["calico"].inputs["version"] == "v3.30.0"
    assert found["calico"].inputs["repositoryOpts"]["repo"] == CATALOG[ChartName.TIGERA_OPERATOR].repo
    assert found["harbor"].inputs["version"] == CATALOG[ChartName.HARBOR].version


def test_velero_chart_and_openstack_plugin_are_a_declared_compatible_pair() -> None:
    minor = ".".join(catalog.VELERO_APP_VERSION.split(".")[:2])
    assert minor in catalog.VELERO_PLUGIN_COMPATIBLE_MINORS
    velero = releases(default_plan())["velero"].inputs["values"]
    assert velero["initContainers"][0]["image"] == catalog.VELERO_OPENSTACK_PLUGIN_IMAGE


def test_ingress_is_ha_behind_the_preallocated_floating_ip() -> None:
    controller = releases(default_plan())["ingress-nginx"].inputs["values"]["controller"]
    assert controller["replicaCount"] == 2
    assert controller["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    anti = controller["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert controller["service"]["type"] == "LoadBalancer"
    assert controller["service"]["loadBalancerIP"] == INGRESS_IP


def test_both_prometheus_instances_keep_three_days_on_cinder_volumes() -> None:
    plan = default_plan()
    stack = releases(plan)["kube-prometheus-stack"].inputs["values"]
    assert stack["prometheus"]["prometheusSpec"]["retention"] == "3d"
    apps = plan.find("kubernetes:monitoring.coreos.com/v1:Prometheus", "t1-apps-prometheus").inputs["spec"]
    assert apps["retention"] == "3d"
    for claim in (stack["prometheus"]["prometheusSpec"]["storageSpec"], apps["storage"]):
        assert claim["volumeClaimTemplate"]["spec"]["storageClassName"] == "cinder"
    # The customer instance scrapes only namespaces without the platform label, the platform one only those with it.
    assert apps["serviceMonitorNamespaceSelector"]["matchExpressions"][0]["operator"] == "DoesNotExist"
    assert stack["prometheus"]["prometheusSpec"]["serviceMonitorNamespaceSelector"] == {
        "matchLabels": {"kaas/platform": "true"}
    }
    hosts = {stack[k]["ingress"]["hosts"][0] for k in ("prometheus", "alertmanager", "grafana")}
    assert hosts == {f"{h}.t1.k8s.example.com" for h in ("prometheus", "alertmanager", "grafana")}


def test_retention_numbers_follow_the_spec() -> None:
    spec = make_spec(services={"monitoring": {"prometheus_retention_days": 5}, "logging": {"retention_days": 9}})
    plan = plan_services(spec)
    assert releases(plan)["kube-prometheus-stack"].inputs["values"]["prometheus"]["prometheusSpec"]["retention"] == "5d"
    policy = json.loads(plan.find("kubernetes:core/v1:ConfigMap", "t1-ism-policy").inputs["data"]["policy.json"])
    assert policy["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"] == "9d"


def test_logs_are_deleted_after_seven_days_by_an_ism_policy_fluent_bit_writes_into() -> None:
    plan = default_plan()
    policy = json.loads(plan.find("kubernetes:core/v1:ConfigMap", "t1-ism-policy").inputs["data"]["policy.json"])
    hot, delete = policy["policy"]["states"]
    assert hot["transitions"] == [{"state_name": "delete", "conditions": {"min_index_age": "7d"}}]
    assert delete["actions"] == [{"delete": {}}]
    pattern = policy["policy"]["ism_template"][0]["index_patterns"][0]
    outputs = releases(plan)["fluent-bit"].inputs["values"]["config"]["outputs"]
    assert f"Logstash_Prefix {pattern.rstrip('-*')}" in outputs
    dashboards = releases(plan)["opensearch-dashboards"].inputs["values"]
    assert dashboards["ingress"]["hosts"][0]["host"] == "kibana.t1.k8s.example.com"


def test_harbor_stores_images_in_the_registry_container_with_a_10gi_database() -> None:
    harbor = releases(default_plan())["harbor"].inputs["values"]
    storage = harbor["persistence"]["imageChartStorage"]
    assert storage["type"] == "swift"
    assert storage["swift"]["container"] == "t1-registry"
    assert storage["swift"]["existingSecret"] == "harbor-swift"
    assert "password" not in storage["swift"]
    assert harbor["persistence"]["persistentVolumeClaim"]["database"]["size"] == "10Gi"
    assert harbor["trivy"]["enabled"] is True
    assert harbor["expose"]["ingress"]["hosts"]["core"] == "registry.t1.k8s.example.com"


def test_velero_backs_up_daily_into_the_cluster_backups_container_with_cinder_snapshots() -> None:
    velero = releases(default_plan())["velero"].inputs["values"]
    location = velero["configuration"]["backupStorageLocation"][0]
    assert location["bucket"] == "t1-cluster-backups"
    assert location["provider"] == "community.openstack.org/openstack"
    snapshots = velero["configuration"]["volumeSnapshotLocation"][0]
    assert snapshots["provider"] == "community.openstack.org/openstack-cinder"
    daily = velero["schedules"]["daily"]
    assert daily["schedule"] == "0 2 * * *"
    assert daily["template"]["ttl"] == "720h0m0s"


def test_headlamp_serves_the_dashboard_host() -> None:
    headlamp = releases(default_plan())["headlamp"].inputs["values"]
    assert headlamp["ingress"]["hosts"][0]["host"] == "dashboard.t1.k8s.example.com"


EXPECTED_DEPENDENCIES = {
    "calico": set(),
    "openstack-ccm": {"calico", "t1-cloud-config"},
    "cinder-csi": {"calico", "t1-cinder-csi-cloud-config"},
    "t1-sc-default": {"cinder-csi"},
    "t1-sc-retain": {"cinder-csi"},
    "ingress-nginx": {"calico", "t1-ns-platform"},
    "cert-manager": {"calico", "t1-ns-platform"},
    "t1-cluster-issuer": {"cert-manager", "ingress-nginx"},
    "metrics-server": {"calico", "t1-kubelet-csr-approver"},
    "t1-kubelet-csr-approver": {
        "calico", "t1-kubelet-csr-approver-sa", "t1-kubelet-csr-approver-role", "t1-kubelet-csr-approver-binding",
    },
    "kube-prometheus-stack": {
        "calico", "t1-ns-platform", "cinder-csi", "t1-sc-default", "t1-sc-retain", "t1-grafana-admin",
        "t1-web-basic-auth", "t1-web-login",
    },
    # The logging releases mount cert-manager-issued Secrets without waiting for cert-manager
    # (the kubelet retries a missing Secret volume).
    "opensearch": {"calico", "t1-ns-platform", "cinder-csi", "t1-sc-default", "t1-sc-retain"},
    "opensearch-dashboards": {"calico", "t1-ns-platform", "t1-opensearch-dashboards-account"},
    "fluent-bit": {"calico", "t1-ns-platform", "t1-opensearch-fluent-bit"},
    "t1-ism-policy-job": {"opensearch", "t1-ism-policy", "t1-certificate-opensearch-admin"},
    "t1-opensearch-security": {
        "opensearch", "t1-certificate-opensearch-admin", "t1-opensearch-admin", "t1-opensearch-fluent-bit",
        "t1-opensearch-dashboards-account",
    },
    "t1-issuer-platform-selfsigned": {"cert-manager", "t1-ns-platform"},
    "t1-certificate-platform-ca": {"cert-manager", "t1-issuer-platform-selfsigned"},
    "t1-issuer-platform-ca": {"cert-manager", "t1-certificate-platform-ca"},
    "t1-certificate-opensearch-node": {"cert-manager", "t1-issuer-platform-ca"},
    "harbor": {
        "calico", "t1-ns-platform", "cinder-csi", "t1-sc-default", "t1-sc-retain", "t1-harbor-admin", "t1-harbor-swift",
        "t1-harbor-internal", "t1-harbor-database", "t1-harbor-registry-credentials",
    },
    # The robot Job deletes older robots: after every pull Secret the program writes and the
    # reconciler that replaces the other namespaces' copies (kaas.services.harbor_robot).
    "t1-harbor-robot-job": {
        "harbor", "t1-harbor-admin", "t1-harbor-robot", "t1-pull-apps", "t1-pull-shop", "t1-guardrails-pull-source",
        "t1-guardrails-clusterrole", "t1-guardrails-configmap", "t1-guardrails-cronjob",
    },
    "velero": {"calico", "t1-ns-platform", "t1-velero-credentials", "t1-velero-repository"},
    # Velero watched: after its release and the monitoring CRDs; nothing waits for these.
    "t1-velero-monitor": {"velero", "kube-prometheus-stack"},
    "t1-velero-rules": {"velero", "kube-prometheus-stack"},
    "headlamp": {"calico", "t1-ns-platform"},
    "t1-keystone-auth": {
        "calico", "t1-keystone-auth-tls", "t1-keystone-sync", "t1-keystone-auth-sa", "t1-keystone-auth-role",
        "t1-keystone-auth-binding",
    },
    "t1-default-cluster-admin": set(),
    "t1-ns-platform": set(),
}  # fmt: skip


def test_dependency_edges_are_exactly_the_designed_ones() -> None:
    plan = default_plan()
    by_name = {r.name: r for r in plan.resources if r.custom and r.type.startswith("kubernetes:")}
    for name, expected in EXPECTED_DEPENDENCIES.items():
        assert names_of(plan, by_name[name].dependencies) == expected, name


def test_pods_wait_for_the_cni_directly_or_through_a_release() -> None:
    plan = default_plan()
    cni = plan.find("kubernetes:helm.sh/v3:Release", "calico").urn

    def waits(urn: str, seen: frozenset[str] = frozenset()) -> bool:
        deps = plan.get(urn).dependencies
        return cni in deps or any(waits(d, seen | {urn}) for d in deps if d not in seen)

    workloads = [
        r for r in plan.resources if r.type.endswith((":Release", ":DaemonSet", ":Job", ":Prometheus")) and r.urn != cni
    ]
    assert workloads and all(waits(r.urn) for r in workloads)


def test_every_kubernetes_resource_uses_the_explicit_provider_and_is_deleted_with_the_cluster() -> None:
    plan = default_plan()
    provider = plan.find("pulumi:providers:kubernetes", "t1-k8s")
    assert provider.parent == plan.find("kaas:services:ManagedServices", "t1").urn
    assert isinstance(provider.inputs["kubeconfig"], Secret)
    kube = [r for r in plan.resources if r.type.startswith("kubernetes:")]
    assert len(kube) >= 40
    for record in kube:
        assert record.options["provider"].startswith(provider.urn + "::"), record.name
        assert record.options["deletedWith"] == provider.urn, record.name


@pytest.mark.parametrize(
    ("secret_name", "consumer"), [("t1-cloud-config", "cloud-controller"), ("t1-cinder-csi-cloud-config", "cinder-csi")]
)
def test_occm_and_csi_each_read_their_own_credential(secret_name: str, consumer: str) -> None:
    plan = default_plan()
    cloud = plan.find("kubernetes:core/v1:Secret", secret_name).inputs["stringData"]
    assert isinstance(cloud, Secret)
    conf = cloud.value["cloud.conf"]
    credential_id, credential_secret = APP_CREDENTIALS[consumer]
    assert f"application-credential-id={credential_id}" in conf
    assert f"application-credential-secret={credential_secret}" in conf
    others = [v for c, pair in APP_CREDENTIALS.items() if c != consumer for v in pair]
    assert not any(other in conf for other in others)
    assert "floating-network-id=ext-net-id" in conf and "subnet-id=subnet-id" in conf
    assert "auth-url=https://keystone.test.example:5000/v3" in conf and "region=RegionOne" in conf


def test_charts_read_the_secret_of_their_own_credential() -> None:
    found = releases(default_plan())
    assert found["openstack-ccm"].inputs["values"]["secret"]["name"] == "cloud-config"
    assert found["cinder-csi"].inputs["values"]["secret"]["name"] == "cinder-csi-cloud-config"


def test_credentials_and_passwords_are_secrets() -> None:
    plan = default_plan()
    for name in ("t1-cloud-config", "t1-cinder-csi-cloud-config", "t1-grafana-admin", "t1-opensearch-admin",
                 "t1-harbor-admin", "t1-harbor-swift", "t1-velero-repository",
                 "t1-velero-credentials", "t1-keystone-auth-tls", "t1-pull-shop", "t1-harbor-robot",
                 "t1-harbor-internal", "t1-opensearch-fluent-bit", "t1-opensearch-dashboards-account"):  # fmt: skip
        record = plan.find("kubernetes:core/v1:Secret", name)
        assert isinstance(record.inputs["stringData"], Secret), name
        assert "stringData" in record.options["additionalSecretOutputs"], name
    for pw in plan.by_type("random:index/randomPassword:RandomPassword"):
        assert "result" in pw.options["additionalSecretOutputs"]
    # Release values name Secrets instead of carrying them, except where the chart has no
    # such option (Harbor 1.18.1: the internal database's password, the registry credential
    # it turns into htpasswd); those are Pulumi secrets.
    carried = {
        (name, path)
        for name, r in releases(plan).items()
        for path, v in _paths(r.inputs["values"])
        if isinstance(v, Secret)
    }
    assert carried == {
        ("harbor", "database.internal.password"),
        ("harbor", "registry.credentials.password"),
    }


def _paths(value: object, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, f"{prefix}.{k}" if prefix else k)]
    return [(prefix, value)]


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_keystone_admin_role_maps_to_a_group_bound_to_cluster_admin() -> None:
    plan = default_plan()
    binding = plan.find("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "t1-default-cluster-admin")
    assert binding.inputs["metadata"]["name"] == "kaas:default-cluster-admin"
    assert binding.inputs["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": ROLE_ID}]
    assert binding.inputs["roleRef"]["name"] == "cluster-admin"
    sync = yaml.safe_load(plan.find("kubernetes:core/v1:ConfigMap", "t1-keystone-sync").inputs["data"]["syncConfig"])
    assert sync == {"role-mappings": [{"keystone-role": "t1-cluster-admin", "groups": [ROLE_ID]}]}
    pod = plan.find("kubernetes:apps/v1:DaemonSet", "t1-keystone-auth").inputs["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    # The API server's webhook address (8443) is the scope filter's; k8s-keystone-auth sits behind it.
    scope_filter, keystone = pod["containers"]
    assert scope_filter["ports"][0]["hostPort"] == 8443
    assert "--listen=127.0.0.1:8444" in keystone["args"]
    env = {e["name"]: e["value"] for e in scope_filter["env"]}
    assert env["UPSTREAM_URL"] == "https://127.0.0.1:8444/webhook" and env["LISTEN_PORT"] == "8443"
    assert (env["PROJECT_ID"], env["ADMIN_GROUP"], env["ADMIN_ROLE"]) == (PROJECT_ID, ROLE_ID, "t1-cluster-admin")


def test_provider_name_names_the_namespace_and_the_admin_binding() -> None:
    plan = plan_services(make_spec(provider_name="rackspace"))
    ns = plan.find("kubernetes:core/v1:Namespace", "t1-ns-platform").inputs["metadata"]
    assert ns["name"] == "rackspace-system" and ns["labels"]["rackspace/platform"] == "true"
    binding = plan.find("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "t1-default-cluster-admin")
    assert binding.inputs["metadata"]["name"] == "rackspace:default-cluster-admin"


@pytest.mark.parametrize(
    ("cni", "release", "mtu"),
    [(Cni.CALICO, "calico", 1400), (Cni.CANAL, "calico", 1400), (Cni.FLANNEL, "flannel", 1400)],
)
def test_cni_release_carries_pod_cidr_and_mtu(cni: Cni, release: str, mtu: int) -> None:
    spec = make_spec(networking={"cni": cni.value, "pod_cidr": "10.200.0.0/16"})
    found = releases(plan_services(spec))
    assert release in found and ({"calico", "flannel"} - {release}).isdisjoint(found)
    v = found[release].inputs["values"]
    if release == "flannel":
        assert v["podCidr"] == "10.200.0.0/16" and v["flannel"]["mtu"] == mtu
    else:
        network = v["installation"]["calicoNetwork"]
        assert network["ipPools"][0]["cidr"] == "10.200.0.0/16" and network["mtu"] == mtu


def test_pod_mtu_subtracts_the_encapsulation() -> None:
    assert values.pod_mtu(make_spec(networking={"mtu": 1500})) == 1450
    assert values.pod_mtu(make_spec(networking={"mtu": 1500, "calico_encapsulation": "ipip"})) == 1480
    assert values.pod_mtu(make_spec(networking={"mtu": 1500, "calico_encapsulation": "none"})) == 1500


SWITCHES = {
    "cloud_controller": {"OpenstackIntegration"},
    "keystone_auth": {"KeystoneAuth"},
    "ingress": {"Ingress"},
    "monitoring": {"Monitoring"},
    "metrics_server": {"MetricsServer"},
    "logging": {"Logging"},
    "registry": {"Registry"},
    "backups": {"Backups"},
    "dashboard": {"Dashboard"},
}


def _subtree(plan: Plan, root_urn: str) -> set[str]:
    out = {root_urn}
    grew = True
    while grew:
        more = {r.urn for r in plan.resources if r.parent in out} - out
        out |= more
        grew = bool(more)
    return out


@pytest.mark.parametrize("service", ["keystone_auth", "monitoring", "metrics_server", "logging", "registry", "backups", "dashboard"])  # fmt: skip
def test_switching_a_service_off_removes_exactly_its_resources(service: str) -> None:
    base = default_plan()
    # Production specs require monitoring, logging and backups: switching them off is a demo-only choice.
    spec = make_spec(
        environment="demo",
        services={"customer_namespaces": ["shop"], "default_deny_network_policy": True, service: {"enabled": False}},
    )
    off = plan_services(spec)
    kind = next(iter(SWITCHES[service]))
    group = next(r for r in base.resources if r.type == f"kaas:services:{kind}")
    removed = {r.urn for r in base.resources} - {r.urn for r in off.resources}
    # Velero's ServiceMonitor and rules belong to Monitoring but need Velero too.
    watching_velero = {r.urn for r in base.resources if r.name in ("t1-velero-monitor", "t1-velero-rules")}
    assert removed == _subtree(base, group.urn) | (watching_velero if service == "backups" else set())
    assert {r.urn for r in off.resources} <= {r.urn for r in base.resources}


def test_switching_ingress_off_removes_it_and_the_edges_to_it() -> None:
    # Logging's certificates need cert-manager (a spec rule), so it goes too.
    off = plan_services(
        make_spec(environment="demo", services={"ingress": {"enabled": False}, "logging": {"enabled": False}})
    )
    assert not {"ingress-nginx", "cert-manager"} & set(releases(off))
    assert names_of(off, releases(off)["headlamp"].dependencies) == {"calico", "t1-ns-platform"}


def test_switching_cinder_csi_off_removes_the_driver_and_its_storage_classes_only() -> None:
    off = plan_services(make_spec(services={"cinder_csi": {"enabled": False}}))
    assert "cinder-csi" not in releases(off) and "openstack-ccm" in releases(off)
    assert not off.by_type("kubernetes:storage.k8s.io/v1:StorageClass")


def test_enabled_registry_needs_the_swift_user() -> None:
    from kaas.offline import run_plan
    from kaas.services import ManagedServices
    from tests.services_helpers import inputs

    spec = make_spec()

    def program() -> None:
        ManagedServices("t1", spec, replace(inputs(), registry_swift_username=None))

    with pytest.raises(Exception, match="registry_swift_username"):
        run_plan(program, stack="x")


def test_cloud_config_is_ini_with_the_application_credential() -> None:
    spec = make_spec()
    text = values.cloud_config(spec, "id1", "s1") + values.cloud_config_sections(spec, "net", "sub")
    import configparser

    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert parser["Global"]["application-credential-id"] == "id1"
    assert parser["LoadBalancer"]["floating-network-id"] == "net"
    assert parser["LoadBalancer"]["lb-provider"] == "amphora"


def test_docker_config_json_authenticates_the_robot() -> None:
    import base64

    data = json.loads(objects.docker_config_json("registry.x", "robot$kaas-pull", "pw"))
    assert base64.b64decode(data["auths"]["registry.x"]["auth"]).decode() == "robot$kaas-pull:pw"

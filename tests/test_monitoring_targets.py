"""A fresh cluster raises no alert but the Watchdog: every scrape target resolves and is reachable.

For every stack (and service variant) with monitoring, offline: the platform Prometheus that
real Helm renders selects ServiceMonitors/PodMonitors (its own selectors against the planned
namespaces' labels); each resolves to Services (rendered, planned, or created by kubeadm and the
operator, modelled below with their sources), each Service to pods or Endpoints, each target to
a listener. A target on the pod network needs the port on the pod; a target on a node (host
network, Endpoints, static scrape configs) needs its process to listen beyond loopback (read
from the planned user data: the nodes' own etcd and node-exporter configuration, the kubeadm
and kube-proxy configuration the cluster was initialised with) and a planned security group
rule that lets the workers, where Prometheus runs, reach that port. Then every ``absent()`` in every rule Prometheus loads must name a job that
has targets, or that alert would fire on day one.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import pytest
import yaml

from kaas.bootstrap.userdata.etcd import ETCD_CONFIG_PATH, NODE_EXPORTER_DEFAULTS_PATH
from kaas.bootstrap.userdata.kubeadm import KUBEADM_CONFIG_PATH
from kaas.offline import Plan, plan_spec
from kaas.offline.planfile import plain
from kaas.openstack.addressing import plan_addresses
from kaas.openstack.security import cni_rules
from kaas.spec import ClusterSpec
from kaas.spec.models import Cni
from tests.render_fixtures import all_rendered, plan_of, releases, spec_of

MONITORED = ("acme-prod", "demo", "dev", "no-scanning-no-cert-manager-canal")
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
INSTANCE = "openstack:compute/instance:Instance"
PROMETHEUS_TIER = "worker"
Obj = dict[str, Any]


@dataclass
class Pod:
    """A pod (or a node process) Prometheus may scrape."""

    namespace: str
    labels: dict[str, str]
    ports: dict[str, int]  # container port name -> number ("" for unnamed)
    tiers: tuple[str, ...]  # where it runs
    host_network: bool = False
    listen: dict[int, str] = field(default_factory=dict)  # host network: port -> bind address


@dataclass(frozen=True)
class Target:
    job: str
    where: str
    down: str | None  # why it is unreachable, None when it is up


# --- The planned cluster -----------------------------------------------------------------


def _tier_user_data(plan: Plan, tier: str) -> list[Obj]:
    instances = [
        r for r in plan.resources if r.type == INSTANCE and (r.inputs.get("metadata") or {}).get("kaas-tier") == tier
    ]
    return [yaml.safe_load(plain(r.inputs["userData"], show_secrets=True)) for r in instances]


@cache
def user_data(variant: str, tier: str) -> list[Obj]:
    """The cloud-config of every node of ``tier`` as planned (the Instance's revealed userData)."""
    return _tier_user_data(plan_of(variant), tier)


def _file(cloud_config: Obj, path: str) -> str:
    return str(next(f["content"] for f in cloud_config["write_files"] if f["path"] == path))


def _args(items: list[Obj] | None) -> dict[str, str]:
    return {a["name"]: a["value"] for a in items or []}


def _kubeadm_docs(cloud_config: Obj) -> dict[str, Obj]:
    return {d["kind"]: d for d in yaml.safe_load_all(_file(cloud_config, KUBEADM_CONFIG_PATH))}


@cache
def init_kubeadm_config(variant: str) -> dict[str, Obj]:
    """The kubeadm configuration ``kubeadm init`` ran with when the cluster was built: its documents by kind.

    The ClusterConfiguration and KubeProxyConfiguration exist only in the init master's
    configuration. A stack with a rollout record is past its first ``pulumi up``: every master
    of its plan runs ``kubeadm join --control-plane``, and kubeadm takes the cluster-wide
    configuration from the cluster, not from the joining node: the join fetches the
    ClusterConfiguration from the ``kubeadm-config`` ConfigMap in kube-system (kubeadm
    cmd/kubeadm/app/cmd/join.go, fetchInitConfigurationFromJoinConfiguration ->
    cmd/kubeadm/app/util/config/cluster.go, FetchInitConfigurationFromCluster) and writes the
    controller manager's and scheduler's static pods from it; the kube-proxy DaemonSet reads the
    ``kube-proxy`` ConfigMap. ``kubeadm init`` uploaded both (phases upload-config and
    addon/kube-proxy) from its own configuration. So that configuration is read from the init
    master of the plan that built the cluster: the same spec planned with no rollout record.
    """
    plan = plan_of(variant)
    if not any(_is_init(doc) for doc in _tier_user_data(plan, "master")):
        plan = plan_spec(spec_of(variant))  # recorded=None: the first ``pulumi up``, master 0 inits
    (first,) = (doc for doc in _tier_user_data(plan, "master") if _is_init(doc))
    return _kubeadm_docs(first)


def _is_init(cloud_config: Obj) -> bool:
    return "InitConfiguration" in _kubeadm_docs(cloud_config)


@cache
def control_plane_binds(variant: str) -> dict[str, str]:
    """The controller manager's, scheduler's and kube-proxy's metrics bind addresses, as kubeadm sets them.

    From the cluster's ClusterConfiguration and KubeProxyConfiguration (:func:`init_kubeadm_config`).
    A joining master could override its own static pods only through kubeadm patches
    (JoinConfiguration ``patches``); the plan gives it none, which is checked here so that a
    patch added later cannot go unmodelled. Defaults when unset: kubeadm writes
    ``--bind-address=127.0.0.1`` into the controller-manager and scheduler static pods (kubeadm
    cmd/kubeadm/app/phases/controlplane/manifests.go), and kube-proxy's ``metricsBindAddress``
    defaults to 127.0.0.1:10249 (pkg/proxy/apis/config/v1alpha1/defaults.go).
    """
    for doc in user_data(variant, "master"):
        join = _kubeadm_docs(doc).get("JoinConfiguration", {})
        assert "patches" not in join, "a joining master's kubeadm patches are not modelled by this test"
    docs = init_kubeadm_config(variant)
    cluster = docs["ClusterConfiguration"]
    proxy = docs.get("KubeProxyConfiguration", {}).get("metricsBindAddress", "127.0.0.1:10249")
    return {
        "kube-controller-manager": _args(cluster.get("controllerManager", {}).get("extraArgs")).get(
            "bind-address", "127.0.0.1"
        ),
        "kube-scheduler": _args(cluster.get("scheduler", {}).get("extraArgs")).get("bind-address", "127.0.0.1"),
        "kube-proxy": proxy.rsplit(":", 1)[0],
    }


def _listens(urls: list[str], ip: str, port: int, scheme: str) -> bool:
    for url in urls:
        match = re.fullmatch(r"(https?)://([^:/]+):(\d+)", url.strip())
        if match and match[1] == scheme and int(match[3]) == port and match[2] in (ip, "0.0.0.0"):
            return True
    return False


@cache
def etcd_listeners(variant: str) -> dict[str, list[str]]:
    """Per etcd node IP: its metrics URLs (etcd config) and its node exporter's listen address."""
    found: dict[str, list[str]] = {}
    for doc in user_data(variant, "etcd"):
        config = yaml.safe_load(_file(doc, ETCD_CONFIG_PATH))
        ip = config["advertise-client-urls"].split("//")[1].split(":")[0]
        urls = config.get("listen-metrics-urls", "").split(",")
        exporter = _file(doc, NODE_EXPORTER_DEFAULTS_PATH)
        listen = re.search(r"--web\.listen-address=([^\s\"]*)", exporter)
        address = listen[1] if listen else ":9100"  # node_exporter's default listen address
        host, _, port = address.rpartition(":")
        if "prometheus-node-exporter" in doc["packages"]:
            urls.append(f"http://{host or '0.0.0.0'}:{port}")
        found[ip] = urls
    return found


@cache
def reachable_ports(variant: str) -> set[tuple[str, int]]:
    """(tier, port) the workers may reach, from the planned SecGroupRule resources."""
    plan = plan_of(variant)
    spec = spec_of(variant)
    worker_ips = [ipaddress.ip_address(ip) for ip in plan_addresses(spec).workers]
    open_: set[tuple[str, int]] = set()
    for rule in plan.by_type(SEC_GROUP_RULE):
        deps = rule.property_dependencies
        group = deps["securityGroupId"][0].rsplit("-", 1)[-1]
        remote_group = (deps.get("remoteGroupId") or [""])[0].rsplit("-", 1)[-1]
        prefix = rule.inputs.get("remoteIpPrefix")
        from_workers = remote_group == PROMETHEUS_TIER or (
            prefix is not None and all(ip in ipaddress.ip_network(prefix) for ip in worker_ips)
        )
        if not from_workers or rule.inputs.get("protocol") not in ("tcp", None):
            continue
        low, high = rule.inputs.get("portRangeMin"), rule.inputs.get("portRangeMax")
        ports = range(1, 65536) if low is None else range(int(low), int(high) + 1)
        open_ |= {(group, p) for p in ports}
    return open_


# --- Pods and Services that exist in every cluster, beside the charts' ---------------------


def _tolerates_control_plane(pod_spec: Obj) -> bool:
    for toleration in pod_spec.get("tolerations") or []:
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            return True
        if toleration.get("key") == CONTROL_PLANE_TAINT:
            return True
    return False


def _ports(pod_spec: Obj) -> dict[str, int]:
    ports: dict[str, int] = {}
    for container in [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]:
        for port in container.get("ports") or []:
            ports[port.get("name") or str(port["containerPort"])] = int(port["containerPort"])
    return ports


def _listen_address(pod_spec: Obj) -> str:
    """A host-network container's bind address from its ``--web.listen-address`` (with $(ENV) expanded)."""
    for container in pod_spec.get("containers") or []:
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        for arg in container.get("args") or []:
            if arg.startswith("--web.listen-address="):
                address = re.sub(r"\$\((\w+)\)", lambda m, env=env: env.get(m[1], ""), arg.split("=", 1)[1])
                return address.rsplit(":", 1)[0].strip("[]") or "0.0.0.0"
    return "0.0.0.0"


def workload_pods(objects: list[Obj], namespace_default: str) -> list[Pod]:
    pods: list[Pod] = []
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        template = obj["spec"]["template"]
        spec = template["spec"]
        daemon = obj["kind"] == "DaemonSet"
        tiers = ("master", "worker") if daemon and _tolerates_control_plane(spec) else ("worker",)
        host = bool(spec.get("hostNetwork"))
        ports = _ports(spec)
        pods.append(
            Pod(
                obj["metadata"].get("namespace") or namespace_default,
                dict(template["metadata"].get("labels") or {}),
                ports,
                tiers,
                host,
                {p: _listen_address(spec) for p in ports.values()} if host else {},
            )
        )
    return pods


def operator_pods(objects: list[Obj]) -> list[Pod]:
    """Pods the Prometheus operator creates for Prometheus/Alertmanager resources.

    prometheus-operator v0.93 pkg/prometheus/server/statefulset.go and
    pkg/alertmanager/statefulset.go: labels ``app.kubernetes.io/name``, ``<kind>: <name>``,
    ``operator.prometheus.io/name``; containers' ports ``http-web`` (9090 / 9093) and the
    config reloader's ``reloader-web`` (8080).
    """
    pods: list[Pod] = []
    for obj in objects:
        if obj["kind"] not in ("Prometheus", "Alertmanager"):
            continue
        kind = obj["kind"].lower()
        name = obj["metadata"]["name"]
        labels = {
            "app.kubernetes.io/name": kind,
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "operator.prometheus.io/name": name,
            kind: name,
            **((obj["spec"].get("podMetadata") or {}).get("labels") or {}),
        }
        web = 9090 if kind == "prometheus" else 9093
        pods.append(Pod(obj["metadata"]["namespace"], labels, {"http-web": web, "reloader-web": 8080}, ("worker",)))
    return pods


def kubeadm_pods(variant: str) -> list[Pod]:
    """What kubeadm runs: control-plane static pods, the kube-proxy DaemonSet, CoreDNS.

    Labels from kubeadm's manifests (``component: <name>, tier: control-plane``; kube-proxy
    ``k8s-app: kube-proxy`` tolerating everything; CoreDNS ``k8s-app: kube-dns`` with port
    ``metrics`` 9153 on the pod network).
    """
    binds = control_plane_binds(variant)
    return [
        Pod("kube-system", {"component": "kube-controller-manager", "tier": "control-plane"},
            {"": 10257}, ("master",), True, {10257: binds["kube-controller-manager"]}),
        Pod("kube-system", {"component": "kube-scheduler", "tier": "control-plane"},
            {"": 10259}, ("master",), True, {10259: binds["kube-scheduler"]}),
        Pod("kube-system", {"k8s-app": "kube-proxy"}, {"": 10249}, ("master", "worker"), True,
            {10249: binds["kube-proxy"]}),
        Pod("kube-system", {"k8s-app": "kube-dns"}, {"dns": 53, "metrics": 9153}, ("worker",)),
    ]  # fmt: skip


def cluster_services(variant: str, objects: list[Obj]) -> list[Obj]:
    """Services Kubernetes and the operator create: ``default/kubernetes`` and the kubelet Service.

    The API server keeps ``default/kubernetes`` (labels component=apiserver, provider=kubernetes;
    port ``https`` 443 -> each API server's 6443) and its endpoints; the operator keeps the
    Service its ``--kubelet-service`` flag names, with ports https-metrics 10250, http-metrics
    10255 and cadvisor 4194 and one endpoint per node (pkg/kubelet/controller.go).
    """
    addresses = plan_addresses(spec_of(variant))
    services = [
        {
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
            "endpoints": [(ip, "master") for ip in addresses.masters],
        }
    ]  # fmt: skip
    flag = next(
        arg
        for o in objects
        if o["kind"] == "Deployment"
        for container in o["spec"]["template"]["spec"]["containers"]
        for arg in container.get("args") or []
        if arg.startswith("--kubelet-service=")
    )
    namespace, name = flag.split("=", 1)[1].split("/")
    services.append(
        {
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}},
            "spec": {"ports": [{"name": "https-metrics", "port": 10250}, {"name": "http-metrics", "port": 10255},
                               {"name": "cadvisor", "port": 4194}]},
            "endpoints": [(ip, "master") for ip in addresses.masters] + [(ip, "worker") for ip in addresses.workers],
        }
    )  # fmt: skip
    return services


# --- Resolution ----------------------------------------------------------------------------


def matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _ns(obj: Obj, default: str) -> str:
    return str(obj["metadata"].get("namespace") or default)


@dataclass
class Cluster:
    variant: str
    spec: ClusterSpec
    objects: list[Obj]
    namespaces: dict[str, dict[str, str]]
    pods: list[Pod]
    services: list[Obj]
    prometheus: Obj

    def node_ips(self, tier: str) -> tuple[str, ...]:
        addresses = plan_addresses(self.spec)
        return {"etcd": addresses.etcd, "master": addresses.masters, "worker": addresses.workers}[tier]

    def host_target(self, tier: str, ip: str, port: int, bind: str) -> str | None:
        if bind not in ("0.0.0.0", "", "::", ip):
            return f"{ip}:{port} listens on {bind} only"
        if (tier, port) not in reachable_ports(self.variant):
            return f"no security group rule lets the workers reach {tier} port {port}"
        return None

    def pod_network_reaches(self, tier: str) -> bool:
        rows = cni_rules(self.spec)
        return any(r.group.value == tier and (r.remote_group is not None or r.remote_cidr) for r in rows)


@cache
def cluster(variant: str) -> Cluster:
    spec = spec_of(variant)
    plan: Plan = plan_of(variant)
    objects = all_rendered(variant)
    planned = [
        {"kind": r.type.rsplit(":", 1)[-1], **plain(r.inputs, show_secrets=True)}
        for r in plan.resources
        if r.type.startswith("kubernetes:") and r.custom and "helm.sh" not in r.type and "Provider" not in r.type
    ]
    namespaces = {
        o["metadata"]["name"]: dict(o["metadata"].get("labels") or {}) for o in planned if o["kind"] == "Namespace"
    }
    for builtin in ("default", "kube-system"):
        namespaces.setdefault(builtin, {"kubernetes.io/metadata.name": builtin})
    platform_ns = spec.platform_namespace
    pods = [*workload_pods(objects, platform_ns), *operator_pods([*objects, *planned]), *kubeadm_pods(variant)]
    services = [o for o in [*objects, *planned] if o["kind"] == "Service"] + cluster_services(variant, objects)
    prometheus = next(o for o in objects if o["kind"] == "Prometheus")
    return Cluster(variant, spec, [*objects, *planned], namespaces, pods, services, prometheus)


def _selected_namespaces(c: Cluster, monitor: Obj) -> list[str]:
    selector = monitor["spec"].get("namespaceSelector") or {}
    if selector.get("any"):
        return list(c.namespaces)
    return list(selector.get("matchNames") or [_ns(monitor, c.spec.platform_namespace)])


def _loaded(c: Cluster, kind: str) -> list[Obj]:
    """The monitors (or rules) this Prometheus loads: its selectors against the planned namespaces."""
    prefix = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor", "PrometheusRule": "rule"}[kind]
    spec = c.prometheus["spec"]
    ns_selector = spec.get(f"{prefix}NamespaceSelector")
    selector = spec.get(f"{prefix}Selector")
    loaded = []
    for obj in c.objects:
        if obj["kind"] != kind:
            continue
        namespace = _ns(obj, c.spec.platform_namespace)
        in_namespace = (
            namespace == _ns(c.prometheus, "")
            if ns_selector is None
            else matches(ns_selector, c.namespaces.get(namespace, {}))
        )
        if in_namespace and selector is not None and matches(selector, obj["metadata"].get("labels") or {}):
            loaded.append(obj)
    return loaded


def _port_number(pod: Pod, target_port: int | str) -> int | None:
    if isinstance(target_port, int):
        return target_port if target_port in pod.ports.values() or pod.host_network else None
    return pod.ports.get(target_port)


def service_monitor_targets(c: Cluster, monitor: Obj) -> list[Target]:
    spec = monitor["spec"]
    namespaces = _selected_namespaces(c, monitor)
    services = [
        s
        for s in c.services
        if _ns(s, "") in namespaces and matches(spec["selector"], s["metadata"].get("labels") or {})
    ]
    name = monitor["metadata"]["name"]
    if not services:
        return [Target(name, "(no Service)", f"ServiceMonitor {name} selects no Service")]
    targets: list[Target] = []
    for service in services:
        labels = service["metadata"].get("labels") or {}
        job = labels.get(spec.get("jobLabel") or "", service["metadata"]["name"])
        for endpoint in spec["endpoints"]:
            scheme = endpoint.get("scheme", "http")
            if "targetPort" in endpoint:
                targets += _target_port_targets(c, service, job, endpoint["targetPort"], scheme)
                continue
            port = next((p for p in service["spec"]["ports"] if p.get("name") == endpoint.get("port")), None)
            if port is None:
                targets.append(Target(job, service["metadata"]["name"], f"no port {endpoint.get('port')}"))
                continue
            target_port = port.get("targetPort", port["port"])
            targets += _service_targets(c, service, job, target_port, scheme)
    return targets


def _service_pods(c: Cluster, service: Obj) -> list[Pod]:
    selector = service["spec"].get("selector")
    namespace = _ns(service, "")
    return [p for p in c.pods if selector and p.namespace == namespace and matches({"matchLabels": selector}, p.labels)]


def _target_port_targets(c: Cluster, service: Obj, job: str, wanted: int | str, scheme: str) -> list[Target]:
    """An endpoint by ``targetPort``: the Service ports whose pod port is that container port (name or number).

    prometheus-operator pkg/prometheus/promcfg.go (generateServiceMonitorConfig): a string
    ``targetPort`` keeps the endpoints whose ``__meta_kubernetes_pod_container_port_name``
    equals it, a number those whose ``..._container_port_number`` does; the endpoints are the
    Service's ports, so the container port must also be behind one of them.
    """
    found: list[Target] = []
    for port in service["spec"]["ports"]:
        service_target = port.get("targetPort", port["port"])
        pods = [
            pod
            for pod in _service_pods(c, service)
            if (number := _port_number(pod, service_target)) is not None
            and (number == wanted if isinstance(wanted, int) else pod.ports.get(wanted) == number)
        ]
        if pods:
            found += _service_targets(c, service, job, service_target, scheme)
    name = service["metadata"]["name"]
    return found or [Target(job, name, f"no port of Service {name} reaches a container port {wanted}")]


def _peer_admits(c: Cluster, peer: Obj, namespace: str) -> bool:
    """Whether a NetworkPolicy ``from`` peer (in ``namespace``) admits the platform Prometheus' pods."""
    prometheus_ns = _ns(c.prometheus, "")
    prometheus = next(p for p in operator_pods([c.prometheus]))
    if "ipBlock" in peer:
        return False  # pod addresses are not planned; an ipBlock is not how a policy admits Prometheus here
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], c.namespaces.get(prometheus_ns, {})):
            return False
    elif prometheus_ns != namespace:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], prometheus.labels)


def network_policy_blocks(c: Cluster, pod: Pod, number: int) -> str | None:
    """Why the NetworkPolicies selecting ``pod`` keep the platform Prometheus from ``number``, or None.

    A pod selected by any policy with Ingress in its policyTypes (or, without policyTypes, any
    policy: Ingress is implied) takes only what one of their ingress rules allows: a rule
    without ``ports`` allows every port, without ``from`` every source (networking/v1 types).
    """
    names = {name for name, value in pod.ports.items() if value == number}
    selecting = [
        policy
        for policy in c.objects
        if policy["kind"] == "NetworkPolicy"
        and _ns(policy, c.spec.platform_namespace) == pod.namespace
        and "Ingress" in (policy["spec"].get("policyTypes") or ["Ingress"])
        and matches(policy["spec"].get("podSelector") or {}, pod.labels)
    ]
    if not selecting:
        return None
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports") or [{}]
            port_ok = any("port" not in p or p["port"] == number or p["port"] in names for p in ports)
            peers = rule.get("from") or [{}]
            if port_ok and any(peer == {} or _peer_admits(c, peer, pod.namespace) for peer in peers):
                return None
    return f"NetworkPolicies {[p['metadata']['name'] for p in selecting]} keep Prometheus from port {number}"


def _service_targets(c: Cluster, service: Obj, job: str, target_port: int | str, scheme: str) -> list[Target]:
    namespace = _ns(service, "")
    selector = service["spec"].get("selector")
    if "endpoints" in service:  # maintained by Kubernetes or the operator, on nodes
        return [
            Target(job, f"{ip}:{target_port}", c.host_target(tier, ip, int(target_port), "0.0.0.0"))
            for ip, tier in service["endpoints"]
        ]
    if not selector:  # the chart's own Endpoints object (kubeEtcd.endpoints)
        endpoints = [
            o
            for o in c.objects
            if o["kind"] == "Endpoints" and o["metadata"]["name"] == service["metadata"]["name"]
            and _ns(o, "") == namespace
        ]  # fmt: skip
        found = []
        for subset in (e.get("subsets") or [] for e in endpoints):
            for part in subset:
                for address in part["addresses"]:
                    ip = address["ip"]
                    tier = next(t for t in ("etcd", "master", "worker") if ip in c.node_ips(t))
                    urls = etcd_listeners(c.variant).get(ip, []) if tier == "etcd" else []
                    port = int(target_port)
                    down = None if _listens(urls, ip, port, scheme) else f"nothing listens on {scheme}://{ip}:{port}"
                    found.append(Target(job, f"{ip}:{port}", down or c.host_target(tier, ip, port, "0.0.0.0")))
        return found or [Target(job, service["metadata"]["name"], "a selector-less Service without Endpoints")]
    pods = [p for p in c.pods if p.namespace == namespace and matches({"matchLabels": selector}, p.labels)]
    if not pods:
        return [
            Target(
                job, service["metadata"]["name"], f"Service {namespace}/{service['metadata']['name']} selects no pod"
            )
        ]
    targets = []
    for pod in pods:
        number = _port_number(pod, target_port)
        where = f"{namespace}/{pod.labels}:{target_port}"
        if number is None:
            targets.append(Target(job, where, f"the pod has no port {target_port}"))
            continue
        for tier in pod.tiers:
            if pod.host_network:
                bind = pod.listen.get(number, "0.0.0.0")
                for ip in c.node_ips(tier):
                    targets.append(Target(job, f"{ip}:{number}", c.host_target(tier, ip, number, bind)))
            else:
                down = None if c.pod_network_reaches(tier) else f"no pod network from the workers to {tier}"
                targets.append(Target(job, where, down or network_policy_blocks(c, pod, number)))
    return targets


def pod_monitor_targets(c: Cluster, monitor: Obj) -> list[Target]:
    spec = monitor["spec"]
    namespaces = _selected_namespaces(c, monitor)
    pods = [p for p in c.pods if p.namespace in namespaces and matches(spec["selector"], p.labels)]
    job = f"{_ns(monitor, '')}/{monitor['metadata']['name']}"
    if not pods:
        return [Target(job, "(no pod)", f"PodMonitor {monitor['metadata']['name']} selects no pod")]
    return [
        Target(job, str(p.labels), None if p.ports.get(e.get("port", "")) else f"no port {e.get('port')}")
        for p in pods
        for e in spec.get("podMetricsEndpoints") or []
    ]


def static_targets(c: Cluster) -> list[Target]:
    """``additionalScrapeConfigs``: read back from the Secret the chart renders."""
    targets: list[Target] = []
    for obj in c.objects:
        if obj["kind"] != "Secret" or "additional-scrape-configs.yaml" not in (obj.get("data") or {}):
            continue
        for job in yaml.safe_load(base64.b64decode(obj["data"]["additional-scrape-configs.yaml"])) or []:
            scheme = job.get("scheme", "http")
            for static in job.get("static_configs") or []:
                for address in static["targets"]:
                    ip, port = address.rsplit(":", 1)
                    tier = next(t for t in ("etcd", "master", "worker") if ip in c.node_ips(t))
                    urls = etcd_listeners(c.variant).get(ip, []) if tier == "etcd" else []
                    down = None if _listens(urls, ip, int(port), scheme) else f"nothing listens on {address}"
                    targets.append(Target(job["job_name"], address, down or c.host_target(tier, ip, int(port), ip)))
    return targets


@cache
def all_targets(variant: str) -> list[Target]:
    c = cluster(variant)
    targets: list[Target] = []
    for monitor in _loaded(c, "ServiceMonitor"):
        targets += service_monitor_targets(c, monitor)
    for monitor in _loaded(c, "PodMonitor"):
        targets += pod_monitor_targets(c, monitor)
    return targets + static_targets(c)


# --- The tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", MONITORED)
def test_every_scrape_target_resolves_and_is_reachable(variant: str) -> None:
    down = [f"{t.job} {t.where}: {t.down}" for t in all_targets(variant) if t.down]
    assert not down, "\n".join(down)


@pytest.mark.parametrize("variant", MONITORED)
def test_the_control_plane_etcd_and_every_node_are_scraped(variant: str) -> None:
    spec = spec_of(variant)
    addresses = plan_addresses(spec)
    by_job: dict[str, set[str]] = {}
    for target in all_targets(variant):
        by_job.setdefault(target.job, set()).add(target.where)
    assert by_job["kube-etcd"] == {f"{ip}:2381" for ip in addresses.etcd}
    assert {f"{ip}:9100" for ip in (*addresses.etcd, *addresses.masters, *addresses.workers)} <= by_job["node-exporter"]
    assert by_job["kube-controller-manager"] == {f"{ip}:10257" for ip in addresses.masters}
    assert by_job["kube-scheduler"] == {f"{ip}:10259" for ip in addresses.masters}
    assert by_job["kube-proxy"] == {f"{ip}:10249" for ip in (*addresses.masters, *addresses.workers)}
    assert {"apiserver", "kubelet", "coredns", "kube-state-metrics"} <= set(by_job)
    if spec.services.backups.enabled:
        assert "velero" in by_job
    if spec.services.ingress.enabled and spec.services.ingress.cert_manager:
        # The controller exports the certificate metrics the cert-manager alerts read.
        assert {"cert-manager", "cert-manager-webhook", "cert-manager-cainjector"} <= set(by_job)
        assert len(by_job["cert-manager"]) == 1  # one Service port reaches the container port http-metrics
    else:
        assert "cert-manager" not in by_job


# The label job, not one ending in it (kube-state-metrics' cronjob="...").
_ABSENT_JOB = re.compile(r"absent\((?:[^()]|\([^()]*\))*?\bjob\s*(=~|=)\s*\"([^\"]*)\"")


@pytest.mark.parametrize("variant", MONITORED)
def test_no_absent_alert_lacks_a_target(variant: str) -> None:
    c = cluster(variant)
    jobs = {t.job for t in all_targets(variant) if not t.down}
    missing = []
    checked = set()
    rules = _loaded(c, "PrometheusRule")
    for rule_object in rules:
        for group in rule_object["spec"]["groups"]:
            for rule in group["rules"]:
                for operator, job in _ABSENT_JOB.findall(str(rule.get("expr", ""))):
                    checked.add(rule.get("alert"))
                    pattern = job if operator == "=~" else re.escape(job)
                    if not any(re.fullmatch(pattern, j) for j in jobs):
                        missing.append(f'{rule.get("alert") or rule.get("record")}: absent(... job{operator}"{job}")')
    assert not missing, "\n".join(missing)
    # Not vacuous: the chart's absent() alerts for the control plane and our backup alert were checked.
    assert {"KubeAPIDown", "KubeControllerManagerDown", "KubeSchedulerDown", "KubeProxyDown"} <= checked
    assert "EtcdBackupMissing" in checked
    if c.spec.services.ingress.cert_manager:
        assert "CertManagerAbsent" in checked


def test_resolution_fails_when_a_bind_address_or_a_rule_is_missing() -> None:
    """The resolver is not a rubber stamp: kubeadm's loopback default and a lost rule both show as down."""
    c = cluster("acme-prod")
    assert c.host_target("master", c.node_ips("master")[0], 10257, "127.0.0.1") is not None
    assert c.host_target("etcd", c.node_ips("etcd")[0], 2379, "0.0.0.0") is not None  # etcd client port: masters only
    assert c.host_target("etcd", c.node_ips("etcd")[0], 2381, "0.0.0.0") is None
    assert not _listens(["http://127.0.0.1:2381"], c.node_ips("etcd")[0], 2381, "http")


def _cert_manager_targets(c: Cluster) -> list[Target]:
    [monitor] = [m for m in _loaded(c, "ServiceMonitor") if m["metadata"]["name"] == "cert-manager"]
    return [t for t in service_monitor_targets(c, monitor) if t.job == "cert-manager"]


def test_network_policies_must_let_prometheus_reach_cert_manager() -> None:
    """The NetworkPolicy check is not a rubber stamp: a default deny in the platform namespace takes
    cert-manager's target down; a policy admitting the Prometheus namespace on ``http-metrics`` brings it back."""
    base = cluster("acme-prod")
    assert all(t.down is None for t in _cert_manager_targets(base))
    namespace = base.spec.platform_namespace
    deny = {"kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}  # fmt: skip
    denied = replace(base, objects=[*base.objects, deny])
    assert all(t.down and "NetworkPolicies ['deny']" in t.down for t in _cert_manager_targets(denied))
    ns_labels = base.namespaces[_ns(base.prometheus, "")]
    admit = {"kind": "NetworkPolicy", "metadata": {"name": "prometheus-in", "namespace": namespace},
             "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "cert-manager"}},
                      "ingress": [{"from": [{"namespaceSelector": {"matchLabels": ns_labels},
                                             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                                   "ports": [{"port": "http-metrics"}]}]}}  # fmt: skip
    assert all(t.down is None for t in _cert_manager_targets(replace(base, objects=[*denied.objects, admit])))
    wrong_port = {**admit, "spec": {**admit["spec"], "ingress": [{"ports": [{"port": 9443}]}]}}
    assert all(t.down for t in _cert_manager_targets(replace(base, objects=[*denied.objects, wrong_port])))


def test_every_monitored_variant_has_prometheus() -> None:
    for variant in MONITORED:
        assert "kube-prometheus-stack" in releases(plan_of(variant))
    assert cluster("demo").spec.networking.cni is Cni.FLANNEL

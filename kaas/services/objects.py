"""Plain Kubernetes objects the platform creates, as manifests built by pure functions.

Each function returns one manifest (``apiVersion``, ``kind``, ``metadata`` and the
rest, camelCase as the API takes it). Values may be Pulumi inputs (for secrets and
cloud IDs); the component turns each manifest into one resource and tests render the
recorded inputs back to YAML and validate them against the Kubernetes schema.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from kaas.openstack import credentials
from kaas.platform import KEYSTONE_AUTH_PORT, break_glass_group
from kaas.services import access, catalog, harbor_robot, images, keystone_filter, names, values
from kaas.services.values import Values
from kaas.spec.models import ClusterSpec

Manifest = dict[str, Any]

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def _meta(spec: ClusterSpec, name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/managed-by": spec.provider_name, **labels}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


# --- Namespaces, quotas, policies ------------------------------------------------------


def platform_namespace(spec: ClusterSpec) -> Manifest:
    labels = {
        names.platform_label(spec): "true",
        # Log shippers and node exporters mount host paths. warn/audit too: otherwise the
        # cluster default (security.pod_security_default) would warn on every platform chart.
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(spec, spec.platform_namespace, **labels)}


def customer_namespace(spec: ClusterSpec, name: str) -> Manifest:
    labels = {names.customer_label(spec): "true", "pod-security.kubernetes.io/enforce": "baseline"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(spec, name, **labels)}


def resource_quota(spec: ClusterSpec, namespace: str) -> Manifest:
    """A namespace may claim at most the workers' total capacity (a template to tighten per customer)."""
    workers = spec.workers
    hard = {
        "requests.cpu": str(workers.count * workers.flavor.vcpus),
        "requests.memory": f"{workers.count * workers.flavor.ram_gb}Gi",
        "limits.memory": f"{workers.count * workers.flavor.ram_gb}Gi",
        "pods": str(110 * workers.count),
        "services.loadbalancers": "2",
        "persistentvolumeclaims": "20",
    }
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(spec, "default-quota", namespace),
        "spec": {"hard": hard},
    }


# Defaults for containers that state no resources: the namespace's quota counts requests
# and memory limits, and without defaults the API would refuse such pods outright.
LIMIT_RANGE_DEFAULT_REQUEST = {"cpu": "100m", "memory": "128Mi"}
LIMIT_RANGE_DEFAULT_LIMIT = {"memory": "512Mi"}


def limit_range(spec: ClusterSpec, namespace: str) -> Manifest:
    """Default requests and memory limit for every container of the namespace that sets none."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(spec, "default-limits", namespace),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": dict(LIMIT_RANGE_DEFAULT_REQUEST),
                    "default": dict(LIMIT_RANGE_DEFAULT_LIMIT),
                }
            ]
        },
    }


def default_deny(spec: ClusterSpec, namespace: str) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, "default-deny", namespace),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


# --- Secrets ---------------------------------------------------------------------------


def secret(
    spec: ClusterSpec,
    name: str,
    namespace: str,
    string_data: dict[str, pulumi.Input[str]],
    secret_type: str = "Opaque",
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(spec, name, namespace),
        "type": secret_type,
        "stringData": string_data,
    }


def harbor_redis_network_policy(spec: ClusterSpec) -> Manifest:
    """Only Harbor's pods reach its internal Redis, which the chart runs without a password.

    goharbor/harbor-helm v1.18.1: Redis pods carry ``harbor.matchLabels`` (release, app)
    plus ``component: redis`` (templates/redis/statefulset.yaml); every Harbor pod carries
    the release and app labels.
    """
    harbor = {"release": names.HARBOR_RELEASE, "app": "harbor"}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, f"{names.HARBOR_RELEASE}-redis", spec.platform_namespace),
        "spec": {
            "podSelector": {"matchLabels": {**harbor, "component": "redis"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": harbor}}], "ports": [{"protocol": "TCP", "port": 6379}]}
            ],
        },
    }


def docker_config_json(registry: str, username: str, password: str) -> str:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"username": username, "password": password, "auth": auth}}})


# --- Storage ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CinderStorageClass:
    """A StorageClass of Cinder CSI; ``key`` names its resource (``<cluster>-sc-<key>``)."""

    key: str
    name: str
    reclaim_policy: str
    default: bool


# The StorageClasses the services layer creates (the chart's own are off), in creation order.
CINDER_STORAGE_CLASSES = (
    CinderStorageClass("default", names.STORAGE_CLASS_DEFAULT, "Delete", default=True),
    CinderStorageClass("retain", names.STORAGE_CLASS_RETAIN, "Retain", default=False),
)


def storage_class(spec: ClusterSpec, name: str, reclaim_policy: str, default: bool) -> Manifest:
    meta = _meta(spec, name)
    meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true" if default else "false"}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": meta,
        "provisioner": values.CSI_PROVISIONER,
        "reclaimPolicy": reclaim_policy,
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


# --- Keystone authentication -----------------------------------------------------------


def keystone_auth_service_account(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(spec, names.KEYSTONE_AUTH, names.KUBE_SYSTEM),
    }


def keystone_auth_cluster_role(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(spec, names.KEYSTONE_AUTH),
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch", "list"]}],
    }


def keystone_auth_cluster_role_binding(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(spec, names.KEYSTONE_AUTH),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": names.KEYSTONE_AUTH},
        "subjects": [{"kind": "ServiceAccount", "name": names.KEYSTONE_AUTH, "namespace": names.KUBE_SYSTEM}],
    }


def keystone_sync_config(spec: ClusterSpec, admin_role_id: str) -> str:
    """k8s-keystone-auth's sync config: the cluster-admin role's holders join the Group named by its ID.

    The spec's other roles (``identity.roles``) follow, each to its own group (:mod:`kaas.services.access`).
    """
    admin = {"keystone-role": spec.admin_role_name, "groups": [admin_role_id]}
    mapping = {"role-mappings": [admin, *access.sync_role_mappings(spec)]}
    return json.dumps(mapping, indent=2)  # JSON is YAML; the webhook reads it as YAML


def keystone_sync_config_map(spec: ClusterSpec, sync_config: pulumi.Input[str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(spec, names.KEYSTONE_AUTH_SYNC, names.KUBE_SYSTEM),
        "data": {"syncConfig": sync_config},
    }


KEYSTONE_AUTH_UPSTREAM_PORT = KEYSTONE_AUTH_PORT + 1  # k8s-keystone-auth itself, behind the scope filter
KEYSTONE_TLS_DIR = "/etc/pki/keystone-auth"


def keystone_filter_script() -> str:
    """The scope filter's program: the source of ``kaas.services.keystone_filter`` (standard library only)."""
    return Path(keystone_filter.__file__).read_text(encoding="utf-8")


def keystone_auth_daemon_set(
    spec: ClusterSpec,
    project_id: pulumi.Input[str],
    admin_role_id: pulumi.Input[str],
    tls_checksum: pulumi.Input[str],
) -> Manifest:
    """k8s-keystone-auth on every control-plane node, host network, behind the scope filter.

    Both containers read the serving certificate once, at start: its SHA-256 (``tls_checksum``,
    :func:`kaas.services.values.config_checksum`) in the pod template rolls the DaemonSet (one master
    at a time) when it is renewed.

    The API server's webhook files name ``127.0.0.1:KEYSTONE_AUTH_PORT``: the filter
    (``kaas.services.keystone_filter``) answers there and forwards to k8s-keystone-auth
    on ``KEYSTONE_AUTH_UPSTREAM_PORT``, refusing tokens of other projects and domains and
    replacing the groups k8s-keystone-auth passes through (all Keystone group names).
    """
    labels = {"app.kubernetes.io/name": names.KEYSTONE_AUTH}
    args = [
        "./bin/k8s-keystone-auth",
        f"--tls-cert-file={KEYSTONE_TLS_DIR}/tls.crt",
        f"--tls-private-key-file={KEYSTONE_TLS_DIR}/tls.key",
        f"--keystone-url={spec.openstack.auth_url}",
        f"--sync-configmap-name={names.KEYSTONE_AUTH_SYNC}",
        f"--listen=127.0.0.1:{KEYSTONE_AUTH_UPSTREAM_PORT}",
        "--v=2",
    ]
    tls_mount = [{"name": "tls", "mountPath": KEYSTONE_TLS_DIR, "readOnly": True}]
    hardened = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "name": names.KEYSTONE_AUTH,
        "image": images.pinned(catalog.KEYSTONE_AUTH_IMAGE),
        "args": args,
        "env": [{"name": "KEYSTONE_AUTH_NAMESPACE", "value": names.KUBE_SYSTEM}],
        "volumeMounts": tls_mount,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    }
    scope_env = {
        "LISTEN_PORT": str(KEYSTONE_AUTH_PORT),
        "UPSTREAM_URL": f"https://127.0.0.1:{KEYSTONE_AUTH_UPSTREAM_PORT}/webhook",
        "TLS_CERT": f"{KEYSTONE_TLS_DIR}/tls.crt",
        "TLS_KEY": f"{KEYSTONE_TLS_DIR}/tls.key",
        "PROJECT_ID": project_id,
        "DOMAIN_NAME": spec.identity.domain,
        "ADMIN_ROLE": spec.admin_role_name,
        "ADMIN_GROUP": admin_role_id,
        "ROLE_GROUPS": json.dumps({m["keystone-role"]: m["groups"][0] for m in access.sync_role_mappings(spec)}),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    scope_filter = {
        "name": "scope-filter",
        "image": images.pinned(HARBOR_ROBOT_JOB_IMAGE),
        "command": ["python3", "-c", keystone_filter_script()],
        "env": [{"name": key, "value": value} for key, value in scope_env.items()],
        "ports": [{"name": "webhook", "containerPort": KEYSTONE_AUTH_PORT, "hostPort": KEYSTONE_AUTH_PORT}],
        "volumeMounts": tls_mount,
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": hardened,
    }
    pod_spec = {
        "serviceAccountName": names.KEYSTONE_AUTH,
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {CONTROL_PLANE_LABEL: ""},
        "tolerations": [{"key": CONTROL_PLANE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [scope_filter, container],
        "volumes": [{"name": "tls", "secret": {"secretName": names.KEYSTONE_AUTH_TLS}}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(spec, names.KEYSTONE_AUTH, names.KUBE_SYSTEM, **labels),
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": {values.CONFIG_CHECKSUM_ANNOTATION: tls_checksum}},
                "spec": pod_spec,
            },
        },
    }


# --- Kubelet serving certificates --------------------------------------------------------
#
# Kubelets run with serverTLSBootstrap (kaas.bootstrap.userdata.kubeadm.kubelet_configuration):
# each asks for a serving certificate through a CSR for signer kubernetes.io/kubelet-serving,
# which kube-controller-manager signs with the cluster CA once approved, but never approves
# itself. postfinance/kubelet-csr-approver approves only CSRs whose DNS names match the
# node-name regex and whose IPs lie in the node subnet; these objects follow its
# deploy/k8s/{serviceaccount,clusterrole,rolebinding,deployment}.yaml at tag v1.2.14.
# Node names do not resolve in cluster DNS, hence BYPASS_DNS_RESOLUTION (the regex and IP
# prefix checks stay).


def kubelet_node_name_regex(spec: ClusterSpec) -> str:
    """Host names of the Kubernetes nodes (kaas.openstack.addressing.node_name)."""
    return rf"^{re.escape(spec.name)}-(master|worker)-[0-9]+$"


def kubelet_csr_approver_service_account(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(spec, names.KUBELET_CSR_APPROVER, names.KUBE_SYSTEM),
    }


def kubelet_csr_approver_cluster_role(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(spec, names.KUBELET_CSR_APPROVER),
        "rules": [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["certificatesigningrequests"],
                "verbs": ["get", "list", "watch"],
            },
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get", "update"]},
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["certificatesigningrequests/approval"],
                "verbs": ["update"],
            },
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["signers"],
                "resourceNames": ["kubernetes.io/kubelet-serving"],
                "verbs": ["approve"],
            },
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        ],
    }


def kubelet_csr_approver_cluster_role_binding(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(spec, names.KUBELET_CSR_APPROVER),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": names.KUBELET_CSR_APPROVER,
        },
        "subjects": [{"kind": "ServiceAccount", "name": names.KUBELET_CSR_APPROVER, "namespace": names.KUBE_SYSTEM}],
    }


def kubelet_csr_approver_deployment(spec: ClusterSpec) -> Manifest:
    labels = {"app.kubernetes.io/name": names.KUBELET_CSR_APPROVER}
    container = {
        "name": names.KUBELET_CSR_APPROVER,
        "image": images.pinned(catalog.KUBELET_CSR_APPROVER_IMAGE),
        "args": ["-metrics-bind-address", ":8080", "-health-probe-bind-address", ":8081", "-leader-election"],
        "env": [
            {"name": "PROVIDER_REGEX", "value": kubelet_node_name_regex(spec)},
            {"name": "PROVIDER_IP_PREFIXES", "value": spec.networking.node_cidr},
            {"name": "BYPASS_DNS_RESOLUTION", "value": "true"},
            {"name": "MAX_EXPIRATION_SEC", "value": str(367 * 24 * 3600)},
        ],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8081}},
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    pod_spec = {
        "serviceAccountName": names.KUBELET_CSR_APPROVER,
        "priorityClassName": "system-cluster-critical",
        "tolerations": [{"key": CONTROL_PLANE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [container],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, names.KUBELET_CSR_APPROVER, names.KUBE_SYSTEM, **labels),
        "spec": {
            "replicas": 2 if spec.is_production else 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def admin_binding_name(spec: ClusterSpec) -> str:
    return f"{spec.provider_name}:default-cluster-admin"


def admin_cluster_role_binding(spec: ClusterSpec, admin_role_id: pulumi.Input[str]) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(spec, admin_binding_name(spec)),
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": admin_role_id}],
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin", "apiGroup": "rbac.authorization.k8s.io"},
    }


def break_glass_binding_name(spec: ClusterSpec) -> str:
    """Named like the break-glass certificate's group."""
    return break_glass_group(spec.provider_name)


def break_glass_cluster_role_binding(spec: ClusterSpec) -> Manifest:
    """cluster-admin for the short-lived break-glass certificate's group; delete it to revoke."""
    group = break_glass_group(spec.provider_name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(spec, break_glass_binding_name(spec)),
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}],
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin", "apiGroup": "rbac.authorization.k8s.io"},
    }


# --- Monitoring: the customer-apps Prometheus ------------------------------------------


def app_prometheus_rbac(spec: ClusterSpec) -> list[Manifest]:
    ns = spec.platform_namespace
    name = f"{names.APP_PROMETHEUS}-prometheus"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(spec, names.APP_PROMETHEUS, ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(spec, name),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "nodes/metrics", "services", "endpoints", "pods"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(spec, name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": names.APP_PROMETHEUS, "namespace": ns}],
        },
    ]


def app_prometheus(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": _meta(spec, names.APP_PROMETHEUS, spec.platform_namespace),
        "spec": values.app_prometheus_spec(spec),
    }


def app_prometheus_pdb(spec: ClusterSpec) -> Manifest:
    """Keeps one apps Prometheus replica through a node drain (the chart does this for the platform one)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(spec, f"{names.APP_PROMETHEUS}-prometheus", spec.platform_namespace),
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": {"prometheus": names.APP_PROMETHEUS}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def app_prometheus_exposure(spec: ClusterSpec) -> list[Manifest]:
    """A Service for the apps Prometheus's pods and its Ingress at ``prometheus-apps.<cluster>.<domain>``.

    The operator's own ``prometheus-operated`` Service spans every Prometheus in the
    namespace; this one selects only the apps instance (the operator labels its pods
    ``prometheus: <name>``).
    """
    ns = spec.platform_namespace
    name = f"{names.APP_PROMETHEUS}-prometheus"
    hostname = values.host(spec, names.APP_PROMETHEUS_HOST)
    port = names.APP_PROMETHEUS_PORT
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(spec, name, ns),
            "spec": {
                "selector": {"prometheus": names.APP_PROMETHEUS},
                "ports": [{"name": "web", "port": port, "targetPort": port, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                **_meta(spec, name, ns),
                "annotations": {**values.CERT_ANNOTATIONS, **values.BASIC_AUTH_ANNOTATIONS},
            },
            "spec": {
                "ingressClassName": values.INGRESS_CLASS,
                "tls": [{"hosts": [hostname], "secretName": f"{names.APP_PROMETHEUS_HOST}-tls"}],
                "rules": [
                    {
                        "host": hostname,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": name, "port": {"number": port}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
    ]


def cluster_issuer(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": _meta(spec, names.CLUSTER_ISSUER),
        "spec": values.cluster_issuer_spec(spec),
    }


# --- Logging: the ISM policy -----------------------------------------------------------

ISM_POLICY_ID = "logs-retention"
ISM_JOB_IMAGE = "curlimages/curl:8.17.0"


def ism_policy_config_map(spec: ClusterSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(spec, "opensearch-ism-policy", spec.platform_namespace),
        "data": {"policy.json": values.ism_policy_json(spec)},
    }


def _opensearch_admin_curl() -> str:
    """curl as the security admin: the admin client certificate, OpenSearch's CA verified."""
    return (
        "curl -s --cacert /admin/ca.crt --cert /admin/tls.crt --key /admin/tls.key -H 'Content-Type: application/json'"
    )


def _opensearch_admin_job(
    spec: ClusterSpec, name: str, script: str, env: list[Manifest], volumes: list[Manifest], mounts: list[Manifest]
) -> Manifest:
    container = {
        "name": name,
        "image": images.pinned(ISM_JOB_IMAGE),
        "command": ["/bin/sh", "-c", script],
        "env": env,
        "volumeMounts": [{"name": "admin-tls", "mountPath": "/admin", "readOnly": True}, *mounts],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(spec, name, spec.platform_namespace),
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 3600,
            "template": {
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [container],
                    "volumes": [
                        {"name": "admin-tls", "secret": {"secretName": names.OPENSEARCH_ADMIN_TLS}},
                        *volumes,
                    ],
                }
            },
        },
    }


def ism_policy_job(spec: ClusterSpec) -> Manifest:
    """A Job that installs the ISM policy once OpenSearch answers (409: already there)."""
    url = f"{values.opensearch_url()}/_plugins/_ism/policies/{ISM_POLICY_ID}"
    script = (
        f"until code=$({_opensearch_admin_curl()} -o /tmp/out -w '%{{http_code}}' "
        f"-X PUT '{url}' --data @/policy/policy.json); "
        '[ "$code" = 200 ] || [ "$code" = 201 ] || [ "$code" = 409 ]; do sleep 10; done; cat /tmp/out'
    )
    return _opensearch_admin_job(
        spec,
        "opensearch-ism-policy",
        script,
        [],
        [{"name": "policy", "configMap": {"name": "opensearch-ism-policy"}}],
        [{"name": "policy", "mountPath": "/policy", "readOnly": True}],
    )


def opensearch_security_job(spec: ClusterSpec) -> Manifest:
    """Creates OpenSearch's users and the log writer role through the security REST API.

    Authenticated by the admin client certificate (``plugins.security.authcz.admin_dn``),
    so no user exists before this Job makes them: ``admin`` (backend role ``admin``, which
    the security plugin's default roles_mapping maps to ``all_access``), ``kibanaserver``
    (mapped to ``kibana_server`` by the same file) and the Fluent Bit writer with only the
    ``log_writer`` role. A PUT replaces a user, so a rerun resets each password to its
    Secret. Passwords are letters and digits (pulumi-random, no specials), safe in JSON.
    """
    base = f"{values.opensearch_url()}/_plugins/_security/api"
    curl = _opensearch_admin_curl()

    def put(path: str, data: str) -> str:
        return (
            f"until code=$({curl} -o /tmp/out -w '%{{http_code}}' -X PUT '{base}/{path}' --data {data}); "
            '[ "$code" = 200 ] || [ "$code" = 201 ]; do cat /tmp/out 2>/dev/null; sleep 10; done'
        )

    def user(name: str, password_var: str, extra: str = "") -> str:
        # The body is written by printf, so the password never appears in the command line of curl.
        body = f"/tmp/{name}.json"
        write = f'printf \'{{"password":"%s"{extra}}}\' "${password_var}" > {body}'
        return f"{write} && {put(f'internalusers/{name}', '@' + body)}"

    def literal(document: Values) -> str:
        return "'" + json.dumps(document, separators=(",", ":")) + "'"  # JSON without single quotes

    script = " && ".join(
        [
            user("admin", "ADMIN_PASSWORD", ',"backend_roles":["admin"]'),
            user(values.OPENSEARCH_DASHBOARDS_USER, "DASHBOARDS_PASSWORD"),
            user(values.OPENSEARCH_FLUENT_BIT_USER, "FLUENT_BIT_PASSWORD"),
            put(f"roles/{values.OPENSEARCH_LOG_WRITER_ROLE}", literal(values.opensearch_log_writer_role())),
            put(
                f"rolesmapping/{values.OPENSEARCH_LOG_WRITER_ROLE}",
                literal({"users": [values.OPENSEARCH_FLUENT_BIT_USER]}),
            ),
        ]
    )

    def from_secret(var: str, secret_name: str) -> Manifest:
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "password"}}}

    return _opensearch_admin_job(
        spec,
        "opensearch-security",
        script,
        [
            from_secret("ADMIN_PASSWORD", names.OPENSEARCH_ADMIN),
            from_secret("DASHBOARDS_PASSWORD", names.OPENSEARCH_DASHBOARDS),
            from_secret("FLUENT_BIT_PASSWORD", names.OPENSEARCH_FLUENT_BIT),
        ],
        [],
        [],
    )


# The platform's private CA (cert-manager): a self-signed Issuer signs the CA certificate,
# whose Issuer signs the in-cluster certificates (OpenSearch nodes and its admin client).
# cert-manager puts the issuing CA into each certificate Secret's ``ca.crt``.


def platform_ca_objects(spec: ClusterSpec) -> list[Manifest]:
    ns = spec.platform_namespace
    issuer_api = "cert-manager.io/v1"
    return [
        {
            "apiVersion": issuer_api,
            "kind": "Issuer",
            "metadata": _meta(spec, names.PLATFORM_SELF_SIGNED, ns),
            "spec": {"selfSigned": {}},
        },
        {
            "apiVersion": issuer_api,
            "kind": "Certificate",
            "metadata": _meta(spec, names.PLATFORM_CA, ns),
            "spec": {
                "isCA": True,
                "commonName": f"{spec.name} platform CA",
                "secretName": names.PLATFORM_CA,
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {"kind": "Issuer", "name": names.PLATFORM_SELF_SIGNED},
            },
        },
        {
            "apiVersion": issuer_api,
            "kind": "Issuer",
            "metadata": _meta(spec, names.PLATFORM_CA, ns),
            "spec": {"ca": {"secretName": names.PLATFORM_CA}},
        },
    ]


def opensearch_certificates(spec: ClusterSpec) -> list[Manifest]:
    """The node certificate (transport + HTTP) and the security admin's client certificate.

    The security plugin reads PKCS#8 keys only (``pemkey_filepath``), hence ``encoding: PKCS8``.
    """
    ns = spec.platform_namespace

    def certificate(name: str, secret_name: str, common_name: str, usages: list[str], **extra: Any) -> Manifest:
        return {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": _meta(spec, name, ns),
            "spec": {
                "secretName": secret_name,
                "commonName": common_name,
                "duration": "8760h",
                "renewBefore": "720h",
                "privateKey": {"algorithm": "RSA", "size": 2048, "encoding": "PKCS8", "rotationPolicy": "Always"},
                "usages": ["digital signature", "key encipherment", *usages],
                "issuerRef": {"kind": "Issuer", "name": names.PLATFORM_CA},
                **extra,
            },
        }

    return [
        certificate(
            "opensearch-node",
            names.OPENSEARCH_NODE_TLS,
            values.OPENSEARCH_NODE_CN,
            ["server auth", "client auth"],
            dnsNames=values.opensearch_node_dns_names(spec),
        ),
        certificate("opensearch-admin", names.OPENSEARCH_ADMIN_TLS, values.OPENSEARCH_ADMIN_CN, ["client auth"]),
    ]


# --- Registry: the pull robot ----------------------------------------------------------

HARBOR_ROBOT_JOB = "harbor-pull-robot"
# docker-library/official-images library/python: 3.13.9-alpine3.22 (stdlib only is needed).
HARBOR_ROBOT_JOB_IMAGE = "python:3.13.9-alpine3.22"
HARBOR_ROBOT_RETRY_SECONDS = 10
# Older pull robots are deleted this long after the new one works: three runs of the guardrail
# reconciler (every minute), which by then has replaced the pull Secrets it copied.
HARBOR_ROBOT_RETIRE_AFTER_SECONDS = 180


def harbor_robot_script() -> str:
    """The Job's program: the source of ``kaas.services.harbor_robot`` (standard library only)."""
    return Path(harbor_robot.__file__).read_text(encoding="utf-8")


def harbor_robot_job(spec: ClusterSpec) -> Manifest:
    """A Job that registers this generation's pull robot in Harbor and sets its secret, once
    Harbor's API answers, then deletes the robots of older generations.

    The robot expires with the cloud's application credentials (``ROBOT_EXPIRES_AT``,
    :func:`kaas.openstack.credentials.expires_at`). The secrets reach the container only
    through ``secretKeyRef``s: the Harbor admin password (the chart's
    ``existingSecretAdminPassword``) and the robot's secret (the same value the customer
    namespaces' pull Secrets carry).
    """
    env = [
        {"name": "HARBOR_URL", "value": values.harbor_core_url(spec)},
        {"name": "ROBOT_NAME", "value": names.pull_robot_name(spec)},
        {"name": "ROBOT_FAMILY", "value": names.pull_robot_family(spec)},
        {"name": "ROBOT_EXPIRES_AT", "value": credentials.expires_at(spec)},
        {"name": "RETIRE_AFTER_SECONDS", "value": str(HARBOR_ROBOT_RETIRE_AFTER_SECONDS)},
        {"name": "RETRY_SECONDS", "value": str(HARBOR_ROBOT_RETRY_SECONDS)},
        {
            "name": "HARBOR_ADMIN_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": names.HARBOR_ADMIN, "key": "HARBOR_ADMIN_PASSWORD"}},
        },
        {
            "name": "ROBOT_SECRET",
            "valueFrom": {"secretKeyRef": {"name": names.HARBOR_ROBOT, "key": "ROBOT_SECRET"}},
        },
    ]
    container = {
        "name": "register-robot",
        "image": images.pinned(HARBOR_ROBOT_JOB_IMAGE),
        "command": ["python3", "-c", harbor_robot_script()],
        "env": env,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,  # the image runs as root by default
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(spec, HARBOR_ROBOT_JOB, spec.platform_namespace),
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 3600,
            "template": {"spec": {"restartPolicy": "OnFailure", "containers": [container]}},
        },
    }

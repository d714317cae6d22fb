"""The demo application deployed during the kubectl walkthrough, generated for one cluster.

A Deployment, a Service and an Ingress at ``demo.<cluster>.<domain>`` on the
cluster's ingress class (TLS from the cluster issuer when cert-manager runs).
"""

from __future__ import annotations

from typing import Any

import yaml

from kaas.outputs import StackOutputs

DEMO_NAMESPACE = "demo"
DEMO_NAME = "hello"
DEMO_HOST_LABEL = "demo"
# An unprivileged nginx (listens on 8080, runs as a non-root user).
DEMO_IMAGE = "docker.io/nginxinc/nginx-unprivileged:1.29-alpine"
DEMO_PORT = 8080


def demo_host(outputs: StackOutputs) -> str:
    return f"{DEMO_HOST_LABEL}.{outputs.cluster_domain}"


def demo_manifests(outputs: StackOutputs) -> list[dict[str, Any]]:
    """Namespace, Deployment, Service and (with an ingress controller) Ingress."""
    labels = {"app.kubernetes.io/name": DEMO_NAME, "app.kubernetes.io/part-of": "handover-demo"}
    meta = {"name": DEMO_NAME, "namespace": DEMO_NAMESPACE, "labels": labels}
    replicas = max(2, min(outputs.layout.workers.count, 3))
    manifests: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [
                            {
                                "name": DEMO_NAME,
                                "image": DEMO_IMAGE,
                                "ports": [{"name": "http", "containerPort": DEMO_PORT}],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "32Mi"},
                                    "limits": {"memory": "64Mi"},
                                },
                                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    ]
    ingress = outputs.networking.ingress
    if ingress is not None:
        host = demo_host(outputs)
        # edit-in-place: the nginx.org controller serves one Ingress per host, so the HTTP-01
        # solver must add its path to this Ingress rather than create its own.
        annotations = (
            {
                "cert-manager.io/cluster-issuer": ingress.cluster_issuer,
                "acme.cert-manager.io/http01-edit-in-place": "true",
            }
            if ingress.cluster_issuer
            else {}
        )
        spec: dict[str, Any] = {
            "ingressClassName": ingress.ingress_class,
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": DEMO_NAME, "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
            ],
        }
        if ingress.cluster_issuer:
            spec["tls"] = [{"hosts": [host], "secretName": f"{DEMO_NAME}-tls"}]
        manifests.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {**meta, "annotations": annotations} if annotations else meta,
                "spec": spec,
            }
        )
    return manifests


class _NoAliasDumper(yaml.SafeDumper):
    """Shared label dicts are written out in full: no YAML anchors in a customer's manifest."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def demo_manifests_yaml(outputs: StackOutputs) -> str:
    return yaml.dump_all(demo_manifests(outputs), Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False)

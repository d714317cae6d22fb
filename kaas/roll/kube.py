"""A thin Kubernetes API client for the worker and master gates (stdlib HTTP, no kubectl).

Upstream semantics relied on:
- cordon is ``PATCH /api/v1/nodes/<name>`` with ``{"spec": {"unschedulable": true}}``
  (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/);
- drain evicts each pod with ``POST /api/v1/namespaces/<ns>/pods/<pod>/eviction``
  (policy/v1 Eviction); the API answers 429 Too Many Requests while a
  PodDisruptionBudget forbids it, and the caller retries
  (https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/);
- ``kubectl drain --ignore-daemonsets`` leaves DaemonSet pods (their controller ignores
  unschedulable) and mirror pods alone
  (https://kubernetes.io/docs/tasks/administer-cluster/safely-drain-node/).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from kaas.roll.http import HttpError, JsonClient

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    daemonset: bool
    mirror: bool
    finished: bool


def _pod(data: dict[str, Any]) -> Pod:
    meta = data.get("metadata", {})
    owners = meta.get("ownerReferences") or []
    return Pod(
        namespace=str(meta.get("namespace", "default")),
        name=str(meta["name"]),
        daemonset=any(o.get("kind") == "DaemonSet" for o in owners),
        mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
        finished=data.get("status", {}).get("phase") in ("Succeeded", "Failed"),
    )


class Eviction:
    """The outcome of one eviction request."""

    EVICTED = "evicted"
    BLOCKED = "blocked"  # 429: a PodDisruptionBudget does not allow it now
    GONE = "gone"  # 404: the pod is gone already


@dataclass(frozen=True)
class KubeClient:
    api: JsonClient

    def node(self, name: str) -> dict[str, Any] | None:
        try:
            _, body, _ = self.api.request("GET", f"/api/v1/nodes/{name}")
        except HttpError as error:
            if error.status == 404:
                return None
            raise
        return dict(body)

    def nodes(self) -> list[dict[str, Any]]:
        """``GET /api/v1/nodes``: every Node object."""
        _, body, _ = self.api.request("GET", "/api/v1/nodes")
        return [dict(item) for item in body.get("items", [])]

    def node_ready(self, name: str) -> bool:
        node = self.node(name)
        conditions = (node or {}).get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def set_unschedulable(self, name: str, unschedulable: bool) -> None:
        self.api.request(
            "PATCH", f"/api/v1/nodes/{name}", {"spec": {"unschedulable": unschedulable}}, content_type=MERGE_PATCH
        )

    def pods_on(self, node: str) -> list[Pod]:
        selector = urllib.parse.quote(f"spec.nodeName={node}")
        _, body, _ = self.api.request("GET", f"/api/v1/pods?fieldSelector={selector}")
        return [_pod(item) for item in body.get("items", [])]

    def evict(self, pod: Pod) -> str:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
        }
        try:
            self.api.request("POST", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/eviction", body)
        except HttpError as error:
            if error.status == 429:
                return Eviction.BLOCKED
            if error.status == 404:
                return Eviction.GONE
            raise
        return Eviction.EVICTED

    def delete_node(self, name: str) -> None:
        try:
            self.api.request("DELETE", f"/api/v1/nodes/{name}")
        except HttpError as error:
            if error.status != 404:
                raise

    def readyz(self) -> tuple[bool, str]:
        """``GET /readyz`` (through whatever address the client is built with, the load balancer here)."""
        try:
            status, body, _ = self.api.request("GET", "/readyz")
        except HttpError as error:
            return False, str(error)
        return status == 200, str(body)[:200]

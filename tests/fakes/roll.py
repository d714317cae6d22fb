"""A fake cluster for ``kaas roll``'s gates: kube-apiserver (nodes, pods, eviction, ``/readyz``),
Keystone (application credential tokens) and Octavia (pool members), in one route.

Shapes and status codes follow the upstream references:
- Node ``status.conditions[type=Ready]``, cordon by ``PATCH`` of ``spec.unschedulable``
  (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/);
- ``POST .../pods/<name>/eviction``: 201 and the pod is deleted, 429 while a
  PodDisruptionBudget's ``minAvailable`` would be broken, 404 for a pod that is gone
  (https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/);
- ``GET /readyz``: 200 ``ok`` or 500 with the failing checks
  (https://kubernetes.io/docs/reference/using-api/health-checks/);
- Keystone ``POST /v3/auth/tokens`` with an application credential: 201, token in
  ``X-Subject-Token``, the catalog in the body
  (https://docs.openstack.org/api-ref/identity/v3/#authenticating-with-an-application-credential);
- Secrets in ``/api/v1/namespaces/<ns>/secrets``: ``POST`` (201, 409 for a name taken; ``stringData``
  stored as ``data``, base64), ``GET`` with ``labelSelector``/``fieldSelector=type=``, ``DELETE`` (404
  for a missing one) (https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/);
- Octavia ``GET /v2/lbaas/pools?name=`` and ``GET /v2/lbaas/pools/<id>/members`` with
  ``operating_status`` (https://docs.openstack.org/api-ref/load-balancer/v2/).
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.fakes.servers import Answer, Request, json_answer

TOKEN = "gAAAAA-roll-token"


@dataclass
class FakePod:
    namespace: str
    name: str
    node: str
    app: str
    daemonset: bool = False


@dataclass
class FakeCluster:
    base_url: str = ""
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"ready": bool, "unschedulable": bool}
    pods: list[FakePod] = field(default_factory=list)
    min_available: dict[str, int] = field(default_factory=dict)  # app -> PodDisruptionBudget minAvailable
    readyz: bool = True
    pool_members: dict[str, str] = field(default_factory=dict)  # address -> operating_status
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    evictions: list[str] = field(default_factory=list)
    reschedule: bool = True  # an evicted pod's controller makes a new one on a schedulable node
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (namespace, name) -> Secret
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_node(self, name: str, ready: bool = True, since: str = "2026-12-01T09:00:00Z", status: str = "") -> None:
        """``since``: the Ready condition's lastTransitionTime; ``status``: its status when not ready
        (``False`` by default, ``Unknown`` when the node controller lost the kubelet)."""
        with self.lock:
            self.nodes[name] = {"ready": ready, "unschedulable": False, "since": since, "status": status or "False"}

    def _node(self, name: str) -> dict[str, Any]:
        node = self.nodes[name]
        return {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {"name": name},
            "spec": {"unschedulable": True} if node["unschedulable"] else {},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False", "lastTransitionTime": "2026-11-01T09:00:00Z"},
                    {
                        "type": "Ready",
                        "status": "True" if node["ready"] else node.get("status", "False"),
                        "lastTransitionTime": node.get("since", "2026-12-01T09:00:00Z"),
                        "reason": "KubeletReady" if node["ready"] else "NodeStatusUnknown",
                    },
                ]
            },
        }

    def _pod(self, pod: FakePod) -> dict[str, Any]:
        owner = {"kind": "DaemonSet" if pod.daemonset else "ReplicaSet", "name": pod.app, "controller": True}
        return {
            "metadata": {
                "name": pod.name,
                "namespace": pod.namespace,
                "labels": {"app": pod.app},
                "ownerReferences": [owner],
            },
            "spec": {"nodeName": pod.node},
            "status": {"phase": "Running"},
        }

    def route(self, request: Request) -> Answer:
        body = json.loads(request.body) if request.body else None
        with self.lock:
            self.requests.append((request.method, request.path, body))
            return self._route(request, body)

    def _route(self, request: Request, body: Any) -> Answer:
        method, path = request.method, request.path
        parts = path.strip("/").split("/")
        not_found = json_answer(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
        if path == "/readyz":
            return (
                Answer(200, b"ok")
                if self.readyz
                else Answer(500, b"[-]etcd failed: reason withheld\nreadyz check failed")
            )
        if path == "/v3/auth/tokens" and method == "POST":
            credential = body["auth"]["identity"]["application_credential"]
            if credential != {"id": "roll-id", "secret": "roll-secret"}:
                return json_answer(401, {"error": {"code": 401, "title": "Unauthorized"}})
            catalog = [
                {"type": "load-balancer", "endpoints": [{"interface": "public", "url": self.base_url + "/octavia"}]}
            ]
            return json_answer(201, {"token": {"catalog": catalog}}, {"X-Subject-Token": TOKEN})
        if path.startswith("/octavia/"):
            if request.header("X-Auth-Token") != TOKEN:
                return json_answer(401, {"error": "unauthorized"})
            if path == "/octavia/v2/lbaas/pools":
                pools = [{"id": "pool-1", "name": "demo-api-masters"}]
                return json_answer(200, {"pools": [p for p in pools if p["name"] == request.query.get("name")]})
            if path == "/octavia/v2/lbaas/pools/pool-1/members":
                members = [{"address": a, "operating_status": s} for a, s in self.pool_members.items()]
                return json_answer(200, {"members": members})
            return not_found
        if path == "/api/v1/nodes" and method == "GET":
            return json_answer(
                200, {"kind": "NodeList", "apiVersion": "v1", "items": [self._node(n) for n in self.nodes]}
            )
        if parts[:3] == ["api", "v1", "nodes"] and len(parts) == 4:
            name = parts[3]
            if name not in self.nodes:
                return not_found
            if method == "PATCH":
                assert request.header("Content-Type") == "application/merge-patch+json"
                self.nodes[name]["unschedulable"] = bool(body["spec"]["unschedulable"])
            if method == "DELETE":
                del self.nodes[name]
                return json_answer(200, {"kind": "Status", "status": "Success"})
            return json_answer(200, self._node(name))
        if path == "/api/v1/pods":
            node = request.query.get("fieldSelector", "").removeprefix("spec.nodeName=")
            return json_answer(200, {"kind": "PodList", "items": [self._pod(p) for p in self.pods if p.node == node]})
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (5, 6) and parts[4] == "secrets":
            return self._secrets(request, parts[3], parts[5] if len(parts) == 6 else None, body)
        if len(parts) == 7 and parts[:3] == ["api", "v1", "namespaces"] and parts[6] == "eviction" and method == "POST":
            return self._evict(parts[3], parts[5], body)
        return not_found

    def _secrets(self, request: Request, namespace: str, name: str | None, body: Any) -> Answer:
        not_found = json_answer(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
        if request.method == "POST" and name is None:
            key = (namespace, body["metadata"]["name"])
            if key in self.secrets:
                return json_answer(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
            data = {k: base64.b64encode(v.encode()).decode() for k, v in body.pop("stringData", {}).items()}
            stored = {**body, "metadata": {**body["metadata"], "namespace": namespace}, "data": data}
            self.secrets[key] = stored
            return json_answer(201, stored)
        if request.method == "GET" and name is None:
            labels = dict(s.split("=", 1) for s in request.query.get("labelSelector", "").split(",") if s)
            kind = request.query.get("fieldSelector", "").removeprefix("type=")
            items = [
                s
                for (ns, _), s in self.secrets.items()
                if ns == namespace
                and labels.items() <= s["metadata"].get("labels", {}).items()
                and (not kind or s.get("type") == kind)
            ]
            return json_answer(200, {"kind": "SecretList", "items": items})
        if name is None or (namespace, name) not in self.secrets:
            return not_found
        if request.method == "DELETE":
            del self.secrets[(namespace, name)]
            return json_answer(200, {"kind": "Status", "status": "Success"})
        return json_answer(200, self.secrets[(namespace, name)])

    def bootstrap_token_valid(self, token: str, now: datetime) -> bool:
        """What the bootstrap token authenticator checks: the Secret exists, the secret matches, not expired."""
        token_id, _, secret = token.partition(".")
        stored = self.secrets.get(("kube-system", f"bootstrap-token-{token_id}"))
        if stored is None or stored.get("type") != "bootstrap.kubernetes.io/token":
            return False
        data = {k: base64.b64decode(v).decode() for k, v in stored["data"].items()}
        expiration = datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
        return data["token-secret"] == secret and now < expiration

    def _evict(self, namespace: str, name: str, body: Any) -> Answer:
        assert body["kind"] == "Eviction" and body["apiVersion"] == "policy/v1"
        pod = next((p for p in self.pods if (p.namespace, p.name) == (namespace, name)), None)
        if pod is None:
            return json_answer(404, {"kind": "Status", "reason": "NotFound", "code": 404})
        running = [p for p in self.pods if p.app == pod.app]
        if len(running) - 1 < self.min_available.get(pod.app, 0):
            return json_answer(
                429,
                {
                    "kind": "Status",
                    "reason": "TooManyRequests",
                    "code": 429,
                    "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                },
            )
        self.pods.remove(pod)
        self.evictions.append(f"{namespace}/{name}")
        targets = [n for n, s in self.nodes.items() if not s["unschedulable"] and s["ready"] and n != pod.node]
        if self.reschedule and targets:
            self.pods.append(FakePod(namespace, f"{name}-r", targets[0], pod.app))
        return json_answer(201, {"kind": "Status", "status": "Success"})

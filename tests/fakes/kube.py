"""A fake Kubernetes API server: the few GETs kaas verify makes, answered as kube-apiserver does.

Shapes follow the Kubernetes API reference (https://kubernetes.io/docs/reference/kubernetes-api/):
lists are ``{"kind": "<Kind>List", "apiVersion", "metadata", "items"}``, errors are ``Status``
objects (reason NotFound/Unauthorized/Forbidden with the matching code), Secrets carry ``data``
base64-encoded (``stringData`` is write-only and merged into ``data``). Bearer tokens are
authenticated by the given table (the Keystone webhook in a real cluster); only users in the
admin group may read (RBAC's cluster-admin binding). The service proxy
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy/...``) forwards to registered routes.
Helm release Secrets are written as Helm 3's Secret driver does (pkg/storage/driver/secrets.go
and util.go): name ``sh.helm.release.v1.NAME.vREV``, type ``helm.sh/release.v1``, labels
``name, owner=helm, status, version``, ``data.release`` = base64(gzip(release JSON)).
Velero objects follow velero.io/v1 (Schedule ``status.lastBackup``, Backup ``status.phase``).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.servers import Answer, Request, Route, json_answer


def status(code: int, reason: str, message: str) -> Answer:
    return json_answer(
        code,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code},
    )  # fmt: skip


def node(name: str, version: str, ready: bool = True) -> dict[str, Any]:
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "KubeletReady" if ready else "KubeletNotReady"},
            ],
            "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version, "osImage": "Ubuntu 24.04 LTS"},
        },
    }  # fmt: skip


def secret_from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores for a Secret manifest: stringData merged into base64 ``data``."""
    data = dict(manifest.get("data") or {})
    for key, value in (manifest.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    meta = dict(manifest["metadata"])
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": meta,
        "type": manifest.get("type", "Opaque"),
        "data": data,
    }


def helm_release_secret(
    name: str, namespace: str, chart: str, version: str, revision: int = 1, state: str = "deployed"
) -> dict[str, Any]:
    release = {
        "name": name,
        "namespace": namespace,
        "version": revision,
        "info": {"status": state, "description": "Install complete"},
        "chart": {"metadata": {"name": chart, "version": version, "apiVersion": "v2"}},
        "config": {},
        "manifest": "",
    }
    helm_encoded = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v{revision}",
            "namespace": namespace,
            "labels": {"name": name, "owner": "helm", "status": state, "version": str(revision)},
        },
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(helm_encoded).decode()},
    }


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",")))


def _list(kind: str, api_version: str, items: list[dict[str, Any]]) -> Answer:
    return json_answer(
        200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items}
    )


@dataclass
class FakeKube:
    """State of the fake cluster; tests change it to make a check fail."""

    # The authentication webhook: bearer token -> (user, groups), None if not authenticated.
    authenticate: Callable[[str], tuple[str, tuple[str, ...]] | None] = lambda token: None
    admin_group: str = "admins"
    nodes: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    velero: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"schedules": [], "backups": []})
    proxies: dict[str, Route] = field(default_factory=dict)  # "NS/SERVICE:PORT" -> route
    requests: list[Request] = field(default_factory=list)

    def route(self, request: Request) -> Answer:
        self.requests.append(request)
        auth = request.header("Authorization") or ""
        who = self.authenticate(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if who is None:
            return status(401, "Unauthorized", "Unauthorized")
        user, groups = who
        path = request.path
        if self.admin_group not in groups:
            return status(
                403, "Forbidden",
                f'nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at the cluster scope',
            )  # fmt: skip
        if match := re.fullmatch(r"/api/v1/namespaces/([^/]+)/services/([^/]+)/proxy(/.*)", path):
            target = self.proxies.get(f"{match[1]}/{match[2]}")
            if target is None:
                return status(404, "NotFound", f'services "{match[2]}" not found')
            return target(Request(request.method, match[3], request.query, request.headers, request.body))
        if path == "/api/v1/nodes":
            return _list("Node", "v1", self.nodes)
        if match := re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets", path):
            items = [s for s in self.secrets if s["metadata"]["namespace"] == match[1]]
            return _list("Secret", "v1", [s for s in items if _selected(s, request.query.get("labelSelector"))])
        if match := re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets/([^/]+)", path):
            for s in self.secrets:
                if (s["metadata"]["namespace"], s["metadata"]["name"]) == (match[1], match[2]):
                    return json_answer(200, s)
            return status(404, "NotFound", f'secrets "{match[2]}" not found')
        if match := re.fullmatch(r"/apis/velero.io/v1/namespaces/([^/]+)/(schedules|backups)(?:/([^/]+))?", path):
            ns, plural, name = match[1], match[2], match[3]
            items = [o for o in self.velero[plural] if o["metadata"]["namespace"] == ns]
            if name is None:
                kind = "Schedule" if plural == "schedules" else "Backup"
                selected = [o for o in items if _selected(o, request.query.get("labelSelector"))]
                return _list(kind, "velero.io/v1", selected)
            for obj in items:
                if obj["metadata"]["name"] == name:
                    return json_answer(200, obj)
            return status(404, "NotFound", f'{plural}.velero.io "{name}" not found')
        return status(404, "NotFound", "the server could not find the requested resource")

"""Hardening as the real control plane applies it (pinned kube-apiserver + etcd from
``tests/controlplane.py``, configured by the plan's first master): Secrets encrypted in etcd,
the audit log written by the policy, the Pod Security default on a namespace made later."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from kaas.bootstrap import hardening
from tests.controlplane import ControlPlane

pytestmark = pytest.mark.xdist_group("controlplane")


def test_secrets_are_stored_encrypted_in_etcd(control_plane: ControlPlane) -> None:
    """k8s.io/apiserver storage/value/encrypt/secretbox: stored values carry the prefix
    ``k8s:enc:secretbox:v1:<key name>:`` and the ciphertext ("Encrypting Confidential Data at Rest")."""
    name = f"enc-{uuid.uuid4().hex[:8]}"
    marker = f"plain-{uuid.uuid4().hex}"
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"value": marker}}
    created = control_plane.request("POST", "/api/v1/namespaces/default/secrets", admin=True, body=body)
    assert created.status_code == 201, created.text
    got = control_plane.etcdctl("get", f"/registry/secrets/default/{name}", "--write-out=json")
    assert got.returncode == 0, got.stderr
    [kv] = json.loads(got.stdout)["kvs"]
    stored = base64.b64decode(kv["value"])
    assert stored.startswith(b"k8s:enc:secretbox:v1:key1:")
    assert marker.encode() not in stored
    # The API still reads it back in clear.
    read = control_plane.request("GET", f"/api/v1/namespaces/default/secrets/{name}", admin=True).json()
    assert read["data"]["value"]


def test_the_audit_policy_loads_and_records_metadata_without_secret_values(control_plane: ControlPlane) -> None:
    name = f"audit-{uuid.uuid4().hex[:8]}"
    marker = f"never-logged-{uuid.uuid4().hex}"
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"value": marker}}
    assert control_plane.request("POST", "/api/v1/namespaces/default/secrets", admin=True, body=body).status_code == 201
    log = control_plane.master.path(hardening.AUDIT_LOG_PATH)
    deadline = time.monotonic() + 30
    entries: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        if log.exists():
            entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            if any((e.get("objectRef") or {}).get("name") == name for e in entries):  # type: ignore[union-attr]
                break
        time.sleep(0.5)
    mine = [e for e in entries if (e.get("objectRef") or {}).get("name") == name]  # type: ignore[union-attr]
    assert mine, f"no audit entry for the Secret in {log}"
    assert {e["level"] for e in mine} == {"Metadata"}
    assert {e["verb"] for e in mine} == {"create"}
    assert marker not in log.read_text()
    # Health probes are not recorded.
    assert not [e for e in entries if str(e.get("requestURI", "")).startswith(("/healthz", "/readyz", "/livez"))]


def test_pod_security_default_refuses_a_privileged_pod_in_a_namespace_created_later(
    control_plane: ControlPlane,
) -> None:
    namespace = f"later-{uuid.uuid4().hex[:8]}"
    made = control_plane.request(
        "POST",
        "/api/v1/namespaces",
        admin=True,
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    assert made.status_code == 201, made.text
    # The ServiceAccount admission needs the namespace's "default" account; the controller
    # manager makes it, possibly late on a loaded machine: create it (409 when it won the race).
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    made_sa = control_plane.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", admin=True, body=account)
    assert made_sa.status_code in (201, 409), made_sa.text

    def pod(privileged: bool) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": privileged}}]},
        }

    path = f"/api/v1/namespaces/{namespace}/pods?dryRun=All"
    refused = control_plane.request("POST", path, admin=True, body=pod(True))
    assert refused.status_code == 403, refused.text
    assert 'violates PodSecurity "baseline:latest"' in refused.json()["message"]
    accepted = control_plane.request("POST", path, admin=True, body=pod(False))
    assert accepted.status_code == 201, accepted.text

"""The thin clients' protocol details, checked against reference implementations where one exists."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from kaas.handover.source import handover_outputs
from kaas.offline.planfile import SECRET_MASK
from kaas.outputs import OutputsError
from kaas.verify.clients import decode_helm_release, sigv4_headers
from kaas.verify.context import CouldNotRunError, kubeconfig_client
from kaas.verify.http import connect_to, direct
from kaas.verify.source import automation_outputs
from tests.fakes.kube import helm_release_secret
from tests.fakes.pki import TestCa
from tests.fakes.servers import Request, https_server, json_answer
from tests.verify_env import stack_plan


def test_sigv4_signature_matches_botocore() -> None:
    """The S3 signature must be the one AWS (and Swift's s3api) computes; botocore is the reference."""
    now = dt.datetime(2026, 12, 1, 10, 30, 5, tzinfo=dt.UTC)
    query = {"list-type": "2", "prefix": "etcd-snapshots/", "continuation-token": "a b/c=="}
    ours = sigv4_headers("GET", "swift.example:8080", "/etcd-backups", query, "RegionOne", "AK", "SK", now)
    request = AWSRequest(
        method="GET",
        url="https://swift.example:8080/etcd-backups",
        params=query,
        headers={"x-amz-content-sha256": ours["x-amz-content-sha256"]},
    )
    request.context["timestamp"] = now.strftime("%Y%m%dT%H%M%SZ")
    signer = S3SigV4Auth(BotoCredentials("AK", "SK"), "s3", "RegionOne")
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    assert ours["Authorization"].endswith(f"Signature={signature}")
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date," in ours["Authorization"]
    assert ours["x-amz-date"] == "20261201T103005Z"


def test_helm_release_secret_decodes_to_its_chart() -> None:
    release = decode_helm_release(helm_release_secret("harbor", "kaas-system", "harbor", "1.18.1", revision=4))
    assert (release.name, release.revision, release.status, release.chart_version) == (
        "harbor",
        4,
        "deployed",
        "1.18.1",
    )


def _kubeconfig(tmp_path: Path, server: str, ca_pem: str, user: dict[str, Any]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "admin@c",
        "clusters": [{"name": "c", "cluster": {"server": server,
                                                "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "contexts": [{"name": "admin@c", "context": {"cluster": "c", "user": "admin"}}],
        "users": [{"name": "admin", "user": user}],
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_kubeconfig_with_an_exec_plugin_sends_its_token(tmp_path: Path) -> None:
    """client.authentication.k8s.io ExecCredential: the plugin prints JSON with status.token."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, os\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
        "'kind': 'ExecCredential', 'status': {'token': os.environ['TOKEN']}}))\n"
    )
    ca = TestCa("cluster")
    seen: list[Request] = []

    def route(request: Request) -> Any:
        seen.append(request)
        return json_answer(200, {"kind": "NodeList", "items": []})

    with https_server(route, ca.issue("api.example")) as port:
        exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                              "args": [str(plugin)], "env": [{"name": "TOKEN", "value": "from-plugin"}]}}  # fmt: skip
        path = _kubeconfig(tmp_path, "https://api.example:6443", ca.pem, exec_user)
        client = kubeconfig_client(path, connect_to({("api.example", 6443): ("127.0.0.1", port)}), 5)
        assert client.get("/api/v1/nodes").status == 200
    assert seen[0].header("Authorization") == "Bearer from-plugin"


def test_an_unusable_kubeconfig_could_not_run(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("current-context: nowhere\ncontexts: []\n")
    with pytest.raises(CouldNotRunError, match="unusable"):
        kubeconfig_client(path, direct, 5)


class _Value:
    def __init__(self, value: Any, secret: bool = False) -> None:
        self.value, self.secret = value, secret


class _Stack:
    def __init__(self, outputs: dict[str, _Value]) -> None:
        self._outputs = outputs

    def outputs(self) -> dict[str, _Value]:
        return self._outputs


def test_automation_outputs_read_the_selected_stack_and_skip_secrets() -> None:
    _, plan = stack_plan()
    dumped = json.loads(handover_outputs(plan).model_dump_json())
    values = {k: _Value(v) for k, v in dumped.items()} | {"adminKubeconfig": _Value("apiVersion: v1", secret=True)}
    chosen: list[tuple[str, Path]] = []

    def select(stack: str, work_dir: Path) -> _Stack:
        chosen.append((stack, work_dir))
        return _Stack(values)

    outputs = automation_outputs("acme-prod", Path("/repo"), select)
    assert outputs.cluster_name == "acme-prod" and chosen == [("acme-prod", Path("/repo"))]
    assert SECRET_MASK not in outputs.model_dump_json()


def test_automation_outputs_name_the_fallback_when_pulumi_is_missing() -> None:
    def select(stack: str, work_dir: Path) -> _Stack:
        raise FileNotFoundError("pulumi")

    with pytest.raises(OutputsError, match="pass --outputs FILE"):
        automation_outputs("acme-prod", Path("/repo"), select)

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaas.cli import main
from kaas.outputs import ClusterFacts, build_stack_outputs
from kaas.spec import load_stack_spec
from kaas.spec.loader import REPO_ROOT
from tests.helpers import make_ca_pem, make_plan, pulumi_output_json


def kaas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaas", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def deployed_outputs(stack: str, **facts: Any) -> dict[str, Any]:
    """What `pulumi stack output --json` prints for a deployed stack (secrets masked)."""
    values: dict[str, Any] = {
        "api_floating_ip": "192.0.2.10",
        "ingress_floating_ip": "192.0.2.11",
        "admin_role_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
        "network_id": "9d0a1b7e-net",
        "subnet_id": "9d0a1b7e-subnet",
        "dns_zone_name": "zone.",
        "dns_zone_id": "zone-id",
        "api_load_balancer_id": "lb-id",
        "server_group_ids": {"etcd": "sg1", "masters": "sg2", "workers": "sg3"},
        "ca_certificate": make_ca_pem(f"{stack}-ca"),
    }
    values.update(facts)
    return pulumi_output_json(build_stack_outputs(make_plan(load_stack_spec(stack)), ClusterFacts(**values)))


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "acme-prod.json"
    path.write_text(json.dumps(deployed_outputs("acme-prod"), indent=2))
    return path


def test_handover_html_from_the_offline_plan_is_a_marked_preview(tmp_path: Path) -> None:
    target = tmp_path / "handover.html"
    result = kaas("handover", "--stack", "acme-prod", "--format", "html", "-o", str(target))
    assert result.returncode == 0, result.stderr
    document = target.read_text()
    ET.fromstring(document.removeprefix("<!DOCTYPE html>\n"))
    assert "PREVIEW" in document and "Kubernetes core concepts" in document  # acme-prod is production
    assert "PREVIEW" in result.stderr


def test_handover_from_real_outputs_uses_them(outputs_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["handover", "--stack", "acme-prod", "--outputs", str(outputs_file), "--kind", "demo"]) == 0
    document = capsys.readouterr().out
    assert "PREVIEW" not in document
    assert "`192.0.2.11`" in document and "c0ffee00c0ffee00c0ffee00c0ffee00" in document
    assert "## Recap of customer needs" in document  # --kind overrides the spec's environment


def test_kubeconfig_from_real_outputs(outputs_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "kubeconfig"
    result = kaas(
        "kubeconfig", "--stack", "acme-prod", "--outputs", str(outputs_file), "--user", "bob", "-o", str(target)
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(target.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://api.acme-prod.k8s.acme.example:6443"
    assert config["users"][0]["user"]["exec"]["command"] == "client-keystone-auth"
    assert "PREVIEW" not in target.read_text()


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    return path


def _without(key: str) -> str:
    data = deployed_outputs("acme-prod")
    data.pop(key)
    return json.dumps(data)


def _with(path: tuple[str, ...], value: Any) -> str:
    data = deployed_outputs("acme-prod")
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not JSON (line 1, column 2"),
        ('["a"]', "must be a JSON object of stack outputs"),
        (
            '{"bucketName": "x", "vpcId": "y"}',
            "not the outputs of a kaas stack: no 'outputsSchema' key (keys found: bucketName, vpcId)",
        ),
        (_without("etcd"), "etcd: is missing"),
        (_with(("layout", "workers", "count"), "many"), "layout.workers.count: Input should be a valid integer"),
        (_with(("clusterName",), "demo"), "the outputs are of cluster 'demo', but the stack's spec is 'acme-prod'"),
    ],
    ids=["not-json", "not-an-object", "other-project", "missing-key", "wrong-type", "other-cluster"],
)
@pytest.mark.parametrize("command", ["handover", "kubeconfig"])
def test_bad_outputs_file_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: str, expected: str
) -> None:
    path = _write(tmp_path, content)
    assert main([command, "--stack", "acme-prod", "--outputs", str(path)]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and str(path) in captured.err
    assert captured.out == ""


def test_bad_outputs_file_has_no_traceback(tmp_path: Path) -> None:
    result = kaas("handover", "--stack", "acme-prod", "--outputs", str(_write(tmp_path, _without("api"))))
    assert result.returncode == 2
    assert "api: is missing" in result.stderr and "Traceback" not in result.stderr and result.stdout == ""


def test_missing_outputs_file_exits_2(tmp_path: Path) -> None:
    result = kaas("kubeconfig", "--stack", "demo", "--outputs", str(tmp_path / "nope.json"))
    assert result.returncode == 2 and "no such file" in result.stderr and "Traceback" not in result.stderr


def test_handover_of_a_spec_file_that_is_not_a_stack_is_the_same_preview(tmp_path: Path) -> None:
    spec_file = tmp_path / "prospect.yaml"
    spec_file.write_text((REPO_ROOT / "stacks" / "acme-prod.yaml").read_text())
    from_spec = kaas("handover", "--spec", str(spec_file))
    from_stack = kaas("handover", "--stack", "acme-prod")
    assert from_spec.returncode == 0, from_spec.stderr
    assert "PREVIEW" in from_spec.stderr
    assert f"offline plan of spec {spec_file}" in from_spec.stdout
    assert from_spec.stdout.replace(f"spec {spec_file}", "stack acme-prod") == from_stack.stdout


def test_handover_of_a_bad_spec_file_exits_2(tmp_path: Path) -> None:
    spec_file = tmp_path / "prospect.yaml"
    spec_file.write_text("name: x\n")
    result = kaas("handover", "--spec", str(spec_file))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{spec_file}: ") and "Traceback" not in result.stderr

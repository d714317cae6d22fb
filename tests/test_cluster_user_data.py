"""The wired cluster: every instance of a stack boots with user data that cloud-init accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaas.offline.planfile import SECRET_MASK
from kaas.spec.loader import REPO_ROOT

INSTANCE = "openstack:compute/instance:Instance"


def plan_json(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "kaas", "plan", "--stack", "acme-prod", "--json", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def revealed() -> dict[str, Any]:
    return plan_json("--show-secrets")


def instances(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in document["resources"] if r["type"] == INSTANCE]


def test_user_data_is_secret_without_show_secrets() -> None:
    masked = instances(plan_json())
    assert len(masked) == 5 + 3 + 3
    assert {r["inputs"]["userData"] for r in masked} == {SECRET_MASK}


def test_every_instance_user_data_passes_cloud_init_schema(revealed: dict[str, Any], tmp_path: Path) -> None:
    nodes = instances(revealed)
    assert len(nodes) == 11
    running = []
    for node in nodes:
        path = tmp_path / f"{node['name']}.yaml"
        path.write_text(node["inputs"]["userData"])
        command = ["cloud-init", "schema", "--config-file", str(path)]
        running.append((node["name"], subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    failures = []
    for name, process in running:
        out, _ = process.communicate(timeout=60)
        if process.returncode != 0:
            failures.append(f"{name}: {out.decode()}")
    assert not failures, failures


def test_each_node_gets_the_user_data_for_its_own_name(revealed: dict[str, Any]) -> None:
    for node in instances(revealed):
        document = yaml.safe_load(node["inputs"]["userData"])
        assert document["hostname"] == node["name"] == node["inputs"]["name"]

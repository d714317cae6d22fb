"""Pods that read configuration only at start roll when it changes.

OCCM and Cinder CSI read ``cloud.conf`` from their Secrets at start, Velero's server and node
agents take their credentials as environment (``envFrom``); a new value (an application
credential rotation: ``identity.credentials_issued``, after which the old credentials are
deleted) would otherwise leave them on the old one until something restarts them. Each pod
template carries the SHA-256 of what it reads (``kaas.io/config-sha256``). Checked on the
charts as real ``helm template`` renders them with the planned values: every Deployment and
DaemonSet that reads one of those Secrets carries the checksum of that Secret's planned content.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from kaas.offline import Plan
from kaas.offline.plan import plan_spec
from kaas.offline.planfile import plain
from kaas.services import names, values
from tests.helm import render_release
from tests.helpers import make_spec

SECRET = "kubernetes:core/v1:Secret"
RELEASE = "kubernetes:helm.sh/v3:Release"
# release -> the Secret its pods read, and how the checksum is taken of its content
CONSUMERS = {
    "openstack-ccm": names.CLOUD_CONFIG,
    "cinder-csi": names.CSI_CLOUD_CONFIG,
    "velero": names.VELERO_CREDENTIALS,
}


@cache
def plan(issued: str = "2026-12-01") -> Plan:
    return plan_spec(make_spec(identity={"initial_admin_user": "admin", "credentials_issued": issued}))


def _secret(plan: Plan, name: str) -> dict[str, str]:
    (record,) = [r for r in plan.by_type(SECRET) if r.inputs["metadata"]["name"] == name]
    data: dict[str, str] = plain(record.inputs["stringData"], show_secrets=True)
    return data


def _expected(plan: Plan, name: str) -> str:
    data = _secret(plan, name)
    if name == names.VELERO_CREDENTIALS:  # environment: every key
        return values.checksum(json.dumps(data, sort_keys=True))
    return values.checksum(data["cloud.conf"])


def _reads(pod: dict[str, Any], secret: str) -> bool:
    volumes = any((v.get("secret") or {}).get("secretName") == secret for v in pod.get("volumes", []))
    containers = [*pod.get("containers", []), *pod.get("initContainers", [])]
    env = any(
        (source.get("secretRef") or {}).get("name") == secret for c in containers for source in c.get("envFrom", [])
    )
    return volumes or env


def _readers(release: str, plan: Plan) -> dict[str, dict[str, str]]:
    """Each rendered Deployment/DaemonSet whose pods read the release's Secret -> its pod annotations."""
    (record,) = [r for r in plan.by_type(RELEASE) if r.name == release]
    found = {}
    for manifest in render_release(record):
        if manifest.get("kind") not in ("Deployment", "DaemonSet"):
            continue
        template = manifest["spec"]["template"]
        if _reads(template["spec"], CONSUMERS[release]):
            found[f"{manifest['kind']}/{manifest['metadata']['name']}"] = template["metadata"].get("annotations") or {}
    return found


@pytest.mark.parametrize("release", sorted(CONSUMERS))
def test_every_pod_reading_the_secret_carries_the_checksum_of_its_planned_content(release: str) -> None:
    readers = _readers(release, plan())
    assert readers, f"no rendered workload of {release} reads {CONSUMERS[release]}"
    expected = _expected(plan(), CONSUMERS[release])
    for workload, pod_annotations in readers.items():
        assert pod_annotations.get(values.CONFIG_CHECKSUM_ANNOTATION) == expected, workload


def test_a_credential_rotation_changes_every_checksum() -> None:
    # The next generation (a later credentials_issued): new application credentials, new Secrets.
    for release, secret in CONSUMERS.items():
        assert _expected(plan(), secret) != _expected(plan("2027-11-01"), secret), release
        before, after = _readers(release, plan()), _readers(release, plan("2027-11-01"))
        assert before.keys() == after.keys()
        for workload in before:
            annotation = values.CONFIG_CHECKSUM_ANNOTATION
            assert before[workload][annotation] != after[workload][annotation], workload

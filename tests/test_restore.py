"""The Velero objects of the restore procedure, validated against the CRDs the pinned Velero chart ships.

The CRDs come from ``helm template --include-crds`` of the catalog's chart package
(/work/shared/charts); each object is checked with jsonschema against its CRD's
``openAPIV3Schema``, made strict (an unknown field is an error, as the API server's
field validation reports it) wherever the schema does not preserve unknown fields.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import pytest

from kaas.handover.render import render_markdown
from kaas.offline import plan_stack
from kaas.services import restore
from kaas.services.catalog import ChartName, chart_for
from tests.helm import helm_template
from tests.helpers import make_spec

VELERO_NS = make_spec().platform_namespace


@cache
def velero_crds() -> dict[str, dict[str, Any]]:
    pinned = chart_for(ChartName.VELERO, None)
    docs = helm_template(pinned.name.value, pinned.version, {}, name="velero", namespace=VELERO_NS)
    return {d["spec"]["names"]["kind"]: d for d in docs if d.get("kind") == "CustomResourceDefinition"}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    out = {k: (_strict(v) if isinstance(v, dict) else v) for k, v in schema.items()}
    if "properties" in schema:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    if isinstance(schema.get("items"), dict):
        out["items"] = _strict(schema["items"])
    return out


def validate(manifest: dict[str, Any]) -> None:
    crd = velero_crds()[manifest["kind"]]
    group, version = manifest["apiVersion"].split("/")
    assert crd["spec"]["group"] == group
    served = {v["name"]: v for v in crd["spec"]["versions"] if v["served"]}
    assert version in served, f"{manifest['kind']} {version} is not served by the chart's CRD"
    schema = _strict(served[version]["schema"]["openAPIV3Schema"])
    # metadata is ObjectMeta (the API server's own schema); the CRD leaves it open.
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.validate(manifest, schema)


PROCEDURE = [
    restore.namespace_backup(VELERO_NS, "apps-before-upgrade", "apps"),
    restore.namespace_restore(VELERO_NS, "apps-restore", "apps-before-upgrade", "apps"),
    restore.namespace_restore(VELERO_NS, "apps-copy", "apps-before-upgrade", "apps", into="apps-restored"),
    restore.previous_cluster_location(VELERO_NS, "old-cluster-backups", "RegionOne"),
    restore.cluster_restore(VELERO_NS, "whole-cluster", "velero-daily-20260101020000"),
]


@pytest.mark.parametrize("manifest", PROCEDURE, ids=[f"{m['kind']}-{m['metadata']['name']}" for m in PROCEDURE])
def test_procedure_object_is_valid_for_the_pinned_velero_crds(manifest: dict[str, Any]) -> None:
    validate(manifest)


def test_validation_catches_a_misspelt_field() -> None:
    broken = restore.cluster_restore(VELERO_NS, "r", "b")
    broken["spec"]["restorePv"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    wrong_type = restore.cluster_restore(VELERO_NS, "r", "b")
    wrong_type["spec"]["restorePVs"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong_type)
    wrong_mode = restore.previous_cluster_location(VELERO_NS, "c", "RegionOne")
    wrong_mode["spec"]["accessMode"] = "ReadMostly"
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong_mode)


def test_cluster_restore_leaves_the_platform_namespaces_to_the_fresh_stack() -> None:
    spec = make_spec()
    excluded = restore.cluster_restore(spec.platform_namespace, "r", "b")["spec"]["excludedNamespaces"]
    assert set(spec.reserved_namespaces) <= set(excluded)
    assert not set(spec.customer_namespaces) & set(excluded)


def test_restore_locations_are_the_ones_velero_is_configured_with() -> None:
    from kaas.services.values import velero_values

    configured = velero_values(make_spec(), "checksum")["configuration"]
    assert restore.STORAGE_LOCATION in {bsl["name"] for bsl in configured["backupStorageLocation"]}
    assert restore.SNAPSHOT_LOCATION in {vsl["name"] for vsl in configured["volumeSnapshotLocation"]}
    assert configured["backupStorageLocation"][0]["provider"] == restore.PROVIDER


def test_handover_backup_section_gives_the_restore_commands() -> None:
    from kaas.handover.source import handover_outputs

    outputs = handover_outputs(plan_stack("acme-prod"))
    document = render_markdown(outputs, "production", preview=True, origin="test")
    section = document.split("### Backups", 1)[1].split("\n## ", 1)[0]
    assert "Restores are requested from the provider" not in section
    for needle in (" backup create apps-before-upgrade", " restore create apps-restore", "--from-backup", "kind: Restore",
                   "kind: BackupStorageLocation", "accessMode: ReadOnly"):  # fmt: skip
        assert needle in section, needle

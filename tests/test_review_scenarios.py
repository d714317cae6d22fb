"""The offline diff of real spec changes to acme-prod: the whole program planned twice, then diffed.

Each scenario asserts the complete diff (every created, deleted, replaced and updated
resource, and every changed stack output), so a program change that makes a routine
edit touch more than it should fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kaas.offline import Plan, Secret, plan_spec
from kaas.review.diff import Operation, PlanDiff, diff_plans, render_markdown, render_text
from kaas.spec import parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.helpers import merge

INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
RELEASE = "kubernetes:helm.sh/v3:Release"
ACME: dict[str, Any] = yaml.safe_load((STACKS_DIR / "acme-prod.yaml").read_text())


def acme_plan(**override: Any) -> Plan:
    return plan_spec(parse_spec(merge(ACME, override), "<acme-prod edited>"))


def acme_diff(base: Plan, **override: Any) -> PlanDiff:
    return diff_plans(base, acme_plan(**override), "acme-prod")


def summary(diff: PlanDiff) -> dict[Operation, set[tuple[str, str]]]:
    return {op: {(r.type, r.name) for r in diff.of(op)} for op in Operation if diff.of(op)}


def changed_keys(diff: PlanDiff) -> dict[str, list[str]]:
    return {r.name: [c.key for c in r.changes] for r in diff.resources if r.changes}


@pytest.fixture(scope="module")
def base() -> Plan:
    return acme_plan()


@pytest.fixture(scope="module")
def worker_added(base: Plan) -> PlanDiff:
    return acme_diff(base, workers={"count": 4})


@pytest.fixture(scope="module")
def image_changed(base: Plan) -> PlanDiff:
    return acme_diff(base, openstack={"image": "ubuntu-24.04-20260101"})


@pytest.fixture(scope="module")
def kubernetes_changed(base: Plan) -> PlanDiff:
    return acme_diff(base, versions={"kubernetes": "1.34.3"})


def test_the_committed_spec_planned_twice_is_no_change(base: Plan) -> None:
    diff = acme_diff(base)
    assert not diff.has_changes and "no changes" in render_text(diff)


def test_adding_a_worker_creates_only_that_node(worker_added: PlanDiff) -> None:
    assert summary(worker_added) == {
        Operation.CREATE: {(INSTANCE, "acme-prod-worker-3"), (PORT, "acme-prod-worker-3-port")},
        # The default customer namespace's quota follows the workers' capacity, in place.
        Operation.UPDATE: {("kubernetes:core/v1:ResourceQuota", "acme-prod-quota-apps")},
    }
    # No master or etcd user data, no load balancer member, no release moves with the worker count.
    # The stack outputs describe the layout, so exactly the worker entries change.
    assert [(c.path, c.old, c.new) for c in worker_added.outputs] == [
        (
            "layout.workers.addresses",
            ["10.20.0.64", "10.20.0.65", "10.20.0.66"],
            ["10.20.0.64", "10.20.0.65", "10.20.0.66", "10.20.0.67"],
        ),
        ("layout.workers.count", 3, 4),
    ]


def test_adding_a_worker_reads_well_in_a_pull_request(worker_added: PlanDiff) -> None:
    markdown = render_markdown(worker_added)
    assert "| create | 2 |" in markdown and "| update | 1 |" in markdown and "| outputs changed | 2 |" in markdown
    assert "replace" not in markdown and "delete" not in markdown and "<details>" not in markdown
    assert "- **create** `openstack:compute/instance:Instance` `acme-prod-worker-3`" in markdown
    assert "  - `~ layout.workers.count: 3 => 4`" in markdown


def test_new_image_replaces_the_workers_only(image_changed: PlanDiff) -> None:
    workers = {(INSTANCE, f"acme-prod-worker-{i}") for i in range(3)}
    # etcd and masters ignore the image (no quorum or control plane replaced at once); workers boot
    # from a volume of the image, so the image's ID in blockDevices replaces them.
    assert summary(image_changed) == {Operation.REPLACE: workers}
    assert changed_keys(image_changed) == {name: ["blockDevices"] for _, name in workers}
    for resource in image_changed.resources:
        assert resource.delete_first and not resource.protected
        assert all(c.forces_replacement for c in resource.changes)
    assert not image_changed.outputs
    text = render_text(image_changed)
    assert "blockDevices[0].uuid: " in text and "(deleted before its replacement is created)" in text


def test_chart_version_change_updates_exactly_that_release(base: Plan) -> None:
    diff = acme_diff(base, services={"ingress": {"chart_version": "2.6.5"}})
    assert summary(diff) == {Operation.UPDATE: {(RELEASE, "ingress-nginx")}}
    ((change,),) = [r.changes for r in diff.resources]
    assert (change.key, change.old, change.new, change.forces_replacement) == ("version", "2.6.4", "2.6.5", False)
    assert not diff.outputs
    assert "version: 2.6.4 => 2.6.5" in render_text(diff)


def test_renamed_cluster_deletes_every_old_urn_and_creates_every_new_one(base: Plan) -> None:
    renamed = acme_plan(name="acme-prod2")
    diff = diff_plans(base, renamed, "acme-prod")
    counts = diff.counts()
    assert counts[Operation.UPDATE] == counts[Operation.REPLACE] == 0
    old_urns = {r.urn for r in base.resources if r.type != "pulumi:pulumi:Stack"}
    new_urns = {r.urn for r in renamed.resources if r.type != "pulumi:pulumi:Stack"}
    assert old_urns.isdisjoint(new_urns)
    assert {r.urn for r in diff.of(Operation.DELETE)} == old_urns
    assert {r.urn for r in diff.of(Operation.CREATE)} == new_urns
    # Pulumi refuses to delete what is protected: the diff says so for each of them.
    protected = {r.name for r in diff.of(Operation.DELETE) if r.protected}
    assert {f"acme-prod-etcd-{i}" for i in range(5)} <= protected
    assert {"acme-prod-etcd-backups", "acme-prod-cluster-backups", "acme-prod-registry"} <= protected
    assert protected == {r.name for r in base.resources if r.options.get("protect")}
    markdown = render_markdown(diff)
    assert f"**{len(protected)} protected resource(s) would be deleted or replaced: `pulumi up` refuses.**" in markdown
    assert "<details>" in markdown
    assert "`acme-prod-etcd-backups` (protected: pulumi up refuses to delete it; retained: stays in the cloud)" in (
        markdown
    )


def test_changed_user_data_is_shown_as_a_masked_secret_change(kubernetes_changed: PlanDiff, base: Plan) -> None:
    workers = {(INSTANCE, f"acme-prod-worker-{i}") for i in range(3)}
    assert summary(kubernetes_changed) == {Operation.REPLACE: workers}
    for resource in kubernetes_changed.resources:
        (change,) = resource.changes
        assert change.key == "userData" and change.secret and change.forces_replacement
    assert [(c.path, c.old, c.new) for c in kubernetes_changed.outputs] == [("kubernetesVersion", "1.34.2", "1.34.3")]
    text = render_text(kubernetes_changed) + render_markdown(kubernetes_changed)
    assert text.count("userData: [secret] => [secret] (forces replacement)") == 6
    user_data = base.find(INSTANCE, "acme-prod-worker-0").inputs["userData"]
    assert isinstance(user_data, Secret)
    # Not one line of the revealed user data reaches the rendered diff.
    revealed = [line for line in str(user_data.value).splitlines() if len(line.strip()) > 12]
    assert revealed and not [line for line in revealed if line.strip() in text]

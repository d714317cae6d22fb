"""The offline diff of real spec changes to acme-prod: the whole program planned twice, then diffed.

Each scenario asserts the complete diff (every created, deleted, replaced and updated
resource, and every changed stack output), so a program change that makes a routine
edit touch more than it should fails here. Both plans start from acme-prod's committed
rollout record (stacks/rollout/acme-prod.yaml): the edit is planned as the first
``pulumi up`` of a running cluster. The steps after it: tests/test_rollout_scenarios.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kaas.offline import Plan, Secret, plan_spec
from kaas.review.diff import Operation, PlanDiff, diff_plans, render_markdown, render_text
from kaas.rollout.record import load_record, record_path
from kaas.spec import parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.helpers import join_prerequisites, merge

INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER = "kaas:index:Cluster"
ACME: dict[str, Any] = yaml.safe_load((STACKS_DIR / "acme-prod.yaml").read_text())
RECORDED = load_record(record_path("acme-prod"), parse_spec(ACME, "acme-prod"))


def acme_plan(**override: Any) -> Plan:
    return plan_spec(parse_spec(merge(ACME, override), "<acme-prod edited>"), recorded=RECORDED)


def acme_diff(base: Plan, **override: Any) -> PlanDiff:
    return diff_plans(base, acme_plan(**override), "acme-prod")


def summary(diff: PlanDiff) -> dict[Operation, set[tuple[str, str]]]:
    """Every resource by operation, but for the Cluster component's facts (they follow any spec edit)."""
    return {
        op: {(r.type, r.name) for r in diff.of(op) if r.type != CLUSTER}
        for op in Operation
        if any(r.type != CLUSTER for r in diff.of(op))
    }


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
        # The default customer namespace's quota follows the workers' capacity, in place, and so does
        # the same quota the guardrail reconciler gives later namespaces (its ConfigMap).
        Operation.UPDATE: {
            ("kubernetes:core/v1:ResourceQuota", "acme-prod-quota-apps"),
            ("kubernetes:core/v1:ConfigMap", "acme-prod-guardrails-configmap"),
        },
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
        (
            "nodeRevisions.acme-prod-worker-3",
            None,
            {
                "image": "ubuntu-24.04",
                "version": "1.34.2",
                "template": 1,
                "flavor": "kaas.worker",
                "keyPair": "acme-ops",
                "volumeGb": 40,
                "certificates": 1,
                "phase": "running",
            },
        ),
        ("rollout.step.acme-prod-worker-3", None, "create"),
    ]


def test_adding_a_worker_reads_well_in_a_pull_request(worker_added: PlanDiff) -> None:
    markdown = render_markdown(worker_added)
    assert "| create | 2 |" in markdown and "| outputs changed | 4 |" in markdown
    assert "replace" not in markdown and "delete" not in markdown and "<details>" not in markdown
    assert "- **create** `openstack:compute/instance:Instance` `acme-prod-worker-3`" in markdown
    assert "  - `~ layout.workers.count: 3 => 4`" in markdown


def test_new_image_starts_with_one_new_etcd_member_and_replaces_nothing(image_changed: PlanDiff) -> None:
    # etcd moves first, one member per step, added before any is removed; nothing else moves yet.
    member = "acme-prod-etcd-acme-prod-etcd-5"  # its client/server key and certificate
    peer = "acme-prod-etcd-peer-acme-prod-etcd-5"  # and its peer key and certificate (own CA)
    assert summary(image_changed) == {
        Operation.CREATE: {
            (INSTANCE, "acme-prod-etcd-5"),
            (PORT, "acme-prod-etcd-5-port"),
            *(
                (kind, name)
                for name in (member, peer)
                for kind in (
                    "tls:index/privateKey:PrivateKey",
                    "tls:index/certRequest:CertRequest",
                    "tls:index/locallySignedCert:LocallySignedCert",
                )
            ),
        }
    }
    assert changed_keys(image_changed) == {"acme-prod": ["kaasRollout"]}  # the policy pack's facts
    outputs = {c.path: c.new for c in image_changed.outputs}
    assert outputs["rollout.state"] == "in progress" and outputs["rollout.step.acme-prod-etcd-5"] == "create"
    assert outputs["etcd.nodes"] == 6


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
    # A Kubernetes patch bump rebuilds one master; the API servers stay at 1.34.2 meanwhile. The master
    # joins: the update declares kube-system/kubeadm-certs for it and moves kubeadm's kubeadm-config
    # and kubelet-config to the new revision (kaas.bootstrap.kubeadm_certs).
    assert summary(kubernetes_changed) == {
        Operation.REPLACE: {(INSTANCE, "acme-prod-master-0")},
        Operation.CREATE: join_prerequisites("acme-prod"),
    }
    (master,) = kubernetes_changed.of(Operation.REPLACE)
    assert master.delete_first and not master.protected
    user_data = next(c for c in master.changes if c.key == "userData")
    assert user_data.secret and user_data.forces_replacement
    outputs = {c.path: (c.old, c.new) for c in kubernetes_changed.outputs}
    assert "kubernetesVersion" not in outputs
    assert outputs["rollout.kubernetesDesired"] == ("1.34.2", "1.34.3")
    assert outputs["nodeRevisions.acme-prod-master-0.version"] == ("1.34.2", "1.34.3")
    text = render_text(kubernetes_changed) + render_markdown(kubernetes_changed)
    user_data_value = base.find(INSTANCE, "acme-prod-master-0").inputs["userData"]
    assert isinstance(user_data_value, Secret)
    # The cloud-init that changed is shown as a unified diff, but no secret value of it:
    # not one line of a private key, not the bootstrap token.
    assert "-  - 1.34.2-1.1\n          +  - 1.34.3-1.1" in text
    revealed = str(user_data_value.value).splitlines()
    key_lines = [
        line.strip() for start, end in _pem_blocks(revealed, "PRIVATE KEY") for line in revealed[start + 1 : end]
    ]
    # A joining master carries no private key since upload-certs (issue 17): its secrets are the
    # bootstrap token, the certificate key and the encryption key.
    values = [
        line.split(": ", 1)[1]
        for line in revealed
        if line.strip().startswith(("token: ", "certificateKey: ", "secret: "))
    ]
    assert len(values) == 3
    assert not [secret for secret in [*key_lines, *values] if secret in text]


def _pem_blocks(lines: list[str], kind: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of each PEM block of ``kind``."""
    starts = [i for i, line in enumerate(lines) if "-----BEGIN" in line and kind in line]
    return [(i, next(j for j in range(i, len(lines)) if "-----END" in lines[j])) for i in starts]

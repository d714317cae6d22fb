"""Day-2 edits of acme-prod, walked step by step through the offline engine on the real program.

Each step is one ``pulumi up``: the program is planned from the spec and the recorded
node revisions, diffed against the previous step's plan (what is deployed), and the
state it leaves is recorded from its ``nodeRevisions`` output exactly as
``kaas rollout record`` does. The tests assert which instances each step creates,
rebuilds, updates or deletes, and that the last step leaves every node at the spec.

Upstream behaviour these steps follow (see kaas/rollout/invariants.py): kubeadm
upgrades the control plane before the nodes and kubelet may not be newer than
kube-apiserver (https://kubernetes.io/releases/version-skew-policy/); an etcd member is
replaced by adding the new one before removing the old
(https://etcd.io/docs/v3.6/op-guide/runtime-configuration/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from kaas.offline import Plan, plan_spec
from kaas.offline.planfile import plain
from kaas.review.diff import Operation, PlanDiff, diff_plans
from kaas.rollout import ClusterState, Tier, check_step, converged
from kaas.rollout.model import Step
from kaas.rollout.planner import moves_between
from kaas.rollout.record import desired_from_spec, load_record, record_path, state_from_outputs
from kaas.spec import ClusterSpec, SpecError, parse_spec
from kaas.spec.loader import STACKS_DIR
from tests.helpers import merge

INSTANCE = "openstack:compute/instance:Instance"
ACME: dict[str, Any] = yaml.safe_load((STACKS_DIR / "acme-prod.yaml").read_text())
ACME_SPEC = parse_spec(ACME, "acme-prod")
RECORDED = load_record(record_path("acme-prod"), ACME_SPEC)


@dataclass(frozen=True)
class Walked:
    plan: Plan
    diff: PlanDiff
    state: ClusterState  # what `kaas rollout record` writes after this step

    def instances(self) -> dict[str, str]:
        """Instance name -> ``create`` / ``replace`` (``replace!``: old server deleted first) / ``update`` / ``delete``."""
        ops: dict[str, str] = {}
        for r in self.diff.resources:
            if r.type == INSTANCE:
                ops[r.name] = r.operation.value + ("!" if r.operation is Operation.REPLACE and r.delete_first else "")
        return ops


def walk(edit: dict[str, Any], limit: int = 30) -> list[Walked]:
    spec = parse_spec(merge(ACME, edit), "<acme-prod edited>")
    assert RECORDED is not None
    previous, state, steps = plan_spec(ACME_SPEC, recorded=RECORDED), RECORDED, []
    for _ in range(limit):
        plan = plan_spec(spec, recorded=state)
        if plan.outputs["rollout"]["state"] == "done" and not plan.outputs["rollout"]["step"]:
            return steps
        after = state_from_outputs(plan.outputs, spec, "step outputs")
        # The invariants hold on the step the program performs (rebuilt from what it recorded).
        step = Step(spec.name, state, after, moves_between(state, after))
        assert check_step(desired_from_spec(spec), step) == ()
        steps.append(Walked(plan, diff_plans(previous, plan, "acme-prod"), after))
        previous, state = plan, after
    raise AssertionError(f"no convergence in {limit} steps")


def assert_final(steps: list[Walked], spec: ClusterSpec) -> None:
    """The last step leaves every node of every tier at the spec's revision, nothing pending."""
    outputs = steps[-1].plan.outputs
    assert outputs["rollout"]["pending"] == [] and outputs["rollout"]["state"] == "done"
    desired = desired_from_spec(spec)
    assert converged(desired, steps[-1].state)
    for tier in Tier:
        assert len(steps[-1].state.running(tier)) == desired.target(tier).count


@pytest.fixture(scope="module")
def patch_bump() -> list[Walked]:
    return walk({"versions": {"kubernetes": "1.34.9"}})


def test_kubernetes_patch_bump_rebuilds_masters_one_per_step_then_surges_workers(patch_bump: list[Walked]) -> None:
    assert [s.instances() for s in patch_bump] == [
        {"acme-prod-master-0": "replace!"},
        {"acme-prod-master-1": "replace!"},
        {"acme-prod-master-2": "replace!"},
        # max_surge 1: the new worker exists before an old one is cordoned, drained and deleted.
        {"acme-prod-worker-3": "create"},
        {"acme-prod-worker-2": "update"},  # retired: kaas-phase leaving (drain happens now)
        {"acme-prod-worker-2": "delete", "acme-prod-worker-4": "create"},
        {"acme-prod-worker-1": "update"},
        {"acme-prod-worker-1": "delete", "acme-prod-worker-2": "create"},
        {"acme-prod-worker-0": "update"},
        {"acme-prod-worker-0": "delete"},
    ]
    # The API servers are the truth of kubernetesVersion: it moves once the last master runs 1.34.9.
    assert [s.plan.outputs["kubernetesVersion"] for s in patch_bump] == ["1.34.2"] * 2 + ["1.34.9"] * 8
    assert_final(patch_bump, parse_spec(merge(ACME, {"versions": {"kubernetes": "1.34.9"}}), "x"))
    # The etcd tier never moves for a Kubernetes edit.
    assert not [n for s in patch_bump for n in s.instances() if "-etcd-" in n]


def test_the_retiring_worker_leaves_before_it_is_deleted(patch_bump: list[Walked]) -> None:
    retire = patch_bump[4].plan.find(INSTANCE, "acme-prod-worker-2")
    assert retire.inputs["metadata"]["kaas-phase"] == "leaving"
    assert patch_bump[4].plan.outputs["rollout"]["step"] == {"acme-prod-worker-2": "retire"}


def test_a_rebuilt_master_joins_with_the_new_version_and_never_reruns_kubeadm_init(
    patch_bump: list[Walked],
) -> None:
    user_data = plain(patch_bump[0].plan.find(INSTANCE, "acme-prod-master-0").inputs["userData"], show_secrets=True)
    assert "- 1.34.9-1.1" in user_data and "1.34.2" not in user_data  # the pinned kubeadm/kubelet packages
    # master-0 ran `kubeadm init` on day 1; rebuilt, it joins the running control plane.
    assert "until kubeadm join --config" in user_data and "kubeadm init" not in user_data


def test_key_pair_rotation_replaces_no_running_node() -> None:
    steps = walk({"openstack": {"key_pair": "acme-ops-2026"}})
    assert steps == []  # nothing to roll: no instance is touched
    plan = plan_spec(parse_spec(merge(ACME, {"openstack": {"key_pair": "acme-ops-2026"}}), "x"), recorded=RECORDED)
    assert plan.find(INSTANCE, "acme-prod-etcd-0").inputs["keyPair"] == "acme-ops"


def test_a_node_built_after_a_key_pair_rotation_gets_the_new_key() -> None:
    steps = walk({"openstack": {"key_pair": "acme-ops-2026"}, "workers": {"count": 4}})
    assert [s.instances() for s in steps] == [{"acme-prod-worker-3": "create"}]
    assert steps[0].plan.find(INSTANCE, "acme-prod-worker-3").inputs["keyPair"] == "acme-ops-2026"
    assert steps[0].plan.find(INSTANCE, "acme-prod-worker-0").inputs["keyPair"] == "acme-ops"


def test_new_image_adds_an_etcd_member_before_removing_one() -> None:
    steps = walk({"openstack": {"image": "ubuntu-24.04-20260101"}}, limit=40)
    assert [s.instances() for s in steps[:4]] == [
        {"acme-prod-etcd-5": "create"},  # joins as a learner (etcdctl member add), protected
        {"acme-prod-etcd-4": "update"},  # retired: member removed, protection off
        {"acme-prod-etcd-4": "delete", "acme-prod-etcd-6": "create"},
        {"acme-prod-etcd-3": "update"},
    ]
    joining = plain(steps[0].plan.find(INSTANCE, "acme-prod-etcd-5").inputs["userData"], show_secrets=True)
    assert "initial-cluster-state: existing" in joining
    assert steps[0].plan.find(INSTANCE, "acme-prod-etcd-5").options["protect"] is True
    # etcd first (add, retire, then delete + add with each retire: 11 steps), masters one by one, workers.
    tiers = ["-".join(sorted({n.split("-")[2] for n in s.instances()})) for s in steps]
    assert tiers == ["etcd"] * 11 + ["master"] * 3 + ["worker"] * 7
    assert not [r for s in steps for r in s.diff.of(Operation.DELETE) if r.protected]
    assert_final(steps, parse_spec(merge(ACME, {"openstack": {"image": "ubuntu-24.04-20260101"}}), "x"))


def test_etcd_count_down_removes_the_highest_index_one_per_step_never_below_three() -> None:
    steps = walk({"etcd": {"count": 3}})
    assert [s.instances() for s in steps] == [
        {"acme-prod-etcd-4": "update"},  # retired: out of the etcd cluster, no longer protected
        {"acme-prod-etcd-4": "delete", "acme-prod-etcd-3": "update"},
        {"acme-prod-etcd-3": "delete"},
    ]
    retired = steps[0].plan.find(INSTANCE, "acme-prod-etcd-4")
    assert retired.options["protect"] is False and retired.inputs["metadata"]["kaas-phase"] == "leaving"
    # The deleting steps delete an unprotected server: pulumi up can do it.
    assert not [r for s in steps for r in s.diff.of(Operation.DELETE) if r.protected]
    assert [s.plan.outputs["etcd"]["nodes"] for s in steps] == [4, 3, 3]


# Bad input: one line naming the field, nothing planned.


def test_skipped_minor_version_is_refused_before_anything_is_planned() -> None:
    spec = parse_spec(merge(ACME, {"versions": {"kubernetes": "1.36.0"}}), "acme-prod")
    with pytest.raises(SpecError) as error:
        plan_spec(spec, recorded=RECORDED)
    # The spec file (plan_spec writes the in-memory spec to a temporary acme-prod.yaml) and the field.
    assert str(error.value).endswith(
        "/acme-prod.yaml: versions.kubernetes: 1.34.2 -> 1.36.0 skips a minor version (acme-prod-master-0 runs 1.34.2); "
        "upgrade to 1.35 first"
    )
    assert "\n" not in str(error.value)


def test_etcd_count_of_four_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(merge(ACME, {"etcd": {"count": 4}}), "acme-prod")
    assert str(error.value).startswith("acme-prod: etcd.count: must be odd")
    assert "\n" not in str(error.value)


def test_handover_in_the_middle_of_an_upgrade_shows_the_version_the_api_servers_run(
    patch_bump: list[Walked],
) -> None:
    from kaas.handover.render import render
    from kaas.handover.source import handover_outputs

    middle = render(handover_outputs(patch_bump[0].plan), "production", "markdown", True, "offline plan")
    assert "Kubernetes 1.34.2 on OpenStack" in middle
    assert "the API servers run Kubernetes 1.34.2, the spec asks for 1.34.9" in middle
    assert "nodes still to move: acme-prod-master-1, acme-prod-master-2, acme-prod-worker-0" in middle
    done = render(handover_outputs(patch_bump[-1].plan), "production", "markdown", True, "offline plan")
    assert "Kubernetes 1.34.9 on OpenStack" in done and "rollout is in progress" not in done


def test_diff_shows_the_rollout_step_and_the_user_data_that_changed_with_secrets_masked(
    patch_bump: list[Walked],
) -> None:
    from kaas.review.diff import render_markdown, render_text

    diff = patch_bump[0].diff
    text = render_text(diff)
    assert (
        "  Rollout (this pulumi up):\n    rebuild acme-prod-master-0 in place (old server deleted first): 1.34.2"
        in text
    )
    assert "waiting for later steps: acme-prod-master-1, acme-prod-master-2, acme-prod-worker-0" in text
    assert "kubectl drain acme-prod-master-0 --ignore-daemonsets" in text
    assert "-  - 1.34.2-1.1\n          +  - 1.34.9-1.1" in text  # the kubelet/kubeadm pins, as a unified diff
    assert "```diff" in render_markdown(diff)
    # No secret value of the user data reaches the review: keys, the bootstrap token.
    revealed = plain(patch_bump[0].plan.find(INSTANCE, "acme-prod-master-0").inputs["userData"], show_secrets=True)
    secrets = [line.strip() for line in _pem_bodies(revealed)]
    token = next(line.split(": ", 1)[1] for line in revealed.splitlines() if line.strip().startswith("token: "))
    assert secrets and token
    for secret in [*secrets, token]:
        assert secret not in text and secret not in render_markdown(diff)


def _pem_bodies(text: str) -> list[str]:
    body, inside = [], False
    for line in text.splitlines():
        if "-----BEGIN" in line and "PRIVATE KEY" in line:
            inside = True
        elif "-----END" in line:
            inside = False
        elif inside:
            body.append(line)
    return body


def test_check_fails_a_plan_that_replaces_the_control_plane_and_workers_at_once(patch_bump: list[Walked]) -> None:
    """What the program did before rollouts: the plan of the end state applied to the recorded start."""
    from kaas.review.check import view_of
    from kaas.review.policy import RULES, evaluate
    from kaas.rollout.model import state_to_data

    view = view_of(patch_bump[-1].plan)
    assert RECORDED is not None
    cluster = next(r for r in view.resources if r.type == "kaas:index:Cluster")
    facts = {**cluster.inputs["kaasRollout"], "recorded": state_to_data(RECORDED)}
    tampered = replace_inputs(view, cluster.urn, {**cluster.inputs, "kaasRollout": facts})
    messages = [v.message for v in evaluate(tampered, RULES) if v.rule == "day2-rollout-safe"]
    assert "[one-master-per-step] acme-prod-master-0, acme-prod-master-1, acme-prod-master-2: 3 masters change" in (
        "\n".join(messages)
    )
    assert any(m.startswith("[retire-before-delete] acme-prod-worker-0, acme-prod-worker-1") for m in messages)
    assert not [v for v in evaluate(view, RULES) if v.rule == "day2-rollout-safe"]


def replace_inputs(view: Any, urn: str, inputs: dict[str, Any]) -> Any:
    from dataclasses import replace as replaced

    return replaced(view, resources=[replaced(r, inputs=inputs) if r.urn == urn else r for r in view.resources])

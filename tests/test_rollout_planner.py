"""The rollout planner, property-tested: every step of every rollout keeps every invariant,
and repeated steps reach the spec."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kaas.rollout import (
    Action,
    ClusterState,
    Desired,
    Node,
    Phase,
    Revision,
    RolloutError,
    Tier,
    TierTarget,
    check_step,
    converged,
    next_step,
    rollout,
)
from kaas.rollout.invariants import (
    API_CARRIED,
    CONTROL_PLANE_FIRST,
    DRAIN_BEFORE_DELETE,
    ETCD_ADD_BEFORE_REMOVE,
    ETCD_ONE_MEMBER,
    FUTURE_ONLY,
    KUBELET_SKEW,
    MASTER_ONE,
    NO_MINOR_SKIP,
    WORKERS_AVAILABLE,
)
from kaas.rollout.model import Step
from kaas.rollout.planner import moves_between

K8S = "1.34.2"
ETCD = "3.6.5"


def rev(
    version: str = K8S, image: str = "ubuntu-24.04", flavor: str = "f", key: str | None = "k1", template: int = 1
) -> Revision:
    return Revision(image=image, version=version, template=template, flavor=flavor, key_pair=key)


def desired(
    *,
    k8s: str = K8S,
    etcd_version: str = ETCD,
    image: str = "ubuntu-24.04",
    key: str | None = "k1",
    etcd: int = 5,
    masters: int = 3,
    workers: int = 3,
    surge: int = 1,
    unavailable: int = 1,
    production: bool = True,
    flavor: str = "f",
    template: int = 1,
) -> Desired:
    def target(tier: Tier, count: int, version: str) -> TierTarget:
        return TierTarget(
            tier,
            count,
            rev(version, image, flavor, key, template),
            max_surge=surge,
            max_unavailable=unavailable,
            min_count=3 if tier is Tier.ETCD and production else 1,
        )

    return Desired(
        "c",
        target(Tier.ETCD, etcd, etcd_version),
        target(Tier.MASTER, masters, k8s),
        target(Tier.WORKER, workers, k8s),
        production=production,
    )


def changed(step: Step) -> dict[str, str]:
    return {m.name("c"): str(m.action) for m in step.changes}


def test_patch_bump_moves_one_master_first_then_workers_with_surge() -> None:
    state = desired().initial_state()
    steps = list(rollout(desired(k8s="1.34.9"), state))
    assert [changed(s) for s in steps] == [
        {"c-master-0": "replace"},
        {"c-master-1": "replace"},
        {"c-master-2": "replace"},
        {"c-worker-3": "create"},
        {"c-worker-2": "retire"},
        {"c-worker-2": "delete", "c-worker-4": "create"},
        {"c-worker-1": "retire"},
        {"c-worker-1": "delete", "c-worker-2": "create"},
        {"c-worker-0": "retire"},
        {"c-worker-0": "delete"},
    ]
    assert converged(desired(k8s="1.34.9"), steps[-1].after)


def test_etcd_member_is_added_before_the_old_one_is_removed() -> None:
    steps = list(rollout(desired(image="ubuntu-26.04"), desired().initial_state()))
    assert [changed(s) for s in steps[:4]] == [
        {"c-etcd-5": "create"},
        {"c-etcd-4": "retire"},
        {"c-etcd-4": "delete", "c-etcd-6": "create"},
        {"c-etcd-3": "retire"},
    ]
    # etcd first, then masters one by one, then workers.
    tiers = [sorted({m.tier for m in s.changes}) for s in steps]
    assert tiers == sorted(tiers, key=lambda t: [list(Tier).index(x) for x in t])


def test_key_pair_rotation_replaces_no_running_node() -> None:
    step = next_step(desired(key="k2"), desired().initial_state())
    assert step.done and not step.changes


def test_new_key_pair_reaches_nodes_built_later() -> None:
    state = desired().initial_state()
    step = next_step(desired(key="k2", workers=4), state)
    assert changed(step) == {"c-worker-3": "create"}
    created = step.after.get(Tier.WORKER, 3)
    assert created is not None and created.revision.key_pair == "k2"
    assert {n.revision.key_pair for n in step.after.nodes if n.index < 3} == {"k1"}


def test_counts_down_remove_highest_index_one_per_step_etcd_never_below_three() -> None:
    steps = list(rollout(desired(etcd=3, masters=3), desired(etcd=7).initial_state()))
    assert [changed(s) for s in steps] == [
        {"c-etcd-6": "retire"},
        {"c-etcd-6": "delete", "c-etcd-5": "retire"},
        {"c-etcd-5": "delete", "c-etcd-4": "retire"},
        {"c-etcd-4": "delete", "c-etcd-3": "retire"},
        {"c-etcd-3": "delete"},
    ]
    assert min(len(s.after.running(Tier.ETCD)) for s in steps) == 3


def test_workers_without_surge_are_rebuilt_in_place_max_unavailable_at_a_time() -> None:
    steps = list(rollout(desired(k8s="1.34.9", surge=0, unavailable=2, workers=5), desired(workers=5).initial_state()))
    worker_steps = [changed(s) for s in steps if any(m.tier is Tier.WORKER for m in s.changes)]
    assert worker_steps == [
        {"c-worker-0": "replace", "c-worker-1": "replace"},
        {"c-worker-2": "replace", "c-worker-3": "replace"},
        {"c-worker-4": "replace"},
    ]


def test_single_master_gets_a_new_master_beside_it_first() -> None:
    start = desired(masters=1, etcd=1, production=False).initial_state()
    steps = list(rollout(desired(masters=1, etcd=1, production=False, k8s="1.34.9"), start))
    assert [changed(s) for s in steps[:4]] == [
        {"c-master-1": "create"},
        {"c-master-0": "retire"},
        {"c-master-0": "delete"},
        {"c-worker-3": "create"},
    ]


# Bad input: one line naming the field, nothing planned.


def test_skipped_minor_version_is_refused_naming_both_versions() -> None:
    with pytest.raises(RolloutError) as error:
        next_step(desired(k8s="1.36.0"), desired().initial_state())
    assert str(error.value).startswith("versions.kubernetes: 1.34.2 -> 1.36.0 skips a minor version")
    assert "\n" not in str(error.value)


def test_downgrade_is_refused() -> None:
    with pytest.raises(RolloutError, match=r"^versions.kubernetes: 1.34.1 is older than 1.34.2"):
        next_step(desired(k8s="1.34.1"), desired().initial_state())


def test_etcd_minor_skip_is_refused() -> None:
    with pytest.raises(RolloutError, match=r"^versions.etcd: 3.6.5 -> 3.8.0 skips a minor version"):
        next_step(desired(etcd_version="3.8.0"), desired().initial_state())


def test_truncated_record_is_refused() -> None:
    state = ClusterState(tuple(n for n in desired().initial_state().nodes if n.tier is not Tier.WORKER))
    with pytest.raises(RolloutError, match=r"^nodes: the rollout record has no running worker node"):
        next_step(desired(), state)


def test_record_with_a_kubelet_newer_than_the_api_is_refused() -> None:
    nodes = [
        replace(n, revision=rev("1.34.9")) if n.tier is Tier.WORKER and n.index == 1 else n
        for n in desired().initial_state().nodes
    ]
    with pytest.raises(RolloutError, match=r"^nodes: c-worker-1 runs kubelet 1.34.9, newer than the oldest API"):
        next_step(desired(k8s="1.34.9"), ClusterState(tuple(nodes)))


# The invariants can fail: hand-made unsafe steps are caught, naming the nodes.


def unsafe(before: ClusterState, after: ClusterState) -> Step:
    return Step("c", before, after, moves_between(before, after))


def test_mass_replacement_breaks_every_invariant_it_should() -> None:
    before = desired().initial_state()
    after = desired(k8s="1.34.9", etcd_version="3.6.6").initial_state()
    violations = {v.invariant: v.nodes for v in check_step(desired(k8s="1.34.9"), unsafe(before, after))}
    assert violations[ETCD_ONE_MEMBER] == tuple(f"c-etcd-{i}" for i in range(5))
    assert ETCD_ADD_BEFORE_REMOVE in violations
    assert violations[MASTER_ONE] == ("c-master-0", "c-master-1", "c-master-2")
    assert violations[API_CARRIED] == ("c-master-0", "c-master-1", "c-master-2")
    assert CONTROL_PLANE_FIRST in violations
    assert violations[KUBELET_SKEW] == ("c-worker-0", "c-worker-1", "c-worker-2")
    assert WORKERS_AVAILABLE in violations


def test_deleting_a_running_node_and_rebuilding_for_a_key_pair_are_caught() -> None:
    before = desired().initial_state()
    nodes = [n for n in before.nodes if not (n.tier is Tier.WORKER and n.index == 2)]
    nodes = [replace(n, revision=rev(key="k2")) if n.tier is Tier.WORKER and n.index == 0 else n for n in nodes]
    violations = {v.invariant: v.nodes for v in check_step(desired(), unsafe(before, ClusterState(tuple(nodes))))}
    assert violations[DRAIN_BEFORE_DELETE] == ("c-worker-2",)
    assert violations[FUTURE_ONLY] == ("c-worker-0",)


# Properties.

VERSIONS = ["1.34.2", "1.34.5", "1.35.0", "1.35.3"]
ETCD_VERSIONS = ["3.5.25", "3.6.5", "3.6.6"]


@st.composite
def desired_states(draw: st.DrawFn) -> Desired:
    production = draw(st.booleans())
    surge = draw(st.integers(0, 2))
    return desired(
        k8s=draw(st.sampled_from(VERSIONS)),
        etcd_version=draw(st.sampled_from(ETCD_VERSIONS)),
        image=draw(st.sampled_from(["img-a", "img-b"])),
        key=draw(st.sampled_from(["k1", "k2", None])),
        etcd=draw(st.sampled_from([3, 5, 7] if production else [1, 3, 5])),
        masters=draw(st.integers(3 if production else 1, 4)),
        workers=draw(st.integers(1, 6)),
        surge=surge,
        unavailable=draw(st.integers(0 if surge else 1, 2)),
        production=production,
        flavor=draw(st.sampled_from(["f", "g"])),
        template=draw(st.integers(1, 2)),
    )


def assert_safe_until_converged(target: Desired, state: ClusterState) -> ClusterState:
    for step in rollout(target, state):
        assert check_step(target, step) == (), step.changes
        state = step.after
    return state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=desired_states(), edits=st.lists(st.tuples(desired_states(), st.integers(0, 6)), min_size=1, max_size=3))
def test_every_step_of_every_rollout_keeps_every_invariant_and_converges(
    first: Desired, edits: list[tuple[Desired, int]]
) -> None:
    state = first.initial_state()
    for target, interrupted_after in edits:
        # The spec may change again in the middle of a rollout.
        try:
            steps = rollout(target, state)
            for _ in range(interrupted_after):
                step = next(steps, None)
                if step is None:
                    break
                assert check_step(target, step) == (), step.changes
                state = step.after
        except RolloutError as error:
            assert error.field in ("versions.kubernetes", "versions.etcd")
            continue
    final_target = edits[-1][0]
    try:
        state = assert_safe_until_converged(final_target, state)
    except RolloutError as error:
        assert error.field in ("versions.kubernetes", "versions.etcd")
        assume(False)
    assert converged(final_target, state)
    for node in state.nodes:
        assert node.phase is Phase.RUNNING
        assert not node.revision.rolls_to(final_target.target(node.tier).revision)
    assert next_step(final_target, state).done


@settings(max_examples=50, deadline=None)
@given(target=desired_states())
def test_a_converged_cluster_plans_nothing(target: Desired) -> None:
    step = next_step(target, target.initial_state())
    assert step.done and all(m.action is Action.KEEP for m in step.moves)


def test_leaving_nodes_are_deleted_by_the_next_step() -> None:
    state = desired(workers=4).initial_state()
    nodes = [replace(n, phase=Phase.LEAVING) if n.tier is Tier.WORKER and n.index == 3 else n for n in state.nodes]
    step = next_step(desired(), ClusterState(tuple(nodes)))
    assert changed(step) == {"c-worker-3": "delete"}
    assert Node(Tier.WORKER, 3, rev(), Phase.LEAVING) in step.before.nodes


def test_a_master_rebuilt_two_minors_up_is_caught() -> None:
    before = desired().initial_state()
    nodes = [replace(n, revision=rev("1.36.0")) if n.tier is Tier.MASTER and n.index == 0 else n for n in before.nodes]
    violations = {v.invariant: v.nodes for v in check_step(desired(), unsafe(before, ClusterState(tuple(nodes))))}
    assert violations == {NO_MINOR_SKIP: ("c-master-0",)}


# The operator's part of a step (what `kaas roll` will automate), as printed by `kaas diff`.


def test_operator_tasks_add_etcd_members_as_learners_and_drain_before_rebuilding() -> None:
    from kaas.rollout.render import describe_step, operator_tasks

    etcd_add = next_step(desired(image="img-new"), desired().initial_state())
    assert operator_tasks(etcd_add, {"c-etcd-5": "10.0.0.21"}) == (
        ["etcdctl member add c-etcd-5 --learner --peer-urls=https://10.0.0.21:2380"],
        ["wait until c-etcd-5 has caught up, then: etcdctl member promote <ID of c-etcd-5>"],
    )
    retire = next_step(desired(image="img-new"), etcd_add.after)
    assert operator_tasks(retire)[1] == [
        "etcdctl member remove <ID of c-etcd-4>  # once every other member is healthy, before the next step"
    ]
    master = next_step(desired(k8s="1.34.9"), desired().initial_state())
    lines = describe_step(master)
    assert lines[0].startswith("rebuild c-master-0 in place (old server deleted first): 1.34.2")
    assert "before pulumi up: kubectl drain c-master-0 --ignore-daemonsets --delete-emptydir-data" in lines[1]
    assert lines[2] == "before pulumi up: kubectl delete node c-master-0"
    assert lines[-1] == "waiting for later steps: c-master-1, c-master-2, c-worker-0, c-worker-1, c-worker-2"

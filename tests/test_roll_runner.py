"""The step runner against a fake Automation API stack that records every ``up`` and its targets.

The runner itself, the planner, the invariants and the record files are the real code;
only the Pulumi stack is fake (tests/roll_fakes.py).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaas.roll.gates import NoGates
from kaas.roll.position import load_position, position_path
from kaas.roll.runner import GateError, RecordFile, RollError, Runner
from kaas.roll.steps import belongs_to, resource_name
from kaas.rollout import check_step, converged
from kaas.rollout.model import Desired, Revision, Step, Tier
from kaas.rollout.record import desired_from_spec, load_record, record_path
from kaas.spec import load_stack_spec
from tests.roll_fakes import SHARED, CrashError, FakeStack, node_urns

SPEC = load_stack_spec("acme-prod")
BASE = desired_from_spec(SPEC)
RECORDED = load_record(record_path("acme-prod"), SPEC)
assert RECORDED is not None


def bumped(desired: Desired, tier: Tier, **changes: object) -> Desired:
    target = desired.target(tier)
    revised = dataclasses.replace(target, revision=dataclasses.replace(target.revision, **changes))  # type: ignore[arg-type]
    return dataclasses.replace(
        desired, **{{Tier.ETCD: "etcd", Tier.MASTER: "masters", Tier.WORKER: "workers"}[tier]: revised}
    )


NEW_IMAGE = bumped(
    bumped(bumped(BASE, Tier.ETCD, image="ubuntu-26.04"), Tier.MASTER, image="ubuntu-26.04"),
    Tier.WORKER,
    image="ubuntu-26.04",
)


def setup(directory: Path, desired: Desired) -> tuple[FakeStack, Runner, list[str]]:
    record = directory / "acme-prod.yaml"
    records = RecordFile(SPEC, record)
    assert RECORDED is not None
    records.save(RECORDED)
    stack = FakeStack(desired, records)
    lines: list[str] = []
    runner = Runner(desired, records, stack, NoGates(), position_path(record), progress=lines.append)
    return stack, runner, lines


def test_every_step_is_one_up_targeted_at_exactly_its_nodes(tmp_path: Path) -> None:
    stack, runner, lines = setup(tmp_path, NEW_IMAGE)
    result = runner.run()
    assert result.failure is None
    assert (
        len(stack.ups) == len(stack.steps) == len(result.finished) == 21
    )  # 5 etcd x 2 + 1, 3 masters, 3 workers x 2 + 1
    for targets, step in zip(stack.ups, stack.steps, strict=True):
        names = {m.name(step.cluster) for m in step.changes}
        expected = {u for m in step.changes for u in node_urns("acme-prod", step.cluster, m.name(step.cluster), m.tier)}
        assert set(targets) == expected, names
        assert not any(resource_name(u).removeprefix("acme-prod-") in SHARED for u in targets)
    assert converged(NEW_IMAGE, RecordFile(SPEC, tmp_path / "acme-prod.yaml").load())  # type: ignore[arg-type]
    assert lines[0] == "[1/21] etcd add acme-prod-etcd-5"
    assert lines[1] == "[1]   pulumi up --target (4 resources)"
    assert lines[-1].startswith("[21] done in ")
    position = load_position(position_path(tmp_path / "acme-prod.yaml"), "acme-prod")
    assert [f.number for f in position.finished] == list(range(1, 22)) and position.applied is None


def test_a_node_name_prefix_of_another_is_not_its_resource() -> None:
    assert belongs_to("acme-prod-etcd-1-port", "acme-prod", "acme-prod-etcd-1")
    assert not belongs_to("acme-prod-etcd-10", "acme-prod", "acme-prod-etcd-1")
    assert not belongs_to("acme-prod-etcd-10-port", "acme-prod", "acme-prod-etcd-1")
    assert not belongs_to("acme-prod-etcd-group", "acme-prod", "acme-prod-etcd-1")
    assert belongs_to("acme-prod-api-master-1", "acme-prod", "acme-prod-master-1")
    assert not belongs_to("acme-prod-api-master-1", "acme-prod", "acme-prod-worker-1")


def test_a_rerun_of_a_finished_rollout_does_nothing(tmp_path: Path) -> None:
    stack, runner, _ = setup(tmp_path, NEW_IMAGE)
    runner.run()
    ups = len(stack.ups)
    assert runner.run().finished == [] and len(stack.ups) == ups


def test_tier_runs_only_that_tier_and_a_later_tier_waits(tmp_path: Path) -> None:
    stack, runner, _ = setup(tmp_path, NEW_IMAGE)
    waiting = runner.run(tier=Tier.WORKER)
    assert waiting.finished == [] and waiting.waiting_for is Tier.ETCD and stack.ups == []
    etcd = runner.run(tier=Tier.ETCD)
    assert len(etcd.finished) == 11 and all(s.changes[0].tier is Tier.ETCD for s in stack.steps)
    masters = runner.run(tier=Tier.MASTER)
    assert len(masters.finished) == 3


class FailingGate(NoGates):
    def __init__(self, fail_after: int) -> None:
        self.fail_after = fail_after
        self.calls = 0

    def after_up(self, step: Step) -> None:
        self.calls += 1
        if self.calls == self.fail_after:
            raise GateError("etcd-member-promoted", step.changes[0].name(step.cluster), "learner never caught up")


def test_a_failed_gate_stops_and_a_rerun_resumes_with_the_gate_not_the_up(tmp_path: Path) -> None:
    stack, runner, _ = setup(tmp_path, NEW_IMAGE)
    runner.gates = FailingGate(fail_after=1)
    stopped = runner.run()
    assert stopped.failure is not None and stopped.failure.node == "acme-prod-etcd-5"
    assert stopped.finished == [] and len(stack.ups) == 1
    position = load_position(runner.position_file, "acme-prod")
    assert position.applied is not None and position.failed and "learner never caught up" in position.failed
    runner.gates = NoGates()
    resumed = runner.run()
    assert resumed.failure is None and resumed.finished[0].number == 1
    assert len(stack.ups) == 21  # the applied up was not repeated
    assert load_position(runner.position_file, "acme-prod").failed is None


@pytest.mark.parametrize("crash_at", [1, 2, 3, 12, 16])
def test_a_crash_after_an_up_never_repeats_a_finished_removal(tmp_path: Path, crash_at: int) -> None:
    stack, runner, _ = setup(tmp_path, NEW_IMAGE)
    stack.crash_before_answer = {crash_at}
    with pytest.raises(CrashError):
        runner.run()
    runner.run()
    # The up that crashed is rerun once (Pulumi finds nothing to change); no step is applied twice.
    applied = [tuple((m.name(s.cluster), m.action) for m in s.changes) for s in stack.steps]
    assert len(applied) == len(set(applied)) == 21
    assert len(stack.ups) == 22


def test_a_state_other_than_planned_stops_before_recording(tmp_path: Path) -> None:
    stack, runner, _ = setup(tmp_path, NEW_IMAGE)
    stack.desired = BASE  # the program sees another spec than the runner
    with pytest.raises(RollError, match="different state"):
        runner.run()


# --- property: random rollouts keep every invariant of the revision model ---------------------------

revisions = st.builds(
    lambda image, patch, flavor: (image, patch, flavor),
    st.sampled_from(["ubuntu-24.04", "ubuntu-26.04"]),
    st.integers(0, 1),
    st.sampled_from([None, "kaas.big"]),
)


def revise(revision: Revision, change: tuple[str, int, str | None], version_tier: bool) -> Revision:
    image, patch, flavor = change
    major, minor, micro = (int(p) for p in revision.version.split("."))
    return dataclasses.replace(
        revision, image=image, version=f"{major}.{minor}.{micro + patch}", flavor=flavor or revision.flavor
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    etcd=revisions,
    masters=revisions,
    workers=revisions,
    etcd_count=st.sampled_from([3, 5, 7]),
    master_count=st.sampled_from([2, 3, 4]),
    worker_count=st.integers(1, 6),
    surge=st.integers(0, 2),
    unavailable=st.integers(1, 2),
    crash=st.none() | st.integers(1, 30),
)
def test_random_rollouts_target_only_their_nodes_and_keep_every_invariant(
    etcd: tuple[str, int, str | None],
    masters: tuple[str, int, str | None],
    workers: tuple[str, int, str | None],
    etcd_count: int,
    master_count: int,
    worker_count: int,
    surge: int,
    unavailable: int,
    crash: int | None,
) -> None:
    worker_patch = min(workers[1], masters[1])  # kubelet never newer than the API server
    desired = dataclasses.replace(
        BASE,
        etcd=dataclasses.replace(BASE.etcd, count=etcd_count, revision=revise(BASE.etcd.revision, etcd, False)),
        masters=dataclasses.replace(
            BASE.masters, count=master_count, revision=revise(BASE.masters.revision, masters, True)
        ),
        workers=dataclasses.replace(
            BASE.workers,
            count=worker_count,
            max_surge=surge,
            max_unavailable=unavailable,
            revision=revise(BASE.workers.revision, (workers[0], worker_patch, workers[2]), True),
        ),
    )
    with tempfile.TemporaryDirectory() as directory:
        stack, runner, _ = setup(Path(directory), desired)
        stack.crash_before_answer = {crash} if crash else set()
        try:
            runner.run()
        except CrashError:
            runner.run()
        final = RecordFile(SPEC, Path(directory) / "acme-prod.yaml").load()
    assert final is not None and converged(desired, final)
    for step in stack.steps:
        assert check_step(desired, step) == ()
    applied = [s.before for s in stack.steps]
    assert len(applied) == len(set(applied)), "a step was applied twice"
    for targets in stack.ups:
        assert targets, "an up without targets would update the whole stack"
        tiers = {t for t in (Tier.ETCD, Tier.MASTER, Tier.WORKER) if any(f"-{t}-" in resource_name(u) for u in targets)}
        assert len(tiers) == 1
        assert not any(resource_name(u).removeprefix("acme-prod-") in SHARED for u in targets)


class RecordingGates(NoGates):
    def __init__(self) -> None:
        self.after: list[tuple[str, ...]] = []

    def after_up(self, step: Step) -> None:
        self.after.append(tuple(f"{m.name(step.cluster)} {m.action}" for m in step.changes))


def test_a_crash_between_the_position_and_the_record_replans_the_step_and_runs_its_gates(tmp_path: Path) -> None:
    stack, runner, _ = setup(tmp_path, NEW_IMAGE)
    gates = RecordingGates()
    runner.gates = gates
    records = runner.records
    assert isinstance(records, RecordFile)
    original_save = records.save
    calls = {"n": 0}

    def crashing_save(state: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise CrashError("crash before the record was written")
        original_save(state)  # type: ignore[arg-type]

    records.save = crashing_save  # type: ignore[method-assign]
    with pytest.raises(CrashError):
        runner.run()
    assert load_position(runner.position_file, "acme-prod").applied is not None and gates.after == []
    result = runner.run()
    assert result.failure is None
    assert gates.after[0] == ("acme-prod-etcd-5 create",)  # the first step's gates ran, once
    assert len(gates.after) == len(set(gates.after)) == 21
    assert len(stack.steps) == 21 and len(stack.ups) == 22


def test_an_etcd_certificate_renewal_rolls_members_then_masters_and_records_the_generation(tmp_path: Path) -> None:
    # spec security.etcd_certificates_generation 1 -> 2 (tests/test_etcd_cert_renewal.py has the plans).
    renewed = bumped(bumped(BASE, Tier.ETCD, certificates=2), Tier.MASTER, certificates=2)
    stack, runner, lines = setup(tmp_path, renewed)
    result = runner.run()
    assert result.failure is None
    assert len(result.finished) == 14  # 5 etcd x 2 + 1, 3 masters; no worker
    assert not any(m.tier is Tier.WORKER for step in stack.steps for m in step.changes)
    record = tmp_path / "acme-prod.yaml"
    # The record is written from each update's nodeRevisions: the generation survives the round trip.
    final = RecordFile(SPEC, record).load()
    assert final is not None and converged(renewed, final)
    assert {n.revision.certificates for n in final.tier(Tier.ETCD) + final.tier(Tier.MASTER)} == {2}
    assert record.read_text().count("certificates: 2") == 8
    assert lines[0] == "[1/14] etcd add acme-prod-etcd-5"

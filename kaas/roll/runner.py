"""The step runner: one targeted ``pulumi up`` per rollout step, health gates around it, resumable.

For every step the planner gives (:func:`kaas.rollout.next_step` on the rollout record):

1. the step is checked against the day-2 invariants (a broken one stops the roll);
2. the gates *before* it run (an etcd learner added, a node to be rebuilt drained);
3. ``pulumi up --target`` the resources of the nodes it changes, nothing else; a step that
   builds a master or worker gets a fresh bootstrap token for it first, as the secret
   config value ``kaas:joinToken`` of that ``up`` (:mod:`kaas.roll.tokens`);
4. the state the update reports (``nodeRevisions``) must be the planned one; it becomes
   the rollout record, and the position says "applied";
5. the gates *after* it run (learner promoted and every member healthy, an old member
   removed, ``/readyz`` through the load balancer, node Ready, cordon and drain);
6. the roll's bootstrap tokens are deleted (the step's nodes have joined), and the
   position records the step as finished.

Every phase is written before the next starts and every gate observes the live cluster
before acting (an etcd member already added is not added twice, one already removed is
not removed again), so a rerun continues from the first unfinished step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kaas.bootstrap.pki import JOIN_TOKEN_CONFIG_KEY
from kaas.roll.position import Finished, Position, load_position, save_position
from kaas.roll.steps import StackResources, joining_nodes, operations, step_targets, step_tier
from kaas.roll.tokens import JoinToken
from kaas.rollout import check_step, next_step, rollout
from kaas.rollout.model import TIER_ORDER, ClusterState, Desired, Step, Tier
from kaas.rollout.record import dump_record, load_record, state_from_outputs
from kaas.spec import ClusterSpec

JOIN_TOKEN_CONFIG = f"kaas:{JOIN_TOKEN_CONFIG_KEY}"


class StackDriver(Protocol):
    """What the runner needs of a Pulumi stack (:class:`kaas.roll.automation.AutomationStack`)."""

    def resources(self, step: Step) -> StackResources:
        """The program's resources at ``step`` (with what each needs) and the stack's current URNs."""
        ...

    def up(self, targets: Sequence[str], secret_config: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        """``pulumi up --target ...`` with ``secret_config`` as secret config values of this update only;
        the stack's outputs afterwards (plain values)."""
        ...


class RecordStore(Protocol):
    def load(self) -> ClusterState | None: ...

    def save(self, state: ClusterState) -> None: ...

    def from_outputs(self, outputs: Mapping[str, Any]) -> ClusterState: ...


class JoinTokenSource(Protocol):
    """Bootstrap tokens in the live cluster (:class:`kaas.roll.tokens.JoinTokens`)."""

    def create(self, description: str) -> JoinToken: ...

    def delete_all(self) -> list[str]: ...


class Gates(Protocol):
    def before_up(self, step: Step) -> None: ...

    def after_up(self, step: Step) -> None: ...


class GateError(Exception):
    """A health gate did not pass: the check, the node, what was seen."""

    def __init__(self, check: str, node: str, detail: str) -> None:
        super().__init__(f"{check} failed on {node}: {detail}")
        self.check = check
        self.node = node
        self.detail = detail


class RollError(Exception):
    """The roll cannot go on for a reason that is not a gate (a refused step, a surprising update)."""


@dataclass
class RecordFile:
    """The rollout record file of a stack (``stacks/rollout/<stack>.yaml``)."""

    spec: ClusterSpec
    path: Path

    def load(self) -> ClusterState | None:
        return load_record(self.path, self.spec)

    def save(self, state: ClusterState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(dump_record(self.spec.name, state), encoding="utf-8")

    def from_outputs(self, outputs: Mapping[str, Any]) -> ClusterState:
        return state_from_outputs(dict(outputs), self.spec, "the pulumi up outputs")


def describe(step: Step) -> str:
    """``etcd add acme-prod-etcd-5`` (one planner step's operations, ``; ``-joined)."""
    ops = operations(step, 0)
    deletions = [m.name(step.cluster) for m in step.changes if m.action.value == "delete"]
    text = "; ".join(f"{op.tier} {op.action} {', '.join(op.nodes)}" for op in ops)
    if deletions:
        text += f"{'; ' if text else ''}delete server {', '.join(deletions)}"
    return text


@dataclass
class RollResult:
    finished: list[Finished] = field(default_factory=list)
    failure: GateError | None = None
    waiting_for: Tier | None = None  # --tier: the tier whose steps come first


@dataclass
class Runner:
    """Walks ``desired`` from the recorded state; ``progress`` gets one line per phase for people."""

    desired: Desired
    records: RecordStore
    driver: StackDriver
    gates: Gates
    position_file: Path
    progress: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    join_tokens: JoinTokenSource | None = None  # None: nodes join with the stack's first token

    def _secret_config(self, step: Step) -> dict[str, str]:
        """``kaas:joinToken``: a token minted now for the masters and workers this step builds."""
        joining = joining_nodes(step)
        if not joining or self.join_tokens is None:
            return {}
        token = self.join_tokens.create(f"kaas roll: join of {', '.join(joining)}")
        self.progress(
            f"    bootstrap token {token.token_id} for {', '.join(joining)} (expires {token.expires:%H:%M} UTC)"
        )
        return {JOIN_TOKEN_CONFIG: token.value}

    def _delete_join_tokens(self) -> None:
        if self.join_tokens is not None:
            for token_id in self.join_tokens.delete_all():
                self.progress(f"    bootstrap token {token_id} deleted")

    def _save(self, position: Position) -> None:
        save_position(self.position_file, position)

    def run(self, tier: Tier | None = None, max_steps: int | None = None) -> RollResult:
        """Run steps until the spec is reached, a gate fails (returned, not raised), the next step
        moves another tier than ``tier``, or ``max_steps`` steps are done."""
        cluster = self.desired.cluster
        position = load_position(self.position_file, cluster)
        result = RollResult()
        begun = self.clock()
        while max_steps is None or len(result.finished) < max_steps:
            recorded = self.records.load()
            applied = None
            if position.applied is not None and recorded is not None:
                if recorded == position.applied:
                    # Stopped between the position and the record: the step is planned again
                    # (its up finds nothing to change) and its record written.
                    position.applied = None
                else:
                    applied = position.applied_step(cluster, recorded)
            if applied is not None:
                number, started = position.applied_number, self.clock()
                self.progress(f"[{number}] resuming after pulumi up: {describe(applied)}")
            else:
                if recorded is None:
                    raise RollError(
                        f"{cluster} has no rollout record: the first deployment is `pulumi up`, not kaas roll"
                    )
                step = next_step(self.desired, recorded)
                if step.done:
                    break
                if tier is not None and step_tier(step) is not tier:
                    if TIER_ORDER.index(step_tier(step)) < TIER_ORDER.index(tier):
                        result.waiting_for = step_tier(step)
                    break
                violations = check_step(self.desired, step)
                if violations:
                    raise RollError("the planned step breaks an invariant: " + "; ".join(map(str, violations)))
                number, started = len(position.finished) + 1, self.clock()
                total = number - 1 + sum(1 for _ in rollout(self.desired, recorded))
                self.progress(f"[{number}/{total}] {describe(step)}")
                try:
                    self.gates.before_up(step)
                except GateError as failure:
                    return self._stop(position, result, failure)
                targets = step_targets(step, self.driver.resources(step))
                self.progress(f"[{number}]   pulumi up --target ({len(targets)} resources)")
                outputs = self.driver.up(targets, self._secret_config(step))
                after = self.records.from_outputs(outputs)
                if after != step.after:
                    raise RollError(
                        "the update left a different state than the planned step "
                        "(was the record or the spec changed during the roll?); nothing recorded"
                    )
                # The position first: once the record says "after", a rerun must still run this step's gates.
                position.applied, position.applied_number = step.before, number
                self._save(position)
                self.records.save(after)
                applied = step
            try:
                self.gates.after_up(applied)
            except GateError as failure:
                # A token stays until it expires: a rerun within its lifetime lets the node join.
                return self._stop(position, result, failure)
            if joining_nodes(applied):
                self._delete_join_tokens()
            finished = Finished(
                number, {m.name(cluster): str(m.action) for m in applied.changes}, self.clock() - started
            )
            position.finished.append(finished)
            position.applied, position.failed = None, None
            self._save(position)
            result.finished.append(finished)
            self.progress(f"[{number}] done in {finished.seconds:.1f}s (roll running {self.clock() - begun:.0f}s)")
        if position.failed is not None:
            position.failed = None
            self._save(position)
        return result

    def _stop(self, position: Position, result: RollResult, failure: GateError) -> RollResult:
        position.failed = str(failure)
        self._save(position)
        result.failure = failure
        return result

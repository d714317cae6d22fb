"""The rollout planner: (what the spec wants, what the nodes run) -> the next safe ``pulumi up``.

Pure functions over :mod:`kaas.rollout.model`. One step moves one tier, in the order
etcd -> masters -> workers, so the control plane always runs the newest Kubernetes
before any kubelet does:

- etcd members are never rebuilt in place. A member is replaced by *add a new member*
  (one step; the operator or ``kaas roll`` waits until it is healthy and promoted),
  *retire the old member* (next step: ``etcdctl member remove``, protection off),
  then *delete its server* (the step after, together with the next member's add).
- masters, when there are at least two, are rebuilt in place one per step (the old
  server deleted first: its port and address go to the new one) while the others carry
  the API; a single master gets a new master beside it first.
- workers surge: ``max_surge`` new workers are built first, then at most
  ``max_unavailable`` old ones retire (cordon + drain, which respects
  PodDisruptionBudgets) and are deleted one step later. ``max_surge: 0`` rebuilds
  ``max_unavailable`` workers in place per step instead.
- a count going down retires the highest index first (outdated nodes before current
  ones); a count going up adds the lowest free indices (etcd and masters one per step).

Calling :func:`next_step` on the state a step leaves, again and again, reaches the spec
(:func:`rollout` does exactly that). Bad input raises :class:`RolloutError`, one line
naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator

from kaas.rollout.model import (
    TIER_ORDER,
    Action,
    ClusterState,
    Desired,
    Move,
    Node,
    Phase,
    Step,
    Tier,
    TierTarget,
    minor_of,
    with_phase,
)
from kaas.versions import parse_version

# Kubernetes version skew policy: kubelet may be up to three minor versions older than
# kube-apiserver, never newer (https://kubernetes.io/releases/version-skew-policy/#kubelet).
KUBELET_MAX_MINORS_BEHIND = 3
MAX_STEPS = 1000


class RolloutError(Exception):
    """A spec edit or a recorded state the planner refuses: ``field: message``, nothing is planned."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _version_field(tier: Tier) -> str:
    return "versions.etcd" if tier is Tier.ETCD else "versions.kubernetes"


def validate(desired: Desired, state: ClusterState) -> None:
    """Refuse a desired revision the running nodes cannot reach safely, or a state that cannot be.

    - no minor version skipped, no downgrade (kubeadm upgrades the control plane one
      minor at a time and never down; etcd upgrades one minor at a time);
    - no kubelet newer than the oldest API server, none more than three minors older;
    - every tier the spec wants has at least one recorded node (a truncated record).
    """
    for tier in TIER_ORDER:
        target = desired.target(tier)
        nodes = state.tier(tier)
        if not state.running(tier):
            raise RolloutError(
                "nodes",
                f"the rollout record has no running {tier} node but the spec wants {target.count}: "
                "a truncated or hand-edited record (restore it from git)",
            )
        try:
            wanted = parse_version(target.revision.version)
            running = {n: parse_version(n.revision.version) for n in nodes}
        except ValueError as error:
            raise RolloutError(_version_field(tier), str(error)) from None
        if tier is Tier.WORKER:
            continue
        _check_certificates(desired, target, nodes)
        for node, version in sorted(running.items(), key=lambda item: item[1]):
            name = node.name(desired.cluster)
            if wanted < version:
                raise RolloutError(
                    _version_field(tier),
                    f"{target.revision.version} is older than {version_text(version)} that {name} runs: "
                    "downgrades are not supported (restore from an etcd backup instead)",
                )
            if wanted[:2] > (version[0], version[1] + 1):
                raise RolloutError(
                    _version_field(tier),
                    f"{version_text(version)} -> {target.revision.version} skips a minor version ({name} runs "
                    f"{version_text(version)}); upgrade to {version[0]}.{version[1] + 1} first",
                )
    _check_kubelet_skew(desired, state)


CERTIFICATES_FIELD = "security.etcd_certificates_generation"


def _check_certificates(desired: Desired, target: TierTarget, nodes: tuple[Node, ...]) -> None:
    """A certificate generation only goes up: its certificates were re-issued when it was raised,
    and the older generation's are deleted with the last node that carried them."""
    newest = max(nodes, key=lambda n: n.revision.certificates, default=None)
    if newest is not None and target.revision.certificates < newest.revision.certificates:
        raise RolloutError(
            CERTIFICATES_FIELD,
            f"{target.revision.certificates} is older than generation {newest.revision.certificates} that "
            f"{newest.name(desired.cluster)} carries: certificates are renewed by raising it, never lowering it",
        )


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(v) for v in version)


def _check_kubelet_skew(desired: Desired, state: ClusterState) -> None:
    oldest_api = min(parse_version(n.revision.version) for n in state.running(Tier.MASTER))
    for node in state.tier(Tier.WORKER):
        kubelet = parse_version(node.revision.version)
        if kubelet > oldest_api:
            raise RolloutError(
                "nodes",
                f"{node.name(desired.cluster)} runs kubelet {node.revision.version}, newer than the oldest "
                f"API server ({version_text(oldest_api)}): the record disagrees with the cluster",
            )
    wanted = minor_of(desired.masters.revision.version)
    for node in state.tier(Tier.WORKER):
        behind = wanted[1] - minor_of(node.revision.version)[1]
        if wanted[0] == minor_of(node.revision.version)[0] and behind > KUBELET_MAX_MINORS_BEHIND:
            raise RolloutError(
                "versions.kubernetes",
                f"{desired.masters.revision.version} would leave {node.name(desired.cluster)} (kubelet "
                f"{node.revision.version}) more than {KUBELET_MAX_MINORS_BEHIND} minor versions behind",
            )


def tier_converged(target: TierTarget, nodes: tuple[Node, ...]) -> bool:
    running = [n for n in nodes if n.running]
    return len(running) == len(nodes) == target.count and not any(n.revision.rolls_to(target.revision) for n in running)


def converged(desired: Desired, state: ClusterState) -> bool:
    """Every tier has its count of running nodes, each at the desired revision (key pair aside)."""
    return all(tier_converged(desired.target(t), state.tier(t)) for t in TIER_ORDER)


def _free_indices(used: set[int], count: int) -> list[int]:
    free: list[int] = []
    index = 0
    while len(free) < count:
        if index not in used:
            free.append(index)
        index += 1
    return free


def _surge(target: TierTarget) -> int:
    """New nodes built beside old ones: etcd always one (add before remove); one master only when
    it is the only one (otherwise the others carry the API while one is rebuilt in place)."""
    if target.tier is Tier.ETCD:
        return 1
    if target.tier is Tier.MASTER:
        return 1 if target.count == 1 else 0
    return target.max_surge


def _unavailable(target: TierTarget) -> int:
    return target.max_unavailable if target.tier is Tier.WORKER else 1


def _tier_after(target: TierTarget, nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """The tier's nodes after one step (leaving nodes are gone, see the module docstring)."""
    running = [n for n in nodes if n.running]
    outdated = [n for n in running if n.revision.rolls_to(target.revision)]
    current = [n for n in running if n not in outdated]
    used = {n.index for n in nodes}
    excess = len(running) - target.count
    after = {n.index: n for n in running}

    def create(count: int) -> None:
        for index in _free_indices(used, count):
            after[index] = Node(target.tier, index, target.revision)

    if excess > 0:
        retiring = [*sorted(outdated, key=lambda n: -n.index), *sorted(current, key=lambda n: -n.index)]
        room = max(0, len(running) - target.min_count)
        # Only the excess retires, so the tier keeps its count in service even with max_unavailable 0.
        for node in retiring[: min(excess, max(1, _unavailable(target)), room)]:
            after[node.index] = with_phase(node, Phase.LEAVING)
    elif excess < 0:
        create(-excess if target.tier is Tier.WORKER else 1)
    elif outdated:
        surge = _surge(target)
        if surge > 0:
            create(min(surge, len(outdated)))
        else:
            for node in outdated[: _unavailable(target)]:
                after[node.index] = Node(target.tier, node.index, target.revision)
    return tuple(after.values())


def moves_between(before: ClusterState, after: ClusterState) -> tuple[Move, ...]:
    """Every node's move from ``before`` to ``after`` (the inverse of applying a step)."""
    keys = sorted(
        {(n.tier, n.index) for n in (*before.nodes, *after.nodes)}, key=lambda k: (TIER_ORDER.index(k[0]), k[1])
    )
    moves: list[Move] = []
    for tier, index in keys:
        old, new = before.get(tier, index), after.get(tier, index)
        if old is None:
            action = Action.CREATE
        elif new is None:
            action = Action.DELETE
        elif old.running and not new.running:
            action = Action.RETIRE
        elif old == new:
            action = Action.KEEP
        else:
            action = Action.REPLACE
        moves.append(Move(tier, index, action, old, new))
    return tuple(moves)


def pending_moves(desired: Desired, state: ClusterState) -> tuple[str, ...]:
    """Nodes that still have a move ahead after ``state``: retired ones, outdated ones, and
    tiers whose count is not reached yet (``<tier> +N``)."""
    pending: list[str] = []
    for tier in TIER_ORDER:
        target = desired.target(tier)
        running = state.running(tier)
        pending.extend(
            n.name(desired.cluster) for n in state.tier(tier) if not n.running or n.revision.rolls_to(target.revision)
        )
        if len(running) < target.count:
            pending.append(f"{tier} +{target.count - len(running)}")
        elif len(running) > target.count:
            pending.append(f"{tier} -{len(running) - target.count}")
    return tuple(pending)


def next_step(desired: Desired, recorded: ClusterState | None) -> Step:
    """The next ``pulumi up``: from the recorded state (None: a cluster not built yet) towards ``desired``.

    Moves the first tier (etcd, masters, workers) that differs from the spec, within its
    limits; every other node is kept. A state that already matches gives an empty step.
    """
    if recorded is None:
        after = desired.initial_state()
        return Step(desired.cluster, ClusterState(), after, moves_between(ClusterState(), after), (), bootstrap=True)
    validate(desired, recorded)
    nodes = list(recorded.nodes)
    for tier in TIER_ORDER:
        target = desired.target(tier)
        if not tier_converged(target, recorded.tier(tier)):
            nodes = [n for n in nodes if n.tier is not tier] + list(_tier_after(target, recorded.tier(tier)))
            break
    after = ClusterState(tuple(nodes))
    return Step(desired.cluster, recorded, after, moves_between(recorded, after), pending_moves(desired, after))


def rollout(desired: Desired, recorded: ClusterState | None) -> Iterator[Step]:
    """Every step from ``recorded`` to ``desired``, each applied to the state the previous one left."""
    state = recorded
    for _ in range(MAX_STEPS):
        step = next_step(desired, state)
        if step.done:
            return
        yield step
        state = step.after
    raise RolloutError("nodes", f"no convergence within {MAX_STEPS} steps (a planner bug)")

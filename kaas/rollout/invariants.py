"""The day-2 invariants, checked on any step (planned here or read back from a plan).

:func:`check_step` takes a :class:`~kaas.rollout.model.Step` and returns every broken
invariant, each naming the nodes. The planner's own steps must pass (property-tested);
``kaas check`` and the CrossGuard pack run the same checks on the step the offline plan
actually performs, rebuilt from its resources.

Upstream facts behind them:
- etcd: a member is replaced by adding the new one first (as a learner, then promoted)
  and removing the old one after; quorum is ``members // 2 + 1`` voting members, and a
  learner does not vote (https://etcd.io/docs/v3.6/op-guide/runtime-configuration/,
  https://etcd.io/docs/v3.6/learning/design-learner/).
- Kubernetes: kube-apiserver instances may differ by one minor version; kubelet must
  not be newer than kube-apiserver (https://kubernetes.io/releases/version-skew-policy/);
  kubeadm upgrades the control plane first, one minor at a time, then the nodes
  (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/).
- ``kubectl drain`` evicts through the Eviction API, which honours PodDisruptionBudgets
  (https://kubernetes.io/docs/tasks/administer-cluster/safely-drain-node/).
"""

from __future__ import annotations

from dataclasses import dataclass

from kaas.rollout.model import Action, Desired, Move, Step, Tier, minor_of
from kaas.versions import parse_version

ETCD_ONE_MEMBER = "etcd-one-member-per-step"
ETCD_ADD_BEFORE_REMOVE = "etcd-add-before-remove"
ETCD_QUORUM = "etcd-quorum"
MASTER_ONE = "one-master-per-step"
API_CARRIED = "api-carried-by-other-masters"
CONTROL_PLANE_FIRST = "control-plane-before-workers"
KUBELET_SKEW = "kubelet-not-newer-than-api-server"
NO_MINOR_SKIP = "no-minor-version-skipped"
WORKERS_AVAILABLE = "workers-max-unavailable"
WORKERS_SURGE = "workers-max-surge"
DRAIN_BEFORE_DELETE = "retire-before-delete"
FUTURE_ONLY = "future-only-changes-replace-nothing"

MEMBERSHIP_CHANGES = (Action.CREATE, Action.REPLACE, Action.RETIRE)


@dataclass(frozen=True)
class Violation:
    invariant: str
    nodes: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {', '.join(self.nodes)}: {self.message}"


def _quorum(members: int) -> int:
    return members // 2 + 1


def check_step(desired: Desired, step: Step) -> tuple[Violation, ...]:
    """Every invariant ``step`` breaks (empty: the step is safe). A bootstrap step builds a new
    cluster and is exempt."""
    if step.bootstrap:
        return ()
    cluster = desired.cluster
    found: list[Violation] = []

    def names(moves: tuple[Move, ...] | list[Move]) -> tuple[str, ...]:
        return tuple(m.name(cluster) for m in moves)

    def broken(invariant: str, moves: tuple[Move, ...] | list[Move], message: str) -> None:
        found.append(Violation(invariant, names(moves), message))

    changes = step.changes
    deleted_running = [m for m in changes if m.action is Action.DELETE and m.before is not None and m.before.running]
    if deleted_running:
        broken(DRAIN_BEFORE_DELETE, deleted_running, "deleted while still a member of its tier (retire it first)")
    future_only = [
        m
        for m in changes
        if m.action is Action.REPLACE
        and m.before is not None
        and m.after is not None
        and m.before.phase is m.after.phase
        and not m.before.revision.rolls_to(m.after.revision)
    ]
    if future_only:
        broken(FUTURE_ONLY, future_only, "rebuilt although only its key pair differs (a new key pair is for new nodes)")

    # etcd
    etcd_before = step.before.running(Tier.ETCD)
    etcd_changes = [m for m in step.moving(Tier.ETCD) if m.action in MEMBERSHIP_CHANGES or m in deleted_running]
    if len(etcd_changes) > 1:
        broken(ETCD_ONE_MEMBER, etcd_changes, f"{len(etcd_changes)} etcd membership changes in one step (at most 1)")
    in_place = step.moving(Tier.ETCD, Action.REPLACE)
    if in_place:
        broken(ETCD_ADD_BEFORE_REMOVE, in_place, "etcd member rebuilt in place (removed before its replacement joined)")
    retired = step.moving(Tier.ETCD, Action.RETIRE)
    if retired and len(etcd_before) - len(retired) < desired.etcd.count:
        broken(ETCD_ADD_BEFORE_REMOVE, retired, "etcd member removed before its replacement was added")
    # A retiring member stays up and votes on its own removal; a rebuilt or deleted one is gone.
    lost = [m for m in step.moves if m.tier is Tier.ETCD and (m.action is Action.REPLACE or m in deleted_running)]
    if etcd_before and len(etcd_before) - len(lost) < _quorum(len(etcd_before)):
        broken(
            ETCD_QUORUM,
            lost,
            f"{len(etcd_before) - len(lost)} of {len(etcd_before)} etcd members stay up, "
            f"quorum is {_quorum(len(etcd_before))}",
        )
    if retired and len(step.after.running(Tier.ETCD)) < desired.etcd.min_count:
        broken(ETCD_QUORUM, retired, f"fewer than {desired.etcd.min_count} etcd members would remain")

    # masters
    master_changes = [m for m in step.moving(Tier.MASTER) if m.action in MEMBERSHIP_CHANGES or m in deleted_running]
    if len(master_changes) > 1:
        broken(MASTER_ONE, master_changes, f"{len(master_changes)} masters change in one step (at most 1)")
    kept_masters = [
        m for m in step.moves if m.tier is Tier.MASTER and m.action is Action.KEEP and m.before and m.before.running
    ]
    out_of_service = [m for m in master_changes if m.action is not Action.CREATE]
    if out_of_service and not kept_masters:
        broken(API_CARRIED, out_of_service, "no other master serves the API while this one is out")

    # control plane first, version skew
    worker_changes = step.moving(Tier.WORKER, Action.CREATE, Action.REPLACE)
    if master_changes and worker_changes:
        broken(CONTROL_PLANE_FIRST, worker_changes, "workers move in the same step as masters")
    api_versions = [parse_version(n.revision.version) for n in step.before.running(Tier.MASTER)]
    api_versions += [parse_version(n.revision.version) for n in step.after.running(Tier.MASTER)]
    if api_versions:
        oldest_api = min(api_versions)
        too_new = [
            m
            for m in step.moves
            if m.tier is Tier.WORKER and m.after is not None and parse_version(m.after.revision.version) > oldest_api
        ]
        if too_new:
            broken(
                KUBELET_SKEW, too_new, f"kubelet newer than the oldest API server ({'.'.join(map(str, oldest_api))})"
            )
    for tier in (Tier.ETCD, Tier.MASTER):
        running = step.before.running(tier)
        if not running:
            continue
        oldest = min(minor_of(n.revision.version) for n in running)
        skipping = [
            m
            for m in step.moving(tier, Action.CREATE, Action.REPLACE)
            if m.after is not None
            and (
                minor_of(m.after.revision.version) > (oldest[0], oldest[1] + 1)
                or (
                    m.before is not None
                    and parse_version(m.after.revision.version) < parse_version(m.before.revision.version)
                )
            )
        ]
        if skipping:
            broken(NO_MINOR_SKIP, skipping, f"{tier} moves more than one minor version up, or down")

    # workers
    target = desired.workers
    workers_before = step.before.running(Tier.WORKER)
    kept_workers = [
        m for m in step.moves if m.tier is Tier.WORKER and m.action is Action.KEEP and m.before and m.before.running
    ]
    floor = min(target.count, len(workers_before)) - target.max_unavailable
    if len(kept_workers) < floor:
        broken(
            WORKERS_AVAILABLE,
            [m for m in step.moving(Tier.WORKER) if m.before is not None and m.before.running],
            f"only {len(kept_workers)} workers stay in service, max_unavailable {target.max_unavailable} allows no fewer than {floor}",
        )
    ceiling = max(target.count + target.max_surge, len(workers_before))
    if len(step.after.running(Tier.WORKER)) > ceiling:
        broken(
            WORKERS_SURGE,
            step.moving(Tier.WORKER, Action.CREATE),
            f"{len(step.after.running(Tier.WORKER))} workers at once, max_surge {target.max_surge} allows {ceiling}",
        )
    return tuple(found)

"""Rollout steps for people: what this ``pulumi up`` moves, what waits, and the operator's part.

``pulumi up`` builds and deletes servers; what happens inside the cluster around it
(an etcd member added as a learner and promoted, a node drained) is the operator's
part, listed per step so it can be done by hand or by ``kaas roll``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kaas.rollout.model import Action, Move, Step, Tier

DRAIN = "kubectl drain {name} --ignore-daemonsets --delete-emptydir-data  # evicts, honouring PodDisruptionBudgets"


def describe_move(move: Move, cluster: str) -> str:
    name = move.name(cluster)
    before, after = move.before, move.after
    if move.action is Action.CREATE and after is not None:
        return f"create  {name} at {after.revision.short()}"
    if move.action is Action.REPLACE and before is not None and after is not None:
        return (
            f"rebuild {name} in place (old server deleted first): {before.revision.short()} -> {after.revision.short()}"
        )
    if move.action is Action.RETIRE:
        return f"retire  {name} (leaves its tier; deleted by the next step)"
    if move.action is Action.DELETE:
        return f"delete  {name} (retired)"
    return f"keep    {name}"


def operator_tasks(step: Step, addresses: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """``(before pulumi up, after pulumi up)``: the in-cluster half of ``step``."""
    before: list[str] = []
    after: list[str] = []
    if step.bootstrap:
        return before, after
    for move in step.changes:
        name = move.name(step.cluster)
        if move.tier is Tier.ETCD:
            if move.action is Action.CREATE:
                ip = (addresses or {}).get(name, f"<{name} address>")
                before.append(f"etcdctl member add {name} --learner --peer-urls=https://{ip}:2380")
                after.append(f"wait until {name} has caught up, then: etcdctl member promote <ID of {name}>")
            elif move.action is Action.RETIRE:
                after.append(
                    f"etcdctl member remove <ID of {name}>  # once every other member is healthy, before the next step"
                )
        else:
            if move.action is Action.REPLACE:
                # kubeadm join refuses a name whose Node is still Ready (preflight check), and the
                # rebuilt server registers under the same name: the old Node object goes first.
                before += [DRAIN.format(name=name), f"kubectl delete node {name}"]
            if move.action is Action.RETIRE:
                after.append(DRAIN.format(name=name))
            if move.action in (Action.CREATE, Action.REPLACE):
                after.append(f"wait until node {name} is Ready")
            if move.action is Action.DELETE:
                after.append(f"kubectl delete node {name}")
    return before, after


def describe_step(step: Step, addresses: Mapping[str, str] | None = None) -> list[str]:
    """The lines of one step: its moves, the operator's part, what waits for later steps."""
    if step.done:
        return ["nothing to roll: every node runs the spec's revision"]
    if step.bootstrap:
        return [f"first deployment: {len(step.changes)} nodes created at the spec's revision"]
    lines = [describe_move(m, step.cluster) for m in step.changes]
    before, after = operator_tasks(step, addresses)
    lines += [f"before pulumi up: {task}" for task in before]
    lines += [f"after pulumi up:  {task}" for task in after]
    if step.pending:
        lines.append(f"waiting for later steps: {', '.join(step.pending)}")
    return lines


def render_steps(cluster: str, steps: Sequence[Step], first_deploy: bool) -> str:
    """``kaas rollout status``: every remaining step, the first one being the next ``pulumi up``."""
    if not steps:
        return f"{cluster}: rollout done, every node runs the spec's revision."
    lines = [f"{cluster}: {len(steps)} pulumi up step(s) to the spec" + (" (first deployment)" if first_deploy else "")]
    for number, step in enumerate(steps, start=1):
        lines.append(f"step {number}{' (next pulumi up)' if number == 1 else ''}:")
        lines.extend(f"  {line}" for line in describe_step(step))
    lines.append(
        "After each pulumi up: python -m kaas rollout record --stack <stack> --outputs <outputs.json>, commit."
    )
    return "\n".join(lines)

"""Time to a ready cluster, estimated from a plan's dependency graph and the duration table.

``time_to_ready(plan)`` gives the serial time (every create one after another), the
makespan with unlimited parallelism (what Pulumi achieves: it creates a resource as
soon as its dependencies exist), the lower bound (the chain no graph can avoid:
network -> subnet -> first master's port -> its instance -> ``kubeadm init`` -> the
readiness gate -> CNI -> the slowest other service) and the critical path with
start/finish times. All durations come from :mod:`kaas.offline.durations`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaas.offline import durations
from kaas.offline.engine import Plan, ResourceRecord
from kaas.offline.schedule import Task, schedule, tasks_from_plan

CNI_COMPONENT = "kaas:services:Cni"


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    start: float
    finish: float


@dataclass(frozen=True)
class TimeToReady:
    serial: float
    makespan: float
    lower_bound: float
    lower_bound_chain: tuple[tuple[str, float], ...]
    critical_path: tuple[Step, ...]

    @property
    def ratio(self) -> float:
        return self.makespan / self.lower_bound


def label(record: ResourceRecord) -> str:
    return f"{record.type.rsplit(':', 1)[-1]} {record.name}"


def plan_tasks(plan: Plan) -> dict[str, Task]:
    """The plan's custom resources as tasks, plus the out-of-band kubeadm init the gate waits for."""
    return tasks_from_plan(plan, durations.duration, durations.out_of_band(plan))


def helm_releases(plan: Plan) -> list[ResourceRecord]:
    return plan.by_type(durations.HELM_RELEASE)


def cni_release(plan: Plan) -> ResourceRecord:
    parents = {r.urn: r.type for r in plan.resources}
    for record in helm_releases(plan):
        if record.parent and parents.get(record.parent) == CNI_COMPONENT:
            return record
    raise KeyError(f"the plan has no Helm release under {CNI_COMPONENT}")


def readiness_gate(plan: Plan) -> ResourceRecord:
    for record in plan.by_type(durations.COMMAND):
        if durations.is_readiness_gate(record):
            return record
    raise KeyError("the plan has no readiness gate")


def lower_bound_chain(plan: Plan) -> list[tuple[str, float]]:
    """The unavoidable chain, step by step: nothing can make a ready cluster faster than its sum."""
    master = durations.first_master(plan)
    port = next(plan.get(u) for u in master.dependencies if plan.get(u).type == "openstack:networking/port:Port")
    chain: list[ResourceRecord] = []
    # A spec may reuse an existing network/subnet: then those steps are not in the plan.
    chain += plan.by_type("openstack:networking/network:Network")[:1]
    chain += plan.by_type("openstack:networking/subnet:Subnet")[:1]
    chain += [port, master]
    steps = [(label(r), durations.duration(r)) for r in chain]
    steps.append((f"kubeadm init on {master.name}", durations.KUBEADM_INIT))
    gate = readiness_gate(plan)
    steps.append((label(gate), durations.duration(gate)))
    cni = cni_release(plan)
    steps.append((label(cni), durations.duration(cni)))
    others = [r for r in helm_releases(plan) if r.urn != cni.urn]
    if others:
        slowest = max(others, key=lambda r: (durations.duration(r), r.name))
        steps.append((label(slowest) + " (slowest service)", durations.duration(slowest)))
    return steps


def time_to_ready(plan: Plan) -> TimeToReady:
    tasks = plan_tasks(plan)
    result = schedule(tasks)
    labels = {r.urn: label(r) for r in plan.resources}
    path = tuple(
        Step(key, labels.get(key, key), result.finish[key] - tasks[key].duration, result.finish[key])
        for key in result.critical_path
    )
    chain = lower_bound_chain(plan)
    return TimeToReady(
        serial=result.serial,
        makespan=result.makespan,
        lower_bound=sum(d for _, d in chain),
        lower_bound_chain=tuple(chain),
        critical_path=path,
    )

"""Time-to-ready of a plan's dependency graph.

The Pulumi engine creates a resource as soon as everything it depends on exists,
so with unlimited parallelism the time to create a stack is the longest weighted
path through the dependency graph (the makespan). This module turns a recorded
plan into that graph and computes the serial time, the makespan and the path
that sets it. Durations come from a table (:mod:`kaas.offline.durations`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from kaas.offline.engine import Plan, ResourceRecord


@dataclass(frozen=True)
class Task:
    key: str
    duration: float
    deps: frozenset[str]


@dataclass(frozen=True)
class Schedule:
    serial: float
    makespan: float
    critical_path: tuple[str, ...]
    finish: Mapping[str, float]


@dataclass(frozen=True)
class OutOfBand:
    """Work no resource stands for (e.g. ``kubeadm init`` on a booted server).

    It starts once every task in ``after`` has finished and takes ``duration``; the
    tasks in ``waiters`` cannot finish before it (they poll for its result).
    """

    key: str
    duration: float
    after: frozenset[str]
    waiters: frozenset[str]


class CycleError(ValueError):
    pass


def _topological(tasks: Mapping[str, Task]) -> list[str]:
    indegree = {key: 0 for key in tasks}
    users: dict[str, list[str]] = defaultdict(list)
    for task in tasks.values():
        for dep in task.deps:
            if dep not in tasks:
                raise KeyError(f"{task.key} depends on unknown task {dep}")
            indegree[task.key] += 1
            users[dep].append(task.key)
    ready = sorted(key for key, n in indegree.items() if n == 0)
    order: list[str] = []
    while ready:
        key = ready.pop()
        order.append(key)
        for user in users[key]:
            indegree[user] -= 1
            if indegree[user] == 0:
                ready.append(user)
    if len(order) != len(tasks):
        raise CycleError("the dependency graph has a cycle")
    return order


def schedule(tasks: Mapping[str, Task]) -> Schedule:
    """Earliest finish times with unlimited parallelism, and the path that sets the makespan."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for key in _topological(tasks):
        task = tasks[key]
        start, previous = 0.0, None
        for dep in sorted(task.deps):
            if finish[dep] > start:
                start, previous = finish[dep], dep
        finish[key] = start + task.duration
        via[key] = previous
    if not finish:
        return Schedule(0.0, 0.0, (), {})
    last = max(sorted(finish), key=lambda k: finish[k])
    path: list[str] = []
    cursor: str | None = last
    while cursor is not None:
        path.append(cursor)
        cursor = via[cursor]
    return Schedule(
        serial=sum(t.duration for t in tasks.values()),
        makespan=finish[last],
        critical_path=tuple(reversed(path)),
        finish=finish,
    )


def _descendants(plan: Plan) -> dict[str, list[str]]:
    """Custom resources below each component: depending on a component waits for all of them."""
    children: dict[str, list[ResourceRecord]] = defaultdict(list)
    for record in plan.resources:
        if record.parent:
            children[record.parent].append(record)
    memo: dict[str, list[str]] = {}

    def below(urn: str) -> list[str]:
        if urn not in memo:
            memo[urn] = [u for kid in children.get(urn, []) for u in ([kid.urn] if kid.custom else []) + below(kid.urn)]
        return memo[urn]

    return {r.urn: below(r.urn) for r in plan.resources if not r.custom}


def tasks_from_plan(
    plan: Plan, duration: Callable[[ResourceRecord], float], out_of_band: Iterable[OutOfBand] = ()
) -> dict[str, Task]:
    """One task per custom resource; dependencies on components expand to their custom descendants.

    Each :class:`OutOfBand` becomes a task of its own that its waiters depend on.
    """
    expand = _descendants(plan)
    custom = {r.urn: r for r in plan.resources if r.custom}

    def resolve(urns: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for urn in urns:
            if urn in custom:
                out.add(urn)
            else:
                out.update(expand.get(urn, ()))
        return frozenset(out)

    tasks: dict[str, Task] = {}
    for urn, record in custom.items():
        deps = set(resolve(record.dependencies))
        provider = record.options.get("provider")
        if provider:
            provider_urn = provider.rsplit("::", 1)[0]
            if provider_urn in custom:
                deps.add(provider_urn)
        deps.discard(urn)
        tasks[urn] = Task(urn, duration(record), frozenset(deps))
    for work in out_of_band:
        tasks[work.key] = Task(work.key, work.duration, work.after)
        for waiter in work.waiters:
            task = tasks[waiter]
            tasks[waiter] = Task(task.key, task.duration, task.deps | {work.key})
    return tasks

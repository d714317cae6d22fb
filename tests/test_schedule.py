from __future__ import annotations

import pytest

from kaas.offline.engine import Plan, ResourceRecord
from kaas.offline.schedule import CycleError, OutOfBand, Task, schedule, tasks_from_plan


def graph(*edges: tuple[str, float, tuple[str, ...]]) -> dict[str, Task]:
    return {key: Task(key, duration, frozenset(deps)) for key, duration, deps in edges}


def test_chain_makespan_is_the_sum() -> None:
    result = schedule(graph(("a", 1, ()), ("b", 2, ("a",)), ("c", 3, ("b",))))
    assert result.serial == result.makespan == 6
    assert result.critical_path == ("a", "b", "c")


def test_diamond_takes_the_longer_branch() -> None:
    result = schedule(graph(("a", 1, ()), ("b", 5, ("a",)), ("c", 2, ("a",)), ("d", 1, ("b", "c"))))
    assert result.serial == 9
    assert result.makespan == 7
    assert result.critical_path == ("a", "b", "d")


def test_fan_out_runs_in_parallel() -> None:
    leaves = [(f"leaf{i}", float(i), ("root",)) for i in range(1, 6)]
    result = schedule(graph(("root", 10, ()), *leaves))
    assert result.serial == 10 + 15
    assert result.makespan == 15
    assert result.critical_path == ("root", "leaf5")


def test_cycle_is_reported() -> None:
    with pytest.raises(CycleError):
        schedule(graph(("a", 1, ("b",)), ("b", 1, ("a",))))


def test_unknown_dependency_is_reported() -> None:
    with pytest.raises(KeyError):
        schedule(graph(("a", 1, ("ghost",))))


def record(
    urn: str, deps: tuple[str, ...] = (), custom: bool = True, parent: str | None = None, provider: str = ""
) -> ResourceRecord:
    return ResourceRecord(
        urn=urn, type="t:m:T" if custom else "kaas:m:C", name=urn, parent=parent, custom=custom, inputs={},
        dependencies=list(deps), property_dependencies={}, options={"provider": provider or None},
    )  # fmt: skip


def test_a_dependency_on_a_component_waits_for_its_custom_descendants_and_the_provider_counts() -> None:
    plan = Plan(
        "s",
        [
            record("prov"),
            record("comp", custom=False),
            record("inner", custom=False, parent="comp"),
            record("leaf", parent="inner"),
            record("user", deps=("comp",), provider="prov::id-1"),
        ],
    )
    tasks = tasks_from_plan(plan, lambda r: 1.0)
    assert set(tasks) == {"prov", "leaf", "user"}
    assert tasks["user"].deps == {"leaf", "prov"}


def test_out_of_band_work_delays_its_waiters_but_not_its_predecessors() -> None:
    plan = Plan("s", [record("server"), record("gate", deps=("server",)), record("other", deps=("server",))])
    durations = {"server": 60.0, "gate": 5.0, "other": 1.0}
    init = OutOfBand("init", 240.0, after=frozenset({"server"}), waiters=frozenset({"gate"}))
    result = schedule(tasks_from_plan(plan, lambda r: durations[r.urn], [init]))
    assert result.finish["init"] == 300 and result.finish["gate"] == 305 and result.finish["other"] == 61
    assert result.critical_path == ("server", "init", "gate")
    # Without it the gate would look ready right after the server boots.
    assert schedule(tasks_from_plan(plan, lambda r: durations[r.urn])).makespan == 65

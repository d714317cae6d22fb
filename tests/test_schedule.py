from __future__ import annotations

import pytest

from kaas.offline.schedule import CycleError, Task, schedule


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

"""The plan's JSON format: what ``kaas plan --json`` writes, ``kaas diff`` reads back the same."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaas.offline import Plan, ResourceRecord, Secret, plan_stack, run_plan
from kaas.offline.engine import UNKNOWN
from kaas.offline.planfile import SECRET_MASK, UNKNOWN_MARK, plain, plan_from_json, plan_json


def _through_text(document: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(json.dumps(document))
    return parsed


def _round_trip(plan: Plan) -> Plan:
    return plan_from_json(_through_text(plan_json(plan, True)), _through_text(plan_json(plan, False)))


def test_plain_masks_or_reveals_every_secret_in_the_tree() -> None:
    value = {"a": [Secret("s1"), (1, Secret({"b": Secret("s2")}))], "c": UNKNOWN, "d": "x"}
    assert plain(value) == {"a": [SECRET_MASK, [1, SECRET_MASK]], "c": UNKNOWN_MARK, "d": "x"}
    assert plain(value, show_secrets=True) == {"a": ["s1", [1, {"b": "s2"}]], "c": UNKNOWN_MARK, "d": "x"}


def test_a_small_program_round_trips_with_its_secrets() -> None:
    def program() -> None:
        pulumi.export("token", pulumi.Output.secret("t0ken"))
        pulumi.export("nested", {"plain": "p", "hidden": pulumi.Output.secret(["k1", "k2"])})
        pulumi.export("open", "visible")

    original = run_plan(program, "small")
    restored = _round_trip(original)
    assert restored.outputs["token"] == Secret("t0ken")
    assert restored.outputs["nested"] == {"plain": "p", "hidden": Secret(["k1", "k2"])}
    assert restored.outputs["open"] == "visible"
    for show_secrets in (False, True):
        assert plan_json(restored, show_secrets) == plan_json(original, show_secrets)


@pytest.mark.parametrize("stack", ["dev"])
def test_a_whole_stack_round_trips_resource_by_resource(stack: str) -> None:
    original = plan_stack(stack)
    restored = _round_trip(original)
    assert [r.urn for r in restored.resources] == [r.urn for r in original.resources]
    for show_secrets in (False, True):
        assert plan_json(restored, show_secrets) == _through_text(plan_json(original, show_secrets))
    secret_inputs = [r.urn for r in original.resources if SECRET_MASK in json.dumps(plain(r.inputs))]
    assert secret_inputs, "the stack plans no secret input: the round trip of secrets is untested"
    assert [r.urn for r in restored.resources if SECRET_MASK in json.dumps(plain(r.inputs))] == secret_inputs


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.just(SECRET_MASK))
_values = st.recursive(
    st.one_of(_scalars, st.just(UNKNOWN)),
    lambda children: st.one_of(
        st.builds(Secret, children),
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs=st.dictionaries(st.text(max_size=5), _values, max_size=4),
    outputs=st.dictionaries(st.text(max_size=5), _values, max_size=4),
)
def test_any_recorded_values_read_back_as_they_were_written(inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    record = ResourceRecord("urn:a", "t:m:R", "a", None, True, inputs, [], {}, {})
    original = Plan(stack="s", resources=[record], outputs=outputs)
    restored = _round_trip(original)
    for show_secrets in (False, True):
        assert plan_json(restored, show_secrets) == _through_text(plan_json(original, show_secrets))

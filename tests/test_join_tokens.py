"""Fresh join tokens, the program's half: config ``kaas:joinToken`` reaches the user data of the nodes
a step builds, as a secret; without it the program says the stack's first token has expired.

The roll's half (minting the token, handing it to the ``up``, deleting it) is tested in
tests/test_roll_kube.py (runner and fake API server), tests/test_roll_automation.py (the
Automation API) and tests/test_controlplane.py (the real API server accepts and expires it).
"""

from __future__ import annotations

import logging

import pytest

from kaas.cluster_plan import ClusterPlan, make_cluster_plan
from kaas.offline import Secret, run_plan
from kaas.offline.planfile import plain
from kaas.program import deploy
from kaas.rollout.record import load_record, record_path
from kaas.spec import load_stack_spec

INSTANCE = "openstack:compute/instance:Instance"
FRESH = "f7k2q9.0123456789abcdef"


def scale_up() -> ClusterPlan:
    """acme-prod as recorded, plus one worker: the next step creates acme-prod-worker-3."""
    spec = load_stack_spec("acme-prod")
    recorded = load_record(record_path("acme-prod"), spec)
    more = spec.model_copy(update={"workers": spec.workers.model_copy(update={"count": spec.workers.count + 1})})
    return make_cluster_plan(more, recorded)


def user_data(plan: ClusterPlan, config: dict[str, str] | None = None) -> dict[str, object]:
    planned = run_plan(lambda: deploy(plan), stack="acme-prod", config=config)
    return {r.name: r.inputs["userData"] for r in planned.by_type(INSTANCE)}


def test_a_join_token_from_the_config_is_in_the_new_nodes_user_data_as_a_secret() -> None:
    plan = scale_up()
    fresh = user_data(plan, {"kaas:joinToken": FRESH})
    first = user_data(plan)
    new = fresh["acme-prod-worker-3"]
    assert isinstance(new, Secret)
    text = plain(new, show_secrets=True)
    assert FRESH in text
    # The stack's first token (in the same node's user data without the config) is not.
    assert FRESH not in plain(first["acme-prod-worker-3"], show_secrets=True)
    first_token = next(
        line.split("token: ")[1] for line in plain(first["acme-prod-worker-3"], show_secrets=True).splitlines()
        if line.strip().startswith("token: ")
    )  # fmt: skip
    assert first_token not in text


def test_without_a_join_token_a_step_that_builds_a_node_warns_and_a_first_deployment_does_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        user_data(scale_up())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("acme-prod-worker-3 join with the stack's first bootstrap token" in w for w in warnings), warnings
    caplog.clear()
    spec = load_stack_spec("acme-prod")
    with caplog.at_level(logging.WARNING):
        user_data(make_cluster_plan(spec, None))
    assert not [r for r in caplog.records if "bootstrap token" in r.getMessage()]


def test_a_join_token_that_is_no_bootstrap_token_is_refused_without_showing_it() -> None:
    with pytest.raises(Exception, match=r"kaas:joinToken is not a bootstrap token") as error:
        user_data(scale_up(), {"kaas:joinToken": "Not-A-Token.x"})
    assert "Not-A-Token" not in str(error.value)

"""``kaas roll --heal``, the program's half: config ``kaas:heal=<node>`` rebuilds that node's server from
the current user data (a ``kubeadm join`` with config ``kaas:joinToken``), no rollout move.

Why it is needed: every server ignores changes to what it was built with (kaas.openstack.nodes.BUILT_WITH)
unless the rollout step rebuilds it, and Pulumi keeps the old inputs of ignored properties also for
``pulumi up --replace`` (pulumi/pulumi#2657); without ``kaas:heal`` a healed node would boot its original
user data, with an expired token. The roll's half (setting both values for the one ``up --replace``,
removing them, the token's life) is tested in tests/test_roll_heal.py. Everything runs the real entry
point (``__main__.py``) under the offline engine, as ``pulumi up -s acme-prod -c ...`` would.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaas.offline import Plan, ProgramExitError, Secret, run_project
from kaas.offline.plan import offline_secrets
from kaas.offline.planfile import plain
from kaas.spec import load_stack_spec

INSTANCE = "openstack:compute/instance:Instance"
FRESH = "h3al0k.0123456789abcdef"
WORKER = "acme-prod-worker-1"
MASTER = "acme-prod-master-0"


def up(**config: str) -> Plan:
    """``pulumi up -s acme-prod -c kaas:<key>=<value>...`` under the offline engine (acme-prod has a rollout record)."""
    secrets = offline_secrets(load_stack_spec("acme-prod"))  # the alert receivers' config secrets
    return run_project("acme-prod", config={**secrets, **config})


def instances(plan: Plan) -> dict[str, Any]:
    return {r.name: r for r in plan.by_type(INSTANCE)}


@pytest.fixture(scope="module")
def plain_up() -> Plan:
    """The same update without ``kaas:heal``: every server ignores its (current) user data."""
    return up(joinToken=FRESH)


@pytest.fixture(scope="module")
def healed_up() -> Plan:
    return up(heal=f"{WORKER}, {MASTER}", joinToken=FRESH)


def test_a_healed_node_is_rebuilt_from_the_current_user_data_with_the_given_token(
    plain_up: Plan, healed_up: Plan
) -> None:
    before, after = instances(plain_up), instances(healed_up)
    for name in (WORKER, MASTER):
        node = after[name]
        assert node.options["ignoreChanges"] == []  # the replacement takes the current inputs, not the state's
        assert before[name].options["ignoreChanges"]  # without kaas:heal: the old user data would be kept
        assert isinstance(node.inputs["userData"], Secret)
        text = plain(node.inputs["userData"], show_secrets=True)
        assert FRESH in text and "kubeadm join --config" in text and "kubeadm init" not in text
        # At the revision it runs: what it is built with is what the program declares anyway (ignored there).
        assert plain(node.inputs, show_secrets=True) == plain(before[name].inputs, show_secrets=True)


def test_other_nodes_and_the_rollout_outputs_are_unchanged(plain_up: Plan, healed_up: Plan) -> None:
    before, after = instances(plain_up), instances(healed_up)
    assert before.keys() == after.keys()
    for name in before.keys() - {WORKER, MASTER}:
        assert after[name].options == before[name].options, name
        assert plain(after[name].inputs, show_secrets=True) == plain(before[name].inputs, show_secrets=True), name
    for key in ("rollout", "nodeRevisions"):
        assert plain(healed_up.outputs[key], show_secrets=True) == plain(plain_up.outputs[key], show_secrets=True)
    assert plain_up.outputs["rollout"]["step"] == {}  # no rollout move, for the record or the policy pack


def test_a_healed_node_without_a_join_token_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        up(heal=WORKER)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{WORKER} join with the stack's first bootstrap token" in w for w in warnings), warnings


@pytest.fixture(scope="module")
def scale_up(tmp_path_factory: pytest.TempPathFactory) -> str:
    """acme-prod with one more worker: the next rollout step creates acme-prod-worker-3."""
    data = load_stack_spec("acme-prod").model_dump(mode="json")
    data["workers"]["count"] += 1
    path = tmp_path_factory.mktemp("spec") / "acme-prod.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.mark.parametrize(
    ("heal", "extra", "why"),
    [
        ("acme-prod-worker-9", {}, "acme-prod-worker-9: no such node of acme-prod"),
        ("acme-prod-etcd-0", {}, "acme-prod-etcd-0: an etcd member needs a membership change"),
        (WORKER, {"rollout": "none.yaml"}, f"{WORKER}: the stack has no rollout record"),
        ("acme-prod-worker-3", {"spec": "scale-up"}, "acme-prod-worker-3 (create): the next rollout step moves it"),
    ],
    ids=["unknown", "etcd", "first-deployment", "moved-by-the-step"],
)
def test_a_refused_heal_exits_2_with_one_line_naming_the_config_key(
    heal: str,
    extra: dict[str, str],
    why: str,
    scale_up: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = {"heal": heal, "joinToken": FRESH}
    if "rollout" in extra:
        config["rollout"] = str(tmp_path / extra["rollout"])  # no record: the stack's first deployment
    if "spec" in extra:
        config["spec"] = scale_up
    with pytest.raises(ProgramExitError) as exited:
        up(**config)
    assert exited.value.code == 2
    err = capfd.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("config kaas:heal: ") and why in line, line
    assert "Traceback" not in err and FRESH not in err
    assert [r.type for r in exited.value.plan.resources] == ["pulumi:pulumi:Stack"]  # nothing registered

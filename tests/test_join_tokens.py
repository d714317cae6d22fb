"""Fresh join tokens, the program's half: config ``kaas:joinToken`` reaches the user data of the nodes
a step builds, as a secret; without it the program says the stack's first token has expired.

The roll's half (minting the token, handing it to the ``up``, deleting it) is tested in
tests/test_roll_kube.py (runner and fake API server), tests/test_roll_automation.py (the
Automation API) and tests/test_controlplane.py (the real API server accepts and expires it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from kaas.offline import ProgramExitError, Secret, run_project
from kaas.offline.plan import offline_secrets
from kaas.offline.planfile import plain
from kaas.spec import load_stack_spec

INSTANCE = "openstack:compute/instance:Instance"
FRESH = "f7k2q9.0123456789abcdef"


@pytest.fixture(scope="module")
def scale_up(tmp_path_factory: pytest.TempPathFactory) -> str:
    """acme-prod with one more worker (its recorded nodes as they are): the next step creates acme-prod-worker-3."""
    spec = load_stack_spec("acme-prod")
    data = spec.model_dump(mode="json")
    data["workers"]["count"] += 1
    path = tmp_path_factory.mktemp("spec") / "acme-prod.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def user_data(spec_file: str, **config: str) -> dict[str, object]:
    """``pulumi up -s acme-prod -c kaas:spec=<file> [-c kaas:joinToken=...]`` under the offline engine."""
    secrets = offline_secrets(load_stack_spec("acme-prod"))  # the alert receivers' config secrets
    planned = run_project("acme-prod", config={"spec": spec_file, **secrets, **config})
    return {r.name: r.inputs["userData"] for r in planned.by_type(INSTANCE)}


def test_a_join_token_from_the_config_is_in_the_new_nodes_user_data_as_a_secret(scale_up: str) -> None:
    fresh = user_data(scale_up, joinToken=FRESH)
    first = user_data(scale_up)
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
    scale_up: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level(logging.WARNING):
        user_data(scale_up)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("acme-prod-worker-3 join with the stack's first bootstrap token" in w for w in warnings), warnings
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # no rollout record: the first deployment, kubeadm init makes the token
        user_data(scale_up, rollout=str(tmp_path / "none.yaml"))
    assert not [r for r in caplog.records if "bootstrap token" in r.getMessage()]


def test_a_join_token_that_is_no_bootstrap_token_exits_2_naming_the_key_not_the_value(
    scale_up: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ProgramExitError) as exited:
        user_data(scale_up, joinToken="Not-A-Token.x")
    assert exited.value.code == 2
    assert capfd.readouterr().err.splitlines() == [
        "config kaas:joinToken: is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})"
    ]
    assert [r.type for r in exited.value.plan.resources] == ["pulumi:pulumi:Stack"]  # nothing registered

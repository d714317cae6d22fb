"""``python -m kaas roll`` end to end: --dry-run (offline, against the merge base) and --status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import checkout_as_repo, git, kaas_cli

UPGRADE = "versions:\n  kubernetes: 1.34.3\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout as a one-commit ``main``, then a branch upgrading acme-prod to Kubernetes 1.34.3."""
    path = checkout_as_repo(tmp_path_factory.mktemp("repo"), "upgrade")
    spec = path / "stacks" / "acme-prod.yaml"
    spec.write_text(spec.read_text() + UPGRADE)
    git(path, "commit", "-qam", "acme-prod: Kubernetes 1.34.3")
    return path


def test_dry_run_json_is_exactly_the_ordered_rollout_against_the_merge_base(repo: Path) -> None:
    result = kaas_cli(repo, "roll", "--stack", "acme-prod", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # exactly one JSON object
    masters = [{"tier": "master", "nodes": [f"acme-prod-master-{i}"], "action": "replace"} for i in range(3)]
    workers = [
        {"tier": "worker", "nodes": ["acme-prod-worker-3"], "action": "add"},
        {"tier": "worker", "nodes": ["acme-prod-worker-2"], "action": "remove"},
        {"tier": "worker", "nodes": ["acme-prod-worker-4"], "action": "add"},
        {"tier": "worker", "nodes": ["acme-prod-worker-1"], "action": "remove"},
        {"tier": "worker", "nodes": ["acme-prod-worker-2"], "action": "add"},
        {"tier": "worker", "nodes": ["acme-prod-worker-0"], "action": "remove"},
    ]
    assert document == {"stack": "acme-prod", "steps": masters + workers}
    assert not (repo / "stacks" / "rollout" / "acme-prod.roll.json").exists()  # nothing touched


def test_dry_run_for_one_tier_and_against_an_explicit_base(repo: Path) -> None:
    workers = json.loads(kaas_cli(repo, "roll", "-s", "acme-prod", "--dry-run", "--json", "--tier", "worker").stdout)
    assert {s["tier"] for s in workers["steps"]} == {"worker"} and len(workers["steps"]) == 6
    # The deployed state is the rollout record at the base; at HEAD it still says 1.34.2 everywhere.
    everything = json.loads(kaas_cli(repo, "roll", "-s", "acme-prod", "--dry-run", "--json").stdout)
    same = json.loads(kaas_cli(repo, "roll", "-s", "acme-prod", "--dry-run", "--json", "--base", "HEAD").stdout)
    assert same == everything and len(same["steps"]) == 9
    text = kaas_cli(repo, "roll", "-s", "acme-prod", "--dry-run").stdout
    assert text.splitlines()[0] == "acme-prod: 9 operation(s) from the base to the spec (dry run)"
    assert "  1. master replace acme-prod-master-0" in text


def test_dry_run_of_an_etcd_change_adds_before_it_removes(repo: Path) -> None:
    spec = repo / "stacks" / "dev.yaml"
    original = spec.read_text()
    try:
        spec.write_text(original + "versions:\n  etcd: 3.6.6\n")
        document = json.loads(kaas_cli(repo, "roll", "-s", "dev", "--dry-run", "--json", "--tier", "etcd").stdout)
    finally:
        spec.write_text(original)
    # dev has one etcd member (no record: the base spec's nodes): the new one joins before the old one leaves.
    assert document["steps"] == [
        {"tier": "etcd", "nodes": ["dev-etcd-1"], "action": "add"},
        {"tier": "etcd", "nodes": ["dev-etcd-0"], "action": "remove"},
    ]


def test_dry_run_of_an_unknown_base_or_a_stack_new_since_the_base_says_so(repo: Path) -> None:
    result = kaas_cli(repo, "roll", "-s", "acme-prod", "--dry-run", "--base", "no-such-rev")
    assert result.returncode == 3 and "no-such-rev" in result.stderr
    new = repo / "stacks" / "dev3.yaml"
    new.write_text((repo / "stacks" / "dev.yaml").read_text().replace("name: dev\n", "name: dev3\n"))
    try:
        result = kaas_cli(repo, "roll", "-s", "dev3", "--dry-run")
    finally:
        new.unlink()
    assert result.returncode == 2 and "does not exist at the base" in result.stderr


def test_status_shows_the_recorded_position_and_what_remains(repo: Path) -> None:
    position = repo / "stacks" / "rollout" / "acme-prod.roll.json"
    position.write_text(
        json.dumps(
            {
                "stack": "acme-prod",
                "finished": [{"number": 1, "changes": {"acme-prod-master-0": "replace"}, "seconds": 312.4}],
                "applied": None,
                "failed": "api-readyz-through-load-balancer failed on acme-prod-master-1: /readyz: 500",
            }
        )
    )
    try:
        result = kaas_cli(repo, "roll", "-s", "acme-prod", "--status")
        document = json.loads(kaas_cli(repo, "roll", "-s", "acme-prod", "--status", "--json").stdout)
    finally:
        position.unlink()
    assert result.returncode == 0, result.stderr
    assert "[1] acme-prod-master-0 replace (312.4s)" in result.stdout
    assert "stopped: api-readyz-through-load-balancer failed on acme-prod-master-1" in result.stdout
    assert document["finished"][0]["changes"] == {"acme-prod-master-0": "replace"}
    assert len(document["remaining"]) == 9  # the record still says 1.34.2 everywhere

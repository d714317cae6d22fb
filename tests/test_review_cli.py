"""`kaas affected`, `kaas diff` and `kaas check` end to end, and the stack selection behind the CI matrix."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kaas.review.affected import affected_stacks, stack_of
from kaas.spec.loader import REPO_ROOT, STACKS_DIR
from tests.helpers import checkout_as_repo, git, kaas_cli

STACKS = sorted(p.stem for p in STACKS_DIR.glob("*.yaml"))
ALL = ["acme-prod", "demo", "dev"]


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["stacks/acme-prod.yaml"], ["acme-prod"]),
        (["stacks/acme-prod.yaml", "stacks/dev.yaml", "README.md"], ["acme-prod", "dev"]),
        (["Pulumi.dev.yaml"], ["dev"]),
        (["stacks/rollout/acme-prod.yaml"], ["acme-prod"]),  # a recorded rollout step moves the next one
        (["kaas/openstack/network.py"], ALL),
        (["__main__.py"], ALL),
        (["requirements.txt"], ALL),
        (["Pulumi.yaml", "docs/architecture.md"], ALL),
        (["tests/test_spec.py", "docs/architecture.md", ".github/workflows/ci.yml", "requirements-dev.txt"], []),
        (["stacks/README.md", "stacks/sub/x.yaml", "policy/__main__.py"], []),
        (["stacks/gone.yaml"], ["gone"]),  # deleted at the head, still known at the base
        (["stacks/unknown.yaml"], []),  # in neither revision
        ([], []),
    ],
)
def test_affected_stacks_for_a_change(changed: list[str], expected: list[str]) -> None:
    assert affected_stacks(changed, [*ALL, "gone"] if "gone" in expected else ALL) == expected


def test_stack_of_paths() -> None:
    assert stack_of("stacks/acme-prod.yaml") == "acme-prod"
    assert stack_of("Pulumi.acme-prod.yaml") == "acme-prod"
    assert stack_of("Pulumi.yaml") is None and stack_of("kaas/x.yaml") is None


# --- end to end in a throwaway git repository -----------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this checkout as a one-commit repository on ``main``, then a branch that changes dev and adds a stack."""
    path = checkout_as_repo(tmp_path_factory.mktemp("repo"), "change")
    dev = path / "stacks" / "dev.yaml"
    dev.write_text(dev.read_text().replace("networking:\n", "networking:\n  mtu: 1400\n"))
    shutil.copy(dev, path / "stacks" / "dev2.yaml")
    (path / "stacks" / "dev2.yaml").write_text(dev.read_text().replace("name: dev\n", "name: dev2\n"))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "change dev, add dev2")
    return path


def test_affected_lists_the_changed_and_added_stacks(repo: Path) -> None:
    result = kaas_cli(repo, "affected", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["dev", "dev2"]


def test_diff_shows_the_update_against_the_merge_base_and_leaves_no_worktree(repo: Path) -> None:
    result = kaas_cli(repo, "diff", "--stack", "dev")
    assert result.returncode == 0, result.stderr
    assert "~  update  openstack:networking/network:Network  dev-network" in result.stdout
    assert "mtu: 1450 => 1400" in result.stdout
    assert git(repo, "worktree", "list").count("\n") == 1  # the temporary worktree is gone


def test_diff_expect_no_changes_fails_only_when_something_changes(repo: Path) -> None:
    assert kaas_cli(repo, "diff", "--stack", "dev", "--expect-no-changes").returncode == 1
    assert kaas_cli(repo, "diff", "--stack", "demo", "--expect-no-changes").returncode == 0


def test_diff_all_in_markdown_covers_affected_stacks_and_a_new_stack_is_all_create(repo: Path) -> None:
    result = kaas_cli(repo, "diff", "--all", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    # The network's MTU and the CNI release's pod MTU (the VXLAN overhead below it) both change.
    assert "### Offline diff of stack `dev`" in result.stdout and "| update | 2 |" in result.stdout
    assert "### Offline diff of stack `dev2`" in result.stdout
    assert "does not exist at the base revision" in result.stdout
    assert "`demo`" not in result.stdout


def test_diff_of_acme_prod_with_a_worker_added_is_a_readable_pull_request_comment(repo: Path) -> None:
    spec = repo / "stacks" / "acme-prod.yaml"
    original = spec.read_text()
    assert "workers:\n  count: 3\n" in original
    spec.write_text(original.replace("workers:\n  count: 3\n", "workers:\n  count: 4\n"))
    try:
        result = kaas_cli(repo, "diff", "--stack", "acme-prod", "--base", "HEAD", "--format", "markdown")
    finally:
        spec.write_text(original)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "### Offline diff of stack `acme-prod`\n"
        "\n"
        "**Rollout, this `pulumi up`:**\n"
        "\n"
        "- create  acme-prod-worker-3 at 1.34.2 ubuntu-24.04 kaas.worker t1 key acme-ops\n"
        "- after pulumi up:  wait until node acme-prod-worker-3 is Ready\n"
        "\n"
        "| Operation | Resources |\n"
        "| --- | ---: |\n"
        "| create | 2 |\n"
        "| update | 3 |\n"
        "| outputs changed | 4 |\n"
        "\n"
        # The same quota for namespaces created later, in the guardrail reconciler's ConfigMap.
        "- **update** `kubernetes:core/v1:ConfigMap` `acme-prod-guardrails-configmap`\n"
        '  - `data.guardrail-resourcequota.json: {"spec": {"hard": {"requests.cpu": "12", "requests.memory": "24Gi", '
        '"limits.memory": "24Gi", "pods": "330", "services.l\u2026 => {"spec": {"hard": {"requests.cpu": "16", '
        '"requests.memory": "32Gi", "limits.memory": "32Gi", "pods": "440", "services.l\u2026`\n'
        # The default customer namespace's quota follows the workers' capacity.
        "- **update** `kubernetes:core/v1:ResourceQuota` `acme-prod-quota-apps`\n"
        '  - `spec: {"hard": {"limits.memory": "24Gi", "persistentvolumeclaims": "20", "pods": "330", '
        '"requests.cpu": "12", "requests.memor\u2026 => {"hard": {"limits.memory": "32Gi", '
        '"persistentvolumeclaims": "20", "pods": "440", "requests.cpu": "16", "requests.memor\u2026`\n'
        "- **update** `kaas:index:Cluster` `acme-prod`\n"
        "  - `kaasRollout.desired.worker.count: 3 => 4`\n"
        "- **create** `openstack:compute/instance:Instance` `acme-prod-worker-3`\n"
        "- **create** `openstack:networking/port:Port` `acme-prod-worker-3-port`\n"
        "- **outputs**\n"
        '  - `~ layout.workers.addresses: ["10.20.0.64", "10.20.0.65", "10.20.0.66"] => '
        '["10.20.0.64", "10.20.0.65", "10.20.0.66", "10.20.0.67"]`\n'
        "  - `~ layout.workers.count: 3 => 4`\n"
        '  - `+ nodeRevisions.acme-prod-worker-3: {"certificates": 1, "flavor": "kaas.worker", "image": '
        '"ubuntu-24.04", "keyPair": "acme-ops", "phase": "running", "templ…`\n'
        "  - `+ rollout.step.acme-prod-worker-3: create`\n"
        "\n"
    )


def test_diff_with_a_bad_base_revision_says_so(repo: Path) -> None:
    result = kaas_cli(repo, "diff", "--stack", "dev", "--base", "no-such-rev")
    assert result.returncode == 3 and "no-such-rev" in result.stderr


# --- kaas check ----------------------------------------------------------------------------------

DEMO_STACKS = [s for s in STACKS if s != "acme-prod"]


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return kaas_cli(REPO_ROOT, "check", *args)


@pytest.mark.parametrize("stack", DEMO_STACKS)
def test_check_of_a_demo_stack_only_warns(stack: str) -> None:
    result = check("--stack", stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Stack {stack} (demo, advisory)" in result.stdout
    assert "error:" not in result.stdout


def test_check_all_covers_every_stack_and_passes_on_the_committed_stacks() -> None:
    result = check("--all")
    assert [line.split()[1] for line in result.stdout.splitlines() if line.startswith("Stack ")] == STACKS
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stack acme-prod (production, mandatory): no violation(s)" in result.stdout


def test_check_fails_a_production_spec_that_breaks_a_production_rule(tmp_path: Path) -> None:
    # Together the SSH CIDRs open SSH to the whole internet. The spec refuses that
    # (security.max_open_cidr_share); with the limit lifted, kaas check still catches it.
    spec = (STACKS_DIR / "acme-prod.yaml").read_text()
    assert "admin_ssh_cidrs: [198.51.100.10/32]" in spec and "\nsecurity:" not in spec
    path = tmp_path / "acme-prod-ssh.yaml"
    spec = spec.replace("admin_ssh_cidrs: [198.51.100.10/32]", "admin_ssh_cidrs: [0.0.0.0/1, 128.0.0.0/1]")
    path.write_text(spec + "security:\n  max_open_cidr_share: 1\n")
    result = check("--spec", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"Stack {path} (production, mandatory): 1 violation(s)",
        "  error: [admin-ports-closed-to-world] SSH port 22 is open to 0.0.0.0/0 through "
        "acme-prod-admin-tcp-22-from-0.0.0.0-1, acme-prod-admin-tcp-22-from-128.0.0.0-1 (0.0.0.0/1, 128.0.0.0/1)",
    ]

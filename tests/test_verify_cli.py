"""`python -m kaas verify` end to end against the fake live cluster, and `handover --verify-report`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaas.cli import main
from kaas.handover.render import render_html, render_markdown
from kaas.handover.source import handover_outputs
from kaas.offline.planfile import SECRET_MASK
from kaas.verify.report import CheckResult, Report, Status, read_report
from tests.verify_env import ADMIN_PASSWORD, S3_KEYS, VIEWER, LiveCluster, live_cluster, put_snapshot, stack_plan


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveCluster]:
    with live_cluster(tmp_path) as live:
        put_snapshot(live, "etcd-snapshots/acme-prod-etcd-1-20261201T080000Z.db")
        monkeypatch.setenv("OS_PASSWORD", ADMIN_PASSWORD)
        monkeypatch.delenv("OS_USERNAME", raising=False)  # defaults to the initial admin user
        monkeypatch.setenv("KAAS_VERIFY_NONADMIN_USERNAME", VIEWER.username)
        monkeypatch.setenv("KAAS_VERIFY_NONADMIN_PASSWORD", VIEWER.password)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEYS[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_KEYS[1])
        yield live


def verify_args(cluster: LiveCluster, tmp_path: Path, *extra: str) -> list[str]:
    outputs = tmp_path / "outputs.json"
    dumped = json.loads(cluster.outputs.model_dump_json()) | {"adminKubeconfig": SECRET_MASK}
    outputs.write_text(json.dumps(dumped), encoding="utf-8")
    args = ["verify", "--stack", "acme-prod", "--outputs", str(outputs), "--ca-bundle", str(cluster.ca_bundle)]
    args += ["--retries", "0", "--timeout", "15"]
    for (host, port), (address, to_port) in cluster.routes().items():
        args += ["--connect-to", f"{host}:{port}:{address}:{to_port}"]
    return args + list(extra)


def test_verify_passes_prints_one_line_per_check_and_writes_the_report(
    cluster: LiveCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "report.json"
    code = main(verify_args(cluster, tmp_path, "-o", str(report_path)))
    out, err = capsys.readouterr()
    report = read_report(report_path)
    assert code == 0, out
    assert report.passed and len(out.splitlines()) == len(report.checks) >= 16
    assert all(line.startswith("PASS ") for line in out.splitlines())
    assert f"[1/{len(report.checks)}] api-admin" in err and "VERIFIED: " in err
    assert report.result("registry-pull").detail.startswith("the spec plans no customer namespace")  # type: ignore[union-attr]


def test_verify_exits_non_zero_when_a_check_could_not_run(
    cluster: LiveCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code = main(verify_args(cluster, tmp_path, "--json"))
    out, err = capsys.readouterr()
    data = json.loads(out)
    statuses = {c["id"]: c["status"] for c in data["checks"]}
    assert code == 1 and data["passed"] is False and "NOT VERIFIED" in err
    assert statuses["etcd-backup"] == "could-not-run"
    assert {s for k, s in statuses.items() if k != "etcd-backup"} == {"passed"}


def test_verify_exits_non_zero_when_a_check_fails(
    cluster: LiveCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.kube.nodes.pop()
    assert main(verify_args(cluster, tmp_path)) == 1
    assert "FAIL nodes: " in capsys.readouterr().out


def test_verify_refuses_outputs_of_another_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, plan = stack_plan()
    outputs = tmp_path / "outputs.json"
    outputs.write_text(handover_outputs(plan).model_dump_json(), encoding="utf-8")
    assert main(["verify", "--stack", "demo", "--outputs", str(outputs)]) == 2
    assert "the stack's spec is 'demo'" in capsys.readouterr().err


# --- handover --verify-report ----------------------------------------------------------------------

WHEN = dt.datetime(2026, 12, 1, 10, 40, tzinfo=dt.UTC)


def report_of(statuses: dict[str, Status], cluster: str = "acme-prod") -> Report:
    return Report(
        stack="acme-prod",
        cluster=cluster,
        started_at=WHEN,
        finished_at=WHEN + dt.timedelta(minutes=2),
        checks=tuple(
            CheckResult(id=k, title=k, status=s, required=True, detail=f"{k} {s.value} | detail",
                        started_at=WHEN + dt.timedelta(seconds=i), duration_seconds=0.1, attempts=1)
            for i, (k, s) in enumerate(statuses.items())
        ),
    )  # fmt: skip


ALL = ("api-admin", "api-denied", "nodes", "helm-releases", "tls-dashboard", "registry-pull", "etcd-backup")


def _checklist(document: str) -> list[str]:
    section = document.split("## Pre-handover checklist")[1].split("\n## ")[0]
    return [line for line in section.splitlines() if line.startswith("- [")]


def test_a_passing_report_ticks_every_box_with_its_time() -> None:
    outputs = handover_outputs(stack_plan()[1])
    document = render_markdown(outputs, "production", verify=report_of(dict.fromkeys(ALL, Status.PASSED)))
    boxes = _checklist(document)
    assert len(boxes) == 4 and all(line.startswith("- [x] ") for line in boxes)
    assert "Verified at 2026-12-01 10:40 UTC by `kaas verify` (`tls-dashboard`, `nodes`)." in boxes[0]
    assert "### Verified by `kaas verify`" in document and "All required checks passed" in document
    assert "| `etcd-backup` | passed | 2026-12-01 10:40 UTC | etcd-backup passed / detail |" in document


def test_a_failed_check_is_marked_in_the_document() -> None:
    outputs = handover_outputs(stack_plan()[1])
    statuses = dict.fromkeys(ALL, Status.PASSED) | {"nodes": Status.FAILED, "registry-pull": Status.COULD_NOT_RUN}
    document = render_markdown(outputs, "production", verify=report_of(statuses))
    dashboard, admin, login, registry = _checklist(document)
    assert dashboard.startswith("- [ ] ") and "**FAILED** at 2026-12-01 10:40 UTC: `nodes`: nodes failed" in dashboard
    assert admin.startswith("- [ ] ") and "**FAILED**" in admin
    assert login.startswith("- [x] ")
    assert registry.startswith("- [ ] ") and "**NOT VERIFIED**: `registry-pull` could not run" in registry
    assert "**Not every required check passed**" in document and "| `nodes` | **FAILED** |" in document


def test_a_check_missing_from_the_report_leaves_its_box_unticked() -> None:
    outputs = handover_outputs(stack_plan()[1])
    document = render_markdown(outputs, "demo", verify=report_of({"api-admin": Status.PASSED}))
    login = _checklist(document)[2]
    assert login.startswith("- [ ] ") and "`api-denied` was not run" in login


def test_html_shows_ticked_boxes() -> None:
    outputs = handover_outputs(stack_plan()[1])
    statuses = dict.fromkeys(ALL, Status.PASSED) | {"registry-pull": Status.FAILED}
    page = render_html(outputs, "production", verify=report_of(statuses))
    checklist = page.split('<ul class="checklist">')[1].split("</ul>")[0]
    assert checklist.count("&#9745;") == 3 and checklist.count("&#9744;") == 1
    assert "<strong>FAILED</strong>" in checklist


def test_without_a_report_the_document_is_unchanged() -> None:
    outputs = handover_outputs(stack_plan()[1])
    assert render_markdown(outputs, "production") == render_markdown(outputs, "production", verify=None)
    assert "- [x]" not in render_markdown(outputs, "production") and "kaas verify" not in render_markdown(
        outputs, "production"
    )


def test_handover_cli_reads_the_report_and_refuses_another_clusters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, plan = stack_plan()
    outputs = tmp_path / "outputs.json"
    outputs.write_text(handover_outputs(plan).model_dump_json(), encoding="utf-8")
    report = tmp_path / "report.json"
    report.write_text(report_of(dict.fromkeys(ALL, Status.PASSED)).to_json(), encoding="utf-8")
    args = ["handover", "--stack", "acme-prod", "--outputs", str(outputs), "--verify-report", str(report)]
    assert main(args) == 0
    assert all(line.startswith("- [x] ") for line in _checklist(capsys.readouterr().out))
    report.write_text(report_of(dict.fromkeys(ALL, Status.PASSED), cluster="demo").to_json(), encoding="utf-8")
    assert main(args) == 2
    assert "the report is of 'demo'" in capsys.readouterr().err

"""The runner and the report: a check that could not run never counts as passed; timeouts, retries."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from kaas.handover.source import handover_outputs
from kaas.outputs import OutputsError
from kaas.verify.checks import Check
from kaas.verify.context import CheckFailedError, CouldNotRunError, VerifyContext, planned
from kaas.verify.http import UnreachableError
from kaas.verify.report import Report, Status, read_report
from kaas.verify.runner import Policy, line, run_check, run_checks
from tests.verify_env import stack_plan


@pytest.fixture(scope="module")
def ctx() -> VerifyContext:
    spec, plan = stack_plan()
    return VerifyContext(stack="acme-prod", outputs=handover_outputs(plan), planned=planned(spec, plan))


def passing(ctx: VerifyContext) -> str:
    return "fine"


def cannot_run(ctx: VerifyContext) -> str:
    raise CouldNotRunError("no route to the API")


def unreachable(ctx: VerifyContext) -> str:
    raise UnreachableError("cannot reach api:6443: [Errno 111] Connection refused")


def broken(ctx: VerifyContext) -> str:
    raise KeyError("items")


NO_WAIT = Policy(timeout=5, retries=0, delay=0)


def test_a_check_that_could_not_run_is_not_passed(ctx: VerifyContext) -> None:
    report = run_checks([Check("ok", "ok", passing), Check("blind", "blind", cannot_run)], ctx, NO_WAIT)
    assert [c.status for c in report.checks] == [Status.PASSED, Status.COULD_NOT_RUN]
    assert report.passed is False
    assert read_report_roundtrip(report).passed is False


def test_unreachable_and_broken_checks_could_not_run_and_the_rest_still_run(ctx: VerifyContext) -> None:
    checks = [Check("a", "a", unreachable), Check("b", "b", broken), Check("c", "c", passing)]
    report = run_checks(checks, ctx, NO_WAIT)
    assert [c.status for c in report.checks] == [Status.COULD_NOT_RUN, Status.COULD_NOT_RUN, Status.PASSED]
    assert "internal error: KeyError" in report.checks[1].detail


def test_an_optional_check_does_not_decide_the_report(ctx: VerifyContext) -> None:
    report = run_checks([Check("ok", "ok", passing), Check("extra", "extra", cannot_run, required=False)], ctx, NO_WAIT)
    assert report.passed is True


def test_all_required_checks_passed_is_a_pass(ctx: VerifyContext) -> None:
    assert run_checks([Check("ok", "ok", passing)], ctx, NO_WAIT).passed is True


def test_a_check_that_outlives_its_timeout_could_not_run(ctx: VerifyContext) -> None:
    release = threading.Event()

    def hangs(ctx: VerifyContext) -> str:
        release.wait(10)
        return "too late"

    try:
        result = run_check(Check("slow", "slow", hangs), ctx, Policy(timeout=0.2, retries=0))
    finally:
        release.set()
    assert result.status is Status.COULD_NOT_RUN and result.detail == "timed out after 0.2 s"


def test_retries_until_the_check_passes(ctx: VerifyContext) -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky(ctx: VerifyContext) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise CheckFailedError("node acme-prod-worker-1 is not Ready")
        return "all Ready"

    result = run_check(Check("nodes", "nodes", flaky), ctx, Policy(timeout=5, retries=2, delay=7), sleeps.append)
    assert (result.status, result.attempts, sleeps) == (Status.PASSED, 3, [7, 7])
    assert line(result).startswith("PASS nodes: all Ready (") and "3 attempts" in line(result)


def test_retries_are_bounded_and_the_last_outcome_counts(ctx: VerifyContext) -> None:
    def fails(ctx: VerifyContext) -> str:
        raise CheckFailedError("still broken")

    result = run_check(Check("x", "x", fails), ctx, Policy(timeout=5, retries=1, delay=0), lambda s: None)
    assert (result.status, result.attempts, result.detail) == (Status.FAILED, 2, "still broken")


def read_report_roundtrip(report: Report, tmp: Path | None = None) -> Report:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "report.json")
        path.write_text(report.to_json(), encoding="utf-8")
        return read_report(path)


def test_report_json_roundtrips_with_its_verdict(ctx: VerifyContext, tmp_path: Path) -> None:
    report = run_checks([Check("ok", "ok", passing)], ctx, NO_WAIT)
    path = tmp_path / "report.json"
    path.write_text(report.to_json(), encoding="utf-8")
    assert '"passed": true' in path.read_text() and '"reportSchema": "kaas.verify/v1"' in path.read_text()
    assert read_report(path) == report
    assert report.checks[0].started_at.tzinfo is not None
    assert report.finished_at >= report.started_at - dt.timedelta(seconds=1)


def test_a_report_that_is_not_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"stack": "acme-prod"}', encoding="utf-8")
    with pytest.raises(OutputsError, match="cluster"):
        read_report(path)
    with pytest.raises(OutputsError, match="no such file"):
        read_report(tmp_path / "missing.json")


def test_a_missing_credential_is_not_retried(ctx: VerifyContext) -> None:
    def no_credentials(ctx: VerifyContext) -> str:
        raise CouldNotRunError("no credentials for the admin Keystone user", retry=False)

    sleeps: list[float] = []
    result = run_check(Check("x", "x", no_credentials), ctx, Policy(timeout=5, retries=2, delay=3), sleeps.append)
    assert (result.status, result.attempts, sleeps) == (Status.COULD_NOT_RUN, 1, [])


def test_an_unreachable_api_is_retried(ctx: VerifyContext) -> None:
    result = run_check(Check("x", "x", unreachable), ctx, Policy(timeout=5, retries=2, delay=0), lambda s: None)
    assert (result.status, result.attempts) == (Status.COULD_NOT_RUN, 3)


def test_secrets_come_from_the_openstack_and_aws_variables() -> None:
    from kaas.verify.clients import Credentials
    from kaas.verify.context import Secrets

    env = {"OS_PASSWORD": "pw", "KAAS_VERIFY_NONADMIN_USERNAME": "viewer", "AWS_ACCESS_KEY_ID": "ak"}
    secrets = Secrets.from_environment(env, "acme-admin")
    assert secrets.admin == Credentials("acme-admin", "pw")
    assert secrets.non_admin is None  # a user name without a password is no credential
    assert (secrets.backup_access_key, secrets.backup_secret_key) == ("ak", None)
    assert Secrets.from_environment({"OS_USERNAME": "ops", "OS_PASSWORD": "x"}, "acme-admin").admin == Credentials(
        "ops", "x"
    )


def test_a_check_may_have_its_own_timeout(ctx: VerifyContext) -> None:
    release = threading.Event()

    def slow(ctx: VerifyContext) -> str:
        release.wait(0.5)
        return "done"

    try:
        own = run_check(Check("long", "long", slow, timeout=5), ctx, Policy(timeout=0.1, retries=0))
    finally:
        release.set()
    assert own.status is Status.PASSED

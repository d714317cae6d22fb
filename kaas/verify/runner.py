"""Runs checks with a timeout and retries each, and reports progress as it goes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from kaas.verify.checks import Check
from kaas.verify.clients import ApiError
from kaas.verify.context import CheckFailedError, CouldNotRunError, VerifyContext
from kaas.verify.http import TlsError, UnreachableError
from kaas.verify.report import CheckResult, Report, Status


@dataclass(frozen=True)
class Policy:
    """Per check: ``timeout`` seconds per attempt, ``retries`` more attempts ``delay`` seconds apart."""

    timeout: float = 60.0
    retries: int = 2
    delay: float = 5.0


def attempt(check: Check, ctx: VerifyContext, timeout: float) -> tuple[Status, str, bool]:
    """One run of ``check`` in a worker thread: (status, finding, worth another attempt).
    A run that outlives ``timeout`` could not run."""
    outcome: list[tuple[Status, str, bool]] = []

    def work() -> None:
        try:
            outcome.append((Status.PASSED, check.run(ctx), False))
        except CheckFailedError as err:
            outcome.append((Status.FAILED, str(err), True))
        except TlsError as err:
            outcome.append((Status.FAILED, f"TLS: {err}", True))
        except CouldNotRunError as err:
            outcome.append((Status.COULD_NOT_RUN, str(err), err.retry))
        except UnreachableError as err:
            outcome.append((Status.COULD_NOT_RUN, str(err), True))
        except ApiError as err:
            # An answer the check cannot read (401 to the admin, 5xx): it learnt nothing.
            outcome.append((Status.COULD_NOT_RUN, str(err), True))
        except Exception as err:  # a broken check must not pass or stop the others
            outcome.append((Status.COULD_NOT_RUN, f"internal error: {type(err).__name__}: {err}", False))

    worker = threading.Thread(target=work, name=f"verify-{check.id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return Status.COULD_NOT_RUN, f"timed out after {timeout:g} s", True
    return outcome[0]


def run_check(
    check: Check, ctx: VerifyContext, policy: Policy, sleep: Callable[[float], None] = time.sleep
) -> CheckResult:
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        status, detail, worth_retrying = attempt(check, ctx, check.timeout or policy.timeout)
        if not worth_retrying or attempts > policy.retries:
            break
        sleep(policy.delay)
    return CheckResult(
        id=check.id,
        title=check.title,
        status=status,
        required=check.required,
        detail=detail,
        started_at=started,
        duration_seconds=round(time.monotonic() - clock, 3),
        attempts=attempts,
    )


MARK = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.COULD_NOT_RUN: "N/A "}


def line(result: CheckResult) -> str:
    tries = f", {result.attempts} attempts" if result.attempts > 1 else ""
    return f"{MARK[result.status]} {result.id}: {result.detail} ({result.duration_seconds:.1f} s{tries})"


def run_checks(
    checks: Sequence[Check],
    ctx: VerifyContext,
    policy: Policy = Policy(),
    progress: TextIO | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Every check in order (none is skipped when another fails); progress to ``progress``."""
    started = dt.datetime.now(dt.UTC)
    results = []
    for index, check in enumerate(checks, 1):
        if progress is not None:
            progress.write(f"[{index}/{len(checks)}] {check.id}: {check.title} ...\n")
            progress.flush()
        result = run_check(check, ctx, policy, sleep)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return Report(
        stack=ctx.stack,
        cluster=ctx.outputs.cluster_name,
        started_at=started,
        finished_at=dt.datetime.now(dt.UTC),
        checks=tuple(results),
    )

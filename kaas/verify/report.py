"""The result of ``kaas verify``: one entry per check, written as JSON for the handover.

A check ends ``passed``, ``failed`` (the cluster is not as planned) or
``could-not-run`` (no route, no credentials, a timeout: nothing is known). Only
``passed`` counts; a report passes when every required check passed.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from kaas.outputs import OutputsError

REPORT_SCHEMA: Literal["kaas.verify/v1"] = "kaas.verify/v1"


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    COULD_NOT_RUN = "could-not-run"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


class CheckResult(_Model):
    """One check's outcome: what it found (``detail``), when, after how many attempts."""

    id: str
    title: str
    status: Status
    required: bool
    detail: str
    started_at: datetime
    duration_seconds: float
    attempts: int


class Report(_Model):
    report_schema: Literal["kaas.verify/v1"] = REPORT_SCHEMA
    stack: str
    cluster: str
    started_at: datetime
    finished_at: datetime
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """Every required check passed (a check that could not run did not pass)."""
        return all(c.status is Status.PASSED for c in self.checks if c.required)

    def result(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def to_json(self) -> str:
        data = self.model_dump(mode="json", by_alias=True)
        data["passed"] = self.passed
        return json.dumps(data, indent=2) + "\n"


def read_report(path: Path) -> Report:
    """A report written by ``kaas verify -o FILE`` (OutputsError naming what is wrong)."""
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputsError(source, ["no such file"]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise OutputsError(source, [f"not a verify report: {err}"]) from None
    if isinstance(data, dict):
        data.pop("passed", None)
    try:
        return Report.model_validate(data)
    except ValidationError as err:
        problems = [f"{'.'.join(map(str, e['loc'])) or '(document)'}: {e['msg']}" for e in err.errors()]
        raise OutputsError(source, problems) from None

"""The cron grammar Velero's schedules accept, checked before the schedule reaches the cluster.

Velero parses ``Schedule.spec.schedule`` with robfig/cron v3's standard parser (the
``velero create schedule`` reference: five fields minute, hour, day of month, month,
day of week, in UTC, or ``@every <duration>``); the parser also takes the predefined
``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/``@midnight``/``@hourly``.
A schedule it rejects fails only in the Velero controller's status, days after the
stack was applied, so the spec refuses it instead.
"""

from __future__ import annotations

import re

_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# (name, low, high, names for low..high)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


def _number(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit() and text.isascii():
        return int(text)
    if text.lower() in names:
        return low + names.index(text.lower())
    return None


def _field_problem(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    for part in text.split(","):
        span, slash, step = part.partition("/")
        if slash and not (step.isdigit() and step.isascii() and int(step) > 0):
            return f"{name}: step {step!r} must be a positive number"
        if span in ("*", "?"):
            if span == "?" and name not in ("day of month", "day of week"):
                return f"{name}: '?' only stands for a day"
            continue
        first, dash, last = span.partition("-")
        start = _number(first, low, names)
        end = _number(last, low, names) if dash else start
        if start is None or end is None:
            return f"{name}: {span!r} is not a number, range or '*'"
        if not low <= start <= end <= high:
            return f"{name}: {span!r} is outside {low}-{high}"
    return None


def cron_problem(schedule: str) -> str | None:
    """None when Velero accepts ``schedule``, else what is wrong with it."""
    if schedule in _DESCRIPTORS:
        return None
    if schedule.startswith("@every "):
        duration = schedule.removeprefix("@every ")
        return None if _GO_DURATION.match(duration) else f"{duration!r} is not a duration like 6h or 90m"
    if schedule.startswith("@"):
        return f"use one of {', '.join(sorted(_DESCRIPTORS))} or '@every <duration>'"
    fields = schedule.split(" ")
    if len(fields) != len(_FIELDS) or "" in fields:
        return "five fields separated by single spaces: minute hour day-of-month month day-of-week"
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        problem = _field_problem(text, name, low, high, names)
        if problem is not None:
            return problem
    return None

"""Registers the customer pull robot in Harbor: the script the registry's robot Job runs.

Standard library only: its source text is the Job's ``python3 -c`` program (see
``objects.harbor_robot_job``), and tests run that same text against a local
emulation of the Harbor API. Everything comes from the environment:

- ``HARBOR_URL``: Harbor core inside the cluster (``http://harbor-core.<ns>.svc``)
- ``HARBOR_ADMIN_PASSWORD``: the ``admin`` user's password (from a Secret)
- ``ROBOT_NAME``: the robot's name without Harbor's ``robot$`` prefix,
  ``<provider>-pull-<YYYYMMDD>`` (the generation: ``identity.credentials_issued``)
- ``ROBOT_FAMILY``: ``<provider>-pull``; robots named exactly that or that and
  ``-<8 digits>`` are the older generations this run retires
- ``ROBOT_EXPIRES_AT``: RFC 3339 expiry of the cloud's application credentials of this
  generation; the robot expires no earlier and at most one day later
- ``ROBOT_SECRET``: the password the pull Secrets carry (from a Secret)
- ``RETIRE_AFTER_SECONDS``: pause between the new robot working and deleting older ones
- ``RETRY_SECONDS``: pause between polls while Harbor does not answer yet

Harbor API v2.0, as of goharbor/harbor tag v2.14.1 (the app version of chart 1.18.1):
``api/v2.0/swagger.yaml`` (operations getPing, CreateRobot, ListRobot, RefreshSec,
DeleteRobot), handler ``src/server/v2.0/handler/robot.go``, controller
``src/controller/robot/controller.go``, middleware ``src/server/middleware/security/robot.go``
and ``src/server/middleware/v2auth/access.go``:

- ``GET /ping`` answers 200 ``Pong`` (text/plain) without authentication once core is up.
- ``POST /robots`` (``RobotCreate``: name, description, level, duration, disable,
  permissions[kind, namespace, access[resource, action]]) -> 201 ``RobotCreated``
  with ``id`` and ``expires_at``. Creation ignores a caller's ``secret``; a duplicate
  name is a conflict (dao ``WrapConflictError``) -> 409. A system robot with
  ``kind: project, namespace: "*"`` covers every project.
- ``duration`` is in days: the handler (``validate``, ``isValidDuration``) accepts -1
  (never expires) or ``0 < duration < math.MaxInt32`` and answers 400 otherwise; the
  controller's ``Create`` sets ``ExpiresAt = time.Now().AddDate(0, 0, duration).Unix()``
  (``expires_at``: Unix seconds, -1 for never), counted from the moment Harbor creates it.
  Harbor core's containers run in UTC, where that is ``duration * 86400`` seconds.
- ``GET /robots?q=name=<name>`` (exact) or ``q=name=~<text>`` (fuzzy), ``page``,
  ``page_size`` (at most 100) lists system robots (``Robot``: id, name with the
  ``robot$`` prefix the pull Secret logs in with, expires_at).
- ``PATCH /robots/{robot_id}`` (``RobotSec``: secret) -> 200 sets a caller-chosen
  secret when it is 8-128 characters with an upper, a lower case letter and a
  digit (``IsValidSec``); 400 otherwise.
- ``GET /v2/`` with Basic ``robot$<name>:<secret>`` -> 200 when the robot logs in (the
  security middleware checks secret, ``disabled`` and ``expires_at``; ``/v2/`` needs
  only an authenticated context), 401 otherwise: what ``docker login`` does.
- ``DELETE /robots/{robot_id}`` -> 200; 404 when it is gone.

Idempotent: a second run finds the robot and only sets its secret again. Older
generations are deleted only after the new robot logs in, and only after
``RETIRE_AFTER_SECONDS`` (the guardrail reconciler replaces the pull Secrets it copied
within that time; the program's own pull Secrets are updated before the Job starts).
No secret is ever printed.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

API = "/api/v2.0"
ADMIN_USER = "admin"
DAY = 86400
MAX_DURATION_DAYS = 2**31 - 2  # isValidDuration: d < math.MaxInt32
PAGE_SIZE = 100  # swagger: page_size maximum


def robot_request(name: str, duration: int) -> dict[str, Any]:
    """The ``RobotCreate`` body: a system robot that may pull from every project, for ``duration`` days."""
    return {
        "name": name,
        "description": "Pulls images for the customer namespaces' registry-pull Secrets",
        "level": "system",
        "duration": duration,
        "disable": False,
        "permissions": [
            {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}
        ],
    }


def parse_expiry(text: str) -> float:
    """Unix seconds of an RFC 3339 time (``Z`` or an offset)."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"ROBOT_EXPIRES_AT {text!r} has no time zone")
    return moment.timestamp()


def duration_days(expires_at: float, now: float) -> int:
    """Harbor's ``duration``: whole days from ``now`` that reach ``expires_at`` (ceil, at least 1),
    so the robot expires no earlier than ``expires_at`` and less than a day later."""
    if expires_at <= now:
        raise ValueError("the credentials' expiry is past: set identity.credentials_issued to today")
    return max(1, math.ceil((expires_at - now) / DAY))


def is_older_generation(stored: str, family: str, current: str) -> bool:
    """``<family>`` or ``<family>-<8 digits>``, other than the current robot: nothing else is ever deleted."""
    return stored != current and re.fullmatch(re.escape(family) + r"(-[0-9]{8})?", stored) is not None


class HarborError(Exception):
    pass


def _call(base: str, password: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + API + path, data=data, method=method)
    token = base64.b64encode(f"{ADMIN_USER}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return status, payload


def wait_for_harbor(base: str, pause: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(base + API + "/ping", timeout=10) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError) as error:
            print(f"waiting for {base}: {error}", flush=True)
        time.sleep(pause)


def _when(unix: object) -> str:
    if not isinstance(unix, int) or unix < 0:
        return "never"
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def robot_id(base: str, password: str, name: str, expires_at: float) -> int:
    """Create the robot (expiring with the credentials), or find the one a previous run created; its ID."""
    days = duration_days(expires_at, time.time())
    status, payload = _call(base, password, "POST", "/robots", robot_request(name, days))
    if status == 201:
        expiry = _when(payload.get("expires_at"))
        print(f"created robot {payload['name']} (id {payload['id']}), {days} day(s), expires {expiry}", flush=True)
        return int(payload["id"])
    if status != 409:
        raise HarborError(f"POST /robots: HTTP {status}: {payload}")
    query = urllib.parse.urlencode({"q": f"name={name}"})
    status, payload = _call(base, password, "GET", f"/robots?{query}")
    if status != 200:
        raise HarborError(f"GET /robots: HTTP {status}: {payload}")
    found = [r for r in payload or [] if str(r.get("name", "")).split("$")[-1] == name]
    if len(found) != 1:
        raise HarborError(f"robot {name} exists but the lookup found {len(found)} robots of that name")
    expiry = found[0].get("expires_at")
    print(f"robot {found[0]['name']} exists (id {found[0]['id']}), expires {_when(expiry)}", flush=True)
    if isinstance(expiry, int) and 0 <= expiry < expires_at:
        print(f"warning: robot {name} expires before the credentials ({_when(int(expires_at))})", flush=True)
    return int(found[0]["id"])


def set_secret(base: str, password: str, rid: int, secret: str) -> None:
    status, payload = _call(base, password, "PATCH", f"/robots/{rid}", {"secret": secret})
    if status != 200:
        raise HarborError(f"PATCH /robots/{rid}: HTTP {status}: {payload}")
    print(f"secret of robot {rid} set", flush=True)


def check_login(base: str, name: str, secret: str) -> None:
    """Log in as the robot, as ``docker login`` does (``GET /v2/`` with Basic credentials)."""
    account = f"robot${name}"
    request = urllib.request.Request(base + "/v2/", method="GET")
    token = base64.b64encode(f"{account}:{secret}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 200:
        raise HarborError(f"robot {account} does not log in (GET /v2/: HTTP {status}); older robots kept")
    print(f"robot {account} logs in", flush=True)


def older_generations(base: str, password: str, family: str, current: str) -> list[tuple[int, str]]:
    """IDs and names of the robots of older generations (:func:`is_older_generation`)."""
    found: list[tuple[int, str]] = []
    page = 1
    while True:
        query = urllib.parse.urlencode({"q": f"name=~{family}", "page": page, "page_size": PAGE_SIZE})
        status, payload = _call(base, password, "GET", f"/robots?{query}")
        if status != 200:
            raise HarborError(f"GET /robots: HTTP {status}: {payload}")
        for robot in payload or []:
            stored = str(robot.get("name", "")).split("$")[-1]
            if is_older_generation(stored, family, current):
                found.append((int(robot["id"]), stored))
        if len(payload or []) < PAGE_SIZE:
            return found
        page += 1


def retire(base: str, password: str, family: str, current: str, pause: float) -> None:
    """Delete the older generations, ``pause`` seconds after the current robot works."""
    older = older_generations(base, password, family, current)
    if not older:
        return
    listed = ", ".join(name for _, name in older)
    print(f"deleting {len(older)} older robot(s) in {pause:g} s: {listed}", flush=True)
    time.sleep(pause)
    for rid, stored in older:
        status, payload = _call(base, password, "DELETE", f"/robots/{rid}")
        if status not in (200, 404):
            raise HarborError(f"DELETE /robots/{rid} ({stored}): HTTP {status}: {payload}")
        print(f"deleted robot {stored} (id {rid})", flush=True)


def main() -> int:
    base = os.environ["HARBOR_URL"].rstrip("/")
    password = os.environ["HARBOR_ADMIN_PASSWORD"]
    name = os.environ["ROBOT_NAME"]
    family = os.environ["ROBOT_FAMILY"]
    secret = os.environ["ROBOT_SECRET"]
    expires_text = os.environ["ROBOT_EXPIRES_AT"]
    expires_at = parse_expiry(expires_text)
    if expires_at <= time.time():
        print(
            f"error: the credentials of generation {name} expired at {expires_text}: "
            "set identity.credentials_issued to today for a new generation",
            file=sys.stderr,
            flush=True,
        )
        return 1
    wait_for_harbor(base, float(os.environ.get("RETRY_SECONDS", "10")))
    try:
        set_secret(base, password, robot_id(base, password, name, expires_at), secret)
        check_login(base, name, secret)
        retire(base, password, family, name, float(os.environ.get("RETIRE_AFTER_SECONDS", "180")))
    except (HarborError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

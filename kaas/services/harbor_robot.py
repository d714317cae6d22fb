"""Registers the customer pull robot in Harbor: the script the registry's robot Job runs.

Standard library only: its source text is the Job's ``python3 -c`` program (see
``objects.harbor_robot_job``), and tests run that same text against a local
emulation of the Harbor API. Everything comes from the environment:

- ``HARBOR_URL``: Harbor core inside the cluster (``http://harbor-core.<ns>.svc``)
- ``HARBOR_ADMIN_PASSWORD``: the ``admin`` user's password (from a Secret)
- ``ROBOT_NAME``: the robot's name without Harbor's ``robot$`` prefix
- ``ROBOT_SECRET``: the password the pull Secrets carry (from a Secret)
- ``RETRY_SECONDS``: pause between polls while Harbor does not answer yet

Harbor API v2.0, as of goharbor/harbor tag v2.14.1 (the app version of chart 1.18.1):
``api/v2.0/swagger.yaml`` (operations getPing, CreateRobot, ListRobot, RefreshSec),
handler ``src/server/v2.0/handler/robot.go``, controller ``src/controller/robot``:

- ``GET /ping`` answers 200 ``Pong`` (text/plain) without authentication once core is up.
- ``POST /robots`` (``RobotCreate``: name, description, level, duration, disable,
  permissions[kind, namespace, access[resource, action]]) -> 201 ``RobotCreated``
  with ``id``. Creation ignores a caller's ``secret``; a duplicate name is a
  conflict (dao ``WrapConflictError``) -> 409. A system robot with
  ``kind: project, namespace: "*"`` covers every project.
- ``GET /robots?q=name=<name>`` lists system robots (``Robot``: id, name with the
  ``robot$`` prefix the pull Secret logs in with).
- ``PATCH /robots/{robot_id}`` (``RobotSec``: secret) -> 200 sets a caller-chosen
  secret when it is 8-128 characters with an upper, a lower case letter and a
  digit (``IsValidSec``); 400 otherwise.

Idempotent: a second run finds the robot and only sets its secret again. No
secret is ever printed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

API = "/api/v2.0"
ADMIN_USER = "admin"


def robot_request(name: str) -> dict[str, Any]:
    """The ``RobotCreate`` body: a never-expiring system robot that may pull from every project."""
    return {
        "name": name,
        "description": "Pulls images for the customer namespaces' registry-pull Secrets",
        "level": "system",
        "duration": -1,
        "disable": False,
        "permissions": [
            {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}
        ],
    }


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


def robot_id(base: str, password: str, name: str) -> int:
    """Create the robot, or find the one a previous run created; its ID."""
    status, payload = _call(base, password, "POST", "/robots", robot_request(name))
    if status == 201:
        print(f"created robot {payload['name']} (id {payload['id']})", flush=True)
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
    print(f"robot {found[0]['name']} exists (id {found[0]['id']})", flush=True)
    return int(found[0]["id"])


def set_secret(base: str, password: str, rid: int, secret: str) -> None:
    status, payload = _call(base, password, "PATCH", f"/robots/{rid}", {"secret": secret})
    if status != 200:
        raise HarborError(f"PATCH /robots/{rid}: HTTP {status}: {payload}")
    print(f"secret of robot {rid} set", flush=True)


def main() -> int:
    base = os.environ["HARBOR_URL"].rstrip("/")
    password = os.environ["HARBOR_ADMIN_PASSWORD"]
    name = os.environ["ROBOT_NAME"]
    secret = os.environ["ROBOT_SECRET"]
    wait_for_harbor(base, float(os.environ.get("RETRY_SECONDS", "10")))
    try:
        set_secret(base, password, robot_id(base, password, name), secret)
    except (HarborError, OSError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

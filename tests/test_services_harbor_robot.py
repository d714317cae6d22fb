"""The registry's pull robot: the Job that registers it in Harbor, planned and run for real.

The plan tests read the Job and the Secrets from a ManagedServices plan. The run
tests execute the Job's own command (its ``python3 -c`` program, with its env
resolved from the planned Secrets) against a local HTTP server on 127.0.0.1 that
emulates the Harbor v2.0 endpoints the Job uses, and assert the requests it makes.
The emulation computes ``expires_at`` and refuses durations as Harbor v2.14.1 does
(``src/controller/robot/controller.go`` ``Create``, ``src/server/v2.0/handler/robot.go``
``isValidDuration``), and logs robots in as its security middleware does
(``src/server/middleware/security/robot.go``).
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kaas.offline import Secret
from kaas.offline.planfile import plain as planned_value
from kaas.openstack import credentials
from kaas.services import guardrails, harbor_robot, names, objects, values
from kaas.services.harbor_robot import robot_request
from kaas.spec import ClusterSpec
from tests.helpers import make_spec
from tests.services_helpers import default_plan, names_of, plan_services, releases

JOB = "kubernetes:batch/v1:Job"
SECRET = "kubernetes:core/v1:Secret"


def plain(value: object) -> object:
    """The recorded value with secrets revealed."""
    return planned_value(value, show_secrets=True)


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _container(inputs: dict[str, Any]) -> dict[str, Any]:
    containers = inputs["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def _secret_data(name: str) -> dict[str, str]:
    data = plain(default_plan().find(SECRET, name).inputs["stringData"])
    assert isinstance(data, dict)
    return data


# Harbor's IsValidSec (src/controller/robot/controller.go): 8-128 characters, upper, lower, digit.
def harbor_accepts_secret(secret: str) -> bool:
    return 8 <= len(secret) <= 128 and all(re.search(p, secret) for p in ("[a-z]", "[A-Z]", r"\d"))


# --- The plan --------------------------------------------------------------------------


def test_robot_job_runs_after_the_harbor_release_and_both_secrets_it_reads() -> None:
    plan = default_plan()
    job = plan.find(JOB, "t1-harbor-robot-job")
    # Harbor and the Secrets it reads; and, as it deletes older robots, every pull Secret the
    # program writes (the reconciler's source included) and the reconciler that replaces its copies.
    assert names_of(plan, job.dependencies) == {
        "harbor", "t1-harbor-admin", "t1-harbor-robot",
        "t1-pull-apps", "t1-pull-shop", "t1-guardrails-pull-source",
        "t1-guardrails-clusterrole", "t1-guardrails-configmap", "t1-guardrails-cronjob",
    }  # fmt: skip
    # The Secrets the env reads are exactly the two it waits for, and they hold the keys it reads.
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in _container(job.inputs)["env"]
        if "valueFrom" in e
    }
    secrets_waited = [plan.get(u) for u in job.dependencies if plan.get(u).type == SECRET]
    waited = {r.inputs["metadata"]["name"]: r for r in secrets_waited}
    for secret_name, key in refs:
        record = waited[secret_name]
        assert record.type == SECRET and record.inputs["metadata"]["namespace"] == "kaas-system"
        assert key in plain(record.inputs["stringData"])
    assert {name for name, _ in refs} == {names.HARBOR_ADMIN, names.HARBOR_ROBOT}
    assert job.inputs["metadata"]["namespace"] == releases(plan)["harbor"].inputs["namespace"]
    assert names_of(plan, plan.find(SECRET, "t1-harbor-robot").dependencies) == {"t1-ns-platform", "t1-registry-pull"}


def test_robot_job_inputs_carry_no_secret_value_only_secret_key_refs() -> None:
    job = default_plan().find(JOB, "t1-harbor-robot-job")
    assert not any(isinstance(leaf, Secret) for leaf in _leaves(job.inputs))
    text = json.dumps(job.inputs)
    admin_pw = _secret_data("t1-harbor-admin")["HARBOR_ADMIN_PASSWORD"]
    robot_pw = _secret_data("t1-harbor-robot")["ROBOT_SECRET"]
    assert admin_pw not in text and robot_pw not in text
    env = _env(_container(job.inputs))
    for secret_var in ("HARBOR_ADMIN_PASSWORD", "ROBOT_SECRET"):
        assert set(env[secret_var]) == {"name", "valueFrom"}
        assert set(env[secret_var]["valueFrom"]) == {"secretKeyRef"}


def test_robot_in_the_job_is_the_one_the_customer_pull_secret_logs_in_as() -> None:
    job = default_plan().find(JOB, "t1-harbor-robot-job")
    robot = _env(_container(job.inputs))["ROBOT_NAME"]["value"]
    config = json.loads(_secret_data("t1-pull-shop")[".dockerconfigjson"])
    login = config["auths"]["registry.t1.k8s.example.com"]
    assert login["username"] == f"robot${robot}" == "robot$kaas-pull-20261201"
    # The pull Secret's password is the secret the Job sets on that robot.
    assert login["password"] == _secret_data("t1-harbor-robot")["ROBOT_SECRET"]


def test_robot_secret_is_generated_to_meet_harbors_secret_rules() -> None:
    plan = default_plan()
    password = plan.find("random:index/randomPassword:RandomPassword", "t1-registry-pull")
    assert password.inputs["minUpper"] >= 1 and password.inputs["minLower"] >= 1
    assert password.inputs["minNumeric"] >= 1 and 8 <= password.inputs["length"] <= 128
    assert "result" in password.options["additionalSecretOutputs"]
    assert harbor_accepts_secret(_secret_data("t1-harbor-robot")["ROBOT_SECRET"])
    assert isinstance(plan.find(SECRET, "t1-harbor-robot").inputs["stringData"], Secret)


def test_robot_job_calls_the_core_service_of_the_planned_harbor_release() -> None:
    plan = default_plan()
    harbor = releases(plan)["harbor"]
    url = _env(_container(plan.find(JOB, "t1-harbor-robot-job").inputs))["HARBOR_URL"]["value"]
    # Chart 1.18: Service <release>-core (release name contains "harbor"), port 80 without internal TLS.
    assert url == f"http://{harbor.inputs['name']}-core.{harbor.inputs['namespace']}.svc"
    assert harbor.inputs["values"]["internalTLS"] == {"enabled": False}


def test_robot_job_runs_unprivileged_from_a_pinned_image() -> None:
    container = _container(default_plan().find(JOB, "t1-harbor-robot-job").inputs)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-alpine\d+\.\d+", container["image"])
    assert container["command"][:2] == ["python3", "-c"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True


def test_registry_off_removes_the_robot_job_and_its_secret() -> None:
    off = plan_services(make_spec(services={"customer_namespaces": ["shop"], "registry": {"enabled": False}}))
    assert sorted(r.name for r in off.by_type(JOB)) == ["t1-ism-policy-job", "t1-opensearch-security"]
    assert {r.name for r in off.by_type(SECRET)}.isdisjoint({"t1-harbor-robot", "t1-harbor-admin", "t1-pull-shop"})


def test_provider_name_and_credential_generation_name_the_robot() -> None:
    spec = make_spec(provider_name="rackspace", identity={"credentials_issued": "2027-03-09"})
    env = _env(_container(objects.harbor_robot_job(spec)))
    assert env["ROBOT_NAME"]["value"] == "rackspace-pull-20270309"
    assert env["ROBOT_FAMILY"]["value"] == "rackspace-pull"
    assert env["HARBOR_URL"]["value"] == "http://harbor-core.rackspace-system.svc"
    assert names.pull_robot_account(spec) == "robot$rackspace-pull-20270309"


def test_the_job_gets_the_application_credentials_expiry() -> None:
    spec = make_spec(identity={"credentials_issued": "2027-03-09", "credential_lifetime_days": 90})
    env = _env(_container(objects.harbor_robot_job(spec)))
    assert env["ROBOT_EXPIRES_AT"]["value"] == credentials.expires_at(spec) == "2027-06-07T00:00:00Z"
    assert (
        harbor_robot.parse_expiry(env["ROBOT_EXPIRES_AT"]["value"])
        == datetime.datetime(2027, 6, 7, tzinfo=datetime.UTC).timestamp()
    )


def test_a_rotation_gives_a_new_robot_name_and_a_new_secret_in_every_pull_secret() -> None:
    rotated = plan_services(
        make_spec(
            services={"customer_namespaces": ["shop"], "default_deny_network_policy": True},
            identity={"credentials_issued": "2027-11-02"},
        )
    )
    before, after = default_plan(), rotated
    for plan, robot in ((before, "kaas-pull-20261201"), (after, "kaas-pull-20271102")):
        password = plan.find("random:index/randomPassword:RandomPassword", "t1-registry-pull")
        assert password.inputs["keepers"] == {"robot": robot}
        assert _env(_container(plan.find(JOB, "t1-harbor-robot-job").inputs))["ROBOT_NAME"]["value"] == robot

    def logins(plan: object) -> set[tuple[str, str]]:
        found = set()
        for name in ("t1-pull-apps", "t1-pull-shop", "t1-guardrails-pull-source"):
            data = plain(plan.find(SECRET, name).inputs["stringData"])  # type: ignore[attr-defined]
            login = json.loads(data[".dockerconfigjson"])["auths"]["registry.t1.k8s.example.com"]  # type: ignore[index]
            found.add((login["username"], login["password"]))
        return found

    (old,), (new,) = logins(before), logins(after)
    assert old[0] == "robot$kaas-pull-20261201" and new[0] == "robot$kaas-pull-20271102"
    assert old[1] != new[1] and harbor_accepts_secret(new[1])
    robot_secret = plain(after.find(SECRET, "t1-harbor-robot").inputs["stringData"])
    assert robot_secret == {"ROBOT_SECRET": new[1]}


def test_a_provider_name_harbor_refuses_as_robot_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="Harbor refuses"):
        names.pull_robot_name(make_spec(provider_name="a--b"))
    with pytest.raises(ValueError, match="Harbor refuses"):
        names.pull_robot_family(make_spec(provider_name="a--b"))


@pytest.mark.parametrize(
    ("stored", "older"),
    [
        ("kaas-pull", True),
        ("kaas-pull-20251201", True),
        ("kaas-pull-20261201", False),  # the current one
        ("kaas-pull-2025120", False),
        ("kaas-pull-202512011", False),
        ("kaas-pull-20251201-x", False),
        ("kaas-pullx", False),
        ("xkaas-pull", False),
        ("kaas-pull-abcdefgh", False),
        ("kaas-pull-" + "\uff12" * 8, False),  # FULLWIDTH DIGIT TWO: Unicode digits are not [0-9]
    ],
)
def test_only_names_of_the_family_are_older_generations(stored: str, older: bool) -> None:
    assert harbor_robot.is_older_generation(stored, "kaas-pull", "kaas-pull-20261201") is older


# --- The script, run for real against an emulated Harbor --------------------------------

ADMIN_PASSWORD = "Harbor12345-admin"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    auth: str | None
    at: float = field(default_factory=time.monotonic)


HARBOR_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # handler/robot.go validateName
MAX_INT32 = 2**31 - 1


def harbor_expires_at(duration: int, now: float) -> int:
    """controller.go Create: -1, or ``time.Now().AddDate(0, 0, duration).Unix()`` (Harbor core runs in UTC)."""
    if duration == -1:
        return -1
    return int(now) + duration * 86400  # in UTC a day is 86400 s; Unix() drops the fraction


def harbor_accepts_duration(duration: int) -> bool:
    """handler/robot.go isValidDuration: -1 (never) or 0 < d < math.MaxInt32."""
    return duration == -1 or 0 < duration < MAX_INT32


@dataclass
class FakeHarbor:
    """Harbor core's robot API as the Job uses it (semantics from api/v2.0/swagger.yaml and robot.go)."""

    unready_pings: int = 0
    calls: list[Call] = field(default_factory=list)
    robots: dict[str, dict[str, Any]] = field(default_factory=dict)  # stored name (no prefix) -> robot
    secrets: dict[int, str] = field(default_factory=dict)
    admin_password: str = ADMIN_PASSWORD
    url: str = ""
    next_id: int = 1

    def add_robot(self, name: str, duration: int = -1, disabled: bool = False, secret: str = "Generated1secret") -> int:
        """A robot as Harbor stores it (``Create``), with the ``Robot`` fields ListRobot returns."""
        rid, now = self.next_id, time.time()
        self.next_id += 1
        self.robots[name] = {
            "id": rid,
            "name": f"robot${name}",
            "level": "system",
            "duration": duration,
            "expires_at": harbor_expires_at(duration, now),
            "disable": disabled,
            "editable": True,
            "creation_time": datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(),
        }
        self.secrets[rid] = secret
        return rid

    def by_id(self, rid: int) -> str | None:
        return next((stored for stored, r in self.robots.items() if r["id"] == rid), None)

    def logs_in(self, user: str | None) -> bool:
        """security/robot.go: the robot$ prefix, the secret, not disabled, not expired."""
        account, _, secret = (user or "").partition(":")
        stored = self.robots.get(account.removeprefix("robot$")) if account.startswith("robot$") else None
        if stored is None or self.secrets[stored["id"]] != secret or stored["disable"]:
            return False
        return stored["expires_at"] == -1 or stored["expires_at"] > time.time()

    def handle(self, method: str, raw_path: str, body: Any, auth: str | None) -> tuple[int, Any]:
        parsed = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parsed.query)
        self.calls.append(Call(method, parsed.path, query, body, auth))
        if (method, parsed.path) == ("GET", "/v2/"):  # v2auth: /v2/ needs an authenticated context only
            return (200, {}) if self.logs_in(auth) else (401, {"errors": [{"code": "UNAUTHORIZED"}]})
        path = parsed.path.removeprefix("/api/v2.0")
        if (method, path) == ("GET", "/ping"):
            if self.unready_pings > 0:
                self.unready_pings -= 1
                return 503, {"errors": [{"code": "UNAVAILABLE"}]}
            return 200, "Pong"
        if auth != f"admin:{self.admin_password}":
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}
        if (method, path) == ("POST", "/robots"):
            if not HARBOR_NAME.match(body["name"]):
                return 400, {"errors": [{"code": "BAD_REQUEST", "message": "robot name is not in lower case ..."}]}
            duration = body.get("duration") or 0  # RobotCreate.duration: int64, absent or null is 0
            if not isinstance(duration, int) or isinstance(duration, bool):
                return 422, {"errors": [{"code": "UNPROCESSABLE_ENTITY", "message": "parsing robot body failed"}]}
            if not harbor_accepts_duration(duration):
                message = f"bad request error duration input: {duration}, duration must be either -1(Never) ..."
                return 400, {"errors": [{"code": "BAD_REQUEST", "message": message}]}
            if body["name"] in self.robots:
                return 409, {"errors": [{"code": "CONFLICT", "message": "robot account already exists"}]}
            rid = self.add_robot(body["name"], duration, body.get("disable", False))
            robot = self.robots[body["name"]]
            robot["permissions"] = body["permissions"]
            return 201, {"id": rid, "name": robot["name"], "secret": "Generated1secret",
                         "expires_at": robot["expires_at"], "creation_time": robot["creation_time"]}  # fmt: skip
        if (method, path) == ("GET", "/robots"):
            size = int(query.get("page_size", ["10"])[0])
            page = int(query.get("page", ["1"])[0])
            if not 0 < size <= 100 or page < 1:  # swagger: pageSize maximum 100
                return 422, {"errors": [{"code": "UNPROCESSABLE_ENTITY"}]}
            wanted = dict(kv.split("=", 1) for kv in query.get("q", [""])[0].split(",") if kv)
            name = wanted.get("name")
            found = [
                r
                for stored, r in sorted(self.robots.items(), key=lambda item: item[1]["id"])
                if name is None
                or (name[1:] in stored if name.startswith("~") else name == stored)  # k=~v fuzzy, k=v exact
            ]
            return 200, found[(page - 1) * size : page * size]
        match = re.fullmatch(r"/robots/(\d+)", path)
        if method == "PATCH" and match:
            rid = int(match.group(1))
            if rid not in self.secrets:
                return 404, {"errors": [{"code": "NOT_FOUND"}]}
            if not harbor_accepts_secret(body.get("secret", "")):
                return 400, {"errors": [{"code": "BAD_REQUEST", "message": "the secret must be 8-128 ..."}]}
            self.secrets[rid] = body["secret"]
            return 200, {"secret": ""}
        if method == "DELETE" and match:
            stored = self.by_id(int(match.group(1)))
            if stored is None:
                return 404, {"errors": [{"code": "NOT_FOUND"}]}
            del self.secrets[self.robots.pop(stored)["id"]]
            return 200, None
        return 404, {"errors": [{"code": "NOT_FOUND"}]}


@pytest.fixture
def harbor() -> Iterator[FakeHarbor]:
    fake = FakeHarbor()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization")
            user = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth else None
            status, payload = fake.handle(self.command, self.path, body, user)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def current_spec(**identity: Any) -> ClusterSpec:
    """A spec whose credentials are current whenever the tests run: issued 3 days ago, 30 days' lifetime."""
    issued = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=3)
    return make_spec(identity={"credentials_issued": issued.isoformat(), "credential_lifetime_days": 30, **identity})


def test_the_planned_job_is_the_one_the_run_tests_run() -> None:
    spec = make_spec(services={"customer_namespaces": ["shop"], "default_deny_network_policy": True})
    assert default_plan().find(JOB, "t1-harbor-robot-job").inputs == objects.harbor_robot_job(spec)


def run_job(
    harbor: FakeHarbor, robot_secret: str, spec: ClusterSpec | None = None, **overrides: str
) -> subprocess.CompletedProcess[str]:
    """Run the Job's command with its env (of ``spec``, default :func:`current_spec`): literals as
    planned, secretKeyRefs resolved, ``overrides`` last."""
    spec = spec or current_spec()
    container = _container(objects.harbor_robot_job(spec))
    secrets = {
        (names.HARBOR_ADMIN, "HARBOR_ADMIN_PASSWORD"): ADMIN_PASSWORD,
        (names.HARBOR_ROBOT, "ROBOT_SECRET"): robot_secret,
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for entry in container["env"]:
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            env[entry["name"]] = entry["value"]
    assert env["HARBOR_URL"] == values.harbor_core_url(spec)
    env["HARBOR_URL"] = harbor.url  # the emulator instead of harbor-core.kaas-system.svc
    env["RETRY_SECONDS"] = "0.05"
    env["RETIRE_AFTER_SECONDS"] = "0"
    env.update(overrides)
    command = [sys.executable if container["command"][0] == "python3" else container["command"][0]]
    return subprocess.run([*command, *container["command"][1:]], env=env, capture_output=True, text=True, timeout=60)


ROBOT = names.pull_robot_name(current_spec())
PULL_ONLY = [{"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]


def spec_expiry(spec: ClusterSpec) -> int:
    return int(datetime.datetime.fromisoformat(credentials.expires_at(spec).replace("Z", "+00:00")).timestamp())


def test_job_waits_for_harbor_then_creates_the_robot_and_sets_the_planned_secret(harbor: FakeHarbor) -> None:
    secret = _secret_data("t1-harbor-robot")["ROBOT_SECRET"]
    harbor.unready_pings = 2
    done = run_job(harbor, secret)
    assert done.returncode == 0, done.stderr
    assert [(c.method, c.path) for c in harbor.calls] == [
        *[("GET", "/api/v2.0/ping")] * 3,
        ("POST", "/api/v2.0/robots"),
        ("PATCH", "/api/v2.0/robots/1"),
        ("GET", "/v2/"),
        ("GET", "/api/v2.0/robots"),
    ]
    post, patch, login, listing = harbor.calls[3:]
    assert set(post.body) == {"name", "description", "level", "duration", "disable", "permissions"}
    assert post.body["name"] == ROBOT and post.body["level"] == "system" and post.body["disable"] is False
    assert post.body["permissions"] == PULL_ONLY
    assert patch.body == {"secret": secret}
    assert post.auth == patch.auth == listing.auth == f"admin:{ADMIN_PASSWORD}"
    assert login.auth == f"robot${ROBOT}:{secret}"  # logs in as the pull Secrets will
    assert listing.query == {"q": ["name=~kaas-pull"], "page": ["1"], "page_size": ["100"]}
    assert harbor.secrets[1] == secret
    assert secret not in done.stdout + done.stderr and ADMIN_PASSWORD not in done.stdout + done.stderr


def test_the_robot_expires_with_the_credentials_and_at_most_a_day_later(harbor: FakeHarbor) -> None:
    spec = current_spec()
    before = time.time()
    done = run_job(harbor, "Valid1secret")
    assert done.returncode == 0, done.stderr
    expiry = spec_expiry(spec)
    created = harbor.robots[ROBOT]
    assert expiry <= created["expires_at"] < expiry + 86400
    # Ceil of the remaining days: issued 3 days ago for 30, so 26 days and part of one (midnight UTC) are left.
    assert created["duration"] == math.ceil((expiry - before) / 86400) == 27
    assert harbor.calls[1].body["duration"] == 27
    assert f"expires {datetime.datetime.fromtimestamp(created['expires_at'], datetime.UTC):%Y-%m-%dT%H:%M:%SZ}" in (
        done.stdout
    )


@pytest.mark.parametrize(
    ("remaining", "days"),
    [(1, 1), (86400, 1), (86401, 2), (30 * 86400, 30), (30 * 86400 + 0.5, 31), (365 * 86400 - 3600, 365)],
)
def test_duration_is_the_ceil_of_the_remaining_days(remaining: float, days: int) -> None:
    now = 1_800_000_000.0
    assert harbor_robot.duration_days(now + remaining, now) == days
    expires = harbor_expires_at(days, now)
    assert now + remaining <= expires < now + remaining + 86400
    assert harbor_accepts_duration(days)


def test_the_emulation_refuses_durations_as_harbor_does(harbor: FakeHarbor) -> None:
    for bad in (0, -2, MAX_INT32, MAX_INT32 + 1, None):
        status, payload = harbor.handle("POST", "/api/v2.0/robots", {**robot_request("kaas-x", 1), "duration": bad},
                                        f"admin:{ADMIN_PASSWORD}")  # fmt: skip
        assert status == 400 and "duration" in payload["errors"][0]["message"], bad
    for malformed in (1.5, "30"):
        status, _ = harbor.handle("POST", "/api/v2.0/robots", {**robot_request("kaas-x", 1), "duration": malformed},
                                  f"admin:{ADMIN_PASSWORD}")  # fmt: skip
        assert status == 422
    assert harbor.robots == {}
    status, _ = harbor.handle("POST", "/api/v2.0/robots", robot_request("kaas-x", -1), f"admin:{ADMIN_PASSWORD}")
    assert status == 201 and harbor.robots["kaas-x"]["expires_at"] == -1
    status, payload = harbor.handle("POST", "/api/v2.0/robots", robot_request("kaas-y", MAX_INT32 - 1),
                                    f"admin:{ADMIN_PASSWORD}")  # fmt: skip
    assert status == 201


def test_expired_credentials_stop_the_job_before_it_calls_harbor(harbor: FakeHarbor) -> None:
    issued = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=31)
    spec = make_spec(identity={"credentials_issued": issued.isoformat(), "credential_lifetime_days": 30})
    done = run_job(harbor, "Valid1secret", spec)
    assert done.returncode == 1
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("error: ") and "identity.credentials_issued" in done.stderr
    assert credentials.expires_at(spec) in done.stderr
    assert harbor.calls == [] and harbor.robots == {}


def test_job_run_again_finds_the_robot_and_only_refreshes_its_secret(harbor: FakeHarbor) -> None:
    assert run_job(harbor, "First1secret-x").returncode == 0
    harbor.calls.clear()
    done = run_job(harbor, "Second2secret-y")
    assert done.returncode == 0, done.stderr
    assert [(c.method, c.path, c.query) for c in harbor.calls] == [
        ("GET", "/api/v2.0/ping", {}),
        ("POST", "/api/v2.0/robots", {}),
        ("GET", "/api/v2.0/robots", {"q": [f"name={ROBOT}"]}),
        ("PATCH", "/api/v2.0/robots/1", {}),
        ("GET", "/v2/", {}),
        ("GET", "/api/v2.0/robots", {"q": ["name=~kaas-pull"], "page": ["1"], "page_size": ["100"]}),
    ]
    assert all(c.auth == f"admin:{ADMIN_PASSWORD}" for c in harbor.calls[1:4])
    assert harbor.calls[3].body == {"secret": "Second2secret-y"}
    assert list(harbor.robots) == [ROBOT] and harbor.secrets[1] == "Second2secret-y"


def test_job_fails_without_echoing_a_secret_harbor_rejects(harbor: FakeHarbor) -> None:
    done = run_job(harbor, "alllowercase")
    assert done.returncode == 1
    assert "PATCH /robots/1: HTTP 400" in done.stderr
    assert "alllowercase" not in done.stdout + done.stderr
    assert harbor.secrets[1] == "Generated1secret"


def test_job_fails_when_harbor_refuses_the_admin_password(harbor: FakeHarbor) -> None:
    harbor.admin_password = "Changed1password"
    done = run_job(harbor, "Valid1secret")
    assert done.returncode == 1 and "POST /robots: HTTP 401" in done.stderr
    assert [(c.method, c.path) for c in harbor.calls] == [("GET", "/api/v2.0/ping"), ("POST", "/api/v2.0/robots")]
    assert not harbor.robots


# --- Older generations ------------------------------------------------------------------

OLDER = ["kaas-pull", "kaas-pull-20251201", "kaas-pull-20240101"]  # the pre-generation robot and two generations
NOT_OURS = [
    "kaas-pull-2025120",  # 7 digits
    "kaas-pull-202512011",  # 9 digits
    "kaas-pull-20251201-old",
    "kaas-pull-backup",
    "kaas-pullx-20251201",
    "xkaas-pull-20251201",
    "acme-pull-20251201",  # another provider's
    "kaas-pull.20251201",
]


def test_older_generations_are_deleted_after_the_new_robot_logs_in_and_nothing_else(harbor: FakeHarbor) -> None:
    for name in [*OLDER, *NOT_OURS]:
        harbor.add_robot(name)
    done = run_job(harbor, "Valid1secret", RETIRE_AFTER_SECONDS="0.4")
    assert done.returncode == 0, done.stderr
    assert sorted(harbor.robots) == sorted([ROBOT, *NOT_OURS])
    steps = [(c.method, c.path.removeprefix("/api/v2.0")) for c in harbor.calls]
    login = steps.index(("GET", "/v2/"))
    deletes = [i for i, step in enumerate(steps) if step[0] == "DELETE"]
    assert len(deletes) == 3 and min(deletes) > login > steps.index(("PATCH", f"/robots/{harbor.robots[ROBOT]['id']}"))
    # The pause lets the guardrail reconciler replace the copies it made before anything is deleted.
    assert harbor.calls[min(deletes)].at - harbor.calls[login].at >= 0.4
    assert "deleting 3 older robot(s) in 0.4 s: kaas-pull, kaas-pull-20251201, kaas-pull-20240101" in done.stdout
    assert all(f"deleted robot {name}" in done.stdout for name in OLDER)


def test_the_default_pause_covers_several_reconciler_runs() -> None:
    env = _env(_container(objects.harbor_robot_job(make_spec())))
    assert int(env["RETIRE_AFTER_SECONDS"]["value"]) >= 3 * 60 and guardrails.SCHEDULE == "* * * * *"


def test_nothing_is_deleted_when_the_new_robot_does_not_log_in(harbor: FakeHarbor) -> None:
    harbor.add_robot("kaas-pull-20251201")
    harbor.add_robot(ROBOT, duration=30, disabled=True)  # someone disabled this generation's robot
    done = run_job(harbor, "Valid1secret")
    assert done.returncode == 1
    assert f"robot robot${ROBOT} does not log in (GET /v2/: HTTP 401)" in done.stderr
    assert "Valid1secret" not in done.stdout + done.stderr
    assert sorted(harbor.robots) == sorted(["kaas-pull-20251201", ROBOT])
    assert not any(c.method == "DELETE" for c in harbor.calls)


def test_older_generations_on_a_later_page_are_found(harbor: FakeHarbor) -> None:
    for n in range(150):  # names the fuzzy query matches that are not generations
        harbor.add_robot(f"kaas-pull-team{n}")
    harbor.add_robot("kaas-pull-20251201")
    done = run_job(harbor, "Valid1secret")
    assert done.returncode == 0, done.stderr
    pages = [c.query["page"] for c in harbor.calls if c.method == "GET" and "page" in c.query]
    assert pages == [["1"], ["2"]]
    assert "kaas-pull-20251201" not in harbor.robots and len(harbor.robots) == 151


def test_an_expired_older_generation_is_deleted_too(harbor: FakeHarbor) -> None:
    rid = harbor.add_robot("kaas-pull-20241201", duration=1)
    harbor.robots["kaas-pull-20241201"]["expires_at"] = int(time.time()) - 86400
    assert not harbor.logs_in(f"robot$kaas-pull-20241201:{harbor.secrets[rid]}")
    done = run_job(harbor, "Valid1secret")
    assert done.returncode == 0, done.stderr
    assert list(harbor.robots) == [ROBOT]

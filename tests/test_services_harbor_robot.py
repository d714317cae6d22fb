"""The registry's pull robot: the Job that registers it in Harbor, planned and run for real.

The plan tests read the Job and the Secrets from a ManagedServices plan. The run
tests execute the Job's own command (its ``python3 -c`` program, with its env
resolved from the planned Secrets) against a local HTTP server on 127.0.0.1 that
emulates the Harbor v2.0 endpoints the Job uses, and assert the requests it makes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kaas.offline import Secret
from kaas.offline.planfile import plain as planned_value
from kaas.services import names, objects, values
from kaas.services.harbor_robot import robot_request
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
    assert names_of(plan, job.dependencies) == {"harbor", "t1-harbor-admin", "t1-harbor-robot"}
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
    assert login["username"] == f"robot${robot}" == "robot$kaas-pull"
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


def test_provider_name_names_the_robot() -> None:
    spec = make_spec(provider_name="rackspace")
    env = _env(_container(objects.harbor_robot_job(spec)))
    assert env["ROBOT_NAME"]["value"] == "rackspace-pull"
    assert env["HARBOR_URL"]["value"] == "http://harbor-core.rackspace-system.svc"
    assert names.pull_robot_account(spec) == "robot$rackspace-pull"


def test_a_provider_name_harbor_refuses_as_robot_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="Harbor refuses"):
        names.pull_robot_name(make_spec(provider_name="a--b"))


# --- The script, run for real against an emulated Harbor --------------------------------

ADMIN_PASSWORD = "Harbor12345-admin"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    auth: str | None


@dataclass
class FakeHarbor:
    """Harbor core's robot API as the Job uses it (semantics from api/v2.0/swagger.yaml and robot.go)."""

    unready_pings: int = 0
    calls: list[Call] = field(default_factory=list)
    robots: dict[str, dict[str, Any]] = field(default_factory=dict)  # stored name (no prefix) -> robot
    secrets: dict[int, str] = field(default_factory=dict)
    admin_password: str = ADMIN_PASSWORD
    url: str = ""

    def handle(self, method: str, raw_path: str, body: Any, auth: str | None) -> tuple[int, Any]:
        parsed = urllib.parse.urlsplit(raw_path)
        self.calls.append(Call(method, parsed.path, urllib.parse.parse_qs(parsed.query), body, auth))
        path = parsed.path.removeprefix("/api/v2.0")
        if (method, path) == ("GET", "/ping"):
            if self.unready_pings > 0:
                self.unready_pings -= 1
                return 503, {"errors": [{"code": "UNAVAILABLE"}]}
            return 200, "Pong"
        if auth != f"admin:{self.admin_password}":
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}
        if (method, path) == ("POST", "/robots"):
            if body["name"] in self.robots:
                return 409, {"errors": [{"code": "CONFLICT", "message": "robot account already exists"}]}
            rid = len(self.robots) + 1
            self.robots[body["name"]] = {**body, "id": rid, "name": f"robot${body['name']}"}
            self.secrets[rid] = "Generated1secret"
            return 201, {"id": rid, "name": f"robot${body['name']}", "secret": "Generated1secret"}
        if (method, path) == ("GET", "/robots"):
            query = urllib.parse.parse_qs(parsed.query).get("q", [""])[0]
            wanted = dict(kv.split("=", 1) for kv in query.split(",") if kv)
            return 200, [r for stored, r in self.robots.items() if wanted.get("name", stored) == stored]
        match = re.fullmatch(r"/robots/(\d+)", path)
        if method == "PATCH" and match:
            rid = int(match.group(1))
            if rid not in self.secrets:
                return 404, {"errors": [{"code": "NOT_FOUND"}]}
            if not harbor_accepts_secret(body.get("secret", "")):
                return 400, {"errors": [{"code": "BAD_REQUEST", "message": "the secret must be 8-128 ..."}]}
            self.secrets[rid] = body["secret"]
            return 200, {"secret": ""}
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

        do_GET = do_POST = do_PATCH = _serve  # noqa: N815

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


def run_job(harbor: FakeHarbor, robot_secret: str) -> subprocess.CompletedProcess[str]:
    """Run the planned Job's command with its env: literals as planned, secretKeyRefs resolved."""
    container = _container(default_plan().find(JOB, "t1-harbor-robot-job").inputs)
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
    assert env["HARBOR_URL"] == values.harbor_core_url(make_spec())
    env["HARBOR_URL"] = harbor.url  # the emulator instead of harbor-core.kaas-system.svc
    env["RETRY_SECONDS"] = "0.05"
    command = [sys.executable if container["command"][0] == "python3" else container["command"][0]]
    return subprocess.run([*command, *container["command"][1:]], env=env, capture_output=True, text=True, timeout=60)


EXPECTED_ROBOT = {
    "name": "kaas-pull",
    "description": robot_request("kaas-pull")["description"],
    "level": "system",
    "duration": -1,
    "disable": False,
    "permissions": [{"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}],
}


def test_job_waits_for_harbor_then_creates_the_robot_and_sets_the_planned_secret(harbor: FakeHarbor) -> None:
    secret = _secret_data("t1-harbor-robot")["ROBOT_SECRET"]
    harbor.unready_pings = 2
    done = run_job(harbor, secret)
    assert done.returncode == 0, done.stderr
    assert [(c.method, c.path) for c in harbor.calls] == [
        *[("GET", "/api/v2.0/ping")] * 3,
        ("POST", "/api/v2.0/robots"),
        ("PATCH", "/api/v2.0/robots/1"),
    ]
    post, patch = harbor.calls[3], harbor.calls[4]
    assert post.body == EXPECTED_ROBOT
    assert patch.body == {"secret": secret}
    assert post.auth == patch.auth == f"admin:{ADMIN_PASSWORD}"
    assert harbor.secrets[1] == secret
    assert secret not in done.stdout + done.stderr and ADMIN_PASSWORD not in done.stdout + done.stderr


def test_job_run_again_finds_the_robot_and_only_refreshes_its_secret(harbor: FakeHarbor) -> None:
    assert run_job(harbor, "First1secret-x").returncode == 0
    harbor.calls.clear()
    done = run_job(harbor, "Second2secret-y")
    assert done.returncode == 0, done.stderr
    assert [(c.method, c.path, c.query) for c in harbor.calls] == [
        ("GET", "/api/v2.0/ping", {}),
        ("POST", "/api/v2.0/robots", {}),
        ("GET", "/api/v2.0/robots", {"q": ["name=kaas-pull"]}),
        ("PATCH", "/api/v2.0/robots/1", {}),
    ]
    assert all(c.auth == f"admin:{ADMIN_PASSWORD}" for c in harbor.calls[1:])
    assert harbor.calls[3].body == {"secret": "Second2secret-y"}
    assert list(harbor.robots) == ["kaas-pull"] and harbor.secrets[1] == "Second2secret-y"


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

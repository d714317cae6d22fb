"""Fake Keystone, Prometheus and Harbor endpoints, each shaped after its upstream API reference."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.servers import Answer, Request, json_answer


@dataclass
class FakeKeystone:
    """``POST /v3/auth/tokens`` (Keystone API v3 "Password authentication with scoped
    authorization"): 201 with the token in ``X-Subject-Token`` and the token body (methods,
    user, roles of the scope, expires_at); 401 ``{"error": {...}}`` for wrong credentials."""

    users: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # name -> (password, role IDs)
    issued: dict[str, str] = field(default_factory=dict)  # token -> user
    bodies: list[Any] = field(default_factory=list)

    def groups_of(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        """What k8s-keystone-auth's webhook answers: the user, and its role IDs as groups."""
        user = self.issued.get(token)
        return None if user is None else (user, self.users[user][1])

    def route(self, request: Request) -> Answer:
        import json

        if (request.method, request.path) != ("POST", "/v3/auth/tokens"):
            return json_answer(404, {"error": {"code": 404, "title": "Not Found", "message": "not found"}})
        auth = json.loads(request.body)["auth"]
        self.bodies.append(auth)
        user = auth["identity"]["password"]["user"]
        known = self.users.get(user["name"])
        if known is None or known[0] != user["password"]:
            return json_answer(
                401,
                {"error": {"code": 401, "title": "Unauthorized",
                           "message": "The request you have made requires authentication."}},
            )  # fmt: skip
        token = "gAAAAA" + secrets.token_urlsafe(24)
        self.issued[token] = user["name"]
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        body = {
            "token": {
                "methods": ["password"],
                "user": {"name": user["name"], "id": user["name"] + "-id", "domain": user["domain"]},
                "roles": [{"name": f"role-{role}", "id": role} for role in known[1]],
                "expires_at": expires,
                "project": auth["scope"].get("project"),
            }
        }
        return json_answer(201, body, {"X-Subject-Token": token})


@dataclass
class FakePrometheus:
    """Prometheus HTTP API (prometheus.io/docs/prometheus/latest/querying/api/): ``GET
    /api/v1/targets`` -> ``{"status": "success", "data": {"activeTargets": [...], "droppedTargets":
    [...]}}``, ``GET /api/v1/alerts`` -> ``{"status": "success", "data": {"alerts": [...]}}``."""

    targets: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def target(job: str, health: str = "up", error: str = "") -> dict[str, Any]:
        return {
            "discoveredLabels": {"__address__": f"10.0.0.1:{job}"},
            "labels": {"job": job, "instance": "10.0.0.1:9100"},
            "scrapePool": f"serviceMonitor/kaas-system/{job}/0",
            "scrapeUrl": f"http://10.0.0.1:9100/metrics#{job}",
            "globalUrl": f"http://10.0.0.1:9100/metrics#{job}",
            "lastError": error,
            "lastScrape": "2026-12-01T10:00:00.000Z",
            "lastScrapeDuration": 0.01,
            "health": health,
            "scrapeInterval": "30s",
            "scrapeTimeout": "10s",
        }

    @staticmethod
    def alert(name: str, state: str = "firing") -> dict[str, Any]:
        return {
            "labels": {"alertname": name, "severity": "none" if name == "Watchdog" else "warning"},
            "annotations": {"summary": name},
            "state": state,
            "activeAt": "2026-12-01T09:00:00Z",
            "value": "1e+00",
        }

    def route(self, request: Request) -> Answer:
        if request.path == "/api/v1/targets":
            active = self.targets if request.query.get("state", "active") in ("active", "any") else []
            return json_answer(200, {"status": "success", "data": {"activeTargets": active, "droppedTargets": []}})
        if request.path == "/api/v1/alerts":
            return json_answer(200, {"status": "success", "data": {"alerts": self.alerts}})
        return Answer(404, b"404 page not found\n", {"Content-Type": "text/plain"})


@dataclass
class FakeHarbor:
    """Harbor's registry as ``docker login`` sees it (distribution "Token Authentication
    Specification"; Harbor core's /service/token): ``GET /v2/`` without a token -> 401 with
    ``WWW-Authenticate: Bearer realm="https://HOST/service/token",service="harbor-registry"``;
    the realm trades valid Basic credentials for ``{"token", "access_token", "expires_in",
    "issued_at"}`` and answers 401 otherwise; ``/v2/`` with the token -> 200 ``{}``."""

    host: str
    accounts: dict[str, str] = field(default_factory=dict)  # robot$name -> secret
    tokens: set[str] = field(default_factory=set)

    def route(self, request: Request) -> Answer:
        auth = request.header("Authorization") or ""
        if request.path == "/v2/":
            if auth.startswith("Bearer ") and auth[7:] in self.tokens:
                return json_answer(200, {}, {"Docker-Distribution-Api-Version": "registry/2.0"})
            challenge = f'Bearer realm="https://{self.host}/service/token",service="harbor-registry"'
            return json_answer(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized: unauthorized", "detail": None}]},
                {"WWW-Authenticate": challenge, "Docker-Distribution-Api-Version": "registry/2.0"},
            )
        if request.path == "/service/token":
            user, _, password = base64.b64decode(auth.removeprefix("Basic ") or b"").decode().partition(":")
            if not auth.startswith("Basic ") or self.accounts.get(user) != password:
                return json_answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication failed"}]})
            token = secrets.token_urlsafe(16)
            self.tokens.add(token)
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return json_answer(200, {"token": token, "access_token": token, "expires_in": 1800, "issued_at": now})
        if request.path == "/":
            return Answer(200, b"<!doctype html><title>Harbor</title>", {"Content-Type": "text/html"})
        return json_answer(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

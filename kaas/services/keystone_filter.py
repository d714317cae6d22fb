"""Scope k8s-keystone-auth's answers to the cluster: a filter between the API server and the webhook.

Runs beside k8s-keystone-auth in its pod (``python3 -c`` of this file, standard library
only) on the address the API server's webhook files name, and forwards every request to
k8s-keystone-auth on the next port. SubjectAccessReviews pass unchanged. TokenReviews
that k8s-keystone-auth accepted are rewritten, because of what it passes through
(cloud-provider-openstack v1.36.0, pkg/identity/keystone/authenticator.go
``AuthenticateToken``: the groups are the *names* of all the user's Keystone groups
(``users.ListGroups``) plus the token's project ID; any project's token is accepted; the
user name is the bare Keystone user name; sync.go ``syncRoles`` adds role-mapping groups
for a role *name* found in the token):

- a token scoped to another project than ``PROJECT_ID``, or of a user outside
  ``DOMAIN_NAME``, is refused (``authenticated: false``);
- a user name starting with ``system:`` is refused (Kubernetes reserves the prefix: a
  Keystone user ``system:kube-controller-manager`` would otherwise get that identity);
- the groups are recomputed: the project ID, plus ``ADMIN_GROUP`` only when the token
  carries ``ADMIN_ROLE``, plus the group of every spec'd role mapping (``ROLE_GROUPS``,
  the same mapping as the sync config's) whose role the token carries. No Keystone group
  name ever reaches Kubernetes, so neither ``system:masters`` nor the admin group can be
  claimed by creating a Keystone group.

Environment: LISTEN_PORT, UPSTREAM_URL, TLS_CERT, TLS_KEY (the k8s-keystone-auth
serving pair, which also pins the upstream), PROJECT_ID, DOMAIN_NAME, ADMIN_ROLE,
ADMIN_GROUP, ROLE_GROUPS (JSON: Keystone role name -> Kubernetes group; optional).
"""

from __future__ import annotations

import http.server
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

ROLES = "alpha.kubernetes.io/identity/roles"
PROJECT_ID = "alpha.kubernetes.io/identity/project/id"
DOMAIN_NAME = "alpha.kubernetes.io/identity/user/domain/name"
RESERVED_PREFIX = "system:"
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Scope:
    """What a Keystone identity must match to be a user of this cluster."""

    project_id: str
    domain_name: str
    admin_role: str
    admin_group: str
    role_groups: tuple[tuple[str, str], ...] = ()


def _first(extra: dict[str, Any], key: str) -> str:
    values = extra.get(key) or []
    return str(values[0]) if len(values) == 1 else ""


def scoped_review(review: dict[str, Any], scope: Scope) -> tuple[dict[str, Any], str]:
    """The TokenReview the API server gets, and why an accepted token was refused ("" if it was not)."""
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return review, ""
    user = status.get("user") or {}
    extra = user.get("extra") or {}
    reason = ""
    if _first(extra, PROJECT_ID) != scope.project_id:
        reason = "token scoped to another project"
    elif _first(extra, DOMAIN_NAME) != scope.domain_name:
        reason = "user of another domain"
    elif str(user.get("username", "")).startswith(RESERVED_PREFIX):
        reason = f"user name with the reserved prefix {RESERVED_PREFIX!r}"
    if reason:
        return {**review, "status": {"authenticated": False}}, reason
    roles = extra.get(ROLES) or []
    groups = [scope.project_id]
    if scope.admin_role in roles:
        groups.append(scope.admin_group)
    groups += [group for role, group in scope.role_groups if role in roles and group not in groups]
    return {**review, "status": {**status, "user": {**user, "groups": groups}}}, ""


def _upstream_context(cert_file: str) -> ssl.SSLContext:
    """Trust exactly k8s-keystone-auth's serving certificate (the same pair this filter serves)."""
    context = ssl.create_default_context(cafile=cert_file)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def handler(scope: Scope, upstream: str, upstream_tls: ssl.SSLContext) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, b'{"error": "request too large"}')
                return
            request = urllib.request.Request(
                upstream, data=self.rfile.read(length), method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10, context=upstream_tls) as response:
                    code, body = response.status, response.read()
            except urllib.error.HTTPError as error:
                code, body = error.code, error.read()
            except (urllib.error.URLError, OSError) as error:
                print(f"keystone-auth-filter: upstream {upstream}: {error}", file=sys.stderr, flush=True)
                self._answer(502, b'{"error": "k8s-keystone-auth unreachable"}')
                return
            try:
                review = json.loads(body)
            except ValueError:
                self._answer(502, b'{"error": "k8s-keystone-auth answered no JSON"}')
                return
            if review.get("kind") != "TokenReview":
                self._answer(code, body)
                return
            scoped, reason = scoped_review(review, scope)
            if reason:
                name = ((review.get("status") or {}).get("user") or {}).get("username", "")
                print(f"keystone-auth-filter: refused {name!r}: {reason}", file=sys.stderr, flush=True)
                self._answer(401, json.dumps(scoped).encode())
                return
            self._answer(code, json.dumps(scoped).encode())

    return Handler


def main() -> int:
    env = os.environ
    role_groups = tuple(sorted(json.loads(env.get("ROLE_GROUPS") or "{}").items()))
    scope = Scope(env["PROJECT_ID"], env["DOMAIN_NAME"], env["ADMIN_ROLE"], env["ADMIN_GROUP"], role_groups)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", int(env["LISTEN_PORT"])),
        handler(scope, env["UPSTREAM_URL"], _upstream_context(env["TLS_CERT"])),
    )
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.minimum_version = ssl.TLSVersion.TLSv1_2
    serving.load_cert_chain(env["TLS_CERT"], env["TLS_KEY"])
    server.socket = serving.wrap_socket(server.socket, server_side=True)
    print(f"keystone-auth-filter: {server.server_address} -> {env['UPSTREAM_URL']}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Keystone authentication scoped to the cluster: the scope filter, run for real in front of a k8s-keystone-auth stand-in.

The stand-in answers TokenReviews the way k8s-keystone-auth v1.36.0 does
(kubernetes/cloud-provider-openstack, tag v1.36.0):

- pkg/identity/keystone/authenticator.go ``AuthenticateToken``: accepts a token of *any*
  project; ``Groups`` = the names of all the user's Keystone groups
  (``users.ListGroups`` -> ``g.Name``) + the token's project ID; ``Extra`` carries the
  role names, project ID/name, user domain ID/name; the user name is the bare Keystone name.
- pkg/identity/keystone/sync.go ``syncRoles``: for each role mapping whose
  ``keystone-role`` *name* is in the token's roles, append its ``groups``.
- pkg/identity/keystone/keystone.go ``authenticateToken``: an unknown token gets HTTP 401
  and ``authenticated: false``.

Without the filter, a Keystone group named ``system:masters`` (or named like the admin
role's ID) would become a Kubernetes group the RBAC bindings trust, and any project's
token would be a user of the cluster. The filter is the real program the DaemonSet runs.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaas.services import keystone_filter, objects
from tests.helpers import free_ports, make_spec

PROJECT = "5e1b2c3d4e5f40718293a4b5c6d7e8f9"
OTHER_PROJECT = "0f0f0f0f0f0f40718293a4b5c6d7e8f9"
ADMIN_ROLE = "t1-cluster-admin"
ADMIN_GROUP = "f6120fe6406a473682c3b25cdea4510a"  # the admin role's ID (the binding's Group)
SYNC_ROLE_MAPPINGS = [{"keystone-role": ADMIN_ROLE, "groups": [ADMIN_GROUP]}]  # objects.keystone_sync_config

# token -> what Keystone says about it (user, domain, project, role names, the user's Keystone group names)
TOKENS: dict[str, dict[str, Any]] = {
    "admin": {"user": "alice", "domain": "Default", "project": PROJECT, "roles": [ADMIN_ROLE, "member"], "groups": []},
    "developer": {"user": "bob", "domain": "Default", "project": PROJECT, "roles": ["member"], "groups": ["devs"]},
    "forged-groups": {
        "user": "mallory",
        "domain": "Default",
        "project": PROJECT,
        "roles": ["member"],
        "groups": ["system:masters", ADMIN_GROUP],
    },
    "other-project": {
        "user": "eve",
        "domain": "Default",
        "project": OTHER_PROJECT,
        "roles": [ADMIN_ROLE],
        "groups": [],
    },
    "other-domain": {"user": "alice", "domain": "customer-b", "project": PROJECT, "roles": ["member"], "groups": []},
    "reserved-name": {
        "user": "system:kube-controller-manager",
        "domain": "Default",
        "project": PROJECT,
        "roles": ["member"],
        "groups": [],
    },
}


def upstream_review(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """k8s-keystone-auth v1.36.0's answer (authenticator.go + sync.go syncRoles), without the filter."""
    if request.get("kind") == "SubjectAccessReview":
        return 200, {**request, "status": {"allowed": False}}
    info = TOKENS.get(request["spec"]["token"])
    if info is None:
        return 401, {**request, "status": {"authenticated": False}}
    groups = [*info["groups"], info["project"]]
    for mapping in SYNC_ROLE_MAPPINGS:
        if mapping["keystone-role"] in info["roles"]:
            groups += mapping["groups"]
    user = {
        "username": info["user"],
        "uid": f"uid-{info['user']}",
        "groups": groups,
        "extra": {
            keystone_filter.ROLES: info["roles"],
            keystone_filter.PROJECT_ID: [info["project"]],
            "alpha.kubernetes.io/identity/project/name": ["shop"],
            "alpha.kubernetes.io/identity/user/domain/id": [f"id-{info['domain']}"],
            keystone_filter.DOMAIN_NAME: [info["domain"]],
        },
    }
    return 200, {**request, "status": {"authenticated": True, "user": user}}


def _serving_pair(directory: Path) -> tuple[str, str]:
    """A serving certificate for 127.0.0.1 like the PKI's k8s-keystone-auth leaf (here self-issued)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k8s-keystone-auth")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


class _Upstream(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        code, body = upstream_review(request)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The filter (the DaemonSet's program and environment) in front of the stand-in; yields (url, ca)."""
    directory = tmp_path_factory.mktemp("keystone")
    cert, key = _serving_pair(directory)
    upstream_port, filter_port = free_ports(1)[0], free_ports(1)[0]
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", upstream_port), _Upstream)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    upstream.socket = context.wrap_socket(upstream.socket, server_side=True)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()

    manifest = objects.keystone_auth_daemon_set(make_spec(), PROJECT, ADMIN_GROUP, "tls-cert")
    scope_filter = manifest["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in scope_filter["env"]}
    env.update(
        LISTEN_PORT=str(filter_port),
        UPSTREAM_URL=f"https://127.0.0.1:{upstream_port}/webhook",
        TLS_CERT=cert,
        TLS_KEY=key,
    )
    assert scope_filter["command"][:2] == ["python3", "-c"]
    process = subprocess.Popen(
        [sys.executable, "-c", scope_filter["command"][2]],
        env={**env, "PATH": os.environ["PATH"]},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", filter_port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"filter did not start: {process.stderr.read() if process.stderr else ''}")
                time.sleep(0.05)
        yield f"https://127.0.0.1:{filter_port}/webhook", cert
    finally:
        process.kill()
        process.wait(timeout=10)
        upstream.shutdown()


def review(webhook: tuple[str, str], token: str) -> tuple[int, dict[str, Any]]:
    """What the API server receives for a TokenReview of ``token`` (authentication.k8s.io/v1beta1)."""
    url, ca = webhook
    body = {"apiVersion": "authentication.k8s.io/v1beta1", "kind": "TokenReview", "spec": {"token": token}}
    return _post(url, ca, body)


def _post(url: str, ca: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=ca)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_stand_in_passes_keystone_group_names_through_as_k8s_keystone_auth_does() -> None:
    """Pins upstream behaviour: without the filter, a Keystone group would be a trusted Kubernetes group."""
    _, answer = upstream_review({"kind": "TokenReview", "spec": {"token": "forged-groups"}})
    assert {"system:masters", ADMIN_GROUP} <= set(answer["status"]["user"]["groups"])
    _, other = upstream_review({"kind": "TokenReview", "spec": {"token": "other-project"}})
    assert other["status"]["authenticated"] is True and ADMIN_GROUP in other["status"]["user"]["groups"]


def test_a_cluster_admin_of_the_project_gets_the_admin_group(webhook: tuple[str, str]) -> None:
    code, answer = review(webhook, "admin")
    assert code == 200 and answer["status"]["authenticated"] is True
    assert answer["status"]["user"]["username"] == "alice"
    assert answer["status"]["user"]["groups"] == [PROJECT, ADMIN_GROUP]


def test_keystone_group_names_never_become_kubernetes_groups(webhook: tuple[str, str]) -> None:
    for token in ("developer", "forged-groups"):
        code, answer = review(webhook, token)
        assert code == 200 and answer["status"]["authenticated"] is True, token
        assert answer["status"]["user"]["groups"] == [PROJECT], token


@pytest.mark.parametrize("token", ["other-project", "other-domain", "reserved-name"])
def test_identities_outside_the_cluster_are_refused(webhook: tuple[str, str], token: str) -> None:
    code, answer = review(webhook, token)
    assert code == 401 and answer["status"] == {"authenticated": False}


def test_unknown_tokens_and_access_reviews_pass_unchanged(webhook: tuple[str, str]) -> None:
    code, answer = review(webhook, "no-such-token")
    assert code == 401 and answer["status"] == {"authenticated": False}
    access = {"apiVersion": "authorization.k8s.io/v1beta1", "kind": "SubjectAccessReview", "spec": {"user": "alice"}}
    assert _post(webhook[0], webhook[1], access) == (200, {**access, "status": {"allowed": False}})


def test_scope_rules_as_a_pure_function() -> None:
    scope = keystone_filter.Scope(PROJECT, "Default", ADMIN_ROLE, ADMIN_GROUP)
    _, answer = upstream_review({"kind": "TokenReview", "spec": {"token": "forged-groups"}})
    scoped, reason = keystone_filter.scoped_review(answer, scope)
    assert reason == "" and scoped["status"]["user"]["groups"] == [PROJECT]
    _, other = upstream_review({"kind": "TokenReview", "spec": {"token": "other-project"}})
    assert keystone_filter.scoped_review(other, scope) == (
        {**other, "status": {"authenticated": False}},
        "token scoped to another project",
    )


def test_a_mapped_role_reaches_kubernetes_as_its_spec_group_only() -> None:
    # identity.roles (issue 19) map a Keystone role to a group through k8s-keystone-auth's sync
    # config; the filter keeps exactly those groups for the roles the token carries.
    scope = keystone_filter.Scope(PROJECT, "Default", ADMIN_ROLE, ADMIN_GROUP, (("viewer", "kaas:viewer"),))
    _, answer = upstream_review({"kind": "TokenReview", "spec": {"token": "forged-groups"}})
    status = answer["status"]
    extra = {**status["user"]["extra"], keystone_filter.ROLES: ["viewer", "member"]}
    review = {**answer, "status": {**status, "user": {**status["user"], "extra": extra}}}
    scoped, reason = keystone_filter.scoped_review(review, scope)
    assert reason == "" and scoped["status"]["user"]["groups"] == [PROJECT, "kaas:viewer"]
    scoped, _ = keystone_filter.scoped_review(answer, scope)  # the token without the role
    assert scoped["status"]["user"]["groups"] == [PROJECT]


def test_the_filter_is_configured_with_the_sync_configs_role_groups() -> None:
    import json

    from kaas.services import access, objects
    from kaas.spec import load_stack_spec

    spec = load_stack_spec("acme-prod")
    assert spec.identity.roles, "acme-prod maps roles beyond the admin role"
    daemon_set = objects.keystone_auth_daemon_set(spec, "project-id", "admin-role-id", "tls-cert")
    (filter_container,) = [
        c for c in daemon_set["spec"]["template"]["spec"]["containers"] if c["name"] == "scope-filter"
    ]
    env = {e["name"]: e["value"] for e in filter_container["env"]}
    synced = {m["keystone-role"]: m["groups"] for m in access.sync_role_mappings(spec)}
    assert json.loads(env["ROLE_GROUPS"]) == {role: groups[0] for role, groups in synced.items()}
    assert all(len(groups) == 1 for groups in synced.values())

"""Fresh, short-lived bootstrap tokens for the nodes a roll step builds (issue 17).

Why the roll mints them, not the program: a token's expiry is wall-clock time, and a
Pulumi program whose inputs hold the clock would differ on every preview; keyed on the
rollout record's revision instead, the program would have to reach into the cluster
(a Kubernetes provider through the API load balancer on every ``pulumi up``) and keep
a token alive from one ``up`` to the next, long after its node joined. The roll already
talks to the live API between steps and knows when a step builds a node: just before
such a step's ``pulumi up`` it creates a token that expires ``JOIN_TOKEN_TTL`` later,
hands it to that ``up`` as the secret config value ``kaas:joinToken`` (the program puts
it into the user data of the nodes the step builds, kaas.program.JOIN_TOKEN_CONFIG), and
deletes it once the step's gates saw the node Ready (joined). A roll that stops earlier
leaves it to expire; the controller manager's token cleaner deletes expired ones. The
program stays deterministic (no config value: the stack's first token, as before).

The token is a Secret of type ``bootstrap.kubernetes.io/token`` named
``bootstrap-token-<id>`` in kube-system, the format kubeadm's ``token create`` writes.
Upstream: staging/src/k8s.io/cluster-bootstrap/token/api/types.go (the type, the name
prefix, the keys ``token-id``, ``token-secret``, ``expiration`` (RFC 3339),
``usage-bootstrap-*``, ``auth-extra-groups``), plugin/pkg/auth/authenticator/token/bootstrap/
bootstrap.go (the API server authenticates ``<id>.<secret>`` as ``system:bootstrap:<id>``
while the Secret exists and has not expired) and pkg/controller/bootstrap/tokencleaner.go
(expired token Secrets are deleted).
"""

from __future__ import annotations

import secrets
import string
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kaas.bootstrap.pki import bootstrap_token
from kaas.roll.http import HttpError, JsonClient

NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
NAME_PREFIX = "bootstrap-token-"
# kubeadm's join groups: the node's CSR is auto-approved and it may read kubeadm-config.
NODE_GROUP = "system:bootstrappers:kubeadm:default-node-token"
MANAGED_BY = ("app.kubernetes.io/managed-by", "kaas-roll")
# Long enough for a server to boot and kubeadm join (its discovery waits up to 30 min) and
# for a rerun after a stopped gate to find it valid; short enough to be useless soon after.
JOIN_TOKEN_TTL = timedelta(hours=1)
_ALPHABET = string.ascii_lowercase + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class JoinToken:
    """A token created in the cluster; ``value`` (``<id>.<secret>``) is the credential."""

    token_id: str
    value: str = field(repr=False)
    expires: datetime


def token_secret(token_id: str, token_secret_part: str, expires: datetime, description: str) -> dict[str, Any]:
    """The Secret that makes ``<token_id>.<token_secret_part>`` a bootstrap token until ``expires``."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE,
        "metadata": {
            "name": NAME_PREFIX + token_id,
            "namespace": NAMESPACE,
            "labels": dict([MANAGED_BY]),
        },
        "stringData": {
            "description": description,
            "token-id": token_id,
            "token-secret": token_secret_part,
            "expiration": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": NODE_GROUP,
        },
    }


@dataclass
class JoinTokens:
    """Creates and deletes the roll's bootstrap tokens through the Kubernetes API (as the admin)."""

    api: JsonClient
    ttl: timedelta = JOIN_TOKEN_TTL
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def create(self, description: str) -> JoinToken:
        token_id, secret_part = _random(6), _random(16)
        value = bootstrap_token(token_id, secret_part)  # checks kubeadm's format
        expires = self.clock() + self.ttl
        self.api.request(
            "POST",
            f"/api/v1/namespaces/{NAMESPACE}/secrets",
            token_secret(token_id, secret_part, expires, description),
        )
        return JoinToken(token_id, value, expires)

    def created(self) -> list[str]:
        """The IDs of the roll's tokens still in the cluster (expired ones until the cleaner runs)."""
        query = urllib.parse.urlencode({"labelSelector": "=".join(MANAGED_BY), "fieldSelector": f"type={SECRET_TYPE}"})
        _, body, _ = self.api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets?{query}")
        names = [str(item["metadata"]["name"]) for item in body.get("items", [])]
        return sorted(n.removeprefix(NAME_PREFIX) for n in names if n.startswith(NAME_PREFIX))

    def delete(self, token_id: str) -> None:
        try:
            self.api.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/secrets/{NAME_PREFIX}{token_id}")
        except HttpError as error:
            if error.status != 404:
                raise

    def delete_all(self) -> list[str]:
        """Delete every token the roll created (its nodes have joined); the IDs deleted."""
        found = self.created()
        for token_id in found:
            self.delete(token_id)
        return found

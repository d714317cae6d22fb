"""A thin OpenStack client for the master gate: a Keystone token, then Octavia pool members.

- Keystone: ``POST /v3/auth/tokens`` (application credential), the token in the
  ``X-Subject-Token`` header and the load-balancer endpoint in the catalog
  (https://docs.openstack.org/api-ref/identity/v3/#authentication-and-token-management);
- Octavia: ``GET /v2/lbaas/pools?name=...`` and ``GET /v2/lbaas/pools/<id>/members``;
  a member's ``operating_status`` is ``ONLINE`` once the health monitor passes
  (https://docs.openstack.org/api-ref/load-balancer/v2/#list-members).
"""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

from kaas.roll.http import HttpError, JsonClient


def keystone_session(
    auth_url: str, credential_id: str, secret: str, interface: str = "public", context: ssl.SSLContext | None = None
) -> JsonClient:
    """An Octavia API client authenticated with an application credential."""
    keystone = JsonClient(auth_url, context=context)
    body = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": credential_id, "secret": secret},
            }
        }
    }
    _, answer, headers = keystone.request("POST", "/v3/auth/tokens", body)
    token = {k.lower(): v for k, v in headers.items()}.get("x-subject-token")
    if not token:
        raise HttpError("POST", auth_url + "/v3/auth/tokens", 0, "no X-Subject-Token in the answer")
    for service in answer.get("token", {}).get("catalog", []):
        if service.get("type") == "load-balancer":
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") == interface:
                    return JsonClient(str(endpoint["url"]), headers={"X-Auth-Token": token}, context=context)
    raise HttpError("POST", auth_url + "/v3/auth/tokens", 0, "no load-balancer endpoint in the catalog")


@dataclass(frozen=True)
class OctaviaClient:
    api: JsonClient

    def pool_members(self, pool_name: str) -> list[dict[str, Any]]:
        _, body, _ = self.api.request("GET", f"/v2/lbaas/pools?name={urllib.parse.quote(pool_name)}")
        pools = body.get("pools", [])
        if len(pools) != 1:
            raise HttpError("GET", f"pools?name={pool_name}", 404, f"{len(pools)} pools named {pool_name}")
        _, members, _ = self.api.request("GET", f"/v2/lbaas/pools/{pools[0]['id']}/members")
        return list(members.get("members", []))

    def member_status(self, pool_name: str, address: str) -> str | None:
        """The ``operating_status`` of the pool member at ``address`` (None: not a member)."""
        for member in self.pool_members(pool_name):
            if member.get("address") == address:
                return str(member.get("operating_status"))
        return None

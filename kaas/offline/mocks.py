"""Mocks for the OpenStack cloud and the Kubernetes API, and nothing else.

Each resource gets a stable ID and plausible computed attributes derived from its
name and inputs (never from a counter), so two plans of the same spec are equal
and a diff between plans shows only what the spec or the code changed. Resource
types the program computes locally (pulumi-tls, pulumi-random) are emulated for
real by :mod:`kaas.offline.local`, because the artifacts built from them (etcd
certificates, kubeconfigs) are checked by real tools.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from kaas.offline import local

State = dict[str, Any]
Handler = Callable[[MockResourceArgs, str], State]

_NAMESPACE = uuid.UUID("6b7a1d52-5a43-4c43-9a55-2f3c5b1f0a10")
# TEST-NET-3 (RFC 5737): documentation addresses stand in for the public floating pool.
_FLOATING_POOL = ipaddress.IPv4Network("203.0.113.0/24")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def floating_address(key: str) -> str:
    hosts = _FLOATING_POOL.num_addresses - 2
    return str(_FLOATING_POOL.network_address + 1 + _digest(key) % hosts)


def _port(args: MockResourceArgs, rid: str) -> State:
    fixed = args.inputs.get("fixedIps") or []
    addresses = [f["ipAddress"] for f in fixed if f.get("ipAddress")]
    return {"allFixedIps": addresses, "macAddress": "fa:16:3e:" + rid[:2] + ":" + rid[2:4] + ":" + rid[4:6]}


def _floating_ip(args: MockResourceArgs, rid: str) -> State:
    return {"address": args.inputs.get("address") or floating_address(args.name)}


def _instance(args: MockResourceArgs, rid: str) -> State:
    networks = args.inputs.get("networks") or []
    fixed = next((n.get("fixedIpV4") for n in networks if n.get("fixedIpV4")), None)
    return {"accessIpV4": fixed or "", "allMetadata": args.inputs.get("metadata") or {}}


def _load_balancer(args: MockResourceArgs, rid: str) -> State:
    return {
        "vipAddress": args.inputs.get("vipAddress", ""),
        "vipPortId": args.inputs.get("vipPortId", stable_id(args.name, "vip")),
    }


def _role(args: MockResourceArgs, rid: str) -> State:
    return {"id": rid.replace("-", "")}


def _ec2_credential(args: MockResourceArgs, rid: str) -> State:
    return {"access": rid.replace("-", "")[:20].upper(), "secret": hashlib.sha256(rid.encode()).hexdigest()}


def _application_credential(args: MockResourceArgs, rid: str) -> State:
    # Keystone gives every credential a new ID and secret: the next generation (its name carries
    # the date, kaas.openstack.credentials) is a replacement, never the same values again.
    generation = str(args.inputs.get("name", ""))
    return {
        "id": stable_id(rid, generation),
        "secret": hashlib.sha256(("appcred" + rid + generation).encode()).hexdigest(),
    }


HANDLERS: dict[str, Handler] = {
    "openstack:networking/port:Port": _port,
    "openstack:networking/floatingIp:FloatingIp": _floating_ip,
    "openstack:compute/instance:Instance": _instance,
    "openstack:loadbalancer/loadBalancer:LoadBalancer": _load_balancer,
    "openstack:identity/role:Role": _role,
    "openstack:identity/ec2CredentialV3:Ec2CredentialV3": _ec2_credential,
    "openstack:identity/applicationCredential:ApplicationCredential": _application_credential,
    **local.HANDLERS,
}


def _call_get_network(args: MockCallArgs) -> State:
    name = str(args.args.get("name", ""))
    return {"id": stable_id("network", name), "name": name, "external": True}


def _call_get_project(args: MockCallArgs) -> State:
    name = str(args.args.get("name", "project"))
    return {"id": stable_id("project", name).replace("-", ""), "name": name}


def _call_get_user(args: MockCallArgs) -> State:
    name = str(args.args.get("name", "user"))
    return {"id": stable_id("user", name).replace("-", ""), "name": name}


def _call_get_zone(args: MockCallArgs) -> State:
    name = str(args.args.get("name", "zone."))
    return {"id": stable_id("zone", name), "name": name}


def _call_get_image(args: MockCallArgs) -> State:
    name = str(args.args.get("name", "image"))
    return {"id": stable_id("image", name), "name": name}


def _call_get_auth_scope(args: MockCallArgs) -> State:
    project = "operator-project"
    return {
        "id": str(args.args.get("name", "current")),
        "projectId": stable_id("project", project).replace("-", ""),
        "projectName": project,
        "userId": stable_id("user", "operator").replace("-", ""),
        "userName": "operator",
    }


def _call_get_role(args: MockCallArgs) -> State:
    name = str(args.args.get("name", "role"))
    return {"id": stable_id("role", name).replace("-", ""), "name": name}


CALLS: dict[str, Callable[[MockCallArgs], State]] = {
    "openstack:identity/getRole:getRole": _call_get_role,
    "openstack:networking/getNetwork:getNetwork": _call_get_network,
    "openstack:identity/getProject:getProject": _call_get_project,
    "openstack:identity/getUser:getUser": _call_get_user,
    "openstack:dns/getDnsZone:getDnsZone": _call_get_zone,
    "openstack:images/getImage:getImage": _call_get_image,
    "openstack:identity/getAuthScope:getAuthScope": _call_get_auth_scope,
}


class CloudMocks(Mocks):
    """Answers for the OpenStack and Kubernetes providers: stable IDs, echoed inputs, computed attributes.

    In a preview (``pulumi preview``: nothing exists yet) a resource's answer is its inputs
    only: no ID and nothing the provider computes, so the runtime leaves those unknown
    and the program's ``apply`` callbacks on them do not run.
    """

    def __init__(self, preview: bool = False) -> None:
        self.preview = preview

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, State]:
        if not args.custom or self.preview:
            return None, dict(args.inputs)
        rid = stable_id(args.typ, args.name)
        handler = HANDLERS.get(args.typ)
        computed = handler(args, rid) if handler else {}
        state = {**args.inputs, **computed}
        state.setdefault("id", rid)
        return str(state.get("id", rid)), state

    def call(self, args: MockCallArgs) -> State | tuple[State, list[tuple[str, str]]]:  # type: ignore[override]
        handler = CALLS.get(args.token)
        if handler is None:
            return {}, [("token", f"the offline engine has no mock for {args.token}")]
        return handler(args)

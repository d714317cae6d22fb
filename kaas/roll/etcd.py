"""A thin etcd membership client: ``etcdctl`` (v3 API) with the stack's client certificate.

Upstream semantics relied on (https://etcd.io/docs/v3.6/op-guide/runtime-configuration/,
https://etcd.io/docs/v3.6/learning/design-learner/):
- ``member add --learner`` registers a non-voting member; it has no name until its
  process starts and joins with ``initial-cluster-state: existing``;
- ``member promote`` fails with "can only promote a learner member which is in sync
  with leader" until the learner has caught up: retried until it succeeds;
- ``member remove`` of a voting member lowers the quorum; done only while every other
  member is healthy;
- removing the leader costs an election (no leader until a follower's election timeout
  fires): leadership is moved to another member first (``move-leader``);
- ``endpoint health`` is a linearizable read through each endpoint (it fails without quorum).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class EtcdError(Exception):
    """etcdctl failed (its stderr, one line)."""


@dataclass(frozen=True)
class EtcdTLS:
    """Paths of the CA bundle and the client certificate and key (the stack's etcd client cert)."""

    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class Member:
    id: int
    name: str  # empty until the member's process has started and joined
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    learner: bool

    @property
    def hex_id(self) -> str:
        return format(self.id, "x")

    @property
    def started(self) -> bool:
        return bool(self.name) and bool(self.client_urls)


def _member(data: dict[str, Any]) -> Member:
    return Member(
        id=int(data["ID"]),
        name=str(data.get("name", "")),
        peer_urls=tuple(data.get("peerURLs", ())),
        client_urls=tuple(data.get("clientURLs", ())),
        learner=bool(data.get("isLearner", False)),
    )


@dataclass(frozen=True)
class EtcdCtl:
    tls: EtcdTLS
    binary: str = "etcdctl"
    dial_timeout: float = 2.0
    command_timeout: float = 5.0

    def run(self, endpoints: Sequence[str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [
            self.binary,
            f"--endpoints={','.join(endpoints)}",
            f"--cacert={self.tls.ca}",
            f"--cert={self.tls.cert}",
            f"--key={self.tls.key}",
            f"--dial-timeout={self.dial_timeout}s",
            f"--command-timeout={self.command_timeout}s",
            *args,
        ]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**os.environ, "ETCDCTL_API": "3"},
                timeout=self.dial_timeout + self.command_timeout + 10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise EtcdError(f"etcdctl {' '.join(args)}: no answer") from None
        if check and result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise EtcdError(f"etcdctl {' '.join(args)}: {lines[-1] if lines else f'exit {result.returncode}'}")
        return result

    def members(self, endpoints: Sequence[str]) -> list[Member]:
        data = json.loads(self.run(endpoints, "member", "list", "-w", "json").stdout)
        return [_member(m) for m in data.get("members", [])]

    def add_learner(self, endpoints: Sequence[str], name: str, peer_url: str) -> Member:
        output = self.run(endpoints, "member", "add", name, "--learner", f"--peer-urls={peer_url}", "-w", "json")
        return _member(json.loads(output.stdout)["member"])

    def promote(self, endpoints: Sequence[str], member: Member) -> None:
        self.run(endpoints, "member", "promote", member.hex_id)

    def remove(self, endpoints: Sequence[str], member: Member) -> None:
        self.run(endpoints, "member", "remove", member.hex_id)

    def leader(self, endpoints: Sequence[str]) -> int | None:
        """The leader's member ID as the endpoints report it (None: no endpoint knows one)."""
        result = self.run(endpoints, "endpoint", "status", "-w", "json", check=False)
        try:
            entries = json.loads(result.stdout)
        except json.JSONDecodeError:
            return None
        leaders = {int(e["Status"]["leader"]) for e in entries if e.get("Status", {}).get("leader")}
        return leaders.pop() if len(leaders) == 1 else None

    def move_leader(self, leader_endpoint: str, member: Member) -> None:
        """Hand leadership to ``member`` (sent to the current leader's endpoint)."""
        self.run([leader_endpoint], "move-leader", member.hex_id)

    def health(self, endpoints: Sequence[str]) -> dict[str, str | None]:
        """Each endpoint -> None when healthy, else what went wrong."""
        result = self.run(endpoints, "endpoint", "health", "-w", "json", check=False)
        found: dict[str, str | None] = {e: "no answer" for e in endpoints}
        try:
            entries = json.loads(result.stdout)
        except json.JSONDecodeError:
            return {e: (result.stderr.strip().splitlines() or ["unhealthy"])[-1] for e in endpoints}
        for entry in entries if isinstance(entries, list) else []:
            endpoint = str(entry.get("endpoint", ""))
            found[endpoint] = None if entry.get("health") else str(entry.get("error") or "unhealthy")
        return found

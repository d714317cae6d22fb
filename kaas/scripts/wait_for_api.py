#!/usr/bin/env python3
"""Wait until a Kubernetes API server answers /readyz with 200, verifying its CA.

Runs on the operator's machine during `pulumi up` (a pulumi-command resource), so
the Helm releases start only when the control plane that kubeadm brought up
answers. Anonymous access is limited to the health endpoints, so no credentials
are needed. Standard library only.

    KAAS_CA_PEM="$(cat ca.crt)" wait_for_api.py https://api.example:6443 [--connect-to 203.0.113.7]
        [--timeout 900] [--interval 5] [--authorised PATH]

``--authorised PATH``: ready also needs ``GET PATH`` to answer 200 to the client
certificate in ``KAAS_CLIENT_CERT_PEM``/``KAAS_CLIENT_KEY_PEM``. The program's credential
is cluster-admin only through kubeadm's ``kubeadm:cluster-admins`` ClusterRoleBinding,
which ``kubeadm init`` creates a little after the API server is ready; the gate asks for
that very binding, so the first Kubernetes resource never meets a 403.

``--connect-to`` dials that address but still verifies the certificate for the
URL's host, so the gate works before the DNS name resolves on the operator's machine.

Exit 0 when ready; 1 on timeout; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import ssl
import sys
import tempfile
import time
import urllib.parse


class _PinnedConnection(http.client.HTTPSConnection):
    """HTTPS to ``address`` while verifying the certificate for ``host``."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def probe(url: str, connect_to: str | None, context: ssl.SSLContext, timeout: float, path: str = "/readyz") -> str:
    """``"ready"`` or a one-line reason why not."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    connection = _PinnedConnection(host, port, connect_to or host, context, timeout)
    try:
        connection.request("GET", f"{parts.path.rstrip('/')}{path}")
        status = connection.getresponse().status
        return "ready" if status == 200 else f"HTTP {status}" + ("" if path == "/readyz" else f" for {path}")
    except (OSError, http.client.HTTPException) as error:
        return f"unreachable: {error}"
    finally:
        connection.close()


def client_context(ca_pem: str, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A context presenting the client certificate (ssl loads it only from files: a private temporary directory)."""
    context = ssl.create_default_context(cadata=ca_pem)
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = os.path.join(folder, "client.crt"), os.path.join(folder, "client.key")
        for path, text in ((cert_file, cert_pem), (key_file, key_pem)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(text)
        context.load_cert_chain(cert_file, key_file)
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wait for a Kubernetes API server to be ready.")
    parser.add_argument("url", help="API server base URL, e.g. https://api.c.example:6443")
    parser.add_argument("--connect-to", help="address to dial instead of the URL's host (verified as the host)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait in total")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between probes")
    parser.add_argument("--authorised", metavar="PATH", help="also wait until GET PATH answers 200 to the client cert")
    args = parser.parse_args(argv)
    ca_pem = os.environ.get("KAAS_CA_PEM", "")
    if "BEGIN CERTIFICATE" not in ca_pem:
        print("wait_for_api: KAAS_CA_PEM must hold the cluster CA certificate (PEM)", file=sys.stderr)
        return 2
    context = ssl.create_default_context(cadata=ca_pem)
    client: ssl.SSLContext | None = None
    if args.authorised:
        cert_pem, key_pem = os.environ.get("KAAS_CLIENT_CERT_PEM", ""), os.environ.get("KAAS_CLIENT_KEY_PEM", "")
        if "BEGIN CERTIFICATE" not in cert_pem or "PRIVATE KEY" not in key_pem:
            print("wait_for_api: --authorised needs KAAS_CLIENT_CERT_PEM and KAAS_CLIENT_KEY_PEM", file=sys.stderr)
            return 2
        client = client_context(ca_pem, cert_pem, key_pem)
    deadline = time.monotonic() + args.timeout
    last_report = 0.0
    while True:
        timeout = min(10.0, args.interval + 5)
        status = probe(args.url, args.connect_to, context, timeout=timeout)
        if status == "ready" and client is not None:
            status = probe(args.url, args.connect_to, client, timeout=timeout, path=args.authorised)
        if status == "ready":
            print(f"wait_for_api: {args.url} is ready", file=sys.stderr)
            return 0
        now = time.monotonic()
        if now >= deadline:
            print(f"wait_for_api: {args.url} not ready after {args.timeout:.0f}s ({status})", file=sys.stderr)
            return 1
        if now - last_report >= 30:
            remaining = deadline - now
            print(f"wait_for_api: waiting for {args.url} ({status}); {remaining:.0f}s left", file=sys.stderr)
            last_report = now
        time.sleep(min(args.interval, max(0.0, deadline - now)))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Wait until a Kubernetes API server answers /readyz with 200, verifying its CA.

Runs on the operator's machine during `pulumi up` (a pulumi-command resource), so
the Helm releases start only when the control plane that kubeadm brought up
answers. Anonymous access is limited to the health endpoints, so no credentials
are needed. Standard library only.

    KAAS_CA_PEM="$(cat ca.crt)" wait_for_api.py https://api.example:6443 [--timeout 900] [--interval 5]

Exit 0 when ready; 1 on timeout; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import time
import urllib.error
import urllib.request


def probe(url: str, context: ssl.SSLContext, timeout: float) -> str:
    """``"ready"`` or a one-line reason why not."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/readyz", context=context, timeout=timeout) as response:
            return "ready" if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"unreachable: {reason}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wait for a Kubernetes API server to be ready.")
    parser.add_argument("url", help="API server base URL, e.g. https://api.c.example:6443")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait in total")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between probes")
    args = parser.parse_args(argv)
    ca_pem = os.environ.get("KAAS_CA_PEM", "")
    if "BEGIN CERTIFICATE" not in ca_pem:
        print("wait_for_api: KAAS_CA_PEM must hold the cluster CA certificate (PEM)", file=sys.stderr)
        return 2
    context = ssl.create_default_context(cadata=ca_pem)
    deadline = time.monotonic() + args.timeout
    last_report = 0.0
    while True:
        status = probe(args.url, context, timeout=min(10.0, args.interval + 5))
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

"""ApiReadiness: the gate between the node tiers and the Kubernetes layer.

Nothing in OpenStack says when `kubeadm init` has finished on the first master, so
the Kubernetes provider waits for this gate: a pulumi-command resource that runs
`kaas/scripts/wait_for_api.py` on the operator's machine until the API answers
`/readyz` through the load balancer's floating IP, verified with the cluster CA, and
the program's own client certificate may read kubeadm's ``kubeadm:cluster-admins``
ClusterRoleBinding: the binding that makes it cluster-admin exists (``kubeadm init``
creates it shortly after the API server is ready).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_command as command

SCRIPT = "kaas/scripts/wait_for_api.py"  # relative to the project directory, where Pulumi runs commands
DEFAULT_TIMEOUT_S = 1200


class ApiReadiness(pulumi.ComponentResource):
    """Completes when the API server behind ``api_url`` is ready."""

    ready: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        api_url: pulumi.Input[str],
        connect_to: pulumi.Input[str],
        ca_cert_pem: pulumi.Input[str],
        client_cert_pem: pulumi.Input[str],
        client_key_pem: pulumi.Input[str],
        authorised_path: str,
        after: Sequence[pulumi.Resource],
        timeout_s: int = DEFAULT_TIMEOUT_S,
        opts: pulumi.ResourceOptions | None = None,
        command_suffix: str = "wait-for-api",
    ) -> None:
        super().__init__("kaas:index:ApiReadiness", name, None, opts)
        # The suffix names the cluster's one gate (kaas.offline.durations.READINESS_GATE_SUFFIX);
        # another gate (kaas.bootstrap.kubeadm_certs) takes its own.
        wait = command.local.Command(
            f"{name}-{command_suffix}",
            create=pulumi.Output.concat(
                "python3 ",
                SCRIPT,
                " ",
                api_url,
                " --connect-to ",
                connect_to,
                f" --timeout {timeout_s}",
                f" --authorised {authorised_path}",
            ),
            environment={
                "KAAS_CA_PEM": ca_cert_pem,
                "KAAS_CLIENT_CERT_PEM": client_cert_pem,
                "KAAS_CLIENT_KEY_PEM": pulumi.Output.secret(client_key_pem),
            },
            triggers=[api_url, ca_cert_pem],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
        self.ready = wait.stdout
        self.register_outputs({"ready": self.ready})

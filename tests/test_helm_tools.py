"""The real helm and kubectl the tests use, and the planned values reaching helm template."""

from __future__ import annotations

import subprocess

from kaas.offline.plan import plan_stack
from tests.helm import helm_bin, kubectl_bin, render_release


def test_helm_is_v4_and_kubectl_is_v1_34() -> None:
    helm = subprocess.run([str(helm_bin()), "version", "--short"], capture_output=True, text=True, check=True)
    kubectl = subprocess.run([str(kubectl_bin()), "version", "--client"], capture_output=True, text=True, check=True)
    assert helm.stdout.startswith("v4.")
    assert "Client Version: v1.34." in kubectl.stdout


def test_planned_values_reach_the_rendered_chart() -> None:
    (release,) = [
        r for r in plan_stack("acme-prod").by_type("kubernetes:helm.sh/v3:Release") if r.name == "metrics-server"
    ]
    objects = render_release(release)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["metadata"]["namespace"] == release.inputs["namespace"]
    assert deployment["spec"]["replicas"] == release.inputs["values"]["replicas"] == 2
    assert any(o["kind"] == "PodDisruptionBudget" for o in objects)

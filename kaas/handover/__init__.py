"""Customer handover documents rendered from the typed stack outputs."""

from kaas.handover.kubeconfig import kubeconfig, kubeconfig_yaml
from kaas.handover.render import render, render_html, render_markdown
from kaas.handover.source import HandoverSource, handover_outputs, read_outputs_file

__all__ = [
    "HandoverSource",
    "handover_outputs",
    "kubeconfig",
    "kubeconfig_yaml",
    "read_outputs_file",
    "render",
    "render_html",
    "render_markdown",
]

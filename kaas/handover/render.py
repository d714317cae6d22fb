"""Handover documents from typed stack outputs: Markdown, and self-contained printable HTML.

The content lives once, in ``templates/handover.md.j2`` (a small Markdown subset:
headings, paragraphs, one-level nested lists, checklists, tables, fenced code,
block quotes; inline code, bold, autolinks). The HTML document is that Markdown
turned into HTML by :func:`markdown_to_html` (which escapes every text it emits),
placed in ``templates/handover.html.j2`` (autoescaped) with inline CSS and the
cluster layout drawn by ``templates/layout.svg.j2`` (autoescaped). No external asset.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from kaas.handover.demo_app import DEMO_NAME, DEMO_NAMESPACE, demo_host, demo_manifests_yaml
from kaas.outputs import StackOutputs
from kaas.verify.report import Report, Status

Kind = Literal["production", "demo"]
Format = Literal["markdown", "html"]
TEMPLATES = Path(__file__).parent / "templates"


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["code"] = lambda value: f"`{value}`"
    return env


def ca_fingerprint(pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    digest = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def service_urls(outputs: StackOutputs) -> list[tuple[str, str]]:
    """(label, URL) of every web UI the cluster serves through its ingress."""
    s = outputs.services
    found = [
        ("Grafana", s.grafana.url if s.grafana else None),
        ("Prometheus", s.prometheus.url if s.prometheus else None),
        ("Prometheus (applications)", s.app_prometheus.url if s.app_prometheus else None),
        ("Alertmanager", s.alertmanager.url if s.alertmanager else None),
        ("Log dashboards", s.logging.url if s.logging else None),
        ("Registry", s.registry.url if s.registry else None),
        ("Dashboard", s.dashboard.url if s.dashboard else None),
    ]
    return [(label, url) for label, url in found if url]


def binding_yaml(outputs: StackOutputs) -> str:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": outputs.rbac.cluster_admin_binding},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": outputs.rbac.group_id}],
        "roleRef": {"kind": "ClusterRole", "name": outputs.rbac.cluster_role, "apiGroup": "rbac.authorization.k8s.io"},
    }
    return yaml.safe_dump(binding, sort_keys=False)


# Each pre-handover checklist item and the `kaas verify` checks that prove it.
CHECKLIST_PROOF: dict[str, tuple[str, ...]] = {
    "dashboard": ("tls-dashboard", "nodes"),
    "admin-access": ("api-admin", "nodes"),
    "user-login": ("api-admin", "api-denied"),
    "registry-pull": ("registry-pull",),
}


def _when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


class Checklist:
    """The boxes of the pre-handover checklist: unticked without a report; with one, ticked
    when every proving check passed (with its time), else marked failed or not verified."""

    def __init__(self, report: Report | None) -> None:
        self.report = report

    def box(self, item: str) -> str:
        if self.report is None:
            return "[ ]"
        results = [self.report.result(check) for check in CHECKLIST_PROOF[item]]
        return "[x]" if all(r is not None and r.status is Status.PASSED for r in results) else "[ ]"

    def note(self, item: str) -> str:
        if self.report is None:
            return ""
        results = {check: self.report.result(check) for check in CHECKLIST_PROOF[item]}
        failed = [(c, r) for c, r in results.items() if r is not None and r.status is Status.FAILED]
        if failed:
            what = "; ".join(f"`{c}`: {r.detail}" for c, r in failed)
            return f" **FAILED** at {_when(failed[0][1].started_at)}: {what}"
        unproven = [(c, r) for c, r in results.items() if r is None or r.status is not Status.PASSED]
        if unproven:
            what = "; ".join(
                f"`{c}` " + ("was not run" if r is None else f"could not run: {r.detail}") for c, r in unproven
            )
            return f" **NOT VERIFIED**: {what}"
        last = max(r.started_at for r in results.values() if r is not None)
        return f" Verified at {_when(last)} by `kaas verify` ({', '.join(f'`{c}`' for c in results)})."

    def rows(self) -> list[dict[str, str]]:
        if self.report is None:
            return []
        label = {Status.PASSED: "passed", Status.FAILED: "**FAILED**", Status.COULD_NOT_RUN: "**could not run**"}
        return [
            {
                "id": r.id,
                "status": label[r.status] + ("" if r.required else " (optional)"),
                "time": _when(r.started_at),
                "detail": _cell(r.detail),
            }
            for r in self.report.checks
        ]


def context(
    outputs: StackOutputs, kind: Kind, preview: bool, origin: str, html_output: bool, verify: Report | None = None
) -> dict[str, Any]:
    ingress = outputs.networking.ingress
    default_sc = next((sc.name for sc in outputs.openstack.storage_classes if sc.is_default), "(none)")
    return {
        "o": outputs,
        "kind": kind,
        "preview": preview,
        "origin": origin,
        "html": html_output,
        "ca_fingerprint": ca_fingerprint(outputs.ca_certificate),
        "service_urls": service_urls(outputs),
        "binding_yaml": binding_yaml(outputs),
        "manifests_yaml": demo_manifests_yaml(outputs),
        "demo_url": f"https://{demo_host(outputs)}" if ingress is not None else None,
        "demo_namespace": DEMO_NAMESPACE,
        "demo_name": DEMO_NAME,
        "registry_host": outputs.services.registry.url.removeprefix("https://") if outputs.services.registry else "",
        "default_storage_class": default_sc,
        "checklist": Checklist(verify),
        "verify": verify,
        "when": _when,
    }


def render_markdown(
    outputs: StackOutputs,
    kind: Kind,
    preview: bool = False,
    origin: str = "stack outputs",
    verify: Report | None = None,
) -> str:
    return _render_markdown(outputs, kind, preview, origin, html_output=False, verify=verify)


def _render_markdown(
    outputs: StackOutputs, kind: Kind, preview: bool, origin: str, html_output: bool, verify: Report | None = None
) -> str:
    if verify is not None and verify.cluster != outputs.cluster_name:
        raise ValueError(f"the verify report is of cluster {verify.cluster!r}, not {outputs.cluster_name!r}")
    template = _environment(autoescape=False).get_template("handover.md.j2")
    text = template.render(context(outputs, kind, preview, origin, html_output, verify))
    return re.sub(r"\n{3,}", "\n\n", text)


def render_html(
    outputs: StackOutputs,
    kind: Kind,
    preview: bool = False,
    origin: str = "stack outputs",
    verify: Report | None = None,
) -> str:
    markdown = _render_markdown(outputs, kind, preview, origin, html_output=True, verify=verify)
    env = _environment(autoescape=True)
    diagram = Markup(env.get_template("layout.svg.j2").render(layout_diagram(outputs)).strip())
    body = markdown_to_html(markdown).replace(
        Markup("<!--diagram-->"), Markup('<figure class="diagram">') + diagram + Markup("</figure>")
    )
    title = f"Handover: cluster {outputs.cluster_name} ({kind})"
    return env.get_template("handover.html.j2").render(title=title, body=Markup(body), preview=preview)


def render(
    outputs: StackOutputs,
    kind: Kind,
    fmt: Format,
    preview: bool = False,
    origin: str = "stack outputs",
    verify: Report | None = None,
) -> str:
    if fmt == "html":
        return render_html(outputs, kind, preview, origin, verify)
    return render_markdown(outputs, kind, preview, origin, verify)


# --- the cluster layout as SVG -------------------------------------------------------------

_MAX_DRAWN = 9


def layout_diagram(outputs: StackOutputs) -> dict[str, Any]:
    """Positions of the diagram's boxes: floating IPs and load balancers on top, tiers below."""
    layout = outputs.layout
    width = 760
    column = width // 3
    tiers = []
    for index, (title, tier) in enumerate(
        (("etcd", layout.etcd), ("masters", layout.masters), ("workers", layout.workers))
    ):
        drawn = min(tier.count, _MAX_DRAWN)
        x = 10 + index * column
        nodes = [{"x": x + 14 + (i % 3) * 72, "y": 250 + (i // 3) * 34} for i in range(drawn)]
        tiers.append(
            {
                "title": title,
                "x": x,
                "width": column - 20,
                "count": tier.count,
                "more": tier.count - drawn,
                "flavor": f"{tier.flavor.name}: {tier.flavor.vcpus} vCPU / {tier.flavor.ram_gb} GB / {tier.flavor.disk_gb} GB",
                "zones": ", ".join(tier.availability_zones),
                "policy": tier.server_group_policy,
                "nodes": nodes,
                "center": x + (column - 20) // 2,
            }
        )
    rows = (min(max(layout.etcd.count, layout.masters.count, layout.workers.count), _MAX_DRAWN) + 2) // 3
    ingress = outputs.networking.ingress
    return {
        "width": width,
        "height": 290 + rows * 34 + 20,
        "tiers": tiers,
        "api": {
            "label": outputs.openstack.load_balancers[0].name,
            "ip": outputs.api.floating_ip,
            "port": outputs.api.port,
            "center": tiers[1]["center"],
        },
        "ingress": {
            "label": f"{ingress.controller} ({ingress.replicas} replicas)",
            "ip": ingress.floating_ip,
            "hosts": ingress.host_pattern,
            "center": tiers[2]["center"],
        }
        if ingress
        else None,
        "cluster": outputs.cluster_name,
        "network": f"{outputs.openstack.network.node_cidr} (pods {outputs.networking.pod_cidr})",
    }


# --- the Markdown subset to HTML ----------------------------------------------------------

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|&lt;(https?://[^\s&]+(?:&amp;[^\s&]+)*)&gt;")


def inline(text: str) -> str:
    """Escape ``text`` and turn `code`, **bold** and <https://autolinks> into HTML."""
    escaped = html.escape(text, quote=True)

    def replace(match: re.Match[str]) -> str:
        code, bold, url = match.groups()
        if code is not None:
            return f"<code>{code}</code>"
        if bold is not None:
            return f"<strong>{bold}</strong>"
        return f'<a href="{url}">{url}</a>'

    return _INLINE.sub(replace, escaped)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def markdown_to_html(markdown: str) -> Markup:
    """The subset of Markdown the handover template writes, as HTML (every text escaped)."""
    lines = markdown.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            lang = line[3:].strip()
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            i += 1
            cls = f' class="language-{html.escape(lang)}"' if lang else ""
            out.append(f"<pre><code{cls}>{html.escape(chr(10).join(block))}</code></pre>")
        elif line == "<!--diagram-->":
            out.append(line)
            i += 1
        elif match := re.match(r"^(#{1,4}) (.*)$", line):
            level, text = len(match.group(1)), match.group(2)
            out.append(f'<h{level} id="{_slug(text)}">{inline(text)}</h{level}>')
            i += 1
        elif line.startswith("> "):
            quote = []
            while i < len(lines) and lines[i].startswith("> "):
                quote.append(lines[i][2:])
                i += 1
            out.append(f"<blockquote><p>{inline(' '.join(quote))}</p></blockquote>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([cell.strip() for cell in lines[i].strip().strip("|").split("|")])
                i += 1
            head, body = rows[0], [r for r in rows[1:] if not all(set(c) <= {"-", ":"} for c in r)]
            table = [
                "<table>",
                "<thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr></thead>",
                "<tbody>",
            ]
            table += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in body]
            table.append("</tbody></table>")
            out.append("\n".join(table))
        elif line.startswith("- "):
            items: list[tuple[str, list[str]]] = []
            while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  - ")):
                if lines[i].startswith("- "):
                    items.append((lines[i][2:], []))
                else:
                    items[-1][1].append(lines[i][4:])
                i += 1
            checklist = all(text.startswith(("[ ] ", "[x] ")) for text, _ in items)
            parts = ['<ul class="checklist">' if checklist else "<ul>"]
            for text, children in items:
                box = (
                    '<span class="box">&#9745;</span> '
                    if text.startswith("[x]")
                    else '<span class="box">&#9744;</span> '
                )
                body_html = box + inline(text[4:]) if checklist else inline(text)
                if children:
                    body_html += "<ul>" + "".join(f"<li>{inline(c)}</li>" for c in children) + "</ul>"
                parts.append(f"<li>{body_html}</li>")
            parts.append("</ul>")
            out.append("\n".join(parts))
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#{1,4} |```|> |\||- )", lines[i]):
                paragraph.append(lines[i])
                i += 1
            out.append(f"<p>{inline(' '.join(paragraph))}</p>")
    return Markup("\n".join(out))

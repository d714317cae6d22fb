"""Thin clients for the live APIs the checks read: Keystone, Kubernetes, Prometheus, the registry, S3.

Each is a few requests over :class:`kaas.verify.http.HttpClient`, shaped after the
upstream API reference named in its docstring, and raises :class:`ApiError` for
an answer it did not expect (``UnreachableError``/``TlsError`` come from the transport).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import hmac
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from kaas.verify.http import HttpClient, Response


class ApiError(Exception):
    """An HTTP answer the client did not expect."""

    def __init__(self, what: str, response: Response) -> None:
        text = response.body[:200].decode("utf-8", "replace").strip()
        super().__init__(f"{what}: HTTP {response.status}" + (f" ({text})" if text else ""))
        self.status = response.status


# --- Keystone ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """An OpenStack user's password credentials (from OS_USERNAME/OS_PASSWORD or the like)."""

    username: str
    password: str


def keystone_token(client: HttpClient, user: Credentials, domain: str, project: str | None) -> str:
    """A scoped token from ``POST /v3/auth/tokens`` (password method); the token is the
    ``X-Subject-Token`` header of the 201 answer (Keystone API v3, "Password authentication
    with scoped authorization"). ``client`` is based at the auth URL (``.../v3``)."""
    scope: dict[str, Any] = (
        {"project": {"name": project, "domain": {"name": domain}}} if project else {"domain": {"name": domain}}
    )
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user.username, "domain": {"name": domain}, "password": user.password}},
            },
            "scope": scope,
        }
    }
    answer = client.request(
        "POST", "/auth/tokens", json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    token = answer.header("X-Subject-Token")
    if answer.status != 201 or not token:
        raise ApiError(f"Keystone token for {user.username}", answer)
    return token


# --- Kubernetes ----------------------------------------------------------------------------


class KubeClient:
    """GETs against the Kubernetes API (paths as in the API reference, JSON answers)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        answer = self.http.get(path, query=query)
        if answer.status != 200:
            raise ApiError(f"GET {path}", answer)
        return answer.json()

    def get_or_none(self, path: str) -> Any:
        answer = self.http.get(path)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise ApiError(f"GET {path}", answer)
        return answer.json()

    def service_proxy(self, namespace: str, service: str) -> HttpClient:
        """The API server's proxy to a Service port (``/api/v1/namespaces/NS/services/NAME:PORT/proxy``)."""
        prefix = f"/api/v1/namespaces/{namespace}/services/{service}/proxy"
        http = self.http
        return HttpClient(http.base_url.rstrip("/") + prefix, http.context, http.connector, http.timeout, http.headers)


@dataclass(frozen=True)
class HelmRelease:
    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    chart_version: str


def decode_helm_release(secret: dict[str, Any]) -> HelmRelease:
    """A Helm 3 release from its storage Secret (``sh.helm.release.v1.NAME.vREV``).

    The Secret's ``data.release`` is base64 (Kubernetes) of Helm's own encoding:
    base64 of the gzipped release JSON (helm pkg/storage/driver/util.go encodeRelease).
    """
    payload = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    if payload[:3] == b"\x1f\x8b\x08":
        payload = gzip.decompress(payload)
    release = json.loads(payload)
    metadata = release["chart"]["metadata"]
    return HelmRelease(
        name=release["name"],
        namespace=release["namespace"],
        revision=int(release["version"]),
        status=str(release["info"]["status"]),
        chart=metadata["name"],
        chart_version=metadata["version"],
    )


def latest_helm_release(kube: KubeClient, namespace: str, name: str) -> HelmRelease | None:
    """The highest revision of release ``name`` (Helm labels its Secrets ``owner=helm,name=NAME``)."""
    found = kube.get(f"/api/v1/namespaces/{namespace}/secrets", {"labelSelector": f"owner=helm,name={name}"})
    secrets = [s for s in found.get("items", []) if s.get("type") == "helm.sh/release.v1"]
    if not secrets:
        return None
    newest = max(secrets, key=lambda s: int(s["metadata"].get("labels", {}).get("version", "0")))
    return decode_helm_release(newest)


# --- The registry (Docker registry token authentication, as `docker login` does) ------------

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def registry_login(registry: HttpClient, username: str, password: str) -> None:
    """Log in like ``docker login``: ``GET /v2/`` answers 401 with a Bearer challenge, the
    realm (Harbor's ``/service/token``) trades Basic credentials for a token, and ``/v2/``
    accepts it (distribution docs, "Token Authentication Specification"). Raises ApiError
    when the registry refuses the credentials."""
    challenge = registry.get("/v2/")
    header = challenge.header("WWW-Authenticate") or ""
    if challenge.status != 401 or not header.lower().startswith("bearer "):
        raise ApiError("GET /v2/ did not ask for a Bearer token", challenge)
    params = dict(_CHALLENGE.findall(header))
    realm = urllib.parse.urlsplit(params.get("realm", ""))
    if f"{realm.scheme}://{realm.netloc}" != registry.base_url.rstrip("/"):
        raise ApiError(f"the token realm {params.get('realm')!r} is not the registry's own", challenge)
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    query = {"service": params.get("service", ""), "account": username}
    answer = registry.get(realm.path, query=query, headers={"Authorization": f"Basic {basic}"})
    if answer.status != 200:
        raise ApiError(f"token for {username}", answer)
    data = answer.json()
    token = data.get("token") or data.get("access_token")
    if not token:
        raise ApiError("the token answer holds no token", answer)
    check = registry.get("/v2/", headers={"Authorization": f"Bearer {token}"})
    if check.status != 200:
        raise ApiError("GET /v2/ with the token", check)


# --- S3 (Swift's s3api, moto in the tests) --------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    key: str
    last_modified: dt.datetime
    size: int


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    host: str,
    path: str,
    query: dict[str, str],
    region: str,
    access_key: str,
    secret_key: str,
    now: dt.datetime,
) -> dict[str, str]:
    """AWS Signature Version 4 headers for a body-less S3 request (AWS docs, "Create a signed
    AWS API request": canonical request, string to sign, signing key, Authorization)."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = hashlib.sha256(b"").hexdigest()
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path, safe="/-_.~"),
            canonical_query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            payload,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-content-sha256": payload,
        "x-amz-date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}",
    }


_S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def list_objects(
    s3: HttpClient, bucket: str, prefix: str, region: str, access_key: str, secret_key: str
) -> list[S3Object]:
    """Every object under ``prefix`` (S3 ListObjectsV2, path-style, following continuation tokens)."""
    url = urllib.parse.urlsplit(s3.base_url)
    host = url.netloc
    path = f"{url.path.rstrip('/')}/{bucket}"
    found: list[S3Object] = []
    token: str | None = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        headers = sigv4_headers("GET", host, path, query, region, access_key, secret_key, dt.datetime.now(dt.UTC))
        answer = s3.get(f"/{bucket}", query=dict(sorted(query.items())), headers=headers)
        if answer.status != 200:
            raise ApiError(f"ListObjectsV2 {bucket}", answer)
        root = ET.fromstring(answer.body)
        for item in root.iter(f"{_S3}Contents"):
            found.append(
                S3Object(
                    key=item.findtext(f"{_S3}Key", ""),
                    last_modified=dt.datetime.fromisoformat(item.findtext(f"{_S3}LastModified", "")),
                    size=int(item.findtext(f"{_S3}Size", "0")),
                )
            )
        if root.findtext(f"{_S3}IsTruncated") != "true":
            return found
        token = root.findtext(f"{_S3}NextContinuationToken")

"""A small JSON-over-HTTP(S) helper for the thin clients (stdlib only)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


class HttpError(Exception):
    """A request failed: ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: {status or 'no answer'} {body[:200]}".strip())
        self.status = status
        self.body = body


@dataclass(frozen=True)
class JsonClient:
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    context: ssl.SSLContext | None = None
    timeout: float = 10.0

    def request(
        self, method: str, path: str, body: object | None = None, content_type: str = "application/json"
    ) -> tuple[int, Any, dict[str, str]]:
        url = self.base_url.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", **self.headers}
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
                raw = response.read().decode()
                return (
                    response.status,
                    json.loads(raw) if raw.strip().startswith(("{", "[")) else raw,
                    dict(response.headers),
                )
        except urllib.error.HTTPError as error:
            raise HttpError(method, url, error.code, error.read().decode(errors="replace")) from None
        except (urllib.error.URLError, OSError) as error:
            raise HttpError(method, url, 0, str(getattr(error, "reason", error))) from None

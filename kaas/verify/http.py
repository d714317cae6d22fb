"""The one HTTP(S) client every live check talks through: stdlib only, TLS always verified.

A :data:`Connector` decides where a host name's connections go (``--connect-to``
on the command line, a local test server in the tests) without changing the
name the TLS handshake verifies: the certificate must still be issued for the
planned host name, as it must when the client resolves it through DNS.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# (host, port) as the URL names them -> (address, port) to connect to.
Connector = Callable[[str, int], tuple[str, int]]


def direct(host: str, port: int) -> tuple[str, int]:
    """Connect where DNS says (the default)."""
    return host, port


def connect_to(overrides: Mapping[tuple[str, int], tuple[str, int]]) -> Connector:
    """curl's ``--connect-to``: the listed (host, port) pairs go elsewhere, the rest through DNS."""

    def connector(host: str, port: int) -> tuple[str, int]:
        return overrides.get((host, port), (host, port))

    return connector


class UnreachableError(Exception):
    """No HTTP answer: name resolution, connection or timeout failed (the check could not run)."""


class TlsError(Exception):
    """The server answered, but its certificate does not verify for the host name."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    peer_certificate: Mapping[str, Any] | None = None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


def tls_context(ca_pem: str | None = None, cafile: str | None = None) -> ssl.SSLContext:
    """Verifying context: the given CA (PEM text or file), else the system trust store."""
    context = ssl.create_default_context(cafile=cafile, cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _HttpsConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, target: tuple[str, int], timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._target = target
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection(self._target, self.timeout)
        # SNI and hostname verification use the URL's host, not the address connected to.
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class _HttpConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, target: tuple[str, int], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._target = target

    def connect(self) -> None:
        self.sock = socket.create_connection(self._target, self.timeout)


@dataclass
class HttpClient:
    """Requests against one base URL (``https://host:port/prefix``) with fixed default headers."""

    base_url: str
    context: ssl.SSLContext = field(default_factory=tls_context)
    connector: Connector = direct
    timeout: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Response:
        url = urllib.parse.urlsplit(self.base_url)
        host = url.hostname or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        target = self.connector(host, port)
        full_path = url.path.rstrip("/") + path
        if query:
            full_path += "?" + urllib.parse.urlencode(query)
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            connection = _HttpsConnection(host, port, target, self.timeout, self.context)
        else:
            connection = _HttpConnection(host, port, target, self.timeout)
        sent = {**self.headers, **(headers or {})}
        try:
            connection.request(method, full_path, body=body, headers=sent)
            peer = connection.sock.getpeercert() if isinstance(connection.sock, ssl.SSLSocket) else None
            answer = connection.getresponse()
            data = answer.read()
            return Response(answer.status, dict(answer.getheaders()), data, peer)
        except ssl.SSLCertVerificationError as err:
            raise TlsError(f"{host}: {err.verify_message}") from None
        except ssl.SSLError as err:
            raise TlsError(f"{host}: TLS handshake failed ({err.reason})") from None
        except (OSError, http.client.HTTPException) as err:
            where = f"{host}:{port}" + ("" if target == (host, port) else f" (via {target[0]}:{target[1]})")
            raise UnreachableError(f"cannot reach {where}: {err or type(err).__name__}") from None
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def with_headers(self, **headers: str) -> HttpClient:
        return HttpClient(self.base_url, self.context, self.connector, self.timeout, {**self.headers, **headers})

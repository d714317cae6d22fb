"""HTTPS servers on 127.0.0.1 that answer through a route function; stopped by their context."""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.pki import Issued


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] | None = None


def json_answer(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


Route = Callable[[Request], Answer]


def _handler(route: Route) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                urllib.parse.unquote(url.path),
                dict(urllib.parse.parse_qsl(url.query)),
                dict(self.headers.items()),
                self.rfile.read(length) if length else b"",
            )
            answer = route(request)
            self.send_response(answer.status)
            for key, value in (answer.headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = _serve  # noqa: N815 (http.server's method names)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def https_server(route: Route, issued: Issued) -> Iterator[int]:
    """Serve ``route`` with TLS (``issued``) on 127.0.0.1; yields the port, stops on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(route))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = issued.write(Path(tmp), "server")
        context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

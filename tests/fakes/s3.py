"""moto's S3 server (the real moto server app, as ThreadedMotoServer runs it) behind TLS on 127.0.0.1,
so the backup check talks HTTPS to the spec's Swift s3api endpoint exactly as in production."""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tests.fakes.pki import Issued


@contextmanager
def moto_s3_tls(issued: Issued, endpoint: str) -> Iterator[int]:
    """moto on 127.0.0.1 with TLS; ``endpoint`` (the spec's s3api URL) is declared an S3-compatible
    custom endpoint (MOTO_S3_CUSTOM_ENDPOINTS), so moto reads buckets path-style, as Swift does."""
    before = os.environ.get("MOTO_S3_CUSTOM_ENDPOINTS")
    os.environ["MOTO_S3_CUSTOM_ENDPOINTS"] = endpoint
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = issued.write(Path(tmp), "s3")
        context.load_cert_chain(cert, key)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        if before is None:
            os.environ.pop("MOTO_S3_CUSTOM_ENDPOINTS", None)
        else:
            os.environ["MOTO_S3_CUSTOM_ENDPOINTS"] = before
        server.shutdown()
        server.server_close()
        thread.join(5)

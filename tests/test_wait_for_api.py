"""The readiness gate's script, for real, against an HTTPS server on 127.0.0.1."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kaas.readiness import SCRIPT
from kaas.spec.loader import REPO_ROOT


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("api.c1.example.test")]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test-ca", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("apiserver", server_key, ca.subject, ca_key, ca=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _cert("other-ca", other_key, None, other_key, ca=True)
    (folder / "server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return {
        "ca": ca.public_bytes(serialization.Encoding.PEM).decode(),
        "other_ca": other_ca.public_bytes(serialization.Encoding.PEM).decode(),
        "cert": str(folder / "server.crt"),
        "key": str(folder / "server.key"),
    }


@pytest.fixture
def api_server(pki: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server on 127.0.0.1 whose /readyz fails twice, then succeeds."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            ready = self.path == "/readyz" and len(requests) > 2
            self.send_response(200 if ready else 503)
            self.end_headers()
            self.wfile.write(b"ok" if ready else b"not ready")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def run_script(url: str, ca: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / SCRIPT), url, "--interval", "0.1", *args],
        env={**os.environ, "KAAS_CA_PEM": ca},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_waits_until_readyz_answers_200(api_server: tuple[str, list[str]], pki: dict[str, str]) -> None:
    url, requests = api_server
    result = run_script(url, pki["ca"], "--timeout", "20")
    assert result.returncode == 0, result.stderr
    assert requests == ["/readyz", "/readyz", "/readyz"]


def test_a_server_with_another_ca_is_never_trusted(api_server: tuple[str, list[str]], pki: dict[str, str]) -> None:
    url, requests = api_server
    result = run_script(url, pki["other_ca"], "--timeout", "1")
    assert result.returncode == 1
    assert "not ready after" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert requests == []


def test_connect_to_dials_the_address_but_verifies_the_host_name(
    api_server: tuple[str, list[str]], pki: dict[str, str]
) -> None:
    url, requests = api_server
    port = url.rsplit(":", 1)[1]
    result = run_script(
        f"https://api.c1.example.test:{port}", pki["ca"], "--connect-to", "127.0.0.1", "--timeout", "20"
    )
    assert result.returncode == 0, result.stderr
    assert len(requests) == 3


def test_connect_to_still_rejects_a_name_the_certificate_does_not_hold(
    api_server: tuple[str, list[str]], pki: dict[str, str]
) -> None:
    url, requests = api_server
    port = url.rsplit(":", 1)[1]
    result = run_script(
        f"https://api.other.example.test:{port}", pki["ca"], "--connect-to", "127.0.0.1", "--timeout", "1"
    )
    assert result.returncode == 1
    assert "Hostname mismatch" in result.stderr
    assert requests == []


def test_nothing_listening_times_out_non_zero(pki: dict[str, str]) -> None:
    result = run_script("https://127.0.0.1:9", pki["ca"], "--timeout", "0.5")
    assert result.returncode == 1 and "unreachable" in result.stderr


def test_missing_ca_is_a_usage_error() -> None:
    result = run_script("https://127.0.0.1:9", "")
    assert result.returncode == 2


def test_script_is_shipped_where_the_command_runs_it() -> None:
    assert (Path(REPO_ROOT) / SCRIPT).is_file()

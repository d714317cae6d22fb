"""Real emulation of the providers that compute locally (pulumi-random, pulumi-tls).

On an operator's machine these providers run on that machine, not in a cloud, so
the offline engine computes their results for real. Values are derived from the
resource name, so two plans of one spec agree.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import string
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockResourceArgs

State = dict[str, Any]


def _stream(seed: str, length: int, alphabet: str) -> str:
    out: list[str] = []
    counter = 0
    while len(out) < length:
        block = hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        out.extend(alphabet[b % len(alphabet)] for b in block)
        counter += 1
    return "".join(out[:length])


_SPECIAL_DEFAULT = "!@#$%&*()-_=+[]{}<>:?"


def _random_string(args: MockResourceArgs, rid: str) -> State:
    """pulumi-random's RandomString/RandomPassword: the classes asked for, each at least its ``min*``.

    Seeded by the name, and by the ``keepers`` where there are any: changed keepers replace the
    resource, so they give another value, as pulumi-random's do."""
    inputs = args.inputs
    keepers = inputs.get("keepers")
    seed = f"{args.name}?{json.dumps(keepers, sort_keys=True)}" if keepers else args.name
    length = int(inputs.get("length", 16))
    classes = [
        (string.ascii_lowercase, inputs.get("lower", True), int(inputs.get("minLower", 0))),
        (string.ascii_uppercase, inputs.get("upper", True), int(inputs.get("minUpper", 0))),
        (string.digits, inputs.get("numeric", inputs.get("number", True)), int(inputs.get("minNumeric", 0))),
        (
            str(inputs.get("overrideSpecial") or _SPECIAL_DEFAULT),
            inputs.get("special", True),
            int(inputs.get("minSpecial", 0)),
        ),
    ]
    alphabet = "".join(chars for chars, enabled, _ in classes if enabled) or string.ascii_lowercase
    required = "".join(
        _stream(f"{seed}/min/{i}", minimum, chars) for i, (chars, _, minimum) in enumerate(classes) if minimum
    )
    if len(required) > length:
        raise ValueError(f"{args.name}: the min* counts ({len(required)}) exceed length {length}")
    rest = _stream(seed, length - len(required), alphabet)
    # Spread the required characters over deterministic positions rather than a fixed prefix.
    result = list(rest)
    for offset, char in enumerate(required):
        position = int(hashlib.sha256(f"{seed}/pos/{offset}".encode()).hexdigest(), 16) % (len(result) + 1)
        result.insert(position, char)
    return {"result": "".join(result)}


def _random_id(args: MockResourceArgs, rid: str) -> State:
    size = int(args.inputs.get("byteLength", 8))
    raw = hashlib.sha256(args.name.encode()).digest()[:size]
    return {
        "hex": raw.hex(),
        "dec": str(int.from_bytes(raw, "big")),
        "b64Std": base64.standard_b64encode(raw).decode(),
        "b64Url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


# --- pulumi-tls -------------------------------------------------------------------
# The tls provider runs on the operator's machine; these handlers compute the same
# artifacts with `cryptography`. ECDSA and Ed25519 keys are derived from the resource
# name and ECDSA signatures are deterministic (RFC 6979), so two plans of one spec
# produce byte-identical certificates. RSA keys cannot be derived; they are generated
# once per process and name (stable within one run, different across runs).

TLS_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
"""Every emulated certificate starts here (the real provider uses the time of creation)."""

_CURVES: dict[str, ec.EllipticCurve] = {
    "P224": ec.SECP224R1(),
    "P256": ec.SECP256R1(),
    "P384": ec.SECP384R1(),
    "P521": ec.SECP521R1(),
}
_CURVE_ORDERS = {
    "P224": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D,
    "P256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P384": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    "P521": 0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
}
_RSA_KEYS: dict[tuple[str, int], rsa.RSAPrivateKey] = {}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# allowedUses name -> x509.KeyUsage argument
_KEY_USAGES = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
    "encipher_only": "encipher_only",
    "decipher_only": "decipher_only",
}
_EXTENDED_USAGES = {
    "any_extended": x509.ObjectIdentifier("2.5.29.37.0"),
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec_end_system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec_tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec_user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft_server_gated_crypto": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape_server_gated_crypto": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}
_SUBJECT_FIELDS = (
    ("commonName", NameOID.COMMON_NAME),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("country", NameOID.COUNTRY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("postalCode", NameOID.POSTAL_CODE),
    ("serialNumber", NameOID.SERIAL_NUMBER),
    ("emailAddress", NameOID.EMAIL_ADDRESS),
)


def _text(inputs: dict[str, Any], key: str) -> str:
    """A string input, unwrapped if the program passed it as a secret."""
    value = inputs[key]
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        value = value.get("value")
    return str(value)


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha512(f"kaas-offline-tls/{name}".encode()).digest(), "big")


def _generate_key(args: MockResourceArgs) -> PrivateKey:
    algorithm = str(args.inputs.get("algorithm", "RSA")).upper()
    if algorithm == "ECDSA":
        curve = str(args.inputs.get("ecdsaCurve") or "P224")
        if curve not in _CURVES:
            raise ValueError(f"tls PrivateKey {args.name}: unsupported ECDSA curve {curve!r}")
        scalar = _seed(args.name) % (_CURVE_ORDERS[curve] - 1) + 1
        return ec.derive_private_key(scalar, _CURVES[curve])
    if algorithm == "ED25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(args.name.encode()).digest())
    if algorithm == "RSA":
        bits = int(args.inputs.get("rsaBits") or 2048)
        key = _RSA_KEYS.get((args.name, bits))
        if key is None:
            key = _RSA_KEYS[(args.name, bits)] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return key
    raise ValueError(f"tls PrivateKey {args.name}: unsupported algorithm {algorithm!r}")


def _pem(key: PrivateKey, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def _private_key(args: MockResourceArgs, rid: str) -> State:
    key = _generate_key(args)
    public = key.public_key()
    openssh_public = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(openssh_public.split()[1])
    traditional = (
        serialization.PrivateFormat.PKCS8
        if isinstance(key, ed25519.Ed25519PrivateKey)
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return {
        "privateKeyPem": _pem(key, traditional),
        "privateKeyPemPkcs8": _pem(key, serialization.PrivateFormat.PKCS8),
        "privateKeyOpenssh": _pem(key, serialization.PrivateFormat.OpenSSH),
        "publicKeyPem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyOpenssh": openssh_public.decode() + "\n",
        "publicKeyFingerprintSha256": "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="),
        "publicKeyFingerprintMd5": ":".join(f"{b:02x}" for b in hashlib.md5(blob, usedforsecurity=False).digest()),
    }


def _load_private_key(pem: str) -> PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key


def _key_algorithm(key: PrivateKey | Any) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ED25519"
    return "RSA"


def _subject(inputs: dict[str, Any]) -> x509.Name:
    subject = inputs.get("subject") or {}
    if isinstance(subject, list):  # older SDKs send a one-element list
        subject = subject[0] if subject else {}
    attributes = [
        x509.NameAttribute(oid, str(subject[key])) for key, oid in _SUBJECT_FIELDS if subject.get(key) is not None
    ]
    attributes += [x509.NameAttribute(NameOID.STREET_ADDRESS, str(s)) for s in subject.get("streetAddresses") or []]
    return x509.Name(attributes)


def _alt_names(inputs: dict[str, Any]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(str(d)) for d in inputs.get("dnsNames") or []]
    names += [x509.IPAddress(ipaddress.ip_address(str(ip))) for ip in inputs.get("ipAddresses") or []]
    names += [x509.UniformResourceIdentifier(str(u)) for u in inputs.get("uris") or []]
    return names


def _serial(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"serial/{name}".encode()).digest()[:16], "big") | 1


def _sign_hash(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _deterministic(key: PrivateKey) -> bool | None:
    """RFC 6979 signatures for ECDSA keys, so certificates are byte-identical across plans."""
    return True if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _certificate(
    args: MockResourceArgs,
    *,
    subject: x509.Name,
    public_key: Any,
    alt_names: list[x509.GeneralName],
    issuer: x509.Name,
    issuer_key: PrivateKey,
    issuer_ski: x509.SubjectKeyIdentifier | None,
) -> State:
    inputs = args.inputs
    hours = int(inputs.get("validityPeriodHours") or 0)
    not_after = TLS_NOT_BEFORE + datetime.timedelta(hours=hours)
    is_ca = bool(inputs.get("isCaCertificate", False))
    uses = [str(u) for u in inputs.get("allowedUses") or []]
    unknown = [u for u in uses if u not in _KEY_USAGES and u not in _EXTENDED_USAGES]
    if unknown:
        raise ValueError(f"tls certificate {args.name}: unknown allowedUses {unknown}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(_serial(args.name))
        .not_valid_before(TLS_NOT_BEFORE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=inputs.get("maxPathLength") or None), critical=True)
    )
    if any(u in _KEY_USAGES for u in uses):
        flags = {argument: use in uses for use, argument in _KEY_USAGES.items()}
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    extended = [_EXTENDED_USAGES[u] for u in uses if u in _EXTENDED_USAGES]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    if is_ca or inputs.get("setSubjectKeyId"):
        builder = builder.add_extension(ski, critical=False)
    if issuer_ski is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
    cert = builder.sign(issuer_key, _sign_hash(issuer_key), ecdsa_deterministic=_deterministic(issuer_key))
    return {
        "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": TLS_NOT_BEFORE.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "validityEndTime": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "readyForRenewal": False,
    }


def _self_signed_cert(args: MockResourceArgs, rid: str) -> State:
    key = _load_private_key(_text(args.inputs, "privateKeyPem"))
    subject = _subject(args.inputs)
    state = _certificate(
        args,
        subject=subject,
        public_key=key.public_key(),
        alt_names=_alt_names(args.inputs),
        issuer=subject,
        issuer_key=key,
        issuer_ski=None,
    )
    return {**state, "keyAlgorithm": _key_algorithm(key)}


def _cert_request(args: MockResourceArgs, rid: str) -> State:
    key = _load_private_key(_text(args.inputs, "privateKeyPem"))
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(args.inputs))
    alt_names = _alt_names(args.inputs)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    csr = builder.sign(key, _sign_hash(key), ecdsa_deterministic=_deterministic(key))
    return {
        "certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode(),
        "keyAlgorithm": _key_algorithm(key),
    }


def _locally_signed_cert(args: MockResourceArgs, rid: str) -> State:
    csr = x509.load_pem_x509_csr(_text(args.inputs, "certRequestPem").encode())
    ca_cert = x509.load_pem_x509_certificate(_text(args.inputs, "caCertPem").encode())
    ca_key = _load_private_key(_text(args.inputs, "caPrivateKeyPem"))
    try:
        alt_names = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        alt_names = []
    try:
        ca_ski: x509.SubjectKeyIdentifier | None = ca_cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
    except x509.ExtensionNotFound:
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key())
    state = _certificate(
        args,
        subject=csr.subject,
        public_key=csr.public_key(),
        alt_names=alt_names,
        issuer=ca_cert.subject,
        issuer_key=ca_key,
        issuer_ski=ca_ski,
    )
    return {**state, "caKeyAlgorithm": _key_algorithm(ca_key)}


HANDLERS: dict[str, Callable[[MockResourceArgs, str], State]] = {
    "random:index/randomPassword:RandomPassword": _random_string,
    "random:index/randomString:RandomString": _random_string,
    "random:index/randomId:RandomId": _random_id,
    "tls:index/privateKey:PrivateKey": _private_key,
    "tls:index/selfSignedCert:SelfSignedCert": _self_signed_cert,
    "tls:index/certRequest:CertRequest": _cert_request,
    "tls:index/locallySignedCert:LocallySignedCert": _locally_signed_cert,
}

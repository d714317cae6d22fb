"""The base of every part of the typed stack outputs (each layer's ``outputs.py``, assembled by :mod:`kaas.outputs`)."""

from __future__ import annotations

from typing import Annotated

from cryptography import x509
from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class OutputModel(BaseModel):
    """Base of every part of the outputs: camelCase keys, immutable, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid", serialize_by_alias=True
    )


def _pem_certificate(value: str) -> str:
    try:
        x509.load_pem_x509_certificate(value.encode())
    except ValueError:
        raise ValueError("is not a PEM-encoded X.509 certificate") from None
    return value


PemCertificate = Annotated[str, AfterValidator(_pem_certificate)]

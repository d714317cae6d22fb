"""Real emulation of the providers that compute locally (pulumi-random, pulumi-tls).

On an operator's machine these providers run on that machine, not in a cloud, so
the offline engine computes their results for real. Values are derived from the
resource name, so two plans of one spec agree.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable
from typing import Any

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


def _random_string(args: MockResourceArgs, rid: str) -> State:
    inputs = args.inputs
    length = int(inputs.get("length", 16))
    alphabet = ""
    if inputs.get("lower", True):
        alphabet += string.ascii_lowercase
    if inputs.get("upper", True):
        alphabet += string.ascii_uppercase
    if inputs.get("numeric", inputs.get("number", True)):
        alphabet += string.digits
    if inputs.get("special", True):
        alphabet += str(inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?")
    return {"result": _stream(args.name, length, alphabet or string.ascii_lowercase)}


def _random_id(args: MockResourceArgs, rid: str) -> State:
    size = int(args.inputs.get("byteLength", 8))
    raw = hashlib.sha256(args.name.encode()).digest()[:size]
    return {"hex": raw.hex(), "dec": str(int.from_bytes(raw, "big"))}


HANDLERS: dict[str, Callable[[MockResourceArgs, str], State]] = {
    "random:index/randomPassword:RandomPassword": _random_string,
    "random:index/randomString:RandomString": _random_string,
    "random:index/randomId:RandomId": _random_id,
}

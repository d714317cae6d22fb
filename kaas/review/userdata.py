"""Reviewable user data: the unified diff of two rendered cloud-configs, secret values masked.

User data is a Pulumi secret as a whole because it carries private keys and tokens,
but most of it (package pins, kubeadm settings, systemd units) is what a reviewer must
see change. :func:`mask_secrets` keeps the structure and replaces only secret values:

- the body of every PEM block (keys and certificates) becomes one line with a short
  sha256, so a rotated certificate still shows as a change without showing the key;
- the value of any ``key: value`` / ``KEY=value`` whose key names a secret (token,
  secret, password, private key, credential, access key, key data);
- anything shaped like a kubeadm bootstrap token (``[a-z0-9]{6}.[a-z0-9]{16}``).
"""

from __future__ import annotations

import difflib
import hashlib
import re

MASK = "[secret]"
CONTEXT_LINES = 2
MAX_LINES = 80

_PEM_BEGIN = re.compile(r"^(\s*)-----BEGIN ([A-Z0-9 ]+)-----\s*$")
_PEM_END = re.compile(r"^\s*-----END ([A-Z0-9 ]+)-----\s*$")
_SECRET_NAME = (
    r"[A-Za-z0-9_.-]*(?:token|secret|password|passwd|private|credential|access[_-]?key|key[_-]?data)[A-Za-z0-9_.-]*"
)
_KEY_VALUE = re.compile(rf"^(\s*-?\s*[\"']?{_SECRET_NAME}[\"']?\s*[:=]\s*)(\S.*)$", re.IGNORECASE)
_BOOTSTRAP_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")


def _pem_line(indent: str, kind: str, body: list[str]) -> str:
    digest = hashlib.sha256("".join(line.strip() for line in body).encode()).hexdigest()[:12]
    return f"{indent}[{kind.lower()} body masked, sha256 {digest}]"


def mask_secrets(text: str) -> list[str]:
    """The lines of ``text`` with every secret value masked (see the module docstring)."""
    lines: list[str] = []
    pem: tuple[str, str] | None = None
    body: list[str] = []
    for line in text.splitlines():
        if pem is not None:
            if _PEM_END.match(line):
                lines.append(_pem_line(pem[0], pem[1], body))
                lines.append(line)
                pem, body = None, []
            else:
                body.append(line)
            continue
        begin = _PEM_BEGIN.match(line)
        if begin:
            lines.append(line)
            pem = (begin.group(1), begin.group(2))
            continue
        value = _KEY_VALUE.match(line)
        if value and not value.group(2).startswith(("/", "$", "{", 'f"', "need(")):
            line = value.group(1) + MASK
        lines.append(_BOOTSTRAP_TOKEN.sub(MASK, line))
    if pem is not None:  # an unterminated block: mask what is left
        lines.append(_pem_line(pem[0], pem[1], body))
    return lines


def user_data_diff(old: str, new: str, name: str) -> list[str]:
    """The unified diff of two user data documents (secrets masked), at most :data:`MAX_LINES` lines."""
    diff = list(
        difflib.unified_diff(
            mask_secrets(old),
            mask_secrets(new),
            fromfile=f"{name} (deployed)",
            tofile=f"{name} (planned)",
            n=CONTEXT_LINES,
            lineterm="",
        )
    )
    if len(diff) > MAX_LINES:
        diff = [*diff[:MAX_LINES], f"... {len(diff) - MAX_LINES} more diff lines"]
    return diff

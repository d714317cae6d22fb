"""Generated passwords that every consumer accepts on the first try.

Each managed service checks the passwords we generate against its own policy, and a
password it rejects stops the service at install time (OpenSearch's demo
configuration exits, Harbor refuses the robot secret). The arguments below make
pulumi-random guarantee every class any consumer asks for, rather than relying on
chance (32 letters and digits miss a digit about once in 280 draws):

- OpenSearch security plugin (``OPENSEARCH_INITIAL_ADMIN_PASSWORD``): 8-100 characters,
  the regex ``(?=.*[A-Z])(?=.*[^a-zA-Z\\d])(?=.*[0-9])(?=.*[a-z]).{8,}`` and a zxcvbn
  score of at least 3 ("strong"), not similar to the user name.
- Harbor (passwords and robot secrets): 8-128 characters with an upper case letter,
  a lower case letter and a digit.
- Grafana with the strong policy on: at least 12 characters with an upper case
  letter, a lower case letter, a number and a symbol.

The symbols are ``-_.~``: unreserved in URLs and plain in YAML, JSON, INI, shell and
Fluent Bit's configuration, so a password is data wherever it is written.
tests/test_passwords.py checks generated passwords against each documented rule.
"""

from __future__ import annotations

from typing import Any

PASSWORD_LENGTH = 32
PASSWORD_SYMBOLS = "-_.~"


def password_arguments() -> dict[str, Any]:
    """Keyword arguments for ``pulumi_random.RandomPassword``: every class at least once."""
    return {
        "length": PASSWORD_LENGTH,
        "upper": True,
        "lower": True,
        "numeric": True,
        "special": True,
        "override_special": PASSWORD_SYMBOLS,
        "min_upper": 1,
        "min_lower": 1,
        "min_numeric": 1,
        "min_special": 1,
    }

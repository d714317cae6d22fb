"""Generated passwords against each consumer's documented password policy.

The policies, as the consumers implement them:
- OpenSearch security plugin, ``tools/democonfig/SecuritySettingsConfigurer.java``
  (``updateAdminPassword``, what the image runs for OPENSEARCH_INITIAL_ADMIN_PASSWORD):
  ``PasswordValidator`` with the regex ``(?=.*[A-Z])(?=.*[^a-zA-Z\\d])(?=.*[0-9])(?=.*[a-z]).{8,}``
  (anchored ``^...$``) and minimum length 8; ``dlic/rest/validation/PasswordValidator.java``
  adds a maximum of 100 characters, a zxcvbn score of at least 3 (``STRONG``, the
  default ``password_score_based_validation_strength``) and no zxcvbn
  ``user_inputs`` dictionary match with the user name.
- Harbor, ``src/server/v2.0/handler/user.go`` ``requireValidSecret`` (passwords and
  robot secrets): at least 8 characters, one of each of [a-z], [A-Z], [0-9]; the
  message names 128 as the maximum.
- Grafana, ``pkg/services/user/password.go`` ``ValidatePassword`` with
  ``[auth.basic] password_policy = true``: at least 12 characters with an upper case
  letter, a lower case letter, a number and a symbol (neither letter nor number).
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zxcvbn import zxcvbn

from kaas.offline.plan import plan_stack
from kaas.offline.planfile import plain
from kaas.services.passwords import PASSWORD_SYMBOLS, password_arguments

PASSWORD = "random:index/randomPassword:RandomPassword"
_OPENSEARCH_REGEX = re.compile(r"^(?=.*[A-Z])(?=.*[^a-zA-Z\\d])(?=.*[0-9])(?=.*[a-z]).{8,}$")


def opensearch_problem(password: str, username: str = "admin") -> str | None:
    if not 8 <= len(password) <= 100:
        return "length outside 8-100"
    if not _OPENSEARCH_REGEX.match(password):
        return "does not match the password_validation_regex"
    result = zxcvbn(password, user_inputs=[username])
    if result["score"] < 3:
        return f"zxcvbn score {result['score']} < 3 (strong)"
    if any(m.get("dictionary_name") == "user_inputs" for m in result["sequence"]):
        return "too similar to the user name"
    return None


def harbor_problem(password: str) -> str | None:
    if not 8 <= len(password) <= 128:
        return "length outside 8-128"
    for pattern in ("[a-z]", "[A-Z]", "[0-9]"):
        if not re.search(pattern, password):
            return f"no {pattern}"
    return None


def grafana_problem(password: str) -> str | None:
    if len(password) < 12:
        return "shorter than 12"
    checks = {
        "upper": any(c.isupper() for c in password),
        "lower": any(c.islower() for c in password),
        "number": any(c.isnumeric() for c in password),
        "symbol": any(not c.isalpha() and not c.isnumeric() for c in password),
    }
    missing = [name for name, ok in checks.items() if not ok]
    return f"no {', '.join(missing)}" if missing else None


POLICIES: dict[str, Callable[[str], str | None]] = {
    "opensearch": opensearch_problem,
    "harbor": harbor_problem,
    "grafana": grafana_problem,
}


def generate(arguments: dict[str, object], rng: random.Random) -> str:
    """What pulumi-random (terraform-provider-random's ``CreateString``) does with these
    arguments: ``min_*`` characters of each class, the rest from every enabled class, shuffled."""
    classes = [
        (string.ascii_uppercase, "min_upper"),
        (string.ascii_lowercase, "min_lower"),
        (string.digits, "min_numeric"),
        (str(arguments["override_special"]), "min_special"),
    ]
    chars = [rng.choice(chars) for chars, key in classes for _ in range(int(str(arguments[key])))]
    everything = "".join(chars for chars, _ in classes)
    chars += [rng.choice(everything) for _ in range(int(str(arguments["length"])) - len(chars))]
    rng.shuffle(chars)
    return "".join(chars)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_password_arguments_guarantee_every_class_the_policy_needs(policy: str) -> None:
    arguments = password_arguments()
    # The least favourable password the arguments allow: one of each required class,
    # the rest one repeated lower case letter. Classes and lengths must hold even then
    # (zxcvbn's score is a matter of chance and is sampled below).
    worst = "A1" + PASSWORD_SYMBOLS[0] + "a" * (int(arguments["length"]) - 3)
    problem = POLICIES[policy](worst)
    if policy == "opensearch":
        assert problem is None or problem.startswith("zxcvbn score")
    else:
        assert problem is None
    assert set(str(arguments["override_special"])) <= set("-_.~")


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**64))
def test_generated_passwords_pass_every_policy(seed: int) -> None:
    # A seeded PRNG as pulumi-random uses crypto/rand: uniform draws, not adversarial ones.
    password = generate(password_arguments(), random.Random(seed))
    problems = {name: check(password) for name, check in POLICIES.items()}
    assert all(p is None for p in problems.values()), (password, problems)


def test_letters_and_digits_alone_fail_the_policies() -> None:
    """The arguments before this change: 32 letters and digits, no class guaranteed."""
    no_digit = "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEf"
    assert opensearch_problem(no_digit) == "does not match the password_validation_regex"
    assert harbor_problem(no_digit) == "no [0-9]"
    assert grafana_problem("AbCdEfGh1234") == "no symbol"
    assert opensearch_problem("Admin-admin-1") is not None  # weak and similar to the user name


SECRET = "kubernetes:core/v1:Secret"


@pytest.mark.parametrize("stack", ["acme-prod", "demo"])
def test_every_service_password_in_the_plan_meets_every_policy(stack: str) -> None:
    plan = plan_stack(stack)
    passwords = [r for r in plan.resources if r.type == PASSWORD and "kaas:services:" in r.urn]
    assert {r.name.removeprefix(f"{stack}-") for r in passwords} >= {
        "grafana-admin",
        "opensearch-admin",
        "harbor-admin",
        "registry-pull",
    }
    from kaas.services.values import HARBOR_INTERNAL_KEYS, harbor_internal_password_name

    fixed_lengths = {harbor_internal_password_name(k): n for k, n in HARBOR_INTERNAL_KEYS.items()}
    for record in passwords:
        inputs = record.inputs
        assert all(inputs[key] >= 1 for key in ("minUpper", "minLower", "minNumeric", "minSpecial")), record.name
        # Harbor fixes the length of its internal secrets (values.yaml: "Must be a string of 16
        # chars", the XSRF key 32); every other password is 32 characters.
        length = fixed_lengths.get(record.name.removeprefix(f"{stack}-"), 32)
        assert inputs["overrideSpecial"] == PASSWORD_SYMBOLS and inputs["length"] == length, record.name
    # The passwords as the consumers receive them (the mocks honour every min_*).
    for secret, key, policy in (
        ("grafana-admin", "admin-password", "grafana"),
        ("opensearch-admin", "password", "opensearch"),
        ("harbor-admin", "HARBOR_ADMIN_PASSWORD", "harbor"),
    ):
        value = plain(plan.find(SECRET, f"{stack}-{secret}").inputs, show_secrets=True)["stringData"][key]
        assert POLICIES[policy](value) is None, (secret, value)

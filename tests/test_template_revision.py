"""The bootstrap template revision guard: a change to what nodes boot with must be a decision.

A server keeps the user data it was built with (kaas.openstack.nodes.BUILT_WITH), so a change
to the rendered cloud-init reaches running nodes only when ``kaas.versions.BOOTSTRAP_TEMPLATE``
is bumped (every node's revision then rolls, kaas.rollout). Changing the rendering without a
bump leaves the rollout record claiming that running nodes have what they do not.

This test fingerprints the user data of every tier for a reference spec with pinned versions
(the offline engine's certificates and random values are deterministic) and compares it with
the fingerprint recorded for the current template revision in
``tests/golden/bootstrap-template.json``. When it fails, either bump ``BOOTSTRAP_TEMPLATE``
(running nodes must get the change: ``kaas roll`` replaces them) and record the new revision,
or, if running nodes need not change (nodes built later get it), re-record the current
revision's fingerprint and say why in the commit. Both with ``KAAS_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from kaas import versions
from kaas.offline import run_plan
from tests.bootstrap_fixtures import BootstrapPlan, bootstrap_program
from tests.helpers import make_spec

GOLDEN = Path(__file__).parent / "golden" / "bootstrap-template.json"
# Pinned, so that a new default version (which rolls nodes through their revision anyway) does
# not read as a template change.
REFERENCE = make_spec(versions={"kubernetes": "1.34.2", "etcd": "3.6.5", "containerd": "2.1.4"})
TIERS = ("etcdUserData", "masterUserData", "workerUserData")


def fingerprint() -> dict[str, str]:
    plan = BootstrapPlan(REFERENCE, run_plan(lambda: bootstrap_program(REFERENCE), stack=REFERENCE.name))
    return {tier: hashlib.sha256("\n\0".join(plan.texts(tier)).encode()).hexdigest() for tier in TIERS}


def test_the_rendered_bootstrap_matches_the_recorded_fingerprint_of_its_template_revision() -> None:
    recorded: dict[str, dict[str, str]] = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    current = fingerprint()
    revision = str(versions.BOOTSTRAP_TEMPLATE)
    if os.environ.get("KAAS_UPDATE_GOLDEN"):
        recorded[revision] = current
        GOLDEN.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    assert revision in recorded, f"no fingerprint recorded for template revision {revision} (KAAS_UPDATE_GOLDEN=1)"
    changed = [tier for tier in TIERS if recorded[revision].get(tier) != current[tier]]
    assert not changed, (
        f"the rendered {', '.join(changed)} changed but BOOTSTRAP_TEMPLATE is still {revision}: nodes already "
        "built keep the old one. Bump kaas.versions.BOOTSTRAP_TEMPLATE if running nodes need the change (kaas "
        "roll replaces them), else re-record this revision's fingerprint and say why in the commit "
        "(KAAS_UPDATE_GOLDEN=1 pytest tests/test_template_revision.py)."
    )
    # Revisions only go up: an older fingerprint is history, never the current one.
    assert max(int(r) for r in recorded) == versions.BOOTSTRAP_TEMPLATE


def test_the_reference_spec_pins_every_version_the_user_data_names() -> None:
    assert REFERENCE.versions.model_dump() == {"kubernetes": "1.34.2", "etcd": "3.6.5", "containerd": "2.1.4"}

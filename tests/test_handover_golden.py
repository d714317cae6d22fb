"""Golden handover documents of the committed stacks, from their offline plans.

Regenerate after an intended change with ``KAAS_UPDATE_GOLDEN=1 python -m pytest
tests/test_handover_golden.py`` and review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kaas.handover import handover_outputs, render_markdown
from kaas.offline import plan_stack

GOLDEN = Path(__file__).parent / "golden"
STACKS = {"demo": "demo", "acme-prod": "production"}


@pytest.mark.parametrize(("stack", "kind"), sorted(STACKS.items()))
def test_handover_document_matches_golden(stack: str, kind: str) -> None:
    outputs = handover_outputs(plan_stack(stack))
    document = render_markdown(outputs, kind, preview=True, origin=f"offline plan of stack {stack}")  # type: ignore[arg-type]
    golden = GOLDEN / f"handover-{stack}.md"
    if os.environ.get("KAAS_UPDATE_GOLDEN") == "1":
        golden.write_text(document, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing; run with KAAS_UPDATE_GOLDEN=1 to write it"
    assert document == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if the change is intended, rerun with KAAS_UPDATE_GOLDEN=1 and review the diff"
    )

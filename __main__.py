"""Pulumi entry point: `pulumi up -s <stack>` deploys stacks/<stack>.yaml (or config `kaas:spec`).

The offline engine (`kaas/offline/engine.py`) runs this very file the way Pulumi's
Python language host does, so tests, `kaas plan`, `kaas diff` and the benchmarks see
exactly what `pulumi up` executes.
"""

import sys

import pulumi

from kaas.program import run
from kaas.spec import SpecError, load_for_current_stack

try:
    spec = load_for_current_stack()
except SpecError as error:
    # One line per problem, no traceback; nothing has been registered yet.
    print(error, file=sys.stderr)
    raise SystemExit(2) from None

pulumi.run(lambda: run(spec))

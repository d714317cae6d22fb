"""The Pulumi stack ``kaas roll`` drives: the Automation API over the local program.

``pulumi.automation.select_stack(stack, work_dir=<repository>)`` runs the project's own
program (``Pulumi.yaml``, ``__main__.py``) with the stack's own backend and config, as
``pulumi up`` would; ``Stack.up(target=[...])`` is ``pulumi up --target`` (only those
resources change; https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), and
``UpResult.outputs`` the stack outputs afterwards. The program reads the rollout record
from the working tree, so each ``up`` performs exactly the planner's next step.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaas.roll.steps import StackResources
from kaas.rollout.model import ClusterState, Step
from kaas.rollout.record import load_record, record_path
from kaas.spec import ClusterSpec

if TYPE_CHECKING:
    from kaas.offline.engine import Plan

INSTANCE_TYPE = "openstack:compute/instance:Instance"


def planned_needs(plan: Plan) -> dict[str, frozenset[str]]:
    """Each planned resource's URN -> every URN it needs: its dependencies (explicit and through
    properties), its parent and its provider (``<provider URN>::<id>`` in its options)."""
    needs: dict[str, frozenset[str]] = {}
    for record in plan.resources:
        found = set(record.dependencies)
        for urns in record.property_dependencies.values():
            found.update(urns)
        if record.parent:
            found.add(record.parent)
        provider = record.options.get("provider")
        if isinstance(provider, str) and provider:
            found.add(provider.rsplit("::", 1)[0])
        needs[record.urn] = frozenset(found)
    return needs


class UpdateFailedError(Exception):
    """A ``pulumi up`` the roll ran failed: nothing was recorded for its step, so a rerun retries it.

    The message is the failure's last lines (the CLI's whole output already streamed above)."""


def _update_failed(error: Exception) -> UpdateFailedError:
    # pulumi.automation's CommandError reads "\n code: N\n stdout: ...\n stderr: ..." (automation/_cmd.py).
    text = str(error)
    _, marker, stderr = text.rpartition(" stderr: ")
    lines = [line for line in (stderr if marker else text).splitlines() if line.strip()]
    tail = "; ".join(line.strip() for line in lines[-3:]) or type(error).__name__
    return UpdateFailedError(f"pulumi up failed ({tail}); nothing recorded for this step: rerun to retry it")


@dataclass
class AutomationStack:
    """A :class:`kaas.roll.runner.StackDriver` over ``pulumi.automation`` (needs the Pulumi CLI)."""

    stack_name: str
    work_dir: Path
    spec: ClusterSpec
    on_output: Callable[[str], None] = lambda _line: None
    _stack: Any = field(default=None, repr=False)

    def _select(self) -> Any:
        if self._stack is None:
            from pulumi import automation

            self._stack = automation.select_stack(self.stack_name, work_dir=str(self.work_dir))
        return self._stack

    def resources(self, step: Step) -> StackResources:
        """The program's resources at this step (offline plan, same program) and the stack's current URNs."""
        return self._stack_resources(step.before)

    def _stack_resources(self, recorded: ClusterState, config: Mapping[str, str] | None = None) -> StackResources:
        """The offline plan of the update from ``recorded`` with ``config`` (the same program), and the
        URNs the stack's state holds now."""
        from kaas.offline.plan import plan_spec

        planned = plan_spec(self.spec, self.stack_name, recorded=recorded, config=config)
        deployment = self._select().export_stack().deployment or {}
        current = frozenset(str(r["urn"]) for r in deployment.get("resources", []) if "urn" in r)
        return StackResources(planned_needs(planned), current)

    def up(self, targets: Sequence[str], secret_config: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        """One targeted update; ``secret_config`` is set as secret config (``pulumi config set --secret``,
        encrypted by the stack's secrets provider) for this update only and removed afterwards.

        The value goes to ``pulumi config set`` on its standard input, never on a command line
        (the SDK's ``set_config`` would put it there, readable in every local user's process
        list): the one value set here is a join token (kaas.roll.tokens)."""
        result = self._with_config(
            {},
            secret_config or {},
            lambda stack: stack.up(target=list(targets), on_output=self.on_output, message="kaas roll"),
        )
        return {name: output.value for name, output in result.outputs.items()}

    def _with_config(
        self, config: Mapping[str, str], secret_config: Mapping[str, str], update: Callable[[Any], Any]
    ) -> Any:
        """``update(stack)`` with ``config`` (plain) and ``secret_config`` (secret) set for it only:
        removed afterwards, also when the update fails."""
        from pulumi.automation import CommandError, ConfigValue

        stack = self._select()
        set_keys: list[str] = []
        try:
            for key, value in secret_config.items():
                self._set_secret_config(stack, key, value)
                set_keys.append(key)
            for key, value in config.items():
                stack.set_config(key, ConfigValue(value, secret=False))
                set_keys.append(key)
            return update(stack)
        except CommandError as error:
            raise _update_failed(error) from error
        finally:
            for key in set_keys:
                stack.remove_config(key)

    def _set_secret_config(self, stack: Any, key: str, value: str) -> None:
        """``pulumi config set <key> --secret`` with the value on standard input: the CLI reads it from
        there when the command line has none and it is not interactive (pkg/cmd/pulumi/config,
        ``newConfigSetCmd``; the documented ``cat file | pulumi config set key`` form). Same CLI,
        working directory and environment as the SDK's own commands (automation/_cmd.py)."""
        workspace = stack.workspace
        env = {**os.environ, **(workspace.env_vars or {}), "PULUMI_AUTOMATION_API": "true"}
        if workspace.pulumi_home:
            env["PULUMI_HOME"] = workspace.pulumi_home
        command = [workspace.pulumi_command.command, "--non-interactive", "config", "set", key, "--secret"]
        result = subprocess.run(
            [*command, "--stack", self.stack_name],
            cwd=workspace.work_dir,
            input=value,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
            tail = "; ".join(lines[-3:]) or f"exit {result.returncode}"
            raise UpdateFailedError(f"pulumi config set {key} failed ({tail}); no update ran: rerun to retry it")

    def instance_urn(self, node: str) -> str:
        """The URN of ``node``'s server in the stack's state (what ``--replace`` names)."""
        deployment = self._select().export_stack().deployment or {}
        for resource in deployment.get("resources", []):
            urn = str(resource.get("urn", ""))
            if resource.get("type") == INSTANCE_TYPE and urn.rsplit("::", 1)[-1] == node:
                return urn
        raise LookupError(f"the stack {self.stack_name} has no {INSTANCE_TYPE} named {node}")

    def replace(
        self,
        urns: Sequence[str],
        config: Mapping[str, str] | None = None,
        secret_config: Mapping[str, str] | None = None,
    ) -> None:
        """``pulumi up --replace U --target U``: rebuild exactly these resources, change nothing else
        but what they newly need (a healed master's kubeadm-certs, :meth:`StackResources.with_new_prerequisites`,
        from the offline plan of this update: the same program with the same ``config``);
        ``config`` (``kaas:heal``) and ``secret_config`` (``kaas:joinToken``) are set for this update
        only, as in :meth:`up`, and removed afterwards (also when it fails)."""
        targets = list(urns)
        recorded = load_record(record_path(self.stack_name, self.work_dir / "stacks"), self.spec)
        if recorded is not None:  # without a record the program refuses the heal itself (kaas.cluster_plan)
            targets = self._stack_resources(recorded, config).with_new_prerequisites(urns)
        self._with_config(
            config or {},
            secret_config or {},
            lambda stack: stack.up(
                target=targets, replace=list(urns), on_output=self.on_output, message="kaas roll --heal"
            ),
        )

    def outputs(self) -> Mapping[str, Any]:
        return {name: output.value for name, output in self._select().outputs().items()}

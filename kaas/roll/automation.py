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
from typing import Any

from kaas.rollout.model import Step
from kaas.spec import ClusterSpec

INSTANCE_TYPE = "openstack:compute/instance:Instance"


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

    def urns(self, step: Step) -> Sequence[str]:
        """The program's URNs at this step (offline plan, same program) and the stack's current ones."""
        from kaas.offline.plan import plan_spec

        planned = [r.urn for r in plan_spec(self.spec, self.stack_name, recorded=step.before).resources]
        deployment = self._select().export_stack().deployment or {}
        current = [str(r["urn"]) for r in deployment.get("resources", []) if "urn" in r]
        return [*planned, *current]

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
        """``pulumi up --replace U --target U``: rebuild exactly these resources, change nothing else;
        ``config`` (``kaas:heal``) and ``secret_config`` (``kaas:joinToken``) are set for this update
        only, as in :meth:`up`, and removed afterwards (also when it fails)."""
        self._with_config(
            config or {},
            secret_config or {},
            lambda stack: stack.up(
                target=list(urns), replace=list(urns), on_output=self.on_output, message="kaas roll --heal"
            ),
        )

    def outputs(self) -> Mapping[str, Any]:
        return {name: output.value for name, output in self._select().outputs().items()}

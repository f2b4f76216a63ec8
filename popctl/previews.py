"""The seam between the fleet report and the Pulumi engine.

A :class:`PreviewRunner` answers three questions about one stack: what a refresh would change (drift made
outside the stack), what the next ``pulumi up`` would do (pending changes), and what the stack's outputs are.
:class:`CliPreviewRunner` asks the ``pulumi`` CLI; :class:`RecordedPreviewRunner` reads the CLI's JSON
documents from a directory, so tests and external checkers can run the fleet report without the CLI or
any credentials.

The CLI is used rather than the Automation API: the Automation API shells out to the same CLI anyway,
ignores ``stackConfigDir`` when reading stack settings, and would rewrite ``Pulumi.yaml`` if given project
settings.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mscloud.errors import Pop3OAuthError
from popctl.pulumi_cli import PulumiCli, PulumiCliError

STACK_RESOURCE_TYPE = "pulumi:pulumi:Stack"
UNCHANGED_OPS = frozenset({"same", "read", "discard"})
DEFAULT_TIMEOUT_SECONDS = 600.0
_REASON_LIMIT = 500


class PreviewError(Pop3OAuthError):
    """A stack could not be checked. The message says why and never carries credentials or secret values."""


@dataclass(frozen=True)
class ResourceChange:
    """One resource the engine would touch.

    ``properties`` are the top-level property paths that differ (from ``detailedDiff``, else
    ``diffReasons``, else a comparison of old and new outputs); empty when the engine gave no detail or
    the whole resource is created or deleted.
    """

    urn: str
    op: str
    properties: tuple[str, ...]

    @property
    def name(self) -> str:
        """The logical name: the last ``::`` segment of the URN."""
        return self.urn.rsplit("::", 1)[-1]

    @property
    def type(self) -> str:
        """The resource type: the last ``$`` segment of the URN's type chain."""
        parts = self.urn.split("::")
        if len(parts) < 4:
            return ""
        return parts[-2].rsplit("$", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.name,
            "type": self.type,
            "urn": self.urn,
            "op": self.op,
            "properties": list(self.properties),
        }


@dataclass(frozen=True)
class PreviewResult:
    """The resources a refresh or preview would change; empty when the stack is in sync."""

    changes: tuple[ResourceChange, ...] = ()


class PreviewRunner(Protocol):
    """Answers questions about one stack. Implementations must be safe to call from several threads.

    Every method raises :class:`PreviewError` when the stack cannot be checked (missing credentials,
    unknown stack, engine failure, timeout). The fleet report treats any other exception as a bug in the
    runner and still isolates it to the tenant.
    """

    def refresh_preview(self, stack: str) -> PreviewResult:
        """What a refresh would change: drift made outside the stack."""
        ...

    def preview(self, stack: str) -> PreviewResult:
        """What ``pulumi preview`` would do: the changes the next ``pulumi up`` applies."""
        ...

    def outputs(self, stack: str) -> Mapping[str, Any]:
        """The stack's outputs with secret values masked (``pulumi stack output --json``)."""
        ...


def parse_engine_document(document: object) -> PreviewResult:
    """Extract the changed resources from the JSON the engine prints for ``preview``/``refresh`` ``--json``.

    Steps are ``{op, urn, oldState?, newState?, diffReasons?, detailedDiff?}``. Steps whose op is
    ``same``/``read``/``discard``, ``refresh`` steps that found nothing, and the root stack resource are
    skipped. Raises :class:`PreviewError` if the document is not of that shape.
    """
    if not isinstance(document, dict):
        raise PreviewError("the engine's JSON is not an object")
    steps = document.get("steps") or []
    if not isinstance(steps, list):
        raise PreviewError("the engine's JSON has a 'steps' that is not a list")
    changes: list[ResourceChange] = []
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("urn"), str):
            raise PreviewError("the engine's JSON has a step without a 'urn'")
        change = _step_change(step)
        if change is not None and change.type != STACK_RESOURCE_TYPE:
            changes.append(change)
    return PreviewResult(tuple(changes))


def _step_change(step: Mapping[str, Any]) -> ResourceChange | None:
    op = str(step.get("op", ""))
    urn = str(step["urn"])
    properties = _diff_properties(step)
    if op in UNCHANGED_OPS:
        return None
    if op == "refresh":
        old, new = step.get("oldState"), step.get("newState")
        if new is None and old is not None:
            return ResourceChange(urn, "delete", ())
        if not properties:
            properties = _changed_outputs(old, new)
        if not properties:
            return None
        return ResourceChange(urn, "update", properties)
    return ResourceChange(urn, op, properties)


def _diff_properties(step: Mapping[str, Any]) -> tuple[str, ...]:
    detailed = step.get("detailedDiff")
    if isinstance(detailed, dict) and detailed:
        return tuple(sorted({_top_level(path) for path in detailed}))
    reasons = step.get("diffReasons") or step.get("replaceReasons")
    if isinstance(reasons, list) and reasons:
        return tuple(sorted({_top_level(str(reason)) for reason in reasons}))
    return ()


def _top_level(path: str) -> str:
    for index, char in enumerate(path):
        if char in ".[":
            return path[:index]
    return path


def _changed_outputs(old: object, new: object) -> tuple[str, ...]:
    old_outputs = old.get("outputs") if isinstance(old, dict) else None
    new_outputs = new.get("outputs") if isinstance(new, dict) else None
    if not isinstance(old_outputs, dict) or not isinstance(new_outputs, dict):
        return ()
    keys = set(old_outputs) | set(new_outputs)
    return tuple(sorted(key for key in keys if old_outputs.get(key) != new_outputs.get(key)))


def engine_failure_reason(stdout: str, stderr: str, returncode: int) -> str:
    """A one-paragraph reason for a failed CLI run: the engine's error diagnostics, else stderr's tail."""
    messages: list[str] = []
    try:
        document = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        for diagnostic in document.get("diagnostics") or []:
            if isinstance(diagnostic, dict) and diagnostic.get("severity") == "error":
                messages.append(str(diagnostic.get("message", "")).strip())
    if not messages and stderr.strip():
        messages.append(stderr.strip().splitlines()[-1])
    reason = "; ".join(message for message in messages if message) or f"pulumi exited with {returncode}"
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 3] + "..."


class CliPreviewRunner:
    """Runs the ``pulumi`` CLI in ``project_dir``, one process per question, each bounded by ``timeout``.

    ``pulumi`` must be on PATH (or given as ``executable``) and logged in to the stacks' backend; the
    environment (``ARM_*``, ``PULUMI_CONFIG_PASSPHRASE``, Key Vault credentials) is passed through.
    Secret outputs stay masked: ``--show-secrets`` is never passed.
    """

    def __init__(
        self,
        project_dir: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        executable: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._project_dir = project_dir
        self._timeout = timeout
        self._executable = executable
        self._environ = dict(os.environ if environ is None else environ)
        self._previews: dict[str, PreviewResult] = {}
        self._lock = threading.Lock()

    def refresh_preview(self, stack: str) -> PreviewResult:
        """Drift: what ``pulumi preview --refresh`` would change beyond what plain ``pulumi preview`` would.

        Not ``pulumi refresh --preview-only --json``: its steps carry each resource's state from before
        the read, so drift that only changes outputs (a FullAccess entry revoked on one mailbox) never
        shows in them. A resource changed by both the refresh and the code counts as pending only.
        """
        refreshed = parse_engine_document(self._run(["preview", "--refresh", "--json"], stack))
        pending = {change.urn for change in self.preview(stack).changes}
        return PreviewResult(tuple(change for change in refreshed.changes if change.urn not in pending))

    def preview(self, stack: str) -> PreviewResult:
        """What the next ``pulumi up`` would do; asked once per stack and runner."""
        with self._lock:
            known = self._previews.get(stack)
        if known is None:
            known = parse_engine_document(self._run(["preview", "--json"], stack))
            with self._lock:
                self._previews[stack] = known
        return known

    def outputs(self, stack: str) -> Mapping[str, Any]:
        document = self._run(["stack", "output", "--json"], stack)
        if not isinstance(document, dict):
            raise PreviewError("'pulumi stack output --json' did not print an object")
        return document

    def _run(self, arguments: Sequence[str], stack: str) -> object:
        cli = PulumiCli(
            self._project_dir,
            self._timeout,
            executable=self._executable,
            environ=self._environ,
            failure_reason=engine_failure_reason,
        )
        try:
            return cli.json(arguments, stack)
        except PulumiCliError as error:
            raise PreviewError(str(error)) from None


RECORDED_FILES = {"refresh": "refresh.json", "preview": "preview.json", "outputs": "outputs.json"}


class RecordedPreviewRunner:
    """Answers from JSON files recorded earlier: ``<directory>/<stack>/{refresh,preview,outputs}.json``.

    ``refresh.json`` holds the drift as an engine document (what ``pulumi preview --refresh --json`` prints,
    less the steps ``preview.json`` has too), ``preview.json`` what ``pulumi preview --json`` prints;
    ``outputs.json`` what ``pulumi stack output --json`` prints. A file holding ``{"error": "<reason>"}``
    stands for a failed run, and a missing file is a failure too.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def stacks(self) -> list[str]:
        """The stacks recorded: the names of the sub-directories, sorted."""
        if not self._directory.is_dir():
            return []
        return sorted(entry.name for entry in self._directory.iterdir() if entry.is_dir())

    def refresh_preview(self, stack: str) -> PreviewResult:
        return parse_engine_document(self._load(stack, "refresh"))

    def preview(self, stack: str) -> PreviewResult:
        return parse_engine_document(self._load(stack, "preview"))

    def outputs(self, stack: str) -> Mapping[str, Any]:
        document = self._load(stack, "outputs")
        if not isinstance(document, dict):
            raise PreviewError("recorded outputs are not an object")
        return document

    def _load(self, stack: str, kind: str) -> object:
        path = self._directory / stack / RECORDED_FILES[kind]
        try:
            document: object = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise PreviewError(f"no recorded {kind} result ({path.name}) for stack {stack!r}") from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PreviewError(
                f"recorded {kind} result for stack {stack!r} is unreadable: {error}"
            ) from error
        if isinstance(document, dict) and set(document) == {"error"}:
            raise PreviewError(str(document["error"]))
        return document

"""The move of the Pulumi-free code into ``mscloud/`` (issue 12), under the real engine.

A stack is deployed by the project exactly as it was before the move (commit :data:`BEFORE`, taken with
``git archive``); then the current ``components/``, ``popctl/``, ``mscloud/`` and ``__main__.py`` replace the
old ones in the same project directory. The dynamic providers are pickled by reference into the stack's
state (``components.exchange.providers.<Class>``), so the stack must still refresh - every resource read
by its stored provider, now the moved code - and preview its Exchange resources with no changes and no
error.

The preview must leave the Exchange registration as it is: it is what the move touches, and the rest of
the program may legitimately change between :data:`BEFORE` and now (the per-mailbox permissions of that
time move to one MailboxAccess on the next ``pulumi up``, see ``test_mailbox_identity.py``). The refresh
reads every resource but the stack's reference to itself, which :data:`BEFORE` declares and which a
refresh reports as changed after every update, moved or not (issue #9; ``test_deploy.py`` marks it).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from tests.e2e.harness import ROOT, Project, checkout

BEFORE = "73e4f60bd07d42b9948212d19dc1805fc506b6a2"
"""HEAD when the move began: the last commit with the Exchange client under ``components/exchange/``."""

OLD_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "components", "popctl")
MOVED = ("components", "popctl", "mscloud", "__main__.py")
EXCHANGE_TYPES = "pulumi-python:dynamic/exchange:"
PICKLED_PATH = b"components.exchange.providers"
SELF_REFERENCE = ("pulumi:pulumi:Stack", "pulumi:pulumi:StackReference")


def _remove(directory: Path, names: tuple[str, ...]) -> None:
    for name in names:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _check_out_before(directory: Path) -> None:
    """The project files of :data:`BEFORE` in ``directory``, in place of the working tree's."""
    _remove(directory, (*OLD_FILES, "mscloud"))
    checkout(BEFORE, directory)


def _swap_in_current(directory: Path) -> None:
    """The working tree's files of the move in place of the old ones (the stack's files stay)."""
    _remove(directory, MOVED)
    for name in MOVED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, directory / name)


def _resources(project: Project) -> list[dict[str, object]]:
    document = json.loads(
        project.pulumi("stack", "export", "--show-secrets", "--stack", project.stack).stdout
    )
    resources = document["deployment"]["resources"]
    assert isinstance(resources, list)
    return resources


def _exchange_resources(project: Project) -> list[dict[str, object]]:
    resources = [
        resource for resource in _resources(project) if str(resource["type"]).startswith(EXCHANGE_TYPES)
    ]
    assert resources, "the stack has no Exchange resources"
    return resources


def _targets(resources: list[dict[str, object]]) -> list[str]:
    return [argument for resource in resources for argument in ("--target", str(resource["urn"]))]


def _pickled_provider(resource: dict[str, object]) -> bytes:
    inputs = resource["inputs"]
    assert isinstance(inputs, dict)
    blob = inputs["__provider"]
    if isinstance(blob, dict):  # a secret, as `stack export --show-secrets` shows it
        blob = json.loads(str(blob["plaintext"]))
    return base64.b64decode(str(blob))


def test_a_stack_deployed_before_the_move_has_no_changes_after_it(project: Project) -> None:
    _check_out_before(project.directory)
    assert not (project.directory / "mscloud").exists()
    project.init_stack("moved")
    project.up()
    before = _exchange_resources(project)
    assert all(PICKLED_PATH in _pickled_provider(resource) for resource in before)

    _swap_in_current(project.directory)

    readable = [resource for resource in _resources(project) if resource["type"] not in SELF_REFERENCE]
    refreshed = project.pulumi(
        "refresh", "--preview-only", "--expect-no-changes", "--stack", project.stack, *_targets(readable)
    )
    previewed = project.preview("--json")
    for run in (refreshed, previewed):
        assert "error" not in run.stderr.lower(), run.describe()
    ops = {str(step["urn"]).rsplit("::", 1)[-1]: step["op"] for step in previewed.json()["steps"]}
    assert ops.get("pop3-exchange-sp", "same") == "same", ops
    # The per-mailbox resources of that time move to MailboxAccess on the next up (test_mailbox_identity).
    assert {name: op for name, op in ops.items() if "fullaccess" in name or "mailbox-access" in name} == {
        **{
            str(r["urn"]).rsplit("::", 1)[-1]: "delete"
            for r in before
            if str(r["type"]).endswith("Permission")
        },
        "pop3-mailbox-access": "create",
    }
    assert [resource["outputs"] for resource in _exchange_resources(project)] == [
        resource["outputs"] for resource in before
    ]

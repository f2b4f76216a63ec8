"""The files the pulumi CLI and GitHub read: valid YAML, and a config schema that matches the settings code.

The first release shipped a ``Pulumi.yaml`` that no YAML parser accepts, so every ``pulumi`` command failed
while every test passed. These tests read the files exactly as the tools do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.settings import NAMESPACE, SETTINGS, load_settings

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(
    [ROOT / "Pulumi.yaml", *ROOT.glob("stacks/*.yaml"), *ROOT.glob(".github/workflows/*.yml")],
    key=str,
)


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _project_config() -> dict[str, dict[str, Any]]:
    config = _load(ROOT / "Pulumi.yaml")["config"]
    assert isinstance(config, dict)
    return config


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_file_is_valid_yaml(path: Path) -> None:
    assert _load(path) is not None


def test_yaml_files_are_found() -> None:
    names = {path.name for path in YAML_FILES}
    assert {"Pulumi.yaml", "Pulumi.example.yaml", "drift.yml", "rotate.yml"} <= names


def test_project_file_declares_runtime_and_stack_directory() -> None:
    project = _load(ROOT / "Pulumi.yaml")
    assert project["name"] == NAMESPACE
    assert project["runtime"]["name"] == "python"
    assert project["stackConfigDir"] == "stacks"


def test_config_schema_declares_exactly_the_settings() -> None:
    declared = {key.removeprefix(f"{NAMESPACE}:") for key in _project_config()}
    assert all(key.startswith(f"{NAMESPACE}:") for key in _project_config())
    assert declared == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_config_schema_type_and_default_match_the_settings(name: str) -> None:
    entry = _project_config()[f"{NAMESPACE}:{name}"]
    spec = SETTINGS[name]
    assert entry["type"] == spec.type
    if spec.type == "array":
        assert entry["items"] == {"type": "string"}
    assert isinstance(entry.get("description"), str)
    assert entry["description"].strip()
    if spec.required:
        assert "default" not in entry
    else:
        assert entry["default"] == (list(spec.default) if isinstance(spec.default, tuple) else spec.default)


def test_schema_defaults_are_what_the_settings_code_applies() -> None:
    """A stack that sets only the required keys gets the same values from the CLI's defaults and from ours."""
    config = _project_config()
    raw = {"tenantId": "0a1b2c3d-1111-2222-3333-444455556666", "mailboxes": '["edi@contoso.de"]'}
    from_code = load_settings(raw)
    from_schema = load_settings(
        {
            **raw,
            **{
                key.removeprefix(f"{NAMESPACE}:"): entry["default"]
                for key, entry in config.items()
                if "default" in entry
            },
        }
    )
    assert from_schema == from_code


def test_example_stack_is_valid_configuration() -> None:
    stack = _load(ROOT / "stacks" / "Pulumi.example.yaml")["config"]
    raw = {key.removeprefix(f"{NAMESPACE}:"): value for key, value in stack.items()}
    settings = load_settings(raw)
    assert settings.mailboxes

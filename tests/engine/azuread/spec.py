"""Arguments of each resource as upstream declares them, and the check and diff rules derived from them.

A :class:`Field` mirrors one argument of the Terraform schema (terraform-provider-azuread v3) under its
Pulumi name: required or optional, ``ForceNew`` (a change replaces the resource), ``Optional+Computed``
(omitting it keeps the live value), its default and its validation. The diff compares the stored outputs -
after a refresh, the live values - with the new inputs, the way the Terraform bridge plans: an omitted
optional argument means its zero value (``""``, ``false``, an empty set), sets compare without order, and
an unknown value is a change.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from pulumi.provider.experimental.provider import (
    CheckFailure,
    DiffResponse,
    PropertyDiff,
    PropertyDiffKind,
)

from tests.engine.azuread.values import UNKNOWN, Properties, is_known


class Kind(Enum):
    STRING = "string"
    BOOL = "boolean"
    STRING_SET = "set of strings"
    STRING_MAP = "map of strings"
    ACCESS_SET = "set of required resource accesses"


Validator = Callable[[Any], str | None]


@dataclass(frozen=True)
class Field:
    """One argument: its Pulumi name, shape and the upstream rules that matter for plans."""

    name: str
    kind: Kind
    required: bool = False
    force_new: bool = False
    computed: bool = False
    default: Any = None
    validators: tuple[Validator, ...] = ()


@dataclass(frozen=True)
class ResourceSpec:
    """A resource type: its token, the arguments the stand-in implements and those it rejects."""

    token: str
    fields: tuple[Field, ...]
    unsupported: frozenset[str] = frozenset()
    conflicts: tuple[tuple[str, str], ...] = ()
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def check(self, news: Mapping[str, Any]) -> tuple[dict[str, Any], list[CheckFailure]]:
        """Failures of ``news`` and the defaults to add to them (absent keys only)."""
        failures: list[CheckFailure] = []
        defaults: dict[str, Any] = {}
        for key in sorted(news):
            if key in self.unsupported and news[key] is not None:
                failures.append(
                    CheckFailure(
                        key,
                        f"`{key}` is not implemented by the azuread stand-in used in tests "
                        "(tests/engine/azuread); the real provider supports it",
                    )
                )
        for spec in self.fields:
            value = news.get(spec.name)
            if value is None:
                if spec.required:
                    failures.append(
                        CheckFailure(
                            spec.name,
                            f"Missing required argument. The argument `{spec.name}` is required, "
                            "but no definition was found.",
                        )
                    )
                elif spec.default is not None:
                    defaults[spec.name] = spec.default
                continue
            failures.extend(CheckFailure(spec.name, reason) for reason in _validate(spec, value))
        for first, second in self.conflicts:
            if _given(news.get(first)) and _given(news.get(second)):
                failures.append(CheckFailure(first, f"`{first}` conflicts with `{second}`: set only one"))
        return defaults, failures

    def changes(
        self, olds: Mapping[str, Any], news: Mapping[str, Any], ignore: Iterable[str] = ()
    ) -> dict[str, PropertyDiffKind]:
        """Arguments whose new input differs from the stored output, with the kind of difference."""
        ignored = set(ignore)
        found: dict[str, PropertyDiffKind] = {}
        for spec in self.fields:
            if spec.name in ignored:
                continue
            new = news.get(spec.name)
            if new is None and spec.computed:
                continue
            old = normalise(spec.kind, olds.get(spec.name))
            if is_known(new) and old == normalise(spec.kind, new):
                continue
            was_empty = old == normalise(spec.kind, None)
            now_empty = is_known(new) and normalise(spec.kind, new) == normalise(spec.kind, None)
            if was_empty:
                kind = PropertyDiffKind.ADD_REPLACE if spec.force_new else PropertyDiffKind.ADD
            elif now_empty:
                kind = PropertyDiffKind.DELETE_REPLACE if spec.force_new else PropertyDiffKind.DELETE
            else:
                kind = PropertyDiffKind.UPDATE_REPLACE if spec.force_new else PropertyDiffKind.UPDATE
            found[spec.name] = kind
        return found

    def diff(
        self, olds: Mapping[str, Any], news: Mapping[str, Any], ignore: Iterable[str] = ()
    ) -> DiffResponse:
        found = self.changes(olds, news, ignore)
        replaces = [name for name in found if self.by_name[name].force_new]
        return DiffResponse(
            changes=bool(found),
            replaces=replaces,
            diffs=list(found),
            detailed_diff={name: PropertyDiff(kind, input_diff=False) for name, kind in found.items()},
            delete_before_replace=False,
        )

    def effective(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Properties:
        """The arguments to apply: ``news``, with omitted Optional+Computed arguments kept from ``olds``."""
        merged = dict(news)
        for spec in self.fields:
            if merged.get(spec.name) is None and spec.computed and olds.get(spec.name) is not None:
                merged[spec.name] = olds[spec.name]
        return merged

    def preview(
        self, news: Mapping[str, Any], olds: Mapping[str, Any] | None, computed: Iterable[str]
    ) -> Properties:
        """Outputs during a preview: known inputs as given, everything the service decides unknown."""
        outputs: Properties = dict(olds) if olds is not None else dict.fromkeys(computed, UNKNOWN)
        for spec in self.fields:
            value = news.get(spec.name)
            if value is not None:
                outputs[spec.name] = value
            elif spec.computed:
                outputs[spec.name] = outputs.get(spec.name, UNKNOWN) if olds is not None else UNKNOWN
            else:
                outputs[spec.name] = zero(spec.kind)
        return outputs

    def inputs_from(self, outputs: Mapping[str, Any], old_inputs: Mapping[str, Any]) -> Properties:
        """``Read``'s inputs: on refresh the old inputs with live values, on import the live ones."""
        if old_inputs:
            return {
                key: outputs.get(key, value) if key in self.by_name else value
                for key, value in old_inputs.items()
            }
        imported: Properties = {}
        for spec in self.fields:
            value = outputs.get(spec.name)
            if value is not None and (
                spec.required or normalise(spec.kind, value) != normalise(spec.kind, None)
            ):
                imported[spec.name] = value
        return imported


def zero(kind: Kind) -> Any:
    """What an omitted optional argument means: ``""``, ``false``, an empty list or map."""
    if kind is Kind.STRING:
        return ""
    if kind is Kind.BOOL:
        return False
    return {} if kind is Kind.STRING_MAP else []


def normalise(kind: Kind, value: Any) -> Any:
    """A comparable form: zero values for absent ones, sets sorted, resource accesses canonical."""
    if value is UNKNOWN:
        return UNKNOWN
    if kind is Kind.STRING:
        return "" if value is None else value
    if kind is Kind.BOOL:
        return bool(value) if value is not None else False
    if kind is Kind.STRING_SET:
        return tuple(sorted({str(item) for item in value or []}))
    if kind is Kind.STRING_MAP:
        return tuple(sorted((str(k), str(v)) for k, v in (value or {}).items()))
    return tuple(
        sorted(
            json.dumps(
                {
                    "resourceAppId": access.get("resourceAppId"),
                    "resourceAccesses": [
                        {"id": item.get("id"), "type": item.get("type")}
                        for item in access.get("resourceAccesses") or []
                    ],
                },
                sort_keys=True,
            )
            for access in value or []
        )
    )


def is_uuid(value: Any) -> str | None:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return f"expected a UUID, got {value!r}"
    return None


def all_uuids(values: Any) -> str | None:
    bad = [value for value in values if isinstance(value, str) and is_uuid(value) is not None]
    return f"must contain object IDs (UUIDs), got {bad[0]!r}" if bad else None


def one_of(*allowed: str) -> Validator:
    def check(value: Any) -> str | None:
        if value not in allowed:
            return f"expected one of {', '.join(allowed)}, got {value!r}"
        return None

    return check


def not_empty(value: Any) -> str | None:
    return "must not be empty" if value == "" else None


def max_length(limit: int) -> Validator:
    def check(value: Any) -> str | None:
        return f"must be at most {limit} characters" if len(str(value)) > limit else None

    return check


def max_items(limit: int) -> Validator:
    def check(value: Any) -> str | None:
        return f"must have at most {limit} items" if len(value) > limit else None

    return check


def rfc3339(value: Any) -> str | None:
    if not isinstance(value, str) or not RFC3339.match(value):
        return f"expected an RFC 3339 timestamp such as 2026-11-28T00:00:00Z, got {value!r}"
    try:
        datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return f"expected an RFC 3339 timestamp such as 2026-11-28T00:00:00Z, got {value!r}"
    return None


def application_id(value: Any) -> str | None:
    """Upstream's ``stable.ValidateApplicationID``: ``/applications/{objectId}``."""
    match = re.fullmatch(r"/applications/([^/]+)", str(value))
    if match is None or is_uuid(match.group(1)) is not None:
        return (
            f"expected an application resource ID of the form /applications/{{objectId}} (the Application's "
            f"`id`, not its clientId or objectId), got {value!r}"
        )
    return None


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _validate(spec: Field, value: Any) -> list[str]:
    if value is UNKNOWN:
        return []
    kind = spec.kind
    if kind is Kind.STRING:
        if not isinstance(value, str):
            return [f"`{spec.name}` must be a string"]
        return [f"`{spec.name}` {reason}" for check in spec.validators if (reason := check(value))]
    if kind is Kind.BOOL:
        return [] if isinstance(value, bool) else [f"`{spec.name}` must be a boolean"]
    if kind is Kind.STRING_MAP:
        if not isinstance(value, dict) or not all(isinstance(v, str) or v is UNKNOWN for v in value.values()):
            return [f"`{spec.name}` must be a map of strings"]
        return []
    if not isinstance(value, list):
        return [f"`{spec.name}` must be a list"]
    reasons = [f"`{spec.name}` {reason}" for check in spec.validators if (reason := check(value))]
    if kind is Kind.ACCESS_SET:
        return reasons + _validate_accesses(spec.name, value)
    for index, item in enumerate(value):
        if item is UNKNOWN:
            continue
        if not isinstance(item, str):
            reasons.append(f"`{spec.name}[{index}]` must be a string")
    return reasons


def _validate_accesses(name: str, accesses: list[Any]) -> list[str]:
    reasons: list[str] = []
    for index, access in enumerate(accesses):
        if access is UNKNOWN:
            continue
        where = f"`{name}[{index}]`"
        if not isinstance(access, dict):
            reasons.append(f"{where} must be an object with resourceAppId and resourceAccesses")
            continue
        if access.get("resourceAppId") is None:
            reasons.append(f"{where}.resourceAppId is required")
        items = access.get("resourceAccesses")
        if items is None:
            reasons.append(f"{where}.resourceAccesses is required")
            continue
        if items is UNKNOWN:
            continue
        for position, item in enumerate(items):
            if item is UNKNOWN or not isinstance(item, dict):
                continue
            for key, check in (("id", is_uuid), ("type", one_of("Role", "Scope"))):
                value = item.get(key)
                if value is None:
                    reasons.append(f"{where}.resourceAccesses[{position}].{key} is required")
                elif value is not UNKNOWN and (reason := check(value)):
                    reasons.append(f"{where}.resourceAccesses[{position}].{key}: {reason}")
    return reasons

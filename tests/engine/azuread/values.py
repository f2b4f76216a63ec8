"""Plain Python values to and from the SDK's ``PropertyValue``, keeping unknowns and secrets.

The engine sends an unknown (a value computed later, during preview) as the string sentinel
:data:`pulumi.runtime.rpc.UNKNOWN`; here it becomes :data:`UNKNOWN`, and goes back out as the sentinel,
which the SDK's ``PropertyValue`` cannot marshal by itself. Secrecy is tracked per top-level property: a
property whose value (or any part of it) arrived secret is returned secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from pulumi.provider.experimental.property_value import Computed, PropertyValue, ResourceReference
from pulumi.runtime.rpc import UNKNOWN as UNKNOWN_SENTINEL


class Unknown:
    """The type of :data:`UNKNOWN`, a value the engine does not know yet."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = Unknown()

Properties = dict[str, Any]


def to_plain(value: PropertyValue) -> Any:
    """The plain value of ``value``: None, bool, float, str, list, dict or :data:`UNKNOWN`."""
    inner = value.value
    if isinstance(inner, Computed) or inner == UNKNOWN_SENTINEL:
        return UNKNOWN
    if isinstance(inner, ResourceReference):
        reference_id = inner.resource_id
        return to_plain(reference_id) if isinstance(reference_id, PropertyValue) else inner.urn
    if isinstance(inner, str | bool | float) or inner is None:
        return inner
    if isinstance(inner, Mapping):
        return {key: to_plain(item) for key, item in inner.items()}
    if isinstance(inner, Sequence):
        return [to_plain(item) for item in inner if isinstance(item, PropertyValue)]
    raise TypeError(f"unsupported property value of type {type(inner).__name__}")


def plain_map(values: Mapping[str, PropertyValue]) -> Properties:
    return {key: to_plain(value) for key, value in values.items()}


def secret_keys(values: Mapping[str, PropertyValue]) -> frozenset[str]:
    """The top-level keys whose value is or contains a secret."""
    return frozenset(key for key, value in values.items() if value.contains_secret())


def from_plain(value: Any, *, secret: bool = False) -> PropertyValue:
    """``value`` as a ``PropertyValue``; ints become floats, :data:`UNKNOWN` the engine's sentinel."""
    if value is UNKNOWN:
        converted = PropertyValue(UNKNOWN_SENTINEL)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        converted = PropertyValue(value)
    elif isinstance(value, int | float):
        converted = PropertyValue(float(value))
    elif isinstance(value, Mapping):
        converted = PropertyValue({str(key): from_plain(item) for key, item in value.items()})
    elif isinstance(value, Sequence):
        converted = PropertyValue([from_plain(item) for item in value])
    else:
        raise TypeError(f"cannot turn {type(value).__name__} into a property value")
    return converted.with_secret(True) if secret else converted


def property_map(values: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, PropertyValue]:
    """``values`` as properties; keys in ``secrets`` are marked secret. ``None`` values are dropped."""
    hidden = frozenset(secrets)
    return {
        key: from_plain(value, secret=key in hidden) for key, value in values.items() if value is not None
    }


def is_known(value: Any) -> bool:
    """Whether ``value`` contains no :data:`UNKNOWN` anywhere."""
    if value is UNKNOWN:
        return False
    if isinstance(value, Mapping):
        return all(is_known(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(is_known(item) for item in value)
    return True


def as_bool(value: Any) -> bool | None:
    """A boolean argument; provider configuration sends booleans JSON-encoded (``"true"``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r}")

"""``SecretSlot``: the rotation schedule's memory, one dynamic resource per secret slot, in the stack's state.

In the manner of Terraform's ``time_rotating``: the resource's state is the slot's
:class:`components.rotation.SlotState`; ``diff`` reads the clock and that state and reports a change only
when the slot is due (or re-issued, or the period changed), so ``pulumi preview`` shows exactly the
rotation the next ``pulumi up`` makes, and a run inside a period changes nothing. No stack output is read
back, so nothing here turns secret. ``read`` returns the state unchanged: there is nothing outside the
stack to refresh.

A slot created while the app already has secrets of ours (a stack of the first release, which kept the
schedule in a stack output, or a record lost from state) takes them over from Microsoft Graph - the
password credentials' display names and end dates - instead of issuing new ones.

The provider is pickled by reference (``components.secret_slots.SecretSlotProvider``): keep the module path
and the class name.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from components.exchange.providers import is_unknown
from components.rotation import (
    IssuedSecret,
    ScheduleError,
    SlotState,
    advance,
    changed,
    initial_state,
    recover_state,
)
from components.settings import (
    MAX_ROTATION_DAYS,
    MAX_SECRET_LIFETIME_DAYS,
    MIN_ROTATION_DAYS,
    SECRET_SLOTS,
    key,
    parse_rfc3339,
    program_clock,
)
from mscloud.auth import shared_token_source
from mscloud.clouds import CLOUDS, get_cloud
from mscloud.ids import is_guid

INPUT_KEYS = ("tenant_id", "cloud", "application_object_id", "slot", "period_days", "force_rotation")
# An input the schedule obeys but does not record: stacks deployed before it existed have no value for it.
LIFETIME_KEY = "max_lifetime_days"

_clock_lock = threading.Lock()
_run_clock: list[Any] = []


def run_clock() -> Any:
    """The clock of this provider process, read once: every slot of one run sees the same moment."""
    with _clock_lock:
        if not _run_clock:
            _run_clock.append(program_clock())
        return _run_clock[0]


def issued_secrets(tenant_id: str, cloud_name: str, application_object_id: str) -> list[IssuedSecret]:
    """The app's password credentials as Microsoft Graph lists them (names and end dates, never values)."""
    from mscloud.graph import GraphClient, GraphNotFound

    client = GraphClient(tenant_id, get_cloud(cloud_name).with_overrides(), shared_token_source())
    try:
        application = client.get(
            f"/applications/{application_object_id}", {"$select": "id,passwordCredentials"}
        )
    except GraphNotFound:
        return []  # just created and not visible yet: it has no secrets
    finally:
        client.close()
    return [
        IssuedSecret(str(credential.get("displayName") or ""), parse_rfc3339(str(credential["endDateTime"])))
        for credential in application.get("passwordCredentials") or []
        if credential.get("endDateTime")
    ]


class SecretSlotProvider(ResourceProvider):
    """Keeps one slot's :class:`SlotState`. Inputs: ``tenant_id``, ``cloud``, ``application_object_id``,
    ``slot``, ``period_days``, ``force_rotation`` and ``max_lifetime_days`` (the tenant policy's cap, 730
    when absent). Outputs: the inputs but the cap, and the state's fields (``SlotState.to_output``). The id
    is ``slot-<n>``. Nothing is kept on ``self``."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        for name in ("tenant_id", "application_object_id"):
            value = news.get(name)
            if not is_unknown(value) and not (isinstance(value, str) and is_guid(value)):
                failures.append(CheckFailure(name, f"{name} must be a GUID, got {value!r}"))
        if not is_unknown(news.get("cloud")) and news.get("cloud") not in CLOUDS:
            failures.append(CheckFailure("cloud", f"cloud must be one of {', '.join(CLOUDS)}"))
        if news.get("slot") not in range(SECRET_SLOTS):
            failures.append(CheckFailure("slot", f"slot must be 0..{SECRET_SLOTS - 1}"))
        period = news.get("period_days")
        if not (isinstance(period, int | float) and MIN_ROTATION_DAYS <= period <= MAX_ROTATION_DAYS):
            failures.append(
                CheckFailure(
                    "period_days",
                    f"{key('secretRotationDays')} must be {MIN_ROTATION_DAYS}..{MAX_ROTATION_DAYS}",
                )
            )
        cap = news.get(LIFETIME_KEY, MAX_SECRET_LIFETIME_DAYS)
        if isinstance(period, int | float) and isinstance(cap, int | float) and period * SECRET_SLOTS > cap:
            failures.append(
                CheckFailure(
                    "period_days",
                    f"{key('secretRotationDays')} {int(period)} issues secrets valid for "
                    f"{int(period) * SECRET_SLOTS} days, longer than {key('maxSecretLifetimeDays')} "
                    f"({int(cap)}) allows",
                )
            )
        before, after = olds.get("force_rotation"), news.get("force_rotation")
        if isinstance(before, int | float) and isinstance(after, int | float) and after < before:
            failures.append(
                CheckFailure(
                    "force_rotation",
                    f"{key('forceRotation')} was lowered from {int(before)} to {int(after)}: it can only be "
                    f"raised (each raise revokes every secret at once); set it back to {int(before)}",
                )
            )
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        now = run_clock()
        slot, period, force = int(props["slot"]), int(props["period_days"]), int(props["force_rotation"])
        secrets = issued_secrets(props["tenant_id"], props["cloud"], props["application_object_id"])
        try:
            state = recover_state(slot, secrets, props["tenant_id"], force, now)
        except ScheduleError as error:
            raise ScheduleError(
                f"slot {slot}: the app already has secrets of this project, but they cannot be taken over "
                f"safely: {error}. Nothing was changed. Remove the secrets you no longer need in the Entra "
                "admin center (App registrations > the app > Certificates & secrets) and run pulumi up again."
            ) from None
        cap = _lifetime_cap(props)
        if state is None:
            state = initial_state(slot, props["tenant_id"], period, force, now, cap)
        state = advance(state, period, force, now, cap)
        return CreateResult(f"slot-{slot}", _outputs(props, state))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if any(is_unknown(news.get(name)) for name in INPUT_KEYS):
            return DiffResult(changes=True)
        before = SlotState.from_output(olds)
        after = advance(
            before, int(news["period_days"]), int(news["force_rotation"]), run_clock(), _lifetime_cap(news)
        )
        moved = [name for name in ("tenant_id", "application_object_id") if olds.get(name) != news.get(name)]
        return DiffResult(
            changes=changed(before, after) or bool(moved), replaces=[], delete_before_replace=False
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        before = SlotState.from_output(olds)
        after = advance(
            before, int(news["period_days"]), int(news["force_rotation"]), run_clock(), _lifetime_cap(news)
        )
        return UpdateResult(_outputs(news, after))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing outside the stack to remove."""


def _lifetime_cap(props: Mapping[str, Any]) -> int:
    cap = props.get(LIFETIME_KEY)
    return int(cap) if isinstance(cap, int | float) else MAX_SECRET_LIFETIME_DAYS


def _outputs(props: Mapping[str, Any], state: SlotState) -> dict[str, Any]:
    return {**{name: props[name] for name in INPUT_KEYS}, **state.to_output()}


class SecretSlot(Resource, module="rotation", name="SecretSlot"):
    """One slot of the rotation schedule (type ``pulumi-python:dynamic/rotation:SecretSlot``).

    Its outputs ``display_name`` and ``end_date`` are the slot's ApplicationPassword arguments; the rest
    is the schedule's bookkeeping (``components.rotation.SlotState``).
    """

    index: int
    slot: pulumi.Output[int]
    generation: pulumi.Output[int]
    display_name: pulumi.Output[str]
    end_date: pulumi.Output[str]
    expires_at: pulumi.Output[str]
    recorded_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        tenant_id: pulumi.Input[str],
        cloud: pulumi.Input[str],
        application_object_id: pulumi.Input[str],
        slot: int,
        period_days: int,
        force_rotation: int,
        max_lifetime_days: int = MAX_SECRET_LIFETIME_DAYS,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "tenant_id": tenant_id,
            "cloud": cloud,
            "application_object_id": application_object_id,
            "slot": slot,
            "period_days": period_days,
            "force_rotation": force_rotation,
            LIFETIME_KEY: max_lifetime_days,
            **dict.fromkeys(_STATE_KEYS),
        }
        super().__init__(SecretSlotProvider(), resource_name, props, opts)
        self.index = slot


def slot_state(slot: SecretSlot) -> pulumi.Output[dict[str, Any]]:
    """The record's outputs as one mapping (``SlotState.from_output`` reads it)."""
    names = (*INPUT_KEYS, *_STATE_KEYS)
    return pulumi.Output.all(*(getattr(slot, name) for name in names)).apply(
        lambda values: dict(zip(names, values, strict=True))
    )


_STATE_KEYS = (
    "anchor_at",
    "anchor_generation",
    "generation",
    "event_at",
    "expires_at",
    "recorded_at",
    "display_name",
    "end_date",
    "next_rotation_at",
)

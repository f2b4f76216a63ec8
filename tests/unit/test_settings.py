"""Configuration validation: every rule, valid and invalid, and all problems reported at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.settings import (
    MAX_ROTATION_DAYS,
    AdoptedSecret,
    SettingsError,
    format_adopted_secret,
    load_settings,
    longest_rotation_days,
    parse_adopted_secret,
)

TENANT = "0a1b2c3d-1111-2222-3333-444455556666"
KEY_ID = "6f1c2a3b-0000-4000-8000-1234567890ab"


def valid(**overrides: object) -> dict[str, object]:
    raw: dict[str, object] = {"tenantId": TENANT, "mailboxes": json.dumps(["edi@contoso.de"])}
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


def problems(raw: dict[str, object]) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as caught:
        load_settings(raw)
    return caught.value.problems


def test_minimal_configuration_gets_the_documented_defaults() -> None:
    settings = load_settings(valid())
    assert settings.tenant_id == TENANT
    assert settings.mailboxes == ("edi@contoso.de",)
    assert settings.app_display_name == "POP3APP"
    assert settings.secret_rotation_days == 180
    assert settings.force_rotation == 0
    assert settings.cloud == "public"
    assert settings.owners == ()
    assert settings.tags == ()
    assert settings.adopted_secrets == ()


def test_every_setting_is_read_and_normalised() -> None:
    owner = "AAAAAAAA-1111-2222-3333-444455556666"
    settings = load_settings(
        valid(
            tenantId=TENANT.upper(),
            mailboxes=json.dumps(["EDI@Contoso.de", "eab@contoso.de"]),
            appDisplayName="POP3 Concept Office",
            secretRotationDays="90",
            forceRotation="2",
            cloud="usgovernment",
            owners=json.dumps([owner]),
            tags=json.dumps(["customer:mueller"]),
            adoptedSecrets=json.dumps([f"{KEY_ID} 2027-05-31T10:00:00Z POP3 secret by hand"]),
        )
    )
    assert settings.tenant_id == TENANT
    assert settings.mailboxes == ("EDI@Contoso.de", "eab@contoso.de")
    assert settings.app_display_name == "POP3 Concept Office"
    assert settings.secret_rotation_days == 90
    assert settings.force_rotation == 2
    assert settings.cloud == "usgovernment"
    assert settings.owners == (owner.lower(),)
    assert settings.tags == ("customer:mueller",)
    assert settings.adopted_secrets == (
        AdoptedSecret(KEY_ID, datetime(2027, 5, 31, 10, tzinfo=UTC), "POP3 secret by hand"),
    )


def test_native_values_are_accepted_as_well_as_strings() -> None:
    settings = load_settings(valid(mailboxes=["edi@contoso.de"], secretRotationDays=30, forceRotation=1))
    assert (settings.mailboxes, settings.secret_rotation_days, settings.force_rotation) == (
        ("edi@contoso.de",),
        30,
        1,
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(None, False), ("true", True), (" False ", False), (True, True), (False, False)]
)
def test_allow_duplicate_app_name_is_a_boolean_off_by_default(value: object, expected: bool) -> None:
    raw = valid() if value is None else valid(allowDuplicateAppName=value)
    assert load_settings(raw).allow_duplicate_app_name is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"mailboxes": json.dumps(["a@b.de"])}, "pop3-oauth:tenantId: is required"),
        (valid(tenantId="contoso.onmicrosoft.com"), "pop3-oauth:tenantId: must be a GUID"),
        (valid(tenantId="0a1b2c3d-1111-2222-3333-44445555666"), "pop3-oauth:tenantId: must be a GUID"),
        ({"tenantId": TENANT}, "pop3-oauth:mailboxes: is required"),
        (valid(mailboxes="[]"), "pop3-oauth:mailboxes: must list at least one mailbox"),
        (valid(mailboxes=json.dumps(["edi@contoso"])), "'edi@contoso' is not an e-mail address"),
        (valid(mailboxes=json.dumps(["edi contoso.de"])), "is not an e-mail address"),
        (valid(mailboxes=json.dumps(["a@b.de", "A@B.DE"])), "'A@B.DE' is listed twice"),
        (valid(mailboxes=json.dumps([1, 2])), "pop3-oauth:mailboxes: must be a list of"),
        (valid(appDisplayName="x" * 121), "pop3-oauth:appDisplayName: must be at most 120"),
        (valid(appDisplayName="  "), "pop3-oauth:appDisplayName: must be a non-empty name"),
        (
            valid(secretRotationDays="6"),
            "pop3-oauth:secretRotationDays: must be a whole number of days from 7 to 243",
        ),
        (valid(secretRotationDays=str(MAX_ROTATION_DAYS + 1)), "pop3-oauth:secretRotationDays: must be"),
        (valid(secretRotationDays="half a year"), "pop3-oauth:secretRotationDays: must be"),
        (valid(secretRotationDays="true"), "pop3-oauth:secretRotationDays: must be"),
        (valid(secretRotationDays=True), "pop3-oauth:secretRotationDays: must be"),
        (valid(forceRotation="-1"), "pop3-oauth:forceRotation: must be a whole number >= 0"),
        (valid(forceRotation="1.5"), "pop3-oauth:forceRotation: must be"),
        (valid(allowDuplicateAppName="yes"), "pop3-oauth:allowDuplicateAppName: must be true or false"),
        (valid(cloud="germany"), "pop3-oauth:cloud: must be one of public, usgovernment, china"),
        (valid(owners=json.dumps(["not-a-guid"])), "pop3-oauth:owners: 'not-a-guid' is not a GUID"),
        (
            valid(owners=json.dumps([TENANT, TENANT.upper()])),
            "pop3-oauth:owners: lists the same object id twice",
        ),
        (valid(tags=json.dumps([""])), "pop3-oauth:tags: '' must be a non-empty string"),
        (
            valid(adoptedSecrets=json.dumps(["nokey 2027-01-01T00:00:00Z"])),
            "pop3-oauth:adoptedSecrets: 'nokey'",
        ),
        (valid(adoptedSecrets=json.dumps([f"{KEY_ID} tomorrow"])), "'tomorrow' is not an RFC 3339 time"),
        (valid(adoptedSecrets=json.dumps([f"{KEY_ID} 2027-01-01T00:00:00"])), "is not an RFC 3339 time"),
        (valid(mailbox=json.dumps(["a@b.de"])), "pop3-oauth:mailbox: is not a setting of this program"),
    ],
)
def test_each_invalid_value_is_named_with_its_key_and_valid_form(
    raw: dict[str, object], expected: str
) -> None:
    found = problems(raw)
    assert any(expected in problem for problem in found), found


def test_all_problems_are_reported_at_once() -> None:
    found = problems(
        {
            "tenantId": "nope",
            "mailboxes": json.dumps(["bad", "ok@contoso.de", "OK@contoso.de"]),
            "secretRotationDays": "1000",
            "cloud": "mars",
            "forceRotation": "x",
        }
    )
    keys = [problem.split(":")[1] for problem in found]
    assert keys == ["tenantId", "mailboxes", "mailboxes", "secretRotationDays", "forceRotation", "cloud"]
    message = str(SettingsError(list(found)))
    assert message.startswith("invalid stack configuration (6 problem(s))")


@given(days=st.integers(min_value=7, max_value=MAX_ROTATION_DAYS))
def test_every_rotation_period_in_range_is_accepted(days: int) -> None:
    assert load_settings(valid(secretRotationDays=str(days))).secret_rotation_days == days


@given(days=st.one_of(st.integers(max_value=6), st.integers(min_value=MAX_ROTATION_DAYS + 1)))
def test_every_rotation_period_out_of_range_is_refused(days: int) -> None:
    with pytest.raises(SettingsError):
        load_settings(valid(secretRotationDays=str(days)))


def test_largest_rotation_period_keeps_three_lifetimes_inside_two_years() -> None:
    assert MAX_ROTATION_DAYS * 3 <= 730 < (MAX_ROTATION_DAYS + 1) * 3


def test_adopted_secret_entries_round_trip() -> None:
    secret = AdoptedSecret(KEY_ID, datetime(2027, 5, 31, 10, tzinfo=UTC), "by hand")
    assert parse_adopted_secret(format_adopted_secret(secret)) == secret
    assert parse_adopted_secret(f"{KEY_ID} 2027-05-31T10:00:00Z").display_name == ""


def test_max_secret_lifetime_defaults_to_entras_two_years() -> None:
    assert load_settings(valid()).max_secret_lifetime_days == 730


def test_a_period_whose_secrets_outlive_the_tenant_policy_is_refused_naming_both_keys() -> None:
    (problem,) = problems(valid(secretRotationDays="180", maxSecretLifetimeDays="365"))
    assert "pop3-oauth:secretRotationDays" in problem
    assert "pop3-oauth:maxSecretLifetimeDays" in problem
    assert "at most 121" in problem


@given(st.integers(min_value=21, max_value=730), st.integers(min_value=7, max_value=MAX_ROTATION_DAYS))
def test_a_period_is_accepted_exactly_when_three_periods_fit_the_policy(lifetime: int, days: int) -> None:
    raw = valid(secretRotationDays=str(days), maxSecretLifetimeDays=str(lifetime))
    if 3 * days <= lifetime:
        settings = load_settings(raw)
        assert settings.secret_lifetime_days == 3 * days <= settings.max_secret_lifetime_days
        assert longest_rotation_days(lifetime) >= days
    else:
        assert any("maxSecretLifetimeDays" in problem for problem in problems(raw))
        assert longest_rotation_days(lifetime) < days


@pytest.mark.parametrize("value", ["20", "731", "soon", "-1"])
def test_max_secret_lifetime_out_of_range_is_refused(value: str) -> None:
    assert any(
        problem.startswith("pop3-oauth:maxSecretLifetimeDays") and "21 to 730" in problem
        for problem in problems(valid(maxSecretLifetimeDays=value))
    )

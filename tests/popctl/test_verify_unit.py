"""verify's logic without network: option resolution, the retry loop, claim checks, AADSTS mapping."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mscloud.causes import Cause
from mscloud.clouds import EXCHANGE_ONLINE_APP_ID, get_cloud
from mscloud.entra import AADSTS, AppTokenRequest, TokenClaims, TokenRequestFailed
from mscloud.retry import Backoff
from popctl import stack
from popctl.cli import build_parser
from popctl.commands import verify as verify_command
from popctl.errors import UsageError
from popctl.pop3 import MailboxStatus, Pop3LoginRefused
from popctl.target import Target, TargetOptions, resolve_target
from popctl.verify import PROPAGATION_CAUSES, REMEDIES, MailboxResult, RetryNotice, Verifier
from tests.fakes.clock import FakeClock
from tests.popctl.conftest import MAILBOX, SECRET, SP_OBJECT_ID, TENANT, CliRun, Seams, stack_output_values

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"


def parse(*argv: str) -> TargetOptions:
    """What ``popctl verify ARGV`` says about the target, parsed and typed as the command does."""
    arguments = ["verify", *argv]
    return verify_command.parse(build_parser(arguments).parse_args(arguments)).target


def make_token(**overrides: Any) -> str:
    claims: dict[str, Any] = {
        "tid": TENANT,
        "aud": "https://outlook.office365.com",
        "roles": ["POP.AccessAsApp"],
        "exp": 4_000_000_000,
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, "k" * 32, algorithm="HS256")


TARGET = Target(
    tenant_id=TENANT,
    client_id="3c5e7a9b-1d2f-4e6a-8b0c-2d4f6a8c0e1a",
    mailboxes=(MAILBOX,),
    pop3_host="pop.example.test",
    pop3_port=995,
    authority_host="https://login.example.test",
    scope=EXCHANGE_SCOPE,
    cloud=get_cloud("public"),
)


def verifier(
    acquire: Callable[[AppTokenRequest, str], str],
    login: Callable[..., MailboxStatus] | None = None,
    clock: FakeClock | None = None,
    notices: list[RetryNotice] | None = None,
) -> Verifier:
    clock = clock or FakeClock(start=1000.0)

    def default_login(host: str, port: int, user: str, token: str, **_: object) -> MailboxStatus:
        return MailboxStatus(5, 5000)

    return Verifier(
        TARGET,
        SECRET,
        acquire=acquire,
        login=login or default_login,
        backoff=Backoff(initial=1, factor=2, maximum=8),
        clock=clock,
        sleep=clock.sleep,
        on_retry=notices.append if notices is not None else None,
    )


def test_every_cause_has_a_remedy() -> None:
    assert set(REMEDIES) == set(Cause)


def test_retry_gets_a_fresh_token_each_time_and_stops_when_the_role_arrives() -> None:
    requests: list[AppTokenRequest] = []
    tokens = [make_token(roles=[]), make_token(roles=[]), make_token()]

    def acquire(request: AppTokenRequest, secret: str) -> str:
        requests.append(request)
        return tokens[len(requests) - 1]

    clock, notices = FakeClock(start=1000.0), list[RetryNotice]()
    result = verifier(acquire, clock=clock, notices=notices).verify(MAILBOX, wait=60)

    assert (result.ok, result.messages, result.octets, result.attempts) == (True, 5, 5000, 3)
    assert len(requests) == 3
    assert clock.sleeps == [1, 2]
    assert [notice.cause for notice in notices] == [Cause.CONSENT_MISSING] * 2


def test_wait_is_bounded_by_the_deadline_with_capped_backoff() -> None:
    clock = FakeClock(start=1000.0)

    result = verifier(lambda request, secret: make_token(roles=[]), clock=clock).verify(MAILBOX, wait=30)

    assert not result.ok and result.cause is Cause.CONSENT_MISSING
    assert sum(clock.sleeps) == pytest.approx(30)
    assert max(clock.sleeps) <= 8
    assert clock.sleeps[:4] == [1, 2, 4, 8]
    assert result.detail is not None and "still failing" in result.detail


def test_failures_that_are_not_propagation_are_not_retried() -> None:
    def acquire(request: AppTokenRequest, secret: str) -> str:
        raise TokenRequestFailed("Token request", Cause.EXPIRED_SECRET, "expired", codes=(7000222,))

    clock = FakeClock(start=1000.0)
    result = verifier(acquire, clock=clock).verify(MAILBOX, wait=300)

    assert (result.cause, result.attempts, result.aadsts, clock.sleeps) == (
        Cause.EXPIRED_SECRET,
        1,
        (7000222,),
        [],
    )


def test_refused_login_with_an_expired_token_blames_the_clock() -> None:
    def refuse(*args: object, **kwargs: object) -> MailboxStatus:
        raise Pop3LoginRefused("-ERR Authentication failure")

    result = verifier(lambda request, secret: make_token(exp=1), login=refuse).verify(MAILBOX)

    assert result.cause is Cause.TOKEN_EXPIRED


def test_refused_login_with_good_claims_is_login_refused() -> None:
    def refuse(*args: object, **kwargs: object) -> MailboxStatus:
        raise Pop3LoginRefused("-ERR Authentication failure: unknown user name or bad password.")

    result = verifier(lambda request, secret: make_token(), login=refuse).verify(MAILBOX)

    assert result.cause is Cause.LOGIN_REFUSED
    assert result.cause in PROPAGATION_CAUSES
    assert (
        result.detail
        == "pop.example.test:995: -ERR Authentication failure: unknown user name or bad password."
    )


def test_claims_of_another_tenant_fail_before_login() -> None:
    logins: list[str] = []

    def login(host: str, port: int, user: str, token: str, **_: object) -> MailboxStatus:
        logins.append(user)
        return MailboxStatus(0, 0)

    token = make_token(tid="00000000-0000-4000-8000-000000000000")
    result = verifier(lambda request, secret: token, login=login).verify(MAILBOX)

    assert (result.cause, logins) == (Cause.WRONG_TENANT, [])


def test_a_token_without_a_tenant_claim_leaves_the_verdict_to_the_server() -> None:
    logins: list[str] = []

    def login(host: str, port: int, user: str, token: str, **_: object) -> MailboxStatus:
        logins.append(user)
        return MailboxStatus(2, 100)

    token = make_token(tid=None)
    result = verifier(lambda request, secret: token, login=login).verify(MAILBOX)

    assert (result.ok, result.messages, logins) == (True, 2, [MAILBOX])


def test_verifier_repr_hides_the_secret() -> None:
    assert SECRET not in repr(verifier(lambda request, secret: ""))


def test_json_line_has_the_contract_fields() -> None:
    line = MailboxResult(MAILBOX, False, cause=Cause.POP_DISABLED, detail="x").as_json()

    assert {"mailbox", "ok", "messages", "octets", "cause", "remedy"} <= set(line)
    assert line["cause"] == "pop-disabled" and "Set-CASMailbox" in line["remedy"]


@given(
    audience=st.sampled_from(
        ["https://outlook.office365.com", "https://OUTLOOK.office365.com/", EXCHANGE_ONLINE_APP_ID]
    ),
    tenant_case=st.booleans(),
)
def test_accepted_audiences_and_tenant_case(audience: str, tenant_case: bool) -> None:
    claims = TokenClaims.from_claims(
        {"aud": audience, "tid": TENANT.upper() if tenant_case else TENANT, "roles": ["POP.AccessAsApp"]}
    )

    assert claims.problems(tenant_id=TENANT, scope=EXCHANGE_SCOPE) == []


@given(role_sets=st.lists(st.sampled_from(["IMAP.AccessAsApp", "SMTP.Send", "Mail.Read"]), max_size=3))
def test_any_role_set_without_pop_is_role_missing(role_sets: list[str]) -> None:
    claims = TokenClaims.from_claims(
        {"aud": "https://outlook.office365.com", "tid": TENANT, "roles": role_sets}
    )

    assert claims.problems(tenant_id=TENANT, scope=EXCHANGE_SCOPE) == [Cause.CONSENT_MISSING]


def test_tenant_given_as_domain_is_not_compared_with_tid() -> None:
    claims = TokenClaims.from_claims(
        {"aud": "https://outlook.office365.com", "tid": TENANT, "roles": ["POP.AccessAsApp"]}
    )

    assert claims.problems(tenant_id="contoso.onmicrosoft.com", scope=EXCHANGE_SCOPE) == []


def test_not_a_jwt() -> None:
    with pytest.raises(TokenRequestFailed) as caught:
        TokenClaims.from_token("opaque-token-value")
    assert caught.value.cause is Cause.TOKEN_REQUEST_FAILED
    assert caught.value.detail == "the access token is not a readable JWT"
    assert "opaque-token-value" not in str(caught.value)


@pytest.mark.parametrize(("code", "cause"), sorted((code, entry.cause) for code, entry in AADSTS.items()))
def test_aadsts_codes_map_to_causes(code: int, cause: Cause) -> None:
    response = {
        "error": "invalid_client",
        "error_description": f"AADSTS{code}: Something. Trace ID: abc Correlation ID: def Timestamp: 2030",
        "error_codes": [code],
    }

    failure = TokenRequestFailed.from_response("Token request", response)

    assert (failure.cause, failure.codes) == (cause, (code,))
    assert "Trace ID" not in failure.detail


def test_aadsts_code_read_from_the_description_when_codes_are_missing() -> None:
    failure = TokenRequestFailed.from_response(
        "Token request", {"error_description": "AADSTS7000222: The provided client secret keys are expired."}
    )

    assert failure.cause is Cause.EXPIRED_SECRET


def test_stack_supplies_everything_and_secret_is_read_only_when_not_in_env(
    stack_outputs: Callable[[Mapping[str, Any]], list[tuple[str, bool]]], seams: Seams
) -> None:
    calls = stack_outputs(stack_output_values())

    target, secret = resolve_target(parse("--stack", "acme"), {}, read_stack=seams.read_stack)

    assert calls == [("acme", True)]
    assert secret == SECRET
    assert (target.tenant_id, target.mailboxes, target.service_principal_object_id) == (
        TENANT,
        (MAILBOX,),
        SP_OBJECT_ID,
    )
    assert (target.pop3_host, target.pop3_port) == ("outlook.office365.com", 995)
    assert target.authority_host == "https://login.microsoftonline.com"
    assert target.scope == EXCHANGE_SCOPE

    calls.clear()
    _, secret = resolve_target(
        parse("--stack", "acme"), {"POP3_OAUTH_CLIENT_SECRET": "from-env"}, read_stack=seams.read_stack
    )
    assert (calls, secret) == ([("acme", False)], "from-env")


def test_command_line_then_environment_then_stack(
    stack_outputs: Callable[[Mapping[str, Any]], list[tuple[str, bool]]], seams: Seams
) -> None:
    stack_outputs(stack_output_values())
    env = {"POP3_OAUTH_AUTHORITY_HOST": "https://127.0.0.1:8443/", "POP3_OAUTH_CLIENT_SECRET": "s"}

    target, _ = resolve_target(
        parse("--stack", "acme", "--pop3-port", "9995", "--mailbox", "b@x.test"),
        env,
        read_stack=seams.read_stack,
    )
    assert (target.authority_host, target.pop3_port, target.mailboxes) == (
        "https://127.0.0.1:8443",
        9995,
        ("b@x.test",),
    )

    target, _ = resolve_target(
        parse("--stack", "acme", "--authority-host", "https://login.example.test"),
        env,
        read_stack=seams.read_stack,
    )
    assert target.authority_host == "https://login.example.test"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--tenant-id", TENANT, "--client-id", "c", "--mailbox", MAILBOX], {}, "POP3_OAUTH_CLIENT_SECRET"),
        (["--tenant-id", TENANT, "--mailbox", MAILBOX], {"POP3_OAUTH_CLIENT_SECRET": "s"}, "--client-id"),
        (["--tenant-id", TENANT, "--client-id", "c"], {"POP3_OAUTH_CLIENT_SECRET": "s"}, "--mailbox"),
        (
            [
                "--tenant-id",
                TENANT,
                "--client-id",
                "c",
                "--mailbox",
                MAILBOX,
                "--authority-host",
                "login.example",
            ],
            {"POP3_OAUTH_CLIENT_SECRET": "s"},
            "full URL",
        ),
        (
            ["--tenant-id", TENANT, "--client-id", "c", "--mailbox", MAILBOX, "--wait", "-1"],
            {"POP3_OAUTH_CLIENT_SECRET": "s"},
            "--wait",
        ),
    ],
)
def test_usage_errors(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_target(parse(*argv), env)


def test_secret_is_not_an_option() -> None:
    with pytest.raises(SystemExit):
        build_parser(["verify"]).parse_args(["verify", "--client-secret", SECRET])


def test_missing_secret_exits_2_without_touching_the_network(run_cli: Callable[..., CliRun]) -> None:
    run = run_cli("verify", "--tenant-id", TENANT, "--client-id", "c", "--mailbox", MAILBOX)

    assert run.code == 2
    assert "POP3_OAUTH_CLIENT_SECRET" in run.stderr


def test_missing_pulumi_cli_exits_2_with_a_clear_message(
    run_cli: Callable[..., CliRun], seams: Seams
) -> None:
    seams.read_stack = stack.PulumiCli(executable="pulumi-not-installed-here")

    run = run_cli("verify", "--stack", "acme")

    assert run.code == 2
    assert "Pulumi CLI" in run.stderr and "--tenant-id" in run.stderr


def test_default_tls_context_verifies() -> None:
    context = Verifier(TARGET, SECRET).tls_context

    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname

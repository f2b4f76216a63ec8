"""``DeployingIdentities``: every identity that ran ``pulumi up`` on the stack, so that each stays an owner.

The azuread provider makes the calling identity an owner at create and then removes it unless the
configuration lists it, and on update removes every owner the configuration does not list. An owner list
of "the configured owners plus whoever runs this update" would therefore let an operator's sign-in and the
CI identity strip each other's ownership on alternate runs. This record remembers each identity that ran
an update (the object ids ``azuread.get_client_config`` reports) in the stack's state, and the program
makes the union of the record and the ``owners`` setting the owners of the app and its service principal.

Nothing here calls Microsoft: ``read`` returns the record unchanged. The provider is pickled by reference
(``components.owners.DeployingIdentitiesProvider``): keep the module path and the class name.
"""

from __future__ import annotations

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
from mscloud.ids import is_guid

RECORD_ID = "deploying-identities"


class DeployingIdentitiesProvider(ResourceProvider):
    """Input ``caller`` (the object id running this update); output ``identities``, every caller so far
    (lower case, in the order they first ran). A new caller is an in-place update that adds it."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        caller = news.get("caller")
        failures = []
        if not is_unknown(caller) and not (isinstance(caller, str) and is_guid(caller)):
            failures.append(
                CheckFailure("caller", f"caller must be the deploying identity's object id, got {caller!r}")
            )
        return CheckResult({"caller": caller}, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(RECORD_ID, _record(props["caller"], []))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        caller = news.get("caller")
        known = is_unknown(caller) or str(caller).lower() not in (olds.get("identities") or [])
        return DiffResult(changes=known, replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(_record(news["caller"], olds.get("identities") or []))


def _record(caller: str, identities: list[str]) -> dict[str, Any]:
    known = [str(identity).lower() for identity in identities]
    return {
        "caller": caller,
        "identities": [*known, *([caller.lower()] if caller.lower() not in known else [])],
    }


class DeployingIdentities(Resource, module="owners", name="DeployingIdentities"):
    """The record of every identity that ran ``pulumi up`` on the stack (``DeployingIdentitiesProvider``).

    Args:
        caller: the object id of the identity running this update.
    """

    caller: pulumi.Output[str]
    identities: pulumi.Output[list[str]]

    def __init__(
        self, resource_name: str, *, caller: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            DeployingIdentitiesProvider(), resource_name, {"caller": caller, "identities": None}, opts
        )

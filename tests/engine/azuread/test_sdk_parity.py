"""The stand-in declares what the program's azuread SDK (pulumi_azuread, requirements.txt) sends and reads.

No real provider could be built here, so the stand-in's properties come from pulumi-azuread's schema.json
(v6.10.0); the program runs the 6.11.1 SDK. For the four resource types the program declares, every input
the program sends (components/tenant.py) must be one the stand-in serves, and every output the SDK can read
must be one the stand-in returns. (The v6.10.0 schema and the 6.11.1 SDK agree on all of these resources'
inputs and outputs; the stand-in rejects at check the inputs it does not serve, listed in its docstring.)
"""

from __future__ import annotations

import inspect

import pulumi_azuread as azuread
import pytest

from tests.engine.azuread import app_role_assignment, application, application_password, service_principal

RESOURCE_BASE = {"id", "urn", "pulumiResourceName", "pulumiResourceType"}
CASES = [
    (azuread.Application, application),
    (azuread.ServicePrincipal, service_principal),
    (azuread.AppRoleAssignment, app_role_assignment),
    (azuread.ApplicationPassword, application_password),
]
PROGRAM_INPUTS = {
    azuread.Application: {
        "displayName",
        "signInAudience",
        "owners",
        "notes",
        "tags",
        "requiredResourceAccesses",
    },
    azuread.ServicePrincipal: {"clientId", "owners", "notes"},
    azuread.AppRoleAssignment: {"appRoleId", "principalObjectId", "resourceObjectId"},
    azuread.ApplicationPassword: {"applicationId", "displayName", "endDate"},
}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _sdk_inputs(cls: type) -> set[str]:
    parameters = inspect.signature(cls._internal_init).parameters  # type: ignore[attr-defined]
    skipped = ("self", "__self__", "resource_name", "opts", "__props__")
    return {_camel(name) for name in parameters if name not in skipped}


def _sdk_outputs(cls: type) -> set[str]:
    return {
        _camel(name) for name, member in inspect.getmembers(cls) if isinstance(member, property)
    } - RESOURCE_BASE


@pytest.mark.parametrize(("cls", "module"), CASES, ids=lambda case: getattr(case, "__name__", ""))
def test_every_input_the_program_sends_is_served_by_the_stand_in(cls: type, module: object) -> None:
    served = {field.name for field in module.SPEC.fields}  # type: ignore[attr-defined]
    assert PROGRAM_INPUTS[cls] <= _sdk_inputs(cls)
    assert PROGRAM_INPUTS[cls] - served == set()


PROGRAM_OUTPUTS = {
    azuread.Application: {"clientId", "objectId"},
    azuread.ServicePrincipal: {"objectId"},
    azuread.AppRoleAssignment: set(),
    azuread.ApplicationPassword: {"keyId", "value", "startDate", "displayName", "endDate"},
}
# Outputs of inputs the stand-in does not serve (its check rejects those inputs, so they stay empty).
NOT_SERVED = {
    azuread.Application: {"optionalClaims", "password", "logoImage"},
    azuread.ServicePrincipal: {"samlSingleSignOn"},
}


@pytest.mark.parametrize(("cls", "module"), CASES, ids=lambda case: getattr(case, "__name__", ""))
def test_every_sdk_output_is_returned_by_the_stand_in(cls: type, module: object) -> None:
    returned = {field.name for field in module.SPEC.fields} | set(module.COMPUTED)  # type: ignore[attr-defined]
    assert PROGRAM_OUTPUTS[cls] <= _sdk_outputs(cls)
    assert _sdk_outputs(cls) - returned == NOT_SERVED.get(cls, set())

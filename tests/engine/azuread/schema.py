"""A Pulumi package schema for what the stand-in serves, for ``GetSchema`` (``pulumi import`` generates code).

Inputs are typed from the resource specs; outputs the service computes are typed loosely
(``pulumi.json#/Any`` for nested blocks). The real provider's schema is far larger.
"""

from __future__ import annotations

import json
from typing import Any

from tests.engine.azuread import app_role_assignment, application, application_password, service_principal
from tests.engine.azuread.settings import BOOLEAN_KEYS, STRING_KEYS
from tests.engine.azuread.spec import Kind, ResourceSpec

ACCESS = "azuread:index/ApplicationRequiredResourceAccess:ApplicationRequiredResourceAccess"
ACCESS_ITEM = (
    "azuread:index/ApplicationRequiredResourceAccessResourceAccess"
    ":ApplicationRequiredResourceAccessResourceAccess"
)
STRING: dict[str, Any] = {"type": "string"}
ANY: dict[str, Any] = {"$ref": "pulumi.json#/Any"}
SECRETS = frozenset({"clientCertificatePassword", "clientId", "clientSecret"})
STRING_OUTPUTS = frozenset(
    {
        "applicationTenantId",
        "clientId",
        "disabledByMicrosoft",
        "displayName",
        "homepageUrl",
        "keyId",
        "logoUrl",
        "logoutUrl",
        "objectId",
        "principalDisplayName",
        "principalType",
        "publisherDomain",
        "resourceDisplayName",
        "samlMetadataUrl",
        "signInAudience",
        "templateId",
        "type",
        "value",
    }
)
MODULES = (
    (application.SPEC, application.COMPUTED),
    (service_principal.SPEC, service_principal.COMPUTED),
    (app_role_assignment.SPEC, app_role_assignment.COMPUTED),
    (application_password.SPEC, application_password.COMPUTED),
)


def schema_json(version: str) -> str:
    config = {
        key: {"type": "boolean"} if key in BOOLEAN_KEYS else dict(STRING)
        for key in sorted(STRING_KEYS | BOOLEAN_KEYS)
    }
    for key in SECRETS:
        config[key] = {**config[key], "secret": True}
    document: dict[str, Any] = {
        "name": "azuread",
        "displayName": "Azure Active Directory (Azure AD) - test stand-in",
        "version": version,
        "description": "A stand-in for the real azuread provider, for the pop3-oauth end-to-end tests.",
        "config": {"variables": config},
        "provider": {"inputProperties": config, "properties": {}},
        "types": {
            ACCESS: {
                "type": "object",
                "properties": {
                    "resourceAccesses": {"type": "array", "items": {"$ref": f"#/types/{ACCESS_ITEM}"}},
                    "resourceAppId": STRING,
                },
                "required": ["resourceAccesses", "resourceAppId"],
            },
            ACCESS_ITEM: {
                "type": "object",
                "properties": {"id": STRING, "type": STRING},
                "required": ["id", "type"],
            },
        },
        "resources": {spec.token: _resource(spec, computed) for spec, computed in MODULES},
        "functions": {
            "azuread:index/getServicePrincipal:getServicePrincipal": {
                "inputs": {"properties": {"clientId": STRING, "displayName": STRING, "objectId": STRING}},
                "outputs": {
                    "properties": {
                        **{name: _output_type(name) for name in service_principal.COMPUTED},
                        **{f.name: _input_type(f.kind) for f in service_principal.SPEC.fields},
                        "id": STRING,
                        "samlSingleSignOns": ANY,
                    },
                    "required": ["id", "objectId", "clientId", "displayName"],
                },
            }
        },
    }
    return json.dumps(document, sort_keys=True)


def _resource(spec: ResourceSpec, computed: tuple[str, ...]) -> dict[str, Any]:
    inputs = {f.name: _input_type(f.kind) for f in spec.fields}
    outputs = {**inputs, **{name: _output_type(name) for name in computed}}
    if "value" in outputs:
        outputs["value"] = {**STRING, "secret": True}
    return {
        "inputProperties": inputs,
        "requiredInputs": [f.name for f in spec.fields if f.required],
        "properties": outputs,
        "required": sorted(name for name in computed if name in STRING_OUTPUTS),
    }


def _input_type(kind: Kind) -> dict[str, Any]:
    if kind is Kind.STRING:
        return dict(STRING)
    if kind is Kind.BOOL:
        return {"type": "boolean"}
    if kind is Kind.STRING_MAP:
        return {"type": "object", "additionalProperties": dict(STRING)}
    if kind is Kind.ACCESS_SET:
        return {"type": "array", "items": {"$ref": f"#/types/{ACCESS}"}}
    return {"type": "array", "items": dict(STRING)}


def _output_type(name: str) -> dict[str, Any]:
    return dict(STRING) if name in STRING_OUTPUTS else dict(ANY)

"""The stand-in as a ``pulumi.provider.experimental`` provider: the engine's calls, dispatched by type token.

Blocking Graph work runs in worker threads, so the engine's concurrent calls overlap as with the real
provider. During previews nothing talks to Graph except the invokes ``getServicePrincipal`` and
``getClientConfig`` (as upstream, invokes run for real); outputs the service decides are unknown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.provider import (
    CheckFailure,
    CheckRequest,
    CheckResponse,
    ConfigureRequest,
    ConfigureResponse,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    DiffRequest,
    DiffResponse,
    GetSchemaRequest,
    GetSchemaResponse,
    InvokeRequest,
    InvokeResponse,
    PropertyDiff,
    PropertyDiffKind,
    Provider,
    ReadRequest,
    ReadResponse,
    UpdateRequest,
    UpdateResponse,
)

from tests.engine.azuread import (
    app_role_assignment,
    application,
    application_password,
    get_client_config,
    get_service_principal,
    service_principal,
)
from tests.engine.azuread.common import Context, StandInError
from tests.engine.azuread.graph import GraphClient, Timing
from tests.engine.azuread.schema import schema_json
from tests.engine.azuread.settings import ConfigurationError, check_config, resolve
from tests.engine.azuread.spec import ResourceSpec
from tests.engine.azuread.values import (
    UNKNOWN,
    Properties,
    from_plain,
    is_known,
    plain_map,
    property_map,
    secret_keys,
)

VERSION = "6.11.1"
CONFIG_PREFIX = "azuread:config:"


@dataclass(frozen=True)
class ResourceType:
    """How one type token is served; ``read`` returns None when the object is gone."""

    spec: ResourceSpec
    create: Callable[[Context, Properties], tuple[str, Properties]]
    read: Callable[[Context, str, Properties], Properties | None]
    delete: Callable[[Context, str, Properties], None]
    preview: Callable[[Properties, Properties | None], Properties]
    update: Callable[[Context, str, Properties, Properties], Properties] | None = None
    importable: bool = True
    secret_outputs: frozenset[str] = frozenset()


def _password_read(ctx: Context, resource_id: str, state: Properties) -> Properties | None:
    return application_password.read(ctx, *application_password.parse_id(resource_id), state)


RESOURCE_TYPES: dict[str, ResourceType] = {
    application.TOKEN: ResourceType(
        application.SPEC,
        create=application.create,
        read=lambda ctx, rid, state: application.read(ctx, application.parse_id(rid), state),
        update=lambda ctx, rid, olds, news: application.update(ctx, application.parse_id(rid), olds, news),
        delete=lambda ctx, rid, state: application.delete(ctx, application.parse_id(rid)),
        preview=application.preview,
    ),
    service_principal.TOKEN: ResourceType(
        service_principal.SPEC,
        create=service_principal.create,
        read=lambda ctx, rid, state: service_principal.read(ctx, service_principal.parse_id(rid), state),
        update=lambda ctx, rid, olds, news: service_principal.update(
            ctx, service_principal.parse_id(rid), olds, news
        ),
        delete=lambda ctx, rid, state: service_principal.delete(ctx, service_principal.parse_id(rid), state),
        preview=service_principal.preview,
    ),
    app_role_assignment.TOKEN: ResourceType(
        app_role_assignment.SPEC,
        create=app_role_assignment.create,
        read=lambda ctx, rid, state: app_role_assignment.read(ctx, *app_role_assignment.parse_id(rid)),
        delete=lambda ctx, rid, state: app_role_assignment.delete(ctx, *app_role_assignment.parse_id(rid)),
        preview=app_role_assignment.preview,
    ),
    application_password.TOKEN: ResourceType(
        application_password.SPEC,
        create=application_password.create,
        read=_password_read,
        delete=lambda ctx, rid, state: application_password.delete(ctx, *application_password.parse_id(rid)),
        preview=application_password.preview,
        importable=False,
        secret_outputs=frozenset({"value"}),
    ),
}


class AzureAdStandIn(Provider):
    """The provider the engine talks to; ``environ``, ``timing`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        timing: Timing | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._environ = environ
        self._timing = timing
        self._sleep = sleep
        self._context: Context | None = None

    @property
    def context(self) -> Context:
        if self._context is None:
            raise StandInError("the azuread provider was used before it was configured")
        return self._context

    async def get_schema(self, request: GetSchemaRequest) -> GetSchemaResponse:
        return GetSchemaResponse(schema=schema_json(VERSION))

    async def check_config(self, request: CheckRequest) -> CheckResponse:
        failures = [CheckFailure(key, reason) for key, reason in check_config(plain_map(request.new_inputs))]
        return CheckResponse(inputs=request.new_inputs, failures=failures or None)

    async def diff_config(self, request: DiffRequest) -> DiffResponse:
        olds, news = plain_map(request.old_state), plain_map(request.new_inputs)
        found: dict[str, PropertyDiff] = {}
        for key in sorted(set(olds) | set(news)):
            old, new = olds.get(key), news.get(key)
            if is_known(new) and old == new:
                continue
            if old is None:
                kind = PropertyDiffKind.ADD
            elif new is None:
                kind = PropertyDiffKind.DELETE
            else:
                kind = PropertyDiffKind.UPDATE
            found[key] = PropertyDiff(kind, input_diff=True)
        return DiffResponse(changes=bool(found), diffs=list(found), detailed_diff=found)

    async def configure(self, request: ConfigureRequest) -> ConfigureResponse:
        config = {
            key.removeprefix(CONFIG_PREFIX): _decode_variable(value)
            for key, value in request.variables.items()
            if key.startswith(CONFIG_PREFIX)
        }
        config.update({key: value for key, value in plain_map(request.args).items() if value is not None})
        if all(value is not UNKNOWN for value in config.values()):
            try:
                settings = resolve(config, self._environ)
            except ConfigurationError as error:
                raise StandInError(str(error)) from None
            graph = GraphClient(settings, timing=self._timing, sleep=self._sleep, environ=self._environ)
            self._context = Context(graph)
        return ConfigureResponse(
            accept_secrets=True, supports_preview=True, accept_resources=False, accept_outputs=False
        )

    async def check(self, request: CheckRequest) -> CheckResponse:
        kind = _resource_type(request.type)
        defaults, failures = kind.spec.check(plain_map(request.new_inputs))
        inputs: dict[str, PropertyValue] = dict(request.new_inputs)
        inputs.update({key: from_plain(value) for key, value in defaults.items()})
        return CheckResponse(inputs=inputs, failures=failures or None)

    async def diff(self, request: DiffRequest) -> DiffResponse:
        kind = _resource_type(request.type)
        return kind.spec.diff(
            plain_map(request.old_state), plain_map(request.new_inputs), request.ignore_changes
        )

    async def create(self, request: CreateRequest) -> CreateResponse:
        kind = _resource_type(request.type)
        inputs = plain_map(request.properties)
        secrets = secret_keys(request.properties) | kind.secret_outputs
        if request.preview:
            return CreateResponse("", property_map(kind.preview(inputs, None), secrets))
        resource_id, outputs = await asyncio.to_thread(kind.create, self.context, inputs)
        return CreateResponse(resource_id, property_map(outputs, secrets))

    async def read(self, request: ReadRequest) -> ReadResponse:
        kind = _resource_type(request.type)
        state, old_inputs = plain_map(request.properties), plain_map(request.inputs)
        if not state and not kind.importable:
            resource = kind.spec.token.split(":")[-1]
            raise StandInError(f"resource {resource} doesn't support import (as upstream's)")
        outputs = await asyncio.to_thread(kind.read, self.context, request.resource_id, state)
        if outputs is None:
            return ReadResponse(resource_id="", properties={}, inputs={})
        input_secrets = secret_keys(request.inputs)
        secrets = secret_keys(request.properties) | input_secrets | kind.secret_outputs
        return ReadResponse(
            resource_id=request.resource_id,
            properties=property_map(outputs, secrets),
            inputs=property_map(kind.spec.inputs_from(outputs, old_inputs), input_secrets),
        )

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        kind = _resource_type(request.type)
        olds = plain_map(request.olds)
        news = {**plain_map(request.news), **{k: olds[k] for k in request.ignore_changes if k in olds}}
        secrets = secret_keys(request.news) | kind.secret_outputs
        if request.preview:
            return UpdateResponse(property_map(kind.preview(news, olds), secrets))
        if kind.update is None:
            raise StandInError(f"{kind.spec.token} has no update: every argument forces replacement")
        outputs = await asyncio.to_thread(kind.update, self.context, request.resource_id, olds, news)
        return UpdateResponse(property_map(outputs, secrets))

    async def delete(self, request: DeleteRequest) -> None:
        kind = _resource_type(request.type)
        await asyncio.to_thread(kind.delete, self.context, request.resource_id, plain_map(request.properties))

    async def invoke(self, request: InvokeRequest) -> InvokeResponse:
        args = plain_map(request.args)
        if request.tok == get_client_config.TOKEN:
            config = await asyncio.to_thread(get_client_config.invoke, self.context, args)
            return InvokeResponse(return_value=property_map(config))
        if request.tok != get_service_principal.TOKEN:
            raise StandInError(f"the azuread stand-in does not implement the function {request.tok}")
        problems = get_service_principal.failures(args)
        if problems:
            return InvokeResponse(failures=[CheckFailure(key, reason) for key, reason in problems])
        result = await asyncio.to_thread(get_service_principal.invoke, self.context, args)
        return InvokeResponse(return_value=property_map(result))


def _resource_type(token: str) -> ResourceType:
    # The SDK takes the type from the URN, which for a child resource is the chain `parent$type`.
    token = token.rsplit("$", 1)[-1]
    kind = RESOURCE_TYPES.get(token)
    if kind is None:
        raise StandInError(
            f"the azuread stand-in used in tests does not implement {token}; "
            f"it serves {', '.join(sorted(RESOURCE_TYPES))}"
        )
    return kind


def _decode_variable(value: str) -> Any:
    """Configuration variables arrive as strings, non-strings JSON-encoded."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, bool | int | float) else value

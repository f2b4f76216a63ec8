"""The gRPC plugin server: the SDK's experimental ``ProviderServicer`` with two corrections.

``pulumi.provider.experimental.server.main`` is what this does, except that it uses :class:`Servicer`:

- ``DiffConfig`` in SDK 3.272 passes a bool where the protocol wants an enum and reads a misspelt
  attribute of ``PropertyDiff``; the override answers like ``Diff``;
- failures the stand-in expects (Graph errors, waits that ran out, configuration) reach the engine as
  their message alone, as the real provider's do, instead of with a Python traceback appended;
- the optional methods the engine probes (``Handshake``, ``GetMapping(s)``) answer UNIMPLEMENTED without
  grpc logging a traceback to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from pulumi.provider.experimental import provider as experimental
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.server import ProviderServicer
from pulumi.runtime import proto
from pulumi.runtime.proto import provider_pb2_grpc

from tests.engine.azuread.common import StandInError
from tests.engine.azuread.graph import AuthenticationError, GraphError, WaitTimeout

EXPECTED = (StandInError, GraphError, WaitTimeout, AuthenticationError)
MAX_MESSAGE_BYTES = 400 * 1024 * 1024
DIFF_KINDS = {
    experimental.PropertyDiffKind.ADD: proto.PropertyDiff.ADD,
    experimental.PropertyDiffKind.ADD_REPLACE: proto.PropertyDiff.ADD_REPLACE,
    experimental.PropertyDiffKind.DELETE: proto.PropertyDiff.DELETE,
    experimental.PropertyDiffKind.DELETE_REPLACE: proto.PropertyDiff.DELETE_REPLACE,
    experimental.PropertyDiffKind.UPDATE: proto.PropertyDiff.UPDATE,
    experimental.PropertyDiffKind.UPDATE_REPLACE: proto.PropertyDiff.UPDATE_REPLACE,
}

Rpc = Callable[[Any, Any, Any], Awaitable[Any]]


def _plain_errors(method: Rpc) -> Rpc:
    async def rpc(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await method(self, request, context)
        except Exception as error:
            cause = error if isinstance(error, EXPECTED) else error.__context__
            if isinstance(cause, EXPECTED):
                await context.abort(grpc.StatusCode.UNKNOWN, str(cause))
            raise

    return rpc


class Servicer(ProviderServicer):
    """``ProviderServicer`` with a working ``DiffConfig`` and message-only expected errors."""

    async def DiffConfig(self, request: Any, context: Any) -> proto.DiffResponse:
        resp = await self._provider.diff_config(
            experimental.DiffRequest(
                request.urn,
                request.id,
                PropertyValue.unmarshal_map(request.olds),
                PropertyValue.unmarshal_map(request.news),
                list(request.ignoreChanges),
            )
        )
        if resp.changes is None:
            changes = proto.DiffResponse.DIFF_UNKNOWN
        else:
            changes = proto.DiffResponse.DIFF_SOME if resp.changes else proto.DiffResponse.DIFF_NONE
        return proto.DiffResponse(
            replaces=resp.replaces,
            changes=changes,
            diffs=resp.diffs,
            detailedDiff={
                key: proto.PropertyDiff(kind=DIFF_KINDS[diff.kind], inputDiff=diff.input_diff)
                for key, diff in resp.detailed_diff.items()
            },
            hasDetailedDiff=True,
        )

    async def Handshake(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Handshake is not implemented")

    async def GetMapping(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetMapping is not implemented")

    async def GetMappings(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetMappings is not implemented")


for _name in (
    "CheckConfig",
    "DiffConfig",
    "Configure",
    "Check",
    "Diff",
    "Create",
    "Read",
    "Update",
    "Delete",
    "Invoke",
):
    setattr(Servicer, _name, _plain_errors(getattr(Servicer, _name)))


def main(args: list[str], version: str, provider: experimental.Provider) -> None:
    """Serve ``provider`` on 127.0.0.1 and print the port on stdout, as the engine expects."""
    parser = argparse.ArgumentParser(description="Pulumi provider plugin (gRPC server)")
    parser.add_argument("engine", nargs="?", default="", help="Pulumi engine address")
    known, _ = parser.parse_known_args(args)

    async def serve() -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ]
        )
        provider_pb2_grpc.add_ResourceProviderServicer_to_server(
            Servicer(args, version, provider, engine_address=known.engine), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        await server.wait_for_termination()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())

"""Drive the SDK's dynamic-provider host (``python -m pulumi.dynamic``) over gRPC, as the engine does."""

from __future__ import annotations

import asyncio
import os
import selectors
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0


def struct(props: Mapping[str, Any]) -> Any:
    """``props`` as the protobuf Struct the engine sends, built on a private event loop."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(dict(props), {}))
    finally:
        loop.close()


def plain(message: Any) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(message, True))


class DynamicHost:
    """One host process started like the engine starts it (cwd = project root), with ``environment``."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self.environment = dict(environment)
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.stub: Any = None

    def start(self) -> Self:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("ARM_", "POP3_OAUTH_"))}
        env.update(self.environment)
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic", "127.0.0.1:0"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        port = self._read_port()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(self.channel).result(timeout=STARTUP_TIMEOUT)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        return self

    def _read_port(self) -> int:
        assert self.process is not None and self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STARTUP_TIMEOUT):
            self.stop()
            raise TimeoutError("the dynamic provider host printed no port")
        return int(self.process.stdout.readline().decode().strip())

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def configure(self, config: Mapping[str, Any]) -> None:
        self.stub.Configure(provider_pb2.ConfigureRequest(args=struct(config)), timeout=CALL_TIMEOUT)

    def check(
        self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        response = self.stub.Check(
            provider_pb2.CheckRequest(urn=urn, olds=struct(olds), news=struct(news)), timeout=CALL_TIMEOUT
        )
        return plain(response.inputs), [(f.property, f.reason) for f in response.failures]

    def create(self, urn: str, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(
            provider_pb2.CreateRequest(urn=urn, properties=struct(props)), timeout=CALL_TIMEOUT
        )
        return response.id, plain(response.properties)

    def read(self, urn: str, id_: str, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Read(
            provider_pb2.ReadRequest(urn=urn, id=id_, properties=struct(props)), timeout=CALL_TIMEOUT
        )
        return response.id, plain(response.properties)

    def diff(self, urn: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Any:
        return self.stub.Diff(
            provider_pb2.DiffRequest(urn=urn, id=id_, olds=struct(olds), news=struct(news)),
            timeout=CALL_TIMEOUT,
        )

    def update(self, urn: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        response = self.stub.Update(
            provider_pb2.UpdateRequest(urn=urn, id=id_, olds=struct(olds), news=struct(news)),
            timeout=CALL_TIMEOUT,
        )
        return plain(response.properties)

    def delete(self, urn: str, id_: str, props: Mapping[str, Any]) -> None:
        self.stub.Delete(
            provider_pb2.DeleteRequest(urn=urn, id=id_, properties=struct(props)), timeout=CALL_TIMEOUT
        )


def with_provider(provider: ResourceProvider, props: Mapping[str, Any]) -> dict[str, Any]:
    """``props`` plus ``__provider`` serialized exactly as ``pulumi.dynamic.Resource`` serializes it."""
    return {**props, "__provider": serialize_provider(provider)}

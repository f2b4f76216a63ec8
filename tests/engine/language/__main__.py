"""Serve the stand-in language host: print the port, then answer the engine until it stops us.

When ``POP3_OAUTH_E2E_TIMING`` names a file, each program run appends
``{"program_start": t0, "program_end": t1}`` (``time.monotonic()``) to it, for ``bench/bench_engine.py``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import runpy
import signal
import sys
import time
from concurrent import futures
from typing import Any

import grpc
from pulumi.automation._server import LanguageServer
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

ENTRY_POINT = "__main__.py"


class ProjectLanguageHost(LanguageServer):
    """The SDK's inline language server, running the project's own ``__main__.py``."""

    def __init__(self, engine_address: str) -> None:
        super().__init__(self._run_project)
        self._engine_address = engine_address
        self._directory = os.getcwd()

    def GetPluginInfo(self, request: Any, context: Any) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=importlib.metadata.version("pulumi"))

    def Run(self, request: Any, context: Any) -> language_pb2.RunResponse:
        self._directory = request.info.program_directory or request.pwd or os.getcwd()
        os.chdir(self._directory)
        if self._directory not in sys.path:
            sys.path.insert(0, self._directory)
        forwarded = language_pb2.RunRequest()
        forwarded.CopyFrom(request)
        del forwarded.args[:]
        forwarded.args.append(self._engine_address)
        started = time.monotonic()
        try:
            response: language_pb2.RunResponse = super().Run(forwarded, context)
            return response
        finally:
            _record_timing(started, time.monotonic())

    def _run_project(self) -> None:
        runpy.run_path(os.path.join(self._directory, ENTRY_POINT), run_name="__main__")


def _record_timing(started: float, ended: float) -> None:
    timing = os.environ.get("POP3_OAUTH_E2E_TIMING")
    if timing:
        with open(timing, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"program_start": started, "program_end": ended}) + "\n")


def main(arguments: list[str]) -> None:
    engine_address = next((argument for argument in arguments if not argument.startswith("-")), "")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(ProjectLanguageHost(engine_address), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    # The engine ends its plugins with SIGINT (then SIGKILL): stop quietly, without a traceback.
    signal.signal(signal.SIGINT, lambda *_: server.stop(0))
    server.wait_for_termination()


if __name__ == "__main__":
    main(sys.argv[1:])

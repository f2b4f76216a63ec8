"""The emulator's memory on disk: the Entra, Graph and Exchange fakes' state as one JSON document.

:func:`export_state` turns the three fakes into a JSON-ready document and :func:`import_state` builds fresh
fakes from one; :class:`StateFile` writes the document atomically (a temporary file renamed over the old
one, mode 0600: it holds the emulated tenant's client secrets) and reads it back, so a sandbox survives
restarts of its daemon.

The fakes' records are dataclasses; :func:`encode` and :func:`decode` convert them by their type hints, so
a field added to a record is saved without a change here, and a document written before the field existed
loads with the field's default. What is kept: the token signing keys, tenants, apps and their secrets and
roles, delegated refresh tokens; every directory object of Graph; every Exchange registration, mailbox and
permission. What is not: request counters and logs, switched-on faults, pending device-code sign-ins, and
Graph's tenant-wide tables (``sandbox.graph_tenant``: policies, roles, sign-ins), which start as defaults.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.entra import EntraFake, FakeApp, _DeviceFlow
from sandbox.exchange import ExchangeFake, FakeTenant
from sandbox.graph import FakeDirectory, GraphFake

FORMAT_VERSION = 1


class StateError(RuntimeError):
    """The state file cannot be read as a sandbox state (the message names the file and the reason)."""


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as objects, sets as sorted lists, bytes as base64."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: encode(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(encode(item) for item in value)
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def decode(kind: Any, data: Any) -> Any:
    """``data`` (from :func:`encode`) as a value of type ``kind``; missing dataclass fields get defaults."""
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    if kind is Any or origin is typing.Literal:
        return data
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in arguments:
            return None
        return decode(next(argument for argument in arguments if argument is not type(None)), data)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind)
        values = {
            field.name: decode(hints[field.name], data[field.name])
            for field in dataclasses.fields(kind)
            if field.init and field.name in data
        }
        return kind(**values)
    if origin is dict:
        key_kind, value_kind = arguments or (Any, Any)
        return {decode(key_kind, key): decode(value_kind, item) for key, item in data.items()}
    if origin in (list, set, frozenset):
        (item_kind,) = arguments or (Any,)
        return origin(decode(item_kind, item) for item in data)
    if origin is tuple:
        return tuple(decode(arguments[0] if arguments else Any, item) for item in data)
    if kind is bytes:
        return base64.b64decode(data)
    if kind is float and isinstance(data, int):
        return float(data)
    return data


def export_state(entra: EntraFake, graph: GraphFake, exchange: ExchangeFake) -> dict[str, Any]:
    """The three fakes' state as one JSON-ready document (see the module docstring for what is kept)."""
    return {
        "version": FORMAT_VERSION,
        "entra": {
            "signingKey": _private_pem(entra.signing_key),
            "federationKey": _private_pem(entra.federation_key),
            "issuerTemplate": entra.issuer_template,
            "tenants": sorted(entra.tenants),
            "apps": [encode(app) for app in entra.apps.values()],
            "publicClients": sorted(entra.public_clients),
            "refreshTokens": encode(entra._refresh_tokens),
        },
        "graph": {
            "tenants": encode(graph.tenants),
            "entraAppsCreated": sorted([list(key) for key in graph._entra_apps_created]),
        },
        "exchange": {"tenants": encode(exchange.tenants)},
    }


def import_state(document: dict[str, Any]) -> tuple[EntraFake, GraphFake, ExchangeFake]:
    """Fresh fakes holding the state of ``document``; raises :class:`StateError` for another format."""
    if document.get("version") != FORMAT_VERSION:
        raise StateError(f"state format {document.get('version')!r}, expected {FORMAT_VERSION}")
    saved = document["entra"]
    entra = EntraFake(
        issuer_template=saved["issuerTemplate"],
        signing_key=_load_private_pem(saved["signingKey"]),
        federation_key=_load_private_pem(saved["federationKey"]),
    )
    entra.tenants = set(saved["tenants"])
    for raw in saved["apps"]:
        app: FakeApp = decode(FakeApp, raw)
        entra.apps[(app.tenant_id, app.client_id.lower())] = app
    entra.public_clients = set(saved["publicClients"])
    entra._refresh_tokens = decode(dict[str, _DeviceFlow], saved["refreshTokens"])
    graph = GraphFake(entra)
    graph.tenants = decode(dict[str, FakeDirectory], document["graph"]["tenants"])
    graph._entra_apps_created = {(tenant, app) for tenant, app in document["graph"]["entraAppsCreated"]}
    exchange = ExchangeFake(entra)
    exchange.tenants = decode(dict[str, FakeTenant], document["exchange"]["tenants"])
    return entra, graph, exchange


class StateFile:
    """One state file: :meth:`save` writes atomically and only when the document changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written = ""

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text()
            document = json.loads(text)
        except (OSError, ValueError) as error:
            raise StateError(f"{self.path}: {error}") from None
        if not isinstance(document, dict):
            raise StateError(f"{self.path}: not a JSON object")
        self._written = text
        return document

    def save(self, document: dict[str, Any]) -> bool:
        """Write ``document`` unless the file already holds it; returns whether it wrote."""
        text = json.dumps(document, indent=1, sort_keys=True)
        if text == self._written:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(self.path)
        self._written = text
        return True


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _load_private_pem(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise StateError("the saved signing key is not an RSA key")
    return key

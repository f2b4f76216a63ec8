"""The Pulumi engine a local run uses, and the environment that points it and popctl at the emulator.

- :func:`locate_engine` finds the engine ``scripts/pulumi-engine`` provides (or builds); where it lacks the
  Python language host or the azuread provider, the stand-ins in ``tests/engine/`` take their place on PATH.
- :func:`emulator_environment` is the whole environment of a ``pulumi`` or ``popctl`` command run against
  the emulator: built from nothing, so the user's Pulumi login, stacks and Microsoft credentials are never
  read - its own backend and ``PULUMI_HOME``, its own token cache, ``ARM_*`` naming the emulated tenant's
  deployer with ``ARM_USE_CLI=false``, the endpoint overrides, and the emulator's CA.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE_SCRIPT = ROOT / "scripts" / "pulumi-engine"
AZUREAD_STANDIN = ROOT / "tests" / "engine" / "azuread"
LANGUAGE_STANDIN = ROOT / "tests" / "engine" / "language"
ENGINE_DIR_ENV = "POP3_OAUTH_ENGINE_DIR"
KEPT_VARIABLES = ("HOME", "LANG", "TMPDIR", "CI")


@dataclass(frozen=True)
class Engine:
    """A directory with the real ``pulumi`` CLI, and what it lacks."""

    directory: Path
    language_host: bool
    azuread_provider: bool

    @property
    def cli(self) -> Path:
        return self.directory / "pulumi"

    def describe(self) -> str:
        host = "language host" if self.language_host else "language host stand-in"
        provider = "azuread provider" if self.azuread_provider else "azuread stand-in"
        return f"{self.cli} ({host}, {provider})"

    def path(self, python: Path) -> list[str]:
        """PATH for a run: the engine, the stand-ins it needs, ``python``'s directory, the system's."""
        entries = [str(self.directory)]
        if not self.language_host:
            entries.append(str(LANGUAGE_STANDIN))
        if not self.azuread_provider:
            entries.append(str(AZUREAD_STANDIN))
        return [*entries, str(python.parent), "/usr/local/bin", "/usr/bin", "/bin"]


def locate_engine(environ: Mapping[str, str] | None = None) -> Engine | str:
    """The engine (``POP3_OAUTH_ENGINE_DIR``, else what ``scripts/pulumi-engine`` prints), or the reason
    there is none (one line, saying how to get it)."""
    env = os.environ if environ is None else environ
    directory = env.get(ENGINE_DIR_ENV, "").strip()
    if not directory:
        try:
            completed = subprocess.run(
                [str(ENGINE_SCRIPT)], capture_output=True, text=True, timeout=3600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"scripts/pulumi-engine could not run ({error}); run it by hand to build the engine"
        if completed.returncode != 0:
            tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            return f"scripts/pulumi-engine failed ({tail}); it needs Go 1.26+ and the Go module proxy"
        directory = completed.stdout.strip().splitlines()[-1]
    path = Path(directory)
    if not (path / "pulumi").is_file():
        return f"{path} holds no pulumi CLI; run scripts/pulumi-engine"
    return Engine(
        directory=path,
        language_host=(path / "pulumi-language-python").is_file(),
        azuread_provider=(path / "pulumi-resource-azuread").is_file(),
    )


@dataclass(frozen=True)
class EmulatedTenant:
    """Where the emulator is and who deploys: what :func:`emulator_environment` needs of a tenant."""

    tenant_id: str
    client_id: str
    client_secret: str
    emulator_url: str
    ca_bundle: Path


def emulator_environment(
    engine: Engine,
    python: Path,
    tenant: EmulatedTenant,
    *,
    pulumi_home: Path,
    backend: Path,
    token_cache: Path,
    passphrase: Mapping[str, str],
    graph_url: str | None = None,
    exchange_url: str | None = None,
) -> dict[str, str]:
    """The environment of one command against the emulator (see the module docstring).

    ``passphrase`` is ``{"PULUMI_CONFIG_PASSPHRASE": ...}`` or ``{"PULUMI_CONFIG_PASSPHRASE_FILE": ...}``;
    ``graph_url`` and ``exchange_url`` default to the emulator's URL (the tests run three servers).
    """
    graph = graph_url or tenant.emulator_url
    keep = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    return {
        **keep,
        "PATH": os.pathsep.join(engine.path(python)),
        "PULUMI_HOME": str(pulumi_home),
        "PULUMI_BACKEND_URL": f"file://{backend}",
        **passphrase,
        "PULUMI_SKIP_UPDATE_CHECK": "1",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "1",
        "PULUMI_PYTHON_CMD": str(python),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NO_COLOR": "1",
        "ARM_TENANT_ID": tenant.tenant_id,
        "ARM_CLIENT_ID": tenant.client_id,
        "ARM_CLIENT_SECRET": tenant.client_secret,
        "ARM_METADATA_HOSTNAME": graph.removeprefix("https://"),
        "ARM_USE_CLI": "false",
        "POP3_OAUTH_AUTHORITY_HOST": tenant.emulator_url,
        "POP3_OAUTH_EXCHANGE_URL": exchange_url or tenant.emulator_url,
        "POP3_OAUTH_GRAPH_URL": graph,
        "POP3_OAUTH_TOKEN_CACHE": str(token_cache),
        "REQUESTS_CA_BUNDLE": str(tenant.ca_bundle),
        "SSL_CERT_FILE": str(tenant.ca_bundle),
    }

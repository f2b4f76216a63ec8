"""Fixtures for the end-to-end scenarios (marker ``e2e``): the engine, the Microsoft fakes, a project.

Without an engine the scenarios skip with one line saying why and how to get it; under
``POP3_OAUTH_REQUIRE_ENGINE=1`` (CI) they fail instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.engine import Engine, locate_engine
from sandbox.tenants import Tenant
from tests.e2e.harness import ROOT, Microsoft, Project, engine_required

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = locate_engine()
    if isinstance(found, str):
        if engine_required():
            pytest.fail(f"POP3_OAUTH_REQUIRE_ENGINE is set and there is no Pulumi engine: {found}")
        pytest.skip(f"no Pulumi engine: {found}")
    return found


@pytest.fixture(scope="session")
def microsoft(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Microsoft]:
    world = Microsoft.start(tmp_path_factory.mktemp("microsoft"))
    yield world
    world.stop()


@pytest.fixture
def tenant(microsoft: Microsoft) -> Tenant:
    return microsoft.new_tenant()


@pytest.fixture
def new_project(
    engine: Engine, microsoft: Microsoft, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Project]:
    """Makes a scenario's project; each gets its own tenant unless one is passed."""

    def make(
        tenant: Tenant | None = None, *, source: Path = ROOT, mailboxes: tuple[str, ...] | None = None
    ) -> Project:
        chosen = tenant or (microsoft.new_tenant(mailboxes) if mailboxes else microsoft.new_tenant())
        return Project(tmp_path_factory.mktemp("e2e"), engine, microsoft, chosen, source=source)

    return make


@pytest.fixture
def project(new_project: Callable[..., Project], tenant: Tenant) -> Project:
    return new_project(tenant)

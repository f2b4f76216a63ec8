"""Twins: a tenant that already has an app named like the stack's stops the first ``pulumi up``.

The app of that name is usually the hand-made one the ERP logs in with today; a second app beside it would
have its own client id and secret, and whoever follows the wrong one cuts the ERP off. ``pulumi up`` stops
before it creates any application and names the existing one (``prevent_duplicate_names``); the operator
adopts it (``popctl adopt``) or, with ``allowDuplicateAppName``, asks for a second app on purpose.
"""

from __future__ import annotations

from tests.e2e.harness import Project

APPLICATION_TYPE = "azuread:index/application:Application"


def _application_writes(project: Project, since: int) -> list[str]:
    return [w.path for w in project.microsoft.graph.writes[since:] if w.object_kind == "application"]


def test_an_existing_app_of_the_same_name_stops_the_first_up(project: Project) -> None:
    graph, tenant = project.microsoft.graph, project.tenant
    twin = graph.add_application(tenant.tenant_id, "POP3APP")
    project.init_stack("twin")
    writes = len(graph.writes)

    failed = project.up(check=False)

    assert failed.code != 0, failed.describe()
    assert twin.object_id in failed.output, failed.describe()
    assert "prevent_duplicate_names" in failed.output
    assert [app.object_id for app in graph.find_applications(tenant.tenant_id, "POP3APP")] == [twin.object_id]
    assert _application_writes(project, writes) == []
    assert APPLICATION_TYPE not in {resource["type"] for resource in project.state_resources()}


def test_allow_duplicate_app_name_creates_a_second_app_on_purpose(project: Project) -> None:
    graph, tenant = project.microsoft.graph, project.tenant
    twin = graph.add_application(tenant.tenant_id, "POP3APP")
    project.init_stack("second", settings={"allowDuplicateAppName": "true"})

    project.up()

    apps = graph.find_applications(tenant.tenant_id, "POP3APP")
    assert len(apps) == 2
    assert project.outputs()["clientId"] not in (twin.app_id, "")
    project.preview("--expect-no-changes")

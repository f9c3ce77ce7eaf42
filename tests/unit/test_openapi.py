"""schemas/openapi/: the committed documents are what the code generates, valid OpenAPI 3.1, and they document
exactly the routes the ingest and control apps serve (tests/integration hold the answers to them)."""

from __future__ import annotations

import copy
import functools
import json

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.applications import Starlette
from starlette.routing import Route

from replyflow import ingest
from replyflow.control import service as control
from replyflow.openapi import DOCUMENT_PATH
from replyflow.schemas import OPENAPI_DIR, SCHEMA_DIR, rendered_schemas
from replyflow.service import ServiceApp
from replyflow.settings import Settings
from tests.unit.test_asyncapi import references

SERVICES = ("ingest", "control")


@functools.cache
def committed(service: str) -> dict:
    return json.loads((SCHEMA_DIR / OPENAPI_DIR / f"{service}.json").read_text())


def test_committed_documents_are_what_the_code_generates():
    rendered = {name: text for name, text in rendered_schemas().items() if name.startswith(f"{OPENAPI_DIR}/")}
    on_disk = {str(p.relative_to(SCHEMA_DIR)): p.read_text() for p in (SCHEMA_DIR / OPENAPI_DIR).iterdir()}
    assert set(rendered) == {f"{OPENAPI_DIR}/{s}.json" for s in SERVICES}
    assert on_disk == rendered, "schemas/openapi/ drifted from replyflow.openapi: run `make schemas`"


@pytest.mark.parametrize("service", SERVICES)
def test_the_documents_are_valid_openapi_3_1(service):
    assert committed(service)["openapi"] == "3.1.0"
    validate(committed(service))


@pytest.mark.parametrize("path, value", [
    (("paths", "/v1/comments", "post", "responses", "202", "description"), None),  # a response needs one
    (("paths", "/v1/comments", "post", "security"), {"ingestToken": []}),  # a list of requirements
    (("components", "securitySchemes", "ingestToken", "type"), "token"),
])
def test_the_validator_rejects_a_broken_document(path, value):
    broken = copy.deepcopy(committed("ingest"))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


@pytest.mark.parametrize("service", SERVICES)
def test_every_reference_resolves(service):
    document = committed(service)
    for ref in references(document):
        node = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"{ref} points nowhere"
            node = node[part]


def app_of(service: str, **settings) -> ServiceApp:
    module = {"ingest": ingest, "control": control}[service]
    return module.create_app(Settings(otel_traces_exporter="none", control_api_token="only-to-build-the-app",
                                      **{"instagram_app_secret": "", **settings}))


def served(app: ServiceApp) -> dict[str, set[str]]:
    """Each path the app's Starlette APIs route, with its methods (HEAD comes with GET)."""
    apis = [handler for _, handler in app.routes if isinstance(handler, Starlette)]
    routes = [r for api in [*apis, app.api] if api is not None for r in api.routes]
    assert routes and all(isinstance(r, Route) for r in routes)
    paths: dict[str, set[str]] = {}
    for route in routes:
        paths.setdefault(route.path, set()).update(m for m in route.methods or () if m != "HEAD")
    return paths


def documented(document: dict) -> dict[str, set[str]]:
    return {path: {m.upper() for m in item} for path, item in document["paths"].items()}


@pytest.mark.parametrize(("service", "settings"), [
    ("ingest", {"instagram_app_secret": "only-to-build-the-app"}),  # as committed: the webhook on
    ("ingest", {}),
    ("control", {}),
])
def test_the_documents_list_exactly_the_routes_the_apps_serve(service, settings):
    app = app_of(service, **settings)
    assert app.openapi is not None
    assert documented(app.openapi) == served(app)
    assert DOCUMENT_PATH in dict(app.routes)  # served, without a token, next to /healthz
    if settings or service == "control":
        assert app.openapi == committed(service)
    else:
        assert "/v1/webhooks/instagram" not in app.openapi["paths"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_names_its_security_and_every_api_route_needs_some(service):
    for path, item in committed(service)["paths"].items():
        for method, operation in item.items():
            assert "security" in operation, (method, path)
            open_ = path == DOCUMENT_PATH or (path, method) == ("/v1/webhooks/instagram", "get")
            assert (operation["security"] == []) == open_, (method, path)


def test_a_stale_profile_put_is_a_documented_conflict_and_the_kill_switch_never_is():
    paths = committed("control")["paths"]
    assert "older than the current profile's" in paths["/v1/creators/{creator_id}"]["put"]["responses"]["409"][
        "description"]
    assert "409" not in paths["/v1/creators/{creator_id}/mode"]["put"]["responses"]

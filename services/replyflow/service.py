"""What every service's factory shares: logging, tracing, broker, health routes, profile table, runner."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from replyflow.events import CreatorProfile
from replyflow.kafka import EventProducer, GroupMembership, StageHealth, TopicTable, make_broker
from replyflow.observability import CONSUMER_READY, configure_logging, configure_tracing, health_routes
from replyflow.openapi import DOCUMENT_PATH
from replyflow.settings import Settings
from replyflow.topics import CREATORS_CONFIG, Topic

log = logging.getLogger(__name__)

ProfileTable = TopicTable[CreatorProfile]


@dataclass
class ServiceParts:
    """The wiring a service factory starts from; handlers close over these."""

    name: str
    settings: Settings
    broker: KafkaBroker  # consumes
    producer: EventProducer  # publishes
    profiles: ProfileTable  # creators.config, which every service follows (the kill switch)
    health: StageHealth = field(default_factory=StageHealth)
    tables: list[TopicTable] = field(default_factory=list)  # more topics to follow; ready once caught up
    consumes: list[tuple[Topic, str]] = field(default_factory=list)  # (topic, consumer group) of each stage
    memberships: list[GroupMembership] = field(default_factory=list)  # of every consumer group it is in, for readiness
    ready_checks: list[Callable[[], str | None]] = field(default_factory=list)  # more: why not ready, or None
    # (topic, consumer group): the group shares out the topic's partitions and each member reads its own from the
    # start, to own what they key (the YouTube pollers' channels); nothing committed, nothing dead-lettered.
    owned_partitions: list[tuple[Topic, str]] = field(default_factory=list)
    # Topics whose dead-letter topic gets what this service was sent some other way and cannot use (ingest's
    # webhooks), with why.
    dead_letters_for: list[Topic] = field(default_factory=list)
    tracer_provider: TracerProvider | None = None  # None: tracing off (OTEL_TRACES_EXPORTER=none)


def json_api(routes: Sequence[Route]) -> Starlette:
    """An HTTP API whose own errors (no such path, a method the path does not take) are JSON like the
    handlers' (``{"error": ...}``), not Starlette's plain text."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}"},
                            status_code=exc.status_code, headers=exc.headers)

    return Starlette(routes=_one_route_per_path(routes), exception_handlers={HTTPException: http_error})


def _one_route_per_path(routes: Sequence[Route]) -> list[Route]:
    """Routes of one path (GET and PUT of a creator) joined into one that dispatches on the method: Starlette
    answers a method no route takes from the first route of the path, whose 405 ``Allow`` would name its methods
    only."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for route in routes:
        for method in route.methods or ():
            by_path.setdefault(route.path, {})[method] = route.endpoint

    def route(path: str, endpoints: dict[str, Callable[[Request], Awaitable[Response]]]) -> Route:
        async def dispatch(request: Request) -> Response:
            return await endpoints[request.method](request)

        return Route(path, dispatch, methods=sorted(endpoints))

    return [route(path, endpoints) for path, endpoints in by_path.items()]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def json_request_body(request: Request, max_bytes: int) -> bytes | JSONResponse:
    """The body of a JSON API request, or the 415 / 413 answer when it is not JSON (``application/json`` or
    ``application/*+json``; none given is read as JSON) or too large.

    Read as it comes, so a body too large is refused at ``max_bytes``, not after it is all in memory."""
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type != "application/json" and not (media_type.startswith("application/") and
                                                  media_type.endswith("+json")):
        return JSONResponse({"error": "Content-Type must be application/json"}, status_code=415)
    too_large = JSONResponse({"error": f"body larger than {max_bytes} bytes"}, status_code=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return too_large
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(body: bytes) -> object:
    """A request body's JSON; ValueError saying why it is not (bad UTF-8 and nesting too deep included)."""
    try:
        return json.loads(body)
    except RecursionError as e:
        raise ValueError("request body is nested too deeply") from e
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"request body is not valid JSON: {e}") from e


# Seconds a 503's Retry-After asks the client to wait: Kafka's leader elections and the tables' start-up reads take
# seconds, and clients retrying at once only add load.
RETRY_AFTER_S = 2


def unavailable(message: str, **extra: object) -> JSONResponse:
    """A ``503`` saying why, with ``Retry-After``: nothing is wrong with the request, send it again."""
    return JSONResponse({"error": message, **extra}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def acknowledged_for_request(parts: ServiceParts, sending: Awaitable[None]) -> bool:
    """Wait for what an HTTP request sends to Kafka, at most the Kafka request timeout (the client is
    waiting); False when Kafka did not acknowledge (the client gets 503 and retries).

    A failed request does not make the pod unready: readiness already pings the broker, and a blip every
    replica saw (a broker restart) would otherwise take all of them out of their Service for the readiness
    hold, long after Kafka is back, with no request coming in to clear it."""
    try:
        await asyncio.wait_for(sending, parts.settings.kafka_request_timeout_ms / 1000)
    except Exception as e:
        log.warning("Kafka did not acknowledge a request's records; answered 503", extra={"fields": {
            "error": f"{type(e).__name__}: {e}"[:500]}})
        return False
    return True


def service_parts(name: str, settings: Settings, *, sends: Sequence[Topic]) -> ServiceParts:
    configure_logging(settings.log_level)
    tracer_provider = configure_tracing(name, settings)
    broker = make_broker(settings, name, tracer_provider)
    # A profile this version cannot read leaves its creator unknown (nothing replied), not on an older profile.
    profiles = ProfileTable(settings.kafka_bootstrap_servers, CREATORS_CONFIG, lambda p: p.creator_id,
                            drop_invalid=True)
    return ServiceParts(name, settings, broker, EventProducer(settings, name, sends), profiles,
                        tracer_provider=tracer_provider)


class ServiceApp(AsgiFastStream):
    """AsgiFastStream whose HTTP paths without an exact route go to the service's ``api`` app:
    FastStream matches exact paths only, and an API's paths hold ids. ``parts`` is the wiring it
    runs (what the AsyncAPI document describes), ``openapi`` the OpenAPI document of its HTTP API."""

    def __init__(self, parts: ServiceParts, *args, api: ASGIApp | None = None,
                 openapi: dict[str, Any] | None = None, **kwargs) -> None:
        super().__init__(parts.broker, *args, **kwargs)
        self.parts = parts
        self.api = api
        self.openapi = openapi

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # FastStream's own answer says the app speaks no HTTP at all
            await (self.api or json_api([]))(scope, receive, send)
            return
        await super().not_found(scope, receive, send)


def json_document(document: dict[str, Any]) -> Starlette:
    """An API answering ``GET`` (and ``HEAD``) at ``DOCUMENT_PATH`` with ``document``, no token, like the probes."""
    body = json.dumps(document).encode()

    async def serve_document(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return json_api([Route(DOCUMENT_PATH, serve_document, methods=["GET"])])


def build_app(
    parts: ServiceParts,
    *,
    routes: Sequence[tuple[str, Callable]] = (),
    api: ASGIApp | None = None,
    openapi: dict[str, Any] | None = None,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    after_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    after_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> ServiceApp:
    """An ASGI app running the broker's subscribers plus the service's HTTP routes.

    ``on_startup`` runs before the broker consumes, ``after_startup`` once it does;
    ``on_shutdown`` runs while the broker can still publish, ``after_shutdown`` after it closed.
    ``api`` serves every other HTTP path (routes with path parameters). ``openapi``, the document of the
    service's HTTP API, is served at ``GET /openapi.json``.
    """
    async def readiness() -> tuple[bool, dict[str, object]]:
        broker_ok = await parts.broker.ping(timeout=2.0)
        profiles_ok = parts.profiles.caught_up.is_set()
        tables_ok = {table.topic.name: table.caught_up.is_set() for table in parts.tables}
        dependency_ok = not parts.health.failing_within(parts.settings.readiness_failure_hold_s)
        groups_ok = all(m.in_group() for m in parts.memberships)
        problems = [why for why in (check() for check in parts.ready_checks) if why is not None]
        ready = broker_ok and profiles_ok and all(tables_ok.values()) and dependency_ok and groups_ok and not problems
        CONSUMER_READY.labels(parts.name).set(1 if ready else 0)
        detail: dict[str, object] = {"broker": broker_ok, "profiles": profiles_ok, **tables_ok}
        if parts.memberships:  # partitions per consumer group ([]: idle, more replicas than partitions)
            detail["groups"] = {m.group: m.describe() for m in parts.memberships}
        if not dependency_ok or problems:
            detail["failing"] = problems[0] if problems else parts.health.last_error
        return ready, detail

    async def start_parts() -> None:
        await parts.producer.start()
        await parts.profiles.start()
        for table in parts.tables:
            await table.start()

    async def stop_parts() -> None:
        for table in parts.tables:
            await table.stop()
        await parts.profiles.stop()
        await parts.producer.stop()
        if parts.tracer_provider is not None:
            parts.tracer_provider.shutdown()  # exports the spans still queued

    documents = [(DOCUMENT_PATH, json_document(openapi))] if openapi is not None else []
    return ServiceApp(
        parts,
        api=api,
        openapi=openapi,
        asgi_routes=[*routes, *documents, *health_routes(readiness)],
        logger=logging.getLogger(f"replyflow.{parts.name}"),
        on_startup=[start_parts, *on_startup],
        after_startup=after_startup,
        on_shutdown=on_shutdown,
        after_shutdown=[*after_shutdown, stop_parts],
    )


def serve(app: AsgiFastStream, settings: Settings, service: str) -> None:
    """Run under uvicorn; SIGTERM stops fetching, finishes the message in hand and leaves the group."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port_for(service),
        log_config=None,
        access_log=False,  # one line per request is noise at this volume, and query strings can hold secrets
        timeout_graceful_shutdown=int(settings.retry_backoff_max_s + 15),
    )

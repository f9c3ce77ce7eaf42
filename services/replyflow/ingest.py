"""Ingest service: platforms deliver comments over HTTP (or a JSONL replay); each becomes a CommentReceived.

    python -m replyflow.ingest                       # HTTP API on :8080
    python -m replyflow.ingest replay FILE.jsonl     # publish a file of comments straight to Kafka

``POST /v1/comments`` takes one comment object or a JSON array of up to 500. It answers 202 only
after the broker acknowledged every event (acks=all), 400/413/422 with what is wrong otherwise,
and 503 when Kafka does not acknowledge in time (the platform should retry).

``/v1/webhooks/instagram`` (with ``INSTAGRAM_APP_SECRET`` set) receives Meta's Instagram webhooks:
``GET`` answers the subscription handshake (``hub.verify_token`` must be
``INSTAGRAM_WEBHOOK_VERIFY_TOKEN``), ``POST`` takes ``comments`` changes signed with the app secret
(``X-Hub-Signature-256``), each for the creator whose ``platform_accounts.instagram`` received it. The
account's own comments (the replies replyflow posted) are left out, so it never answers itself.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry import propagate
from prometheus_client import Counter as MetricCounter
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from replyflow.events import Comment, CommentReceived, CreatorProfile, Platform
from replyflow.kafka import Emit, EventProducer, Record, new_traces, remote_span
from replyflow.observability import DLQ_MESSAGES
from replyflow.openapi import ingest_openapi
from replyflow.service import (
    ServiceParts,
    acknowledged_for_request,
    bearer_token,
    build_app,
    decode_json,
    json_api,
    json_request_body,
    serve,
    service_parts,
    unavailable,
)
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_RECEIVED

MAX_BATCH = 500
MAX_BODY_BYTES = 2_000_000
_comment_list = TypeAdapter(list[Comment])  # errors then name "1.text", not the union's members


def received_events(comments: list[Comment]) -> list[Emit]:
    # Keyed by comment id, so one viral creator's comments spread over every partition.
    return [Emit(COMMENTS_RECEIVED, CommentReceived(comment=c)) for c in comments]


async def publish_comments(parts: ServiceParts, request: Request, comments: list[Comment]) -> list[Emit] | None:
    """Publish what a request delivered, each comment in a trace of its own linked to the caller's ``traceparent``
    (see ``new_traces``); None when Kafka did not acknowledge (see ``acknowledged_for_request``)."""
    emits = received_events(comments)
    with new_traces(emits, [remote_span(propagate.extract(request.headers))]) as traces:
        if not await acknowledged_for_request(parts, parts.producer.publish(emits, traces)):
            return None
    return emits


def parse_comments(body: bytes) -> list[Comment]:
    """Decode a request body into comments; raises ValueError/ValidationError with the reason."""
    if not body.strip():
        raise ValueError("request body is empty; send a comment object or a JSON array of comments")
    data = decode_json(body)
    if not isinstance(data, dict | list):
        kind = "null" if data is None else {bool: "true/false", str: "a string"}.get(type(data), "a number")
        raise ValueError(f"request body is {kind}; send a comment object or a JSON array of comments")
    if isinstance(data, list) and not data:
        raise ValueError("the array of comments is empty")
    if isinstance(data, list) and len(data) > MAX_BATCH:  # before validating: the work is bounded by the batch
        raise ValueError(f"a batch holds at most {MAX_BATCH} comments, got {len(data)}")
    return _comment_list.validate_python(data) if isinstance(data, list) else [Comment.model_validate(data)]


WEBHOOK_CHANGES = MetricCounter(
    "replyflow_webhook_changes_total",
    "Changes in platform webhooks, by result (accepted, own_comment, unknown_account, other_field; unusable: "
    "malformed, dead-lettered)",
    ["platform", "result"],
)
log = logging.getLogger(__name__)


def meta_signature(app_secret: str, body: bytes) -> str:
    """Meta signs each webhook body with the app secret: ``X-Hub-Signature-256: sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def valid_meta_signature(app_secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(meta_signature(app_secret, body).encode(), header.encode())  # bytes: any header


def creator_of_account(profiles: Iterable[CreatorProfile], platform: Platform, account_id: str) -> str | None:
    return next((p.creator_id for p in profiles if p.platform_accounts.get(platform) == account_id), None)


@dataclass(frozen=True)
class Unusable:
    """A part of a webhook delivery that is no comment replyflow can take, kept for the dead-letter topic."""

    part: object  # as delivered: a malformed entry, or an entry with just the change
    why: str


def instagram_comments(payload: object, creator_of: Callable[[str], str | None]
                       ) -> tuple[list[Comment], Counter[str], list[Unusable]]:
    """The comments in an Instagram webhook delivery, each for the creator whose account received it, what
    was left out on purpose (the account's own comments, its replies; other fields), and the parts that are
    malformed or for an account no creator has. One bad change does not cost the others.
    Raises ValueError on a payload that is not an Instagram webhook at all."""
    if not isinstance(payload, dict) or payload.get("object") != "instagram" or not isinstance(
            payload.get("entry"), list):
        raise ValueError("not an Instagram webhook: the body must be an object with \"object\": \"instagram\" "
                         "and an \"entry\" list")
    comments: list[Comment] = []
    results: Counter[str] = Counter()
    unusable: list[Unusable] = []
    for entry in payload["entry"]:
        try:
            account, delivered_at = str(entry["id"]), datetime.fromtimestamp(entry["time"], UTC)
            changes = list(entry["changes"])
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as e:
            unusable.append(Unusable(entry, f"malformed entry: {type(e).__name__}: {e}"))
            results["unusable"] += 1
            continue
        creator_id = creator_of(account)
        for change in changes:
            # A part kept for the dead-letter topic is its entry with just this change: it can go through here again.
            alone = {"id": entry["id"], "time": entry["time"], "changes": [change]}
            try:
                if change["field"] not in ("comments", "live_comments"):
                    results["other_field"] += 1
                    continue
                value, author = change["value"], change["value"]["from"]
                if str(author["id"]) == account:
                    results["own_comment"] += 1
                    continue
                if creator_id is None:
                    unusable.append(Unusable(alone, f"Instagram account {account} is no creator's "
                                                     "(platform_accounts.instagram)"))
                    results["unknown_account"] += 1
                    continue
                comments.append(Comment(
                    platform=Platform.instagram, comment_id=str(value["id"]), creator_id=creator_id,
                    post_id=str(value["media"]["id"]), author_id=str(author["id"]),
                    author_name=author.get("username") or str(author["id"]), text=value["text"],
                    created_at=delivered_at, parent_id=value.get("parent_id"),
                ))
                results["accepted"] += 1
            except ValidationError as e:
                unusable.append(Unusable(alone, "invalid comment: " + "; ".join(
                    f"{d['field']}: {d['problem']}" for d in validation_errors(e))))
                results["unusable"] += 1
            except (KeyError, TypeError, ValueError) as e:
                unusable.append(Unusable(alone, f"malformed change: missing or wrong {e}"))
                results["unusable"] += 1
    return comments, results, unusable


MAX_ERROR_DETAILS = 100  # a body of many bad items is answered with the first, not with an answer larger than it


def validation_errors(error: ValidationError) -> list[dict[str, object]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"], "type": e["type"]}
        for e in error.errors(include_url=False)[:MAX_ERROR_DETAILS]
    ]


def comments_api(parts: ServiceParts) -> Starlette:
    token = parts.settings.ingest_api_token

    async def post_comments(request: Request) -> JSONResponse:
        # Whoever posts here picks the creator, and the creator's account answers: callers must be trusted.
        if not token:
            return JSONResponse({"error": "POST /v1/comments is off: set INGEST_API_TOKEN on ingest, and send it "
                                          "as Authorization: Bearer <token>"}, status_code=403)
        presented = bearer_token(request)
        if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
            return JSONResponse({"error": "missing or wrong bearer token (Authorization: Bearer <INGEST_API_TOKEN>)"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = await json_request_body(request, MAX_BODY_BYTES)
        if isinstance(body, JSONResponse):
            return body
        try:
            comments = parse_comments(body)
        except ValidationError as e:
            return JSONResponse(
                {"error": "invalid comment", "details": validation_errors(e)}, status_code=422
            )
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        emits = await publish_comments(parts, request, comments)
        if emits is None:
            return unavailable("comments not accepted: Kafka unavailable, retry")
        return JSONResponse(
            {"accepted": len(emits), "event_ids": [e.event.event_id for e in emits]}, status_code=202
        )

    return json_api([Route("/v1/comments", post_comments, methods=["POST"])])


WEBHOOK_SOURCE = "webhook:instagram"  # x-original-topic of what a webhook delivered: it came from no topic
UNUSABLE = "UnusableComment"  # x-exception-class of what came from outside (a webhook, a poll) and is no comment


def dead_letter_records(unusable: list[Unusable], source: str) -> list[Record]:
    """Each unusable part for ``comments.received.dlq``, with why, from ``source`` (it came from no topic)."""
    records: list[Record] = []
    for item in unusable:
        headers = [(k, v.encode()) for k, v in {
            "x-original-topic": source, "x-original-partition": "", "x-original-offset": "",
            "x-consumer-group": "", "x-exception-class": UNUSABLE,
            "x-exception-message": item.why[:2000], "x-attempts": "1",
            "x-failed-at-ms": str(int(time.time() * 1000))}.items()]
        records.append((COMMENTS_RECEIVED.dlq, None, json.dumps(item.part).encode(), headers))
    return records


def dead_lettered(service: str, source: str, unusable: list[Unusable]) -> None:
    """Count (the dead-letter alert sees them) and log what ``dead_letter_records`` sent."""
    DLQ_MESSAGES.labels(service, source, UNUSABLE).inc(len(unusable))
    for item in unusable:
        log.warning("dead-lettered what cannot be a comment", extra={"fields": {"source": source, "why": item.why}})


async def dead_letter_webhook_parts(parts: ServiceParts, unusable: list[Unusable]) -> bool:
    """Each unusable part of a delivery to ``comments.received.dlq`` with why; False when Kafka did not take them."""
    if not await acknowledged_for_request(parts, parts.producer.send(dead_letter_records(unusable, WEBHOOK_SOURCE))):
        return False
    dead_lettered("ingest", WEBHOOK_SOURCE, unusable)
    return True


def instagram_webhook_api(parts: ServiceParts) -> Starlette:
    settings = parts.settings
    profiles = parts.profiles

    async def verify_subscription(request: Request) -> Response:
        query = request.query_params
        token = settings.instagram_webhook_verify_token
        presented = query.get("hub.verify_token", "").encode()
        if query.get("hub.mode") == "subscribe" and token and hmac.compare_digest(presented, token.encode()):
            return PlainTextResponse(query.get("hub.challenge", ""))
        return JSONResponse({"error": "hub.verify_token does not match INSTAGRAM_WEBHOOK_VERIFY_TOKEN"},
                            status_code=403)

    async def receive(request: Request) -> JSONResponse:
        body = await json_request_body(request, MAX_BODY_BYTES)
        if isinstance(body, JSONResponse):
            return body
        if not valid_meta_signature(settings.instagram_app_secret, body,
                                    request.headers.get("x-hub-signature-256", "")):
            return JSONResponse({"error": "X-Hub-Signature-256 missing or not signed with INSTAGRAM_APP_SECRET"},
                                status_code=401)
        if not profiles.caught_up.is_set():
            return unavailable("still reading creator profiles; retry")
        try:
            comments, results, unusable = instagram_comments(
                decode_json(body), lambda account: creator_of_account(profiles.rows(), Platform.instagram, account))
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        # Kept, not dropped: a malformed change, or one for an account no profile names yet, goes to the
        # dead-letter topic with why, to be looked at and sent back (python -m replyflow.admin replay-dead-letters).
        # Meta gets 200 and does not send it again.
        if comments and await publish_comments(parts, request, comments) is None:
            return unavailable("comments not accepted: Kafka unavailable, retry")
        if unusable and not await dead_letter_webhook_parts(parts, unusable):
            return unavailable("comments not accepted: Kafka unavailable, retry")
        for result, n in results.items():
            WEBHOOK_CHANGES.labels(Platform.instagram.value, result).inc(n)
        return JSONResponse({"accepted": results["accepted"], "left_out": {k: v for k, v in results.items()
                                                                          if k != "accepted"}})

    return json_api([Route("/v1/webhooks/instagram", verify_subscription, methods=["GET"]),
                             Route("/v1/webhooks/instagram", receive, methods=["POST"])])


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    # Webhooks name the platform account, not the creator: the profiles map one to the other.
    parts = service_parts("ingest", settings, sends=[COMMENTS_RECEIVED])
    routes = [("/v1/comments", comments_api(parts))]
    if settings.instagram_app_secret:
        routes.append(("/v1/webhooks/instagram", instagram_webhook_api(parts)))
        parts.dead_letters_for.append(COMMENTS_RECEIVED)
    openapi = ingest_openapi(webhook=bool(settings.instagram_app_secret), max_batch=MAX_BATCH,
                             max_body_bytes=MAX_BODY_BYTES)
    return build_app(parts, routes=routes, openapi=openapi)


async def replay(path: Path, settings: Settings) -> tuple[int, list[str]]:
    """Publish every valid line of a JSONL file; returns (published, errors with line numbers)."""
    comments, errors = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            comments.append(Comment.model_validate_json(line))
        except ValidationError as e:
            errors.append(f"line {number}: {validation_errors(e)}")
    async with EventProducer(settings, "ingest-replay", [COMMENTS_RECEIVED]) as producer:
        await producer.publish(received_events(comments))
    return len(comments), errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replyflow.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    rp = sub.add_parser("replay", help="publish a JSONL file of comments to comments.received")
    rp.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "replay":
        published, errors = asyncio.run(replay(args.file, settings))
        for error in errors:
            print(error, file=sys.stderr)
        print(f"published {published} comments, {len(errors)} invalid lines")
        return 1 if errors else 0
    serve(create_app(settings), settings, "ingest")
    return 0


if __name__ == "__main__":
    sys.exit(main())

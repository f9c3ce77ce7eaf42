"""Ingest service: platforms deliver comments over HTTP (or a JSONL replay); each becomes a CommentReceived.

    python -m replyflow.ingest                       # HTTP API on :8080
    python -m replyflow.ingest replay FILE.jsonl     # publish a file of comments straight to Kafka

``POST /v1/comments`` takes one comment object or a JSON array of up to 500. It answers 202 only
after the broker acknowledged every event (acks=all), 400/413/422 with what is wrong otherwise,
and 503 when Kafka does not acknowledge in time (the platform should retry).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from replyflow.events import Comment, CommentReceived
from replyflow.kafka import Emit, EventProducer
from replyflow.service import ServiceParts, build_app, json_request_body, publish_for_request, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_RECEIVED

MAX_BATCH = 500
MAX_BODY_BYTES = 2_000_000
_comments = TypeAdapter(Comment | list[Comment])


def received_events(comments: list[Comment]) -> list[Emit]:
    # Keyed by comment id, so one viral creator's comments spread over every partition.
    return [Emit(COMMENTS_RECEIVED, CommentReceived(comment=c)) for c in comments]


def parse_comments(body: bytes) -> list[Comment]:
    """Decode a request body into comments; raises ValueError/ValidationError with the reason."""
    if not body.strip():
        raise ValueError("request body is empty; send a comment object or a JSON array of comments")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise ValueError(f"request body is not valid JSON: {e}") from e
    parsed = _comments.validate_python(data)
    comments = parsed if isinstance(parsed, list) else [parsed]
    if not comments:
        raise ValueError("the array of comments is empty")
    if len(comments) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} comments, got {len(comments)}")
    return comments


def validation_errors(error: ValidationError) -> list[dict[str, object]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"], "type": e["type"]}
        for e in error.errors(include_url=False)
    ]


def comments_api(parts: ServiceParts) -> Starlette:
    async def post_comments(request: Request) -> JSONResponse:
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
        emits = received_events(comments)
        if not await publish_for_request(parts, emits):
            return JSONResponse({"error": "comments not accepted: Kafka unavailable, retry"}, status_code=503)
        return JSONResponse(
            {"accepted": len(emits), "event_ids": [e.event.event_id for e in emits]}, status_code=202
        )

    return Starlette(routes=[Route("/v1/comments", post_comments, methods=["POST"])])


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    parts = service_parts("ingest", settings, sends=[COMMENTS_RECEIVED], with_profiles=False)
    return build_app(parts, routes=[("/v1/comments", comments_api(parts))])


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

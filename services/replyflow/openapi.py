"""The OpenAPI 3.1 documents of replyflow's two public HTTP APIs: ingest's and the control API's.

Request bodies are the pydantic models the handlers validate with; responses list every status code a
handler (with ``json_request_body``, ``decode_json`` and, for control, ``ControlApi.guarded``) can answer.
Each service serves its own at ``GET /openapi.json`` (``build_app(openapi=...)``), ``make schemas`` writes
them to ``schemas/openapi/``, and the tests hold them to the routes the apps serve and to what they answer.

The limits come from the services' modules as arguments: ingest runs as ``python -m replyflow.ingest``, so
this module must not import it (nor control, which imports it), and ingest does not load the policy.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from replyflow.events import Comment, CreatorProfile

OPENAPI_VERSION = "3.1.0"
DOCUMENT_PATH = "/openapi.json"
REF = "#/components/schemas/"
Json = dict[str, Any]


def ref(name: str) -> Json:
    return {"$ref": REF + name}


def answer(description: str, schema: Json | None = None, *, media_type: str = "application/json",
           headers: Json | None = None) -> Json:
    response: Json = {"description": description}
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    if headers:
        response["headers"] = headers
    return response


def failure(description: str, *, headers: Json | None = None) -> Json:
    return answer(description, ref("Error"), headers=headers)


def retry_later(description: str) -> Json:
    """A 503: its ``Retry-After`` (service.unavailable) says when to send the request again."""
    return failure(description, headers={"Retry-After": {
        "description": "Seconds to wait before sending the request again", "required": True,
        "schema": {"type": "integer", "minimum": 1}}})


def unauthorized(description: str) -> Json:
    return failure(description, headers={"WWW-Authenticate": {
        "description": "Always `Bearer`", "schema": {"type": "string", "const": "Bearer"}}})


def body_failures(max_bytes: int, bad_body: str) -> dict[str, Json]:
    """What service.json_request_body and decode_json answer before a handler looks at the body."""
    return {
        "400": failure(f"The body is not valid JSON (or not UTF-8, or nested too deeply){bad_body}"),
        "413": failure(f"The body is larger than {max_bytes} bytes (refused before it is read whole)"),
        "415": failure("The Content-Type is not JSON"),
    }


def json_body(schema: Json, description: str) -> Json:
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


def model_schemas(*models: tuple[type[BaseModel], JsonSchemaMode]) -> tuple[list[Json], dict[str, Json]]:
    """A reference to each model's JSON Schema, and the schemas they name (for components/schemas)."""
    refs, top = models_json_schema(list(models), ref_template=REF + "{model}")
    return [refs[m] for m in models], top.get("$defs", {})


def strict_object(properties: dict[str, Json], description: str | None = None) -> Json:
    schema: Json = {"type": "object", "required": sorted(properties), "properties": properties,
                    "additionalProperties": False}
    return schema | ({"description": description} if description else {})


def nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


STRING, INTEGER, TIMESTAMP = {"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "string",
                                                                                       "format": "date-time"}

ERROR_SCHEMAS: dict[str, Json] = {
    "Error": {
        "type": "object",
        "description": "Every error the APIs answer: what is wrong, and for invalid fields which and why",
        "required": ["error"],
        "properties": {"error": STRING, "details": {"type": "array", "items": ref("ErrorDetail")}},
        "additionalProperties": False,
    },
    "ErrorDetail": {
        "type": "object",
        "description": "One invalid field: its dotted path (`1.text`: the second comment's text) and the problem",
        "required": ["field", "problem"],
        "properties": {"field": STRING, "problem": STRING,
                       "type": {"type": "string", "description": "pydantic's error type, where pydantic found it"}},
    },
}


def document(title: str, description: str, paths: dict[str, Json], schemas: dict[str, Json],
             security_schemes: dict[str, Json]) -> Json:
    """A whole OpenAPI document: the API's paths plus ``GET /openapi.json`` (this document, no token)."""
    served = {"get": {
        "operationId": "openapi",
        "summary": "This document",
        "security": [],
        "responses": {"200": answer("The OpenAPI document of this service's API", {"type": "object"})},
    }}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version("replyflow"),
                 "description": description + " Generated by `make schemas` from replyflow.openapi; do not edit."},
        "paths": paths | {DOCUMENT_PATH: served},
        "components": {"schemas": dict(sorted((ERROR_SCHEMAS | schemas).items())),
                       "securitySchemes": security_schemes},
    }


# ---------------------------------------------------------------------------------------------------- ingest

WEBHOOK_LEFT_OUT = ("own_comment", "other_field", "unknown_account", "unusable")


def ingest_openapi(*, webhook: bool, max_batch: int, max_body_bytes: int) -> Json:
    """Ingest's API as an ingest with (``webhook``) or without ``INSTAGRAM_APP_SECRET`` serves it."""
    (comment,), schemas = model_schemas((Comment, "validation"))
    schemas["Accepted"] = strict_object({
        "accepted": {"type": "integer", "minimum": 1},
        "event_ids": {"type": "array", "items": {"type": "string", "format": "uuid"},
                      "description": "The CommentReceived event ids, in the order of the comments"},
    }, "Kafka acknowledged a CommentReceived for every comment")
    unavailable = retry_later("Creator profiles not read yet, or Kafka did not acknowledge in time: send the batch "
                              "again. Some of its comments may already be in; a comment sent twice is answered once")
    paths: dict[str, Json] = {"/v1/comments": {"post": {
        "operationId": "postComments",
        "summary": "Take one comment, or a batch of comments, from a trusted platform connector",
        "security": [{"ingestToken": []}],
        "requestBody": json_body({"oneOf": [
            comment, {"type": "array", "items": comment, "minItems": 1, "maxItems": max_batch}]},
            f"One comment, or a JSON array of 1 to {max_batch}"),
        "responses": {
            "202": answer("Kafka acknowledged every comment (acks=all)", ref("Accepted")),
            **body_failures(max_body_bytes, f", is empty, is an empty array, or holds more than {max_batch} comments"),
            "401": unauthorized("No bearer token, or not INGEST_API_TOKEN"),
            "403": failure("INGEST_API_TOKEN is not set on ingest: the route is off, whatever is sent"),
            "422": failure("A comment is invalid: `details` name each field"),
            "503": unavailable,
        },
    }}}
    security = {"ingestToken": {"type": "http", "scheme": "bearer",
                                "description": "INGEST_API_TOKEN: only the operator's platform connectors"}}
    if webhook:
        schemas["InstagramWebhook"] = {
            "type": "object", "required": ["object", "entry"],
            "description": "Meta's Instagram webhook delivery; each entry's `comments` (and `live_comments`) "
                           "changes become comments for the creator whose platform_accounts.instagram is the "
                           "entry's id. A malformed entry or change, or one for an account no creator has, goes "
                           "to comments.received.dlq and costs only itself.",
            "properties": {"object": {"const": "instagram"}, "entry": {"type": "array", "items": {"type": "object"}}},
        }
        schemas["WebhookAccepted"] = strict_object({
            "accepted": INTEGER,
            "left_out": {"type": "object", "propertyNames": {"enum": list(WEBHOOK_LEFT_OUT)},
                         "additionalProperties": {"type": "integer", "minimum": 1},
                         "description": "Changes not taken, by why (unknown_account and unusable: dead-lettered)"},
        }, "Kafka acknowledged every comment taken and every change dead-lettered")
        paths["/v1/webhooks/instagram"] = {
            "get": {
                "operationId": "verifyInstagramSubscription",
                "summary": "Meta's subscription handshake",
                "security": [],
                "parameters": [
                    {"name": "hub.mode", "in": "query", "schema": {"type": "string", "const": "subscribe"}},
                    {"name": "hub.verify_token", "in": "query", "schema": STRING,
                     "description": "Must be INSTAGRAM_WEBHOOK_VERIFY_TOKEN"},
                    {"name": "hub.challenge", "in": "query", "schema": STRING, "description": "Answered back"},
                ],
                "responses": {
                    "200": answer("`hub.challenge`, as sent", STRING, media_type="text/plain"),
                    "403": failure("Not a subscribe request with INSTAGRAM_WEBHOOK_VERIFY_TOKEN"),
                },
            },
            "post": {
                "operationId": "receiveInstagramWebhook",
                "summary": "Comments Meta delivers, signed with the app secret",
                "security": [{"metaSignature": []}],
                "requestBody": json_body(ref("InstagramWebhook"), "A webhook delivery, as Meta sends it"),
                "responses": {
                    "200": answer("Every change taken or left out; Meta does not deliver it again",
                                  ref("WebhookAccepted")),
                    **body_failures(max_body_bytes, ", or no Instagram webhook at all"),
                    "401": failure("X-Hub-Signature-256 missing or not signed with INSTAGRAM_APP_SECRET"),
                    "503": retry_later("Creator profiles not read yet, or Kafka did not acknowledge: Meta delivers "
                                       "again (a comment delivered twice is answered once)"),
                },
            },
        }
        security["metaSignature"] = {
            "type": "apiKey", "in": "header", "name": "X-Hub-Signature-256",
            "description": "`sha256=<hex HMAC-SHA256 of the raw body keyed with INSTAGRAM_APP_SECRET>`"}
    return document("replyflow ingest", "Comments from the platforms into comments.received.", paths, schemas,
                    security)


# ---------------------------------------------------------------------------------------------------- control


def control_openapi(*, max_body_bytes: int, default_limit: int, max_limit: int, change_timeout_s: float) -> Json:
    """The control API: creators (or the operator) decide about held replies and change profiles."""
    from replyflow.control.review import ModeChange, ReviewRequest  # here: ingest does not load the policy

    (review, profile_in, mode, profile), schemas = model_schemas(
        (ReviewRequest, "validation"), (CreatorProfile, "validation"), (ModeChange, "validation"),
        (CreatorProfile, "serialization"))
    schemas |= {
        "HeldReply": strict_object({
            "reply_id": STRING,
            "comment": strict_object({"comment_id": STRING, "platform": ref("Platform"), "post_id": STRING,
                                      "author_id": STRING, "author_name": STRING, "text": STRING,
                                      "created_at": TIMESTAMP}),
            "draft": {"type": "string", "description": "The text that would be posted, AI label included"},
            "reasons": {"type": "array", "items": strict_object({"code": STRING, "message": STRING,
                                                                 "check": STRING})},
            "authenticity": nullable({"type": "number"}),
            "held_at": TIMESTAMP,
            "profile_version": {"type": "integer"},
            "policy_version": STRING,
        }, "A held reply waiting for the creator's decision"),
        "Reviews": strict_object({
            "creator_id": STRING, "pending": INTEGER,
            "reviews": {"type": "array", "items": ref("HeldReply"), "description": "Oldest first"},
            "next": ref("Next"),
        }),
        "Queues": strict_object({
            "pending": INTEGER,
            "creators": {"type": "array", "description": "The longest wait first", "items": strict_object(
                {"creator_id": STRING, "pending": {"type": "integer", "minimum": 1}, "oldest_held_at": TIMESTAMP})},
            "next": ref("Next"),
        }),
        "Next": nullable({"type": "string", "description": "The `after` of the next page; null on the last"}),
        "ReviewDecision": strict_object({
            "reply_id": STRING, "creator_id": STRING, "action": ref("ReviewAction"), "text": nullable(STRING),
            "note": nullable(STRING),
            "repeated": {"type": "boolean", "description": "The same decision was already recorded: nothing sent"},
            "decided_by": nullable(ref("Actor")), "decided_at": TIMESTAMP,
        }, "The decision that holds, once read back from replies.reviewed"),
        "ReviewConflict": strict_object({
            "error": STRING,
            "decided": {"anyOf": [ref("ReviewAction"), {"type": "null"}],
                        "description": "The decision already recorded (null: none, the creator's mode is off)"},
        }, "The reply was decided otherwise, or the creator's mode is off and it can only be rejected"),
    }
    creator_id = {"name": "creator_id", "in": "path", "required": True, "schema": STRING}
    reply_id = {"name": "reply_id", "in": "path", "required": True, "schema": STRING}
    paging = [
        {"name": "limit", "in": "query", "description": "Items on the page",
         "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit}},
        {"name": "after", "in": "query", "description": "The previous page's `next`", "schema": STRING},
    ]
    anyone, operator = [{"operatorToken": []}, {"creatorToken": []}], [{"operatorToken": []}]
    # Every route is ControlApi.guarded: 401 before anything, 403 for another creator's path, 503 until the
    # tables are read (and when Kafka does not acknowledge a write).
    guarded = {
        "401": unauthorized("No bearer token, a wrong one, or a creator token altered or revoked (rotated)"),
        "503": retry_later("Replies and profiles not read from Kafka yet, or Kafka did not acknowledge: retry "
                           "(repeating a decision is safe); or a profile change its writer did not make within "
                           f"{change_timeout_s:.0f} s: it stays queued and is made in its turn (GET the profile before "
                           "sending it again); or one its writer could not read (a rollout in progress): not made, "
                           "send it again"),
    }
    other_creator = {"403": failure("A creator token for another creator (whether or not that creator exists)")}
    bad_query = {"422": failure("`limit` or `after` is invalid: `details` name it")}
    unknown_creator = {"404": failure("Unknown creator")}
    bodies = body_failures(max_body_bytes, ", is empty, or is not a JSON object")
    invalid_body = {"422": failure("The body is invalid: `details` name each field")}

    def saved(description: str) -> Json:
        return answer(description, profile)

    paths = {
        "/v1/creators/{creator_id}/reviews": {"get": {
            "operationId": "listReviews", "summary": "The creator's held replies, oldest first",
            "security": anyone, "parameters": [creator_id, *paging],
            "responses": {"200": answer("A page of held replies", ref("Reviews")),
                          **guarded, **other_creator, **bad_query,
                          "404": failure("Unknown creator (no profile and nothing held)")},
        }},
        "/v1/reviews": {"get": {
            "operationId": "listQueues", "summary": "Every creator with replies waiting, the longest wait first",
            "security": operator, "parameters": paging,
            "responses": {"200": answer("A page of review queues", ref("Queues")),
                          **guarded, **bad_query, "403": failure("A creator token: only the operator sees every "
                                                                 "creator's queue")},
        }},
        "/v1/reviews/{reply_id}": {"post": {
            "operationId": "reviewReply", "summary": "Approve, edit or reject a held reply",
            "security": anyone, "parameters": [reply_id],
            "requestBody": json_body(review, "The decision"),
            "responses": {
                "200": answer("The decision holds (`repeated`: it already did)", ref("ReviewDecision")),
                **guarded, **bodies,
                "404": failure("No held reply with this id (another creator's reply reads the same)"),
                "409": answer("Decided otherwise already, or the creator's mode is off (only reject)",
                              ref("ReviewConflict")),
                "422": failure("The request, or the edited (or re-checked approved) text, may not go out: "
                               "`details` say why"),
            },
        }},
        "/v1/creators/{creator_id}": {
            "get": {
                "operationId": "getProfile", "summary": "The creator's current profile",
                "security": anyone, "parameters": [creator_id],
                "responses": {"200": saved("The profile"), **guarded, **other_creator, **unknown_creator},
            },
            "put": {
                "operationId": "putProfile", "summary": "Replace the creator's profile (the next version)",
                "security": anyone, "parameters": [creator_id],
                "requestBody": json_body(profile_in, "The whole profile; its creator_id must be the path's, and its "
                                         "`version`, if sent, the one it was read at"),
                "responses": {
                    "200": saved("The profile saved (or, when nothing changed, the current one)"),
                    "201": saved("The profile created (operator token)"),
                    **guarded, **bodies, **invalid_body,
                    "403": failure("Another creator's profile, or an operator-only field changed or a profile "
                                   "created with a creator token (`details` name the fields)"),
                    "409": failure("The body's `version` is older than the current profile's: it changed since "
                                   "it was read (a mode change among them). Re-read it, make the change again, "
                                   "send it; a body without `version` replaces whatever is current"),
                },
            },
        },
        "/v1/creators/{creator_id}/mode": {"put": {
            "operationId": "putMode", "summary": "Switch the creator's replies: auto, review or off (kill switch)",
            "security": anyone, "parameters": [creator_id],
            "requestBody": json_body(mode, "The mode"),
            "responses": {"200": saved("The profile with the mode"), **guarded, **other_creator, **bodies,
                          **invalid_body, **unknown_creator},
        }},
    }
    security = {
        "operatorToken": {"type": "http", "scheme": "bearer",
                          "description": "CONTROL_API_TOKEN: every creator, every field"},
        "creatorToken": {"type": "http", "scheme": "bearer", "bearerFormat": "rf1.<creator_id>.<signature>",
                         "description": "Issued by `python -m replyflow.control creator-token <creator_id>`: "
                                        "that creator's reviews and profile only"},
    }
    return document("replyflow control", "Held replies and creator profiles, for creators and the operator.",
                    paths, schemas, security)

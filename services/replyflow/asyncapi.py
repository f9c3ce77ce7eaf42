"""The AsyncAPI 3.0 document of replyflow's topics, read off the services' real wiring.

Each service's factory builds its app (nothing connects until it starts); the document lists what
that app consumes (``ServiceParts.consumes``: topic and consumer group), owns partitions of
(``ServiceParts.owned_partitions``), reads whole into memory
(``ServiceParts.profiles`` and ``tables``: no consumer group) and may publish
(``EventProducer.sends``, which refuses any other topic), and what the operator CLI (``replyflow.admin``)
reads and sends. Channels, payloads and keys come from ``topics.py``; payloads point at the JSON Schema files
written next to the document.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from typing import Any

from replyflow.kafka import DEAD_LETTER_HEADERS
from replyflow.service import ServiceApp
from replyflow.settings import Settings
from replyflow.topics import (
    ALL_TOPICS,
    CONSUMED_TOPICS,
    CREATORS_CHANGES,
    CREATORS_CONFIG,
    DEAD_LETTERS_REPLAYED,
    DECISIONS,
    DLQ_PARTITIONS,
    Topic,
)

KAFKA_BINDING = "0.5.0"
# The long-running services, each built by its module's create_app.
SERVICE_MODULES = {
    "ingest": "replyflow.ingest",
    "policy": "replyflow.policy.service",
    "generation": "replyflow.generation.service",
    "publisher": "replyflow.publisher.service",
    "control": "replyflow.control.service",
    "youtube-poller": "replyflow.youtube_poller",
}
TRACE_HEADERS = {
    "type": "object",
    "description": "W3C trace context of the comment's trace (OpenTelemetry); absent when nothing upstream traced",
    "properties": {"traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
                   "tracestate": {"type": "string"}},
}


def service_apps() -> dict[str, ServiceApp]:
    """Every service's app as its Deployment runs it by default (policy with both stages), env ignored
    where it would change the document."""
    defaults = Settings.model_fields
    settings = Settings(
        kafka_group_prefix=defaults["kafka_group_prefix"].default,
        policy_stages=defaults["policy_stages"].default,
        otel_traces_exporter="none",
        control_api_token="only-to-build-the-app",
        instagram_app_secret="only-to-build-the-app",  # so the webhook, and what it dead-letters, is in
        youtube_api_base_url="https://www.googleapis.com",
    )
    return {name: importlib.import_module(module).create_app(settings) for name, module in SERVICE_MODULES.items()}


def _channel(topic: Topic) -> dict[str, Any]:
    model = topic.message.__name__
    return {
        "address": topic.name,
        "title": topic.name,
        "description": topic.description,
        "messages": {model: {
            "name": model,
            "contentType": "application/json",
            "payload": {"$ref": f"{model}.schema.json"},
            "headers": {"$ref": "#/components/schemas/TraceHeaders"},
            "bindings": {"kafka": {"key": {"type": "string", "description": topic.key.__doc__},
                                   "bindingVersion": KAFKA_BINDING}},
        }},
        "bindings": {"kafka": {"topic": topic.name, "partitions": topic.partitions, "bindingVersion": KAFKA_BINDING}},
    }


def _dead_letter_channel(topic: Topic) -> dict[str, Any]:
    return {
        "address": topic.dlq,
        "title": topic.dlq,
        "description": f"Records of {topic.name} that can never succeed: the original key and bytes, and why.",
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        "bindings": {"kafka": {"topic": topic.dlq, "partitions": DLQ_PARTITIONS, "bindingVersion": KAFKA_BINDING}},
    }


def _operation(action: str, channel: str, message: str, summary: str, group: str | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
    }
    if group is not None:
        operation["bindings"] = {"kafka": {"groupId": {"type": "string", "enum": [group]},
                                           "bindingVersion": KAFKA_BINDING}}
    return operation


def _operations(service: str, app: ServiceApp) -> dict[str, dict[str, Any]]:
    parts = app.parts
    operations: dict[str, dict[str, Any]] = {}
    for topic, group in parts.consumes:
        name = topic.message.__name__
        operations[f"{service}.receive.{topic.name}"] = _operation(
            "receive", topic.name, name, f"{service} consumes in group {group}, at least once", group)
        # A record that can never succeed is sent on with its context, and its comment gets a decision.
        operations[f"{service}.send.{topic.dlq}"] = _operation(
            "send", topic.dlq, "DeadLetter", f"{service} dead-letters what it can never process")
        assert DECISIONS.name in parts.producer.sends, f"{service} dead-letters but cannot record the decision"
    for topic in parts.dead_letters_for:
        operations[f"{service}.send.{topic.dlq}"] = _operation(
            "send", topic.dlq, "DeadLetter", f"{service} dead-letters what it was sent and cannot use, with why")
    for topic, group in parts.owned_partitions:
        operations[f"{service}.own.{topic.name}"] = _operation(
            "receive", topic.name, topic.message.__name__,
            f"{service} reads the partitions group {group} gives it from the start, and owns what they key", group)
    followed = [parts.profiles, *parts.tables]
    for table in followed:
        topic = table.topic
        operations[f"{service}.follow.{topic.name}"] = _operation(
            "receive", topic.name, topic.message.__name__,
            f"{service} {table.reading}")
    for topic in ALL_TOPICS:
        if topic.name in parts.producer.sends:
            operations[f"{service}.send.{topic.name}"] = _operation(
                "send", topic.name, topic.message.__name__, f"{service} publishes (acks=all, idempotent)")
    return operations


def _admin_operations() -> dict[str, dict[str, Any]]:
    """The operator CLI's: ``load-profiles`` and ``replay-dead-letters`` (see replyflow.admin)."""
    operations = {
        f"admin.send.{CREATORS_CONFIG.name}": _operation(
            "send", CREATORS_CONFIG.name, CREATORS_CONFIG.message.__name__,
            "admin load-profiles saves each profile as its creator's next version, in a transaction under the "
            "profile writer's claim of the creator's partition"),
        f"admin.follow.{DEAD_LETTERS_REPLAYED.name}": _operation(
            "receive", DEAD_LETTERS_REPLAYED.name, DEAD_LETTERS_REPLAYED.message.__name__,
            "admin replay-dead-letters reads the whole topic (no consumer group) and leaves out the letters an "
            "earlier run sent back"),
        f"admin.send.{DEAD_LETTERS_REPLAYED.name}": _operation(
            "send", DEAD_LETTERS_REPLAYED.name, DEAD_LETTERS_REPLAYED.message.__name__,
            "admin replay-dead-letters records each letter in the transaction that sends it back"),
    }
    for topic in CONSUMED_TOPICS:
        operations[f"admin.read.{topic.dlq}"] = _operation(
            "receive", topic.dlq, "DeadLetter", "admin replay-dead-letters reads the dead-letter topic to its end "
            "(no consumer group)")
        if topic is CREATORS_CHANGES:
            continue  # a profile change is never sent back (dead_letters.records_to_send)
        operations[f"admin.replay.{topic.name}"] = _operation(
            "send", topic.name, topic.message.__name__, "admin replay-dead-letters sends a dead letter back "
            "unchanged, with x-replayed-from")
    return operations


def asyncapi_document(apps: dict[str, ServiceApp] | None = None) -> dict[str, Any]:
    apps = apps if apps is not None else service_apps()
    channels = {t.name: _channel(t) for t in ALL_TOPICS} | {t.dlq: _dead_letter_channel(t) for t in CONSUMED_TOPICS}
    operations: dict[str, dict[str, Any]] = {}
    for service, app in apps.items():
        operations |= _operations(service, app)
    operations |= _admin_operations()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "replyflow",
            "version": version("replyflow"),
            "description": (
                "Topics between replyflow's services: ingest, policy (screen and verify), generation, "
                "publisher and the control API. Generated by `make schemas` from topics.py and the services' "
                "wiring; do not edit. Payloads are the JSON Schema files next to this document."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"kafka": {
            "host": "{bootstrap}",
            "protocol": "kafka",
            "description": "Apache Kafka 4.x (KRaft)",
            "variables": {"bootstrap": {"default": Settings.model_fields["kafka_bootstrap_servers"].default,
                                        "description": "KAFKA_BOOTSTRAP_SERVERS"}},
        }},
        "channels": channels,
        "operations": dict(sorted(operations.items())),
        "components": {
            "schemas": {"TraceHeaders": TRACE_HEADERS},
            "messages": {"DeadLetter": {
                "name": "DeadLetter",
                "summary": "The original record (key and bytes unchanged) with where it came from and why",
                "payload": {"description": "The original record's value, byte for byte"},
                "headers": {
                    "type": "object",
                    "required": sorted(DEAD_LETTER_HEADERS),
                    "properties": {**{name: {"type": "string", "description": text}
                                      for name, text in DEAD_LETTER_HEADERS.items()},
                                   **TRACE_HEADERS["properties"]},
                },
            }},
        },
    }

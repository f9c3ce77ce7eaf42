"""schemas/asyncapi.yaml: valid AsyncAPI 3.0 (the official JSON Schema, npm @asyncapi/specs), every reference
resolves, and what it says about the services holds in the running code."""

from __future__ import annotations

import copy
import functools
import json
from datetime import UTC, datetime

import jsonschema
import pytest
import yaml

from replyflow.asyncapi import service_apps
from replyflow.events import Comment, CommentReceived, Decision, Outcome, Stage
from replyflow.kafka import Emit, EventProducer
from replyflow.schemas import ASYNCAPI_FILE, SCHEMA_DIR
from replyflow.settings import Settings
from replyflow.topics import ALL_TOPICS, COMMENTS_RECEIVED, CONSUMED_TOPICS, DECISIONS, DLQ_PARTITIONS
from tests.helpers import TOOL_CACHE, make_var, provided_by_make


@functools.cache
def official_schema() -> dict:
    version = make_var("ASYNCAPI_SPECS_VERSION")
    path = TOOL_CACHE / "asyncapi" / f"specs-{version}" / "package" / "schemas" / "3.0.0.json"
    return json.loads(provided_by_make("asyncapi-specs", {"specs": path})["specs"].read_text())


@functools.cache
def committed() -> dict:
    return yaml.safe_load((SCHEMA_DIR / ASYNCAPI_FILE).read_text())


def errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(official_schema())
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def test_the_document_is_valid_asyncapi_3():
    assert committed()["asyncapi"] == "3.0.0"
    assert errors(committed()) == []


@pytest.mark.parametrize("path, value", [
    (("operations", "ingest.send.comments.received", "action"), "publish"),  # AsyncAPI 2 wording
    (("channels", "decisions", "bindings", "kafka", "partitions"), "three"),  # Kafka binding schema
    (("operations", "publisher.receive.replies.approved", "bindings", "kafka", "groupId"), "replyflow.publisher"),
])
def test_the_validator_rejects_a_broken_document(path, value):
    broken = copy.deepcopy(committed())
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert errors(broken), f"setting {path} to {value!r} went unnoticed"


def references(node: object) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


def test_every_reference_resolves():
    document = committed()
    refs = references(document)
    assert len(refs) > 50
    for ref in refs:
        if ref.startswith("#/"):
            node = document
            for part in ref[2:].split("/"):
                assert part in node, f"{ref} points nowhere"
                node = node[part]
        else:
            assert (SCHEMA_DIR / ref).is_file(), f"{ref} is not a file in schemas/"


def test_channels_carry_the_topics_models_and_keys():
    channels = committed()["channels"]
    assert set(channels) == {t.name for t in ALL_TOPICS} | {t.dlq for t in CONSUMED_TOPICS}
    for topic in ALL_TOPICS:
        (message,) = channels[topic.name]["messages"].values()
        assert message["payload"] == {"$ref": f"{topic.message.__name__}.schema.json"}
        assert channels[topic.name]["bindings"]["kafka"]["partitions"] == topic.partitions
        assert message["bindings"]["kafka"]["key"]["description"] == topic.key.__doc__
    for topic in CONSUMED_TOPICS:
        assert channels[topic.dlq]["bindings"]["kafka"]["partitions"] == DLQ_PARTITIONS


def test_every_topic_has_a_sender_and_all_but_the_audit_trail_a_receiver():
    """Nothing is published that no service (or the operator CLI) reads, and nothing is read that none publishes;
    `decisions` (the audit trail) is for people and tools outside replyflow."""
    operations = committed()["operations"].values()
    sent = {op["channel"]["$ref"].rsplit("/", 1)[1] for op in operations if op["action"] == "send"}
    received = {op["channel"]["$ref"].rsplit("/", 1)[1] for op in operations if op["action"] == "receive"}
    assert sent == set(committed()["channels"])
    assert set(committed()["channels"]) - received == {DECISIONS.name}


def test_stage_consumer_groups_are_in_the_document():
    groups = {op["bindings"]["kafka"]["groupId"]["enum"][0]: op["channel"]["$ref"].rsplit("/", 1)[1]
              for op in committed()["operations"].values() if "bindings" in op}
    prefix = Settings.model_fields["kafka_group_prefix"].default
    assert groups == {f"{prefix}.policy-screen": "comments.received", f"{prefix}.generation": "comments.screened",
                      f"{prefix}.policy-verify": "replies.drafted", f"{prefix}.publisher": "replies.approved",
                      f"{prefix}.control-review": "replies.reviewed", f"{prefix}.control-profiles": "creators.changes",
                      f"{prefix}.youtube-poller": "youtube.poll.cursors"}


def comment() -> Comment:
    return Comment(platform="youtube", comment_id="yt-1", creator_id="mara", post_id="v1", author_id="a1",
                   author_name="Ann", text="Love it!", created_at=datetime.now(UTC))


def test_an_event_goes_only_to_the_topic_that_carries_its_model():
    event = CommentReceived(comment=comment())
    assert Emit(COMMENTS_RECEIVED, event).key == "yt-1"
    with pytest.raises(TypeError, match="decisions carries Decision, not CommentReceived"):
        Emit(DECISIONS, event)


async def test_a_producer_refuses_a_topic_its_service_does_not_declare():
    producer = EventProducer(Settings(), "ingest", [COMMENTS_RECEIVED])
    decision = Decision(comment_id="yt-1", creator_id="mara", stage=Stage.screen, outcome=Outcome.skipped)
    with pytest.raises(ValueError, match=r"ingest does not declare that it sends to \['decisions'\]"):
        await producer.publish([Emit(DECISIONS, decision)])


def test_what_the_document_reads_off_the_apps_is_what_they_run():
    """``ServiceParts.consumes`` (the document's source) against FastStream's own subscribers and the generation
    service's windowed consumer."""
    for service, app in service_apps().items():
        recorded = {(topic.name, group) for topic, group in app.parts.consumes}
        running = {(t, s.group_id) for s in app.broker.subscribers for t in s.topics}
        windowed = getattr(app, "state_consumer", None)
        if windowed is not None:
            running.add((windowed.topic, windowed.group_id))
        assert recorded == running, service

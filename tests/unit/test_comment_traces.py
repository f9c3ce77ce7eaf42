"""One trace per comment where comments come in over HTTP (ingest, a review decision), the trace kept through a
dead letter, and the records a followed topic rejects counted and located (replyflow.kafka, ingest, control)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, use_span
from prometheus_client import REGISTRY

from replyflow import kafka
from replyflow.control.review import PendingReviews
from replyflow.control.service import ControlApi
from replyflow.events import (
    Action,
    Comment,
    CommentReceived,
    CreatorProfile,
    Outcome,
    ProfileChangeResult,
    Reason,
    ReplyReviewed,
    ReplyVerdict,
    reply_id_for,
)
from replyflow.ingest import comments_api
from replyflow.kafka import EventProducer, PermanentError, TopicTable, dead_letter, start_record_span
from replyflow.service import ServiceParts
from replyflow.settings import Settings
from replyflow.topics import (
    ALL_TOPICS,
    COMMENTS_RECEIVED,
    CREATORS_CHANGE_RESULTS,
    CREATORS_CONFIG,
    REPLIES_REVIEW,
    REPLIES_REVIEWED,
)

TOKEN = "operator-token"
SETTINGS = Settings(kafka_bootstrap_servers="unused:9092", ingest_api_token=TOKEN, control_api_token=TOKEN)
UPSTREAM_TRACE, UPSTREAM_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
UPSTREAM = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"


@pytest.fixture
def spans(monkeypatch) -> InMemorySpanExporter:
    """What replyflow.kafka's spans export to (the global tracer provider stays as it is)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(kafka, "TRACER", provider.get_tracer("test"))
    return exporter


def record(topic: str, key: str | None, value: bytes | None, headers=(), offset: int = 0) -> ConsumerRecord:
    key_bytes = key.encode() if key is not None else None
    return ConsumerRecord(topic, 1, offset, int(time.time() * 1000), 0, key_bytes, value, None,
                          len(key_bytes or b""), len(value or b""), list(headers))


class Sent(EventProducer):
    """Keeps what it sends instead of sending it, and reads it into ``tables`` as Kafka would give it back."""

    def __init__(self, *tables: TopicTable) -> None:
        super().__init__(SETTINGS, "test", ALL_TOPICS)
        self._producer = object()  # type: ignore[assignment]
        self.records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []
        self.tables = {table.topic.name: table for table in tables}

    async def _send(self, producer, records) -> None:
        self.records += records
        for topic, key, value, headers in records:
            if topic in self.tables:
                self.tables[topic]._apply(record(topic, key.decode() if key else None, value, headers))


def traceparent(headers: list[tuple[str, bytes]]) -> str | None:
    return dict(headers).get("traceparent", b"").decode() or None


def comment(comment_id: str) -> Comment:
    return Comment(platform="youtube", comment_id=comment_id, creator_id="mara", post_id="v1", author_id="a1",
                   author_name="Ann", text="How long should it rest?", created_at=datetime.now(UTC))


def parts(producer: EventProducer, profiles: TopicTable | None = None) -> ServiceParts:
    return ServiceParts("test", SETTINGS, None, producer, profiles)  # type: ignore[arg-type]


@pytest.mark.parametrize("caller", [UPSTREAM, None])
async def test_each_comment_of_a_request_is_a_trace_of_its_own_linked_to_the_callers(spans, caller):
    """A batch of comments is not one trace sampled as one: each comment's ``create`` span starts a trace, linked
    to the caller's span when the request carries a traceparent (a request may hold 500 comments)."""
    producer = Sent()
    headers = {"authorization": f"Bearer {TOKEN}", **({"traceparent": caller} if caller else {})}
    body = [comment(f"c{i}").model_dump(mode="json") for i in range(3)]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(comments_api(parts(producer))),
                                 base_url="http://ingest") as http:
        assert (await http.post("/v1/comments", json=body, headers=headers)).status_code == 202

    created = {span.context.span_id: span for span in spans.get_finished_spans() if span.name.endswith(" create")}
    assert len(producer.records) == len(created) == 3
    traces = {}
    for topic, key, _, record_headers in producer.records:
        _, trace_id, span_id, _ = traceparent(record_headers).split("-")
        span = created[int(span_id, 16)]  # the record carries its own comment's span
        assert (topic, span.name, span.parent) == (COMMENTS_RECEIVED.name, "comments.received create", None)
        assert [(f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in span.links] == (
            [(UPSTREAM_TRACE, UPSTREAM_SPAN)] if caller else [])
        traces[key] = trace_id
    assert sorted(traces) == [b"c0", b"c1", b"c2"]
    assert len(set(traces.values())) == 3 and UPSTREAM_TRACE not in traces.values()


def held(comment_id: str = "c1") -> ReplyVerdict:
    return ReplyVerdict(comment=comment(comment_id), reply_id=reply_id_for("youtube", comment_id),
                        text="An hour. [AI reply]", outcome=Outcome.held, policy_version="p1", profile_version=1,
                        reasons=[Reason(check="creator", code="creator_reviews_all", message="Every reply waits.",
                                        action=Action.review)])


def control() -> tuple[ControlApi, TopicTable[ReplyVerdict], Sent]:
    profiles = TopicTable[CreatorProfile]("unused", CREATORS_CONFIG, lambda p: p.creator_id)
    holds = TopicTable[ReplyVerdict]("unused", REPLIES_REVIEW, lambda v: v.reply_id, keep_first=True,
                                     keep_traces=True)
    reviewed = TopicTable[ReplyReviewed]("unused", REPLIES_REVIEWED, lambda r: r.reply_id, keep_first=True,
                                         on_row=lambda decision: holds.forget(decision.reply_id))
    results = TopicTable[ProfileChangeResult]("unused", CREATORS_CHANGE_RESULTS, lambda r: r.change_id)
    producer = Sent(profiles, holds, reviewed)
    for table in (profiles, holds, reviewed, results):
        table.caught_up.set()
    profiles._apply(record(CREATORS_CONFIG.name, "mara", CreatorProfile(
        creator_id="mara", display_name="Mara", persona="A cook.", mode="review").model_dump_json().encode()))
    api = ControlApi(parts(producer, profiles), holds, PendingReviews(keep_s=86_400), reviewed, results, TOKEN,
                     check_edit=lambda text, comment, profile: [])
    return api, holds, producer


async def test_a_review_decision_is_a_trace_of_its_own_linked_to_the_held_replys(spans):
    """Not the held reply's trace (a review may come days later), but linked to it; not a trace of nothing."""
    api, holds, producer = control()
    hold = held()
    holds._apply(record(REPLIES_REVIEW.name, "mara", hold.model_dump_json().encode(),
                        [("traceparent", UPSTREAM.encode())]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(api.app()), base_url="http://control") as http:
        answer = await http.post(f"/v1/reviews/{hold.reply_id}", json={"action": "approve"},
                                 headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text

    ((topic, _, _, headers),) = producer.records
    (created,) = [span for span in spans.get_finished_spans() if span.name == "replies.reviewed create"]
    assert topic == REPLIES_REVIEWED.name and created.parent is None
    assert traceparent(headers).split("-")[1:3] == [f"{created.context.trace_id:032x}",
                                                    f"{created.context.span_id:016x}"]
    ((linked_trace, linked_span),) = [(link.context.trace_id, link.context.span_id) for link in created.links]
    assert (f"{linked_trace:032x}", f"{linked_span:016x}") == (UPSTREAM_TRACE, UPSTREAM_SPAN)
    assert holds.trace_of(hold.reply_id) is None  # decided: forgotten with the row


def test_a_table_keeps_each_rows_trace_with_the_row_only_when_asked():
    traced = TopicTable[ReplyVerdict]("unused", REPLIES_REVIEW, lambda v: v.reply_id, keep_first=True,
                                      keep_traces=True)
    plain = TopicTable[ReplyVerdict]("unused", REPLIES_REVIEW, lambda v: v.reply_id)
    first, second = held("c1"), held("c2")
    for table in (traced, plain):
        table._apply(record(REPLIES_REVIEW.name, "mara", first.model_dump_json().encode(),
                            [("traceparent", UPSTREAM.encode())]))
        table._apply(record(REPLIES_REVIEW.name, "mara", second.model_dump_json().encode()))
    assert f"{traced.trace_of(first.reply_id).span_id:016x}" == UPSTREAM_SPAN
    assert not traced.trace_of(second.reply_id).is_valid  # sent untraced
    assert plain.trace_of(first.reply_id) is None
    traced.forget(first.reply_id)
    assert traced.trace_of(first.reply_id) is None


async def test_a_dead_letter_and_its_decision_stay_in_the_records_trace_whose_span_says_why(spans):
    """In the record's span, as a stage dead-letters: the span records the error the comment's trace ends with."""
    producer = Sent()
    value = CommentReceived(comment=comment("c9")).model_dump_json().encode()
    poison = record(COMMENTS_RECEIVED.name, "c9", value, [("traceparent", UPSTREAM.encode())], offset=7)
    with use_span(start_record_span(poison), end_on_exit=True):
        await dead_letter(producer, poison, PermanentError("no such video"), group="g", service="test", attempts=1)

    assert [topic for topic, *_ in producer.records] == ["comments.received.dlq", "decisions"]
    assert {traceparent(headers).split("-")[1] for *_, headers in producer.records} == {UPSTREAM_TRACE}
    (consumed,) = [span for span in spans.get_finished_spans() if span.name == "comments.received process"]
    assert consumed.status.status_code == StatusCode.ERROR
    assert consumed.status.description == "PermanentError: no such video"
    assert [event.attributes["exception.type"] for event in consumed.events] == ["replyflow.kafka.PermanentError"]


def test_an_invalid_record_of_a_followed_topic_is_counted_and_logged_with_where_it_is(caplog):
    """creators.config carries the kill switch: a profile that does not validate must not pass unnoticed."""
    profiles = TopicTable[CreatorProfile]("unused", CREATORS_CONFIG, lambda p: p.creator_id)

    def count() -> float | None:
        return REGISTRY.get_sample_value("replyflow_table_records_rejected_total", {"topic": CREATORS_CONFIG.name})

    before = count()
    assert before is not None  # the series is there from the start, so the first rejection is an increase
    with caplog.at_level(logging.ERROR, logger="replyflow.kafka"):
        profiles._apply(record(CREATORS_CONFIG.name, "mara", b'{"creator_id": "mara", "mode": "sometimes"}',
                               offset=41))
    assert count() == before + 1 and profiles.get("mara") is None
    (logged,) = [r for r in caplog.records if r.getMessage() == "ignoring invalid record on creators.config"]
    assert logged.fields == {"topic": "creators.config", "partition": 1, "offset": 41, "key": "mara"}


async def test_a_record_sent_back_that_fails_again_says_so_and_the_log_names_the_comment(caplog):
    producer = Sent()
    value = CommentReceived(comment=comment("c9")).model_dump_json().encode()
    again = record(COMMENTS_RECEIVED.name, "c9", value, [("x-replayed-from", b"comments.received.dlq@7")], offset=12)
    with caplog.at_level(logging.WARNING, logger="replyflow.kafka"):
        await dead_letter(producer, again, PermanentError("still no such video"), group="g", service="test",
                          attempts=1)
    ((topic, _, _, headers), _) = producer.records
    assert topic == "comments.received.dlq" and dict(headers)["x-replayed-from"] == b"comments.received.dlq@7"
    (logged,) = [r for r in caplog.records if r.getMessage() == "dead-lettered"]
    assert logged.fields["comment_id"] == "c9" and logged.fields["creator_id"] == "mara"
    assert logged.fields["replayed-from"] == "comments.received.dlq@7"


def test_a_key_is_unreadable_until_a_readable_record_follows():
    """What the creators.config alert watches: not every rejection since start, only keys whose latest record is bad."""
    profiles = TopicTable[CreatorProfile]("unused", CREATORS_CONFIG, lambda p: p.creator_id, drop_invalid=True)

    def unreadable() -> float | None:
        return REGISTRY.get_sample_value("replyflow_table_unreadable_keys", {"topic": CREATORS_CONFIG.name})

    good = CreatorProfile(creator_id="mara", display_name="Mara", persona="A cook.").model_dump_json().encode()
    profiles._apply(record(CREATORS_CONFIG.name, "mara", good))
    profiles._apply(record(CREATORS_CONFIG.name, "mara", b'{"creator_id": "mara", "mode": "sometimes"}', offset=1))
    assert unreadable() == 1 and profiles.get("mara") is None  # dropped, not left on the older version
    profiles._apply(record(CREATORS_CONFIG.name, "mara", good, offset=2))
    assert unreadable() == 0 and profiles.get("mara") is not None

"""Which dead letters a replay takes, and what each sends back (replyflow.dead_letters)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiokafka import ConsumerRecord

from replyflow.admin import utc_time
from replyflow.dead_letters import (
    DeadLetter,
    Selection,
    dead_letter_topics,
    records_to_send,
    sent_back,
    sent_back_before,
)
from replyflow.events import CommentReceived
from replyflow.ingest import WEBHOOK_SOURCE
from replyflow.kafka import Emit, EventProducer
from replyflow.settings import Settings
from replyflow.topics import DEAD_LETTERS_REPLAYED
from replyflow.youtube_poller import YOUTUBE_SOURCE

AT = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def letter(topic: str = "replies.approved.dlq", source: str = "replies.approved", at: datetime = AT,
           exception: str = "PermanentError", value: bytes = b'{"reply_id": "r1"}') -> DeadLetter:
    return DeadLetter(topic, 7, b"mara:youtube", value, {
        "x-original-topic": source, "x-exception-class": exception,
        "x-failed-at-ms": str(int(at.timestamp() * 1000))})


def test_every_consumed_topic_has_its_dead_letter_topic_to_go_back_to():
    assert dead_letter_topics()["comments.screened.dlq"] == "comments.screened"
    assert "decisions.dlq" not in dead_letter_topics()  # nothing consumes decisions as a stage


def test_a_selection_takes_a_time_window_and_an_exception_class():
    assert Selection().takes(letter())
    assert Selection(failed_after=AT).takes(letter()) and not Selection(failed_before=AT).takes(letter())
    assert not Selection(failed_after=datetime(2026, 11, 29, 9, 0, 1, tzinfo=UTC)).takes(letter())
    assert Selection(exception_class="PermanentError").takes(letter())
    assert not Selection(exception_class="ValidationError").takes(letter())
    no_time = DeadLetter("replies.approved.dlq", 1, None, b"{}", {"x-original-topic": "replies.approved"})
    assert Selection().takes(no_time) and not Selection(failed_after=AT).takes(no_time)


def test_the_ledger_record_names_the_letter_by_its_place_as_x_replayed_from_does():
    sent = letter()
    recorded = sent_back(sent, [("replies.approved", b"mara:youtube", b"{}", []),
                                ("replies.approved", b"mara:youtube", b"{}", [])])
    assert (recorded.dead_letter_topic, recorded.offset, recorded.record_key) == ("replies.approved.dlq", 7,
                                                                                  "mara:youtube")
    assert recorded.sent_to == ["replies.approved"] and recorded.failed_at_ms == int(AT.timestamp() * 1000)
    assert Emit(DEAD_LETTERS_REPLAYED, recorded).key == sent.where == "replies.approved.dlq@7"
    assert sent_back(replace(sent, key=None), []).sent_to == []  # a webhook entry that held no comment


def test_a_letter_is_left_out_only_when_the_ledger_recorded_that_very_letter():
    sent = letter()
    recorded = sent_back(sent, [])
    assert sent_back_before(sent, recorded)
    assert not sent_back_before(sent, None)
    # The dead-letter topic made anew: a new letter at the same offset failed at another moment.
    assert not sent_back_before(letter(at=datetime(2026, 12, 1, tzinfo=UTC)), recorded)


def test_command_line_times_without_an_offset_are_utc():
    assert utc_time("2026-11-29T09:00") == AT
    assert utc_time("2026-11-29T10:00+01:00") == AT


def test_a_stage_record_goes_back_unchanged_and_says_where_from():
    ((topic, key, value, headers),) = records_to_send(letter(), lambda account: None)
    assert (topic, key, value) == ("replies.approved", b"mara:youtube", b'{"reply_id": "r1"}')
    assert headers == [("x-replayed-from", b"replies.approved.dlq@7")]  # dead-lettered untraced


def test_a_record_whose_headers_name_another_topic_stays():
    assert "is not the topic" in records_to_send(letter(source="comments.received"), lambda account: None)


def webhook_entry(account: str = "17841", text: str = "Open today?") -> bytes:
    return json.dumps({"id": account, "time": 1_764_400_000, "changes": [{"field": "comments", "value": {
        "id": "c9", "text": text, "from": {"id": "9001", "username": "ann"}, "media": {"id": "m1"}}}]}).encode()


def test_a_profile_change_is_not_sent_back_late_where_it_could_undo_a_later_kill_switch():
    stays = records_to_send(letter("creators.changes.dlq", "creators.changes"), lambda account: None)
    assert stays == ("a profile change is not sent back: it would be made after later ones; ask for it again "
                     "(control API)")


def test_a_webhook_change_goes_through_ingests_mapping_with_the_profiles_as_they_are_now():
    dead = letter("comments.received.dlq", WEBHOOK_SOURCE, value=webhook_entry())
    assert "is no creator's" in records_to_send(dead, lambda account: None)
    ((topic, key, value, _),) = records_to_send(dead, lambda account: "mara" if account == "17841" else None)
    comment = CommentReceived.model_validate_json(value).comment
    assert (topic, key, comment.creator_id, comment.text) == ("comments.received", b"c9", "mara", "Open today?")


@pytest.mark.parametrize("value, says", [(b"{not json", "not an Instagram webhook entry"),
                                         (webhook_entry(text=""), "invalid comment")])
def test_a_webhook_change_that_is_still_no_comment_stays_and_says_why(value, says):
    dead = letter("comments.received.dlq", WEBHOOK_SOURCE, value=value)
    assert says in records_to_send(dead, lambda account: "mara")


def polled(**snippet_over) -> bytes:
    snippet = {"videoId": "vid1", "textDisplay": "Lovely bread!", "authorDisplayName": "Ann",
               "authorChannelId": {"value": "UCann"}, "publishedAt": "2026-11-29T08:00:00Z", **snippet_over}
    return json.dumps({"channel_id": "UCmara", "creator_id": "mara", "video_id": "vid1",
                       "comment": {"kind": "youtube#comment", "id": "Ugz1", "snippet": snippet}}).encode()


def test_a_youtube_comment_a_poll_could_not_read_goes_through_the_pollers_mapping_again():
    ((topic, key, value, headers),) = records_to_send(letter("comments.received.dlq", YOUTUBE_SOURCE,
                                                             value=polled()), lambda account: None)
    comment = CommentReceived.model_validate_json(value).comment
    assert (topic, key, comment.creator_id, comment.post_id, comment.text) == (
        "comments.received", b"Ugz1", "mara", "vid1", "Lovely bread!")
    assert dict(headers)["x-replayed-from"] == b"comments.received.dlq@7"
    still_bad = letter("comments.received.dlq", YOUTUBE_SOURCE, value=polled(textDisplay=""))
    assert "still not a comment" in records_to_send(still_bad, lambda account: None)


def test_a_change_dead_lettered_without_its_entry_stays_and_says_how_to_send_it():
    bare = json.dumps(json.loads(webhook_entry())["changes"][0]).encode()  # as ingest kept them before
    dead = letter("comments.received.dlq", WEBHOOK_SOURCE, value=bare)
    assert "POST /v1/comments" in records_to_send(dead, lambda account: "mara")


def test_a_record_without_a_value_or_with_empty_headers_stays_instead_of_stopping_the_replay():
    record = ConsumerRecord("replies.approved.dlq", 0, 3, 0, 0, b"k", None, None, 1, 0,
                            [("x-original-topic", b"replies.approved"), ("x-note", None)])
    dead = DeadLetter.of(record)
    assert dead.headers == {"x-original-topic": "replies.approved"}
    assert records_to_send(dead, lambda account: None) == "the record has no value"


@pytest.mark.parametrize("dead", [letter(), letter("comments.received.dlq", YOUTUBE_SOURCE, value=polled())],
                         ids=["stage", "youtube"])
async def test_a_record_sent_back_continues_the_dead_letters_trace(dead):
    """The dead letter carries its comment's trace (kafka.dead_letter): sent back, the comment stays in it."""
    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    dead = replace(dead, headers={**dead.headers, "traceparent": traced})

    class Sent(EventProducer):
        async def _send(self, producer, records) -> None:
            self.records = records

    admin = Sent(Settings(), "admin", [])
    admin._producer = object()  # type: ignore[assignment]
    await admin.send(records_to_send(dead, lambda account: None))
    ((*_, headers),) = admin.records
    assert [v for k, v in headers if k == "traceparent"] == [traced.encode()]  # not the replay's own context

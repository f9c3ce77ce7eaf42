"""Sending dead letters back once what stopped them is fixed (``python -m replyflow.admin replay-dead-letters``).

A stage dead-letters a record it can never process as it is: an event from a producer of a newer schema mid
rollout, a reply for an account whose credentials were revoked, a webhook comment for an Instagram account no
profile names yet. After the fix (the rollout finished, the credentials or the profile put back) the operator
sends them back: each record goes to the topic it came from with its key and value unchanged, plus
``x-replayed-from: <dlq topic>@<offset>`` and the dead letter's ``traceparent`` (its comment's trace goes on); a
webhook change goes through ingest's mapping again, with the
profiles as they are now, and a YouTube comment a poll could not read through the poller's (a release that reads
it). The dead-letter topic itself is left as it is (kept 30 days); each letter sent back is recorded on
``deadletters.replayed`` in the same Kafka transaction as its records, and a later run leaves the recorded ones out
(``--again`` sends them anyway): a comment sent back a second time past the screen's hour, and a reply past the
publisher's ledger (``PUBLISHER_LEDGER_HOURS``), would be drafted again and, on YouTube and Instagram (no idempotency
key), a draft in other words posted again. A run that dies part way has sent only what it recorded (transactions of
letters with their ledger records): the stages read ``read_committed``, and the next run (one transactional id per
dead-letter topic) aborts what it left open. A record
sent back that fails again is dead-lettered anew, at a new offset, with the ``x-replayed-from`` it carried: the next
run sends it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import ConsumerRecord
from opentelemetry import propagate

from replyflow.events import Comment, CommentReceived, DeadLetterReplayed
from replyflow.ingest import WEBHOOK_SOURCE, instagram_comments
from replyflow.kafka import Record, trace_headers
from replyflow.topics import COMMENTS_RECEIVED, CONSUMED_TOPICS, CREATORS_CHANGES, dead_letter_place
from replyflow.youtube_poller import YOUTUBE_SOURCE, youtube_comment

REPLAYED_FROM = "x-replayed-from"


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with the headers ``kafka.dead_letter`` gave it."""

    topic: str
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @classmethod
    def of(cls, record: ConsumerRecord) -> DeadLetter:
        return cls(record.topic, record.offset, record.key, record.value,
                   {k: v.decode(errors="replace") for k, v in record.headers if v is not None})

    @property
    def failed_at_ms(self) -> int | None:
        text = self.headers.get("x-failed-at-ms", "")
        return int(text) if text.isdigit() else None

    @property
    def where(self) -> str:
        return dead_letter_place(self.topic, self.offset)


@dataclass(frozen=True)
class Selection:
    """Which dead letters to send back: failed in [``failed_after``, ``failed_before``), of that exception class."""

    failed_after: datetime | None = None
    failed_before: datetime | None = None
    exception_class: str | None = None

    def takes(self, letter: DeadLetter) -> bool:
        at = letter.failed_at_ms
        if self.failed_after is not None and (at is None or at < self.failed_after.timestamp() * 1000):
            return False
        if self.failed_before is not None and (at is None or at >= self.failed_before.timestamp() * 1000):
            return False
        return self.exception_class is None or letter.headers.get("x-exception-class") == self.exception_class


def sent_back_before(letter: DeadLetter, recorded: DeadLetterReplayed | None) -> bool:
    """Whether the ledger's record at the letter's place is about this letter: a dead-letter topic made anew
    numbers from 0 again, so a letter is the one recorded only if it failed at the same moment too."""
    return recorded is not None and recorded.failed_at_ms == letter.failed_at_ms


def sent_back(letter: DeadLetter, records: list[Record]) -> DeadLetterReplayed:
    """The ledger's record that ``letter`` went back as ``records``."""
    return DeadLetterReplayed(dead_letter_topic=letter.topic, offset=letter.offset, failed_at_ms=letter.failed_at_ms,
                              record_key=letter.key.decode(errors="replace") if letter.key is not None else None,
                              sent_to=sorted({record[0] for record in records}))


def dead_letter_topics() -> dict[str, str]:
    """Each dead-letter topic and the topic its records go back to."""
    return {topic.dlq: topic.name for topic in CONSUMED_TOPICS}


def received(comment: Comment, headers: list[tuple[str, bytes]]) -> Record:
    """A comment that came from outside Kafka (a webhook, a poll), for ``comments.received`` again."""
    return (COMMENTS_RECEIVED.name, comment.comment_id.encode(),
            CommentReceived(comment=comment).model_dump_json().encode(), headers)


def records_to_send(letter: DeadLetter, creator_of: Callable[[str], str | None]) -> list[Record] | str:
    """What sending ``letter`` back writes, or why it cannot go back (it stays where it is)."""
    replayed = [(REPLAYED_FROM, letter.where.encode()), *trace_headers(propagate.extract(letter.headers))]
    if letter.value is None:
        return "the record has no value"
    source = letter.headers.get("x-original-topic")
    if source == WEBHOOK_SOURCE:
        try:
            entry = json.loads(letter.value)
        except ValueError as e:
            return f"not an Instagram webhook entry: {e}"
        if isinstance(entry, dict) and "changes" not in entry and "field" in entry:
            return ("a change dead-lettered before its entry was kept with it: the Instagram account it came to is "
                    "not in the record; send the comment through POST /v1/comments")
        comments, _, unusable = instagram_comments({"object": "instagram", "entry": [entry]}, creator_of)
        if unusable:
            return "; ".join(part.why for part in unusable)
        return [received(comment, replayed) for comment in comments]
    if source == YOUTUBE_SOURCE:
        try:
            polled = json.loads(letter.value)
            comment = youtube_comment(polled["comment"], polled["creator_id"], polled["video_id"])
        except (KeyError, TypeError, ValueError) as e:  # pydantic's ValidationError is a ValueError
            return f"still not a comment: {type(e).__name__}: {e}"[:500]
        return [received(comment, replayed)]
    if source == CREATORS_CHANGES.name:  # made late, it could undo what the creator changed since (a kill switch)
        return "a profile change is not sent back: it would be made after later ones; ask for it again (control API)"
    if source != dead_letter_topics().get(letter.topic):
        return f"x-original-topic {source!r} is not the topic {letter.topic} collects for"
    return [(source, letter.key, letter.value, replayed)]

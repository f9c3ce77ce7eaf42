"""Every Kafka topic replyflow uses: its name, partitions, the one event model it carries and how
records are keyed. Services never spell topic strings or choose keys themselves; the AsyncAPI
document in ``schemas/`` is generated from this module and the services' wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from replyflow.events import (
    CommentReceived,
    CommentScreened,
    CreatorProfile,
    DeadLetterReplayed,
    Decision,
    ProfileChange,
    ProfileChangeResult,
    ReplyDrafted,
    ReplyPublished,
    ReplyReviewed,
    ReplyVerdict,
    YouTubePollCursor,
)


def by_comment(event: Any) -> str:
    """comment_id: a viral creator's comments spread over every partition."""
    return event.comment_id


def by_creator(event: Any) -> str:
    """creator_id: one creator's records stay in order on one partition."""
    return event.creator_id


def by_account(event: Any) -> str:
    """creator_id:platform: one publisher consumer owns each platform account's order and rate limit."""
    return f"{event.creator_id}:{event.comment.platform}"


def by_reply(event: Any) -> str:
    """reply_id: every record about one reply is on one partition, in order (the first decision wins)."""
    return event.reply_id


def by_channel(event: Any) -> str:
    """channel_id: compaction keeps each channel's latest cursor, and its partition says which poller owns it."""
    return event.channel_id


def dead_letter_place(topic: str, offset: int) -> str:
    """Where a dead letter is, as ``x-replayed-from`` names it (dead-letter topics have one partition)."""
    return f"{topic}@{offset}"


def by_dead_letter(event: Any) -> str:
    """<dead-letter topic>@<offset>: the letter it is about, as ``x-replayed-from`` names it."""
    return dead_letter_place(event.dead_letter_topic, event.offset)


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    message: type[BaseModel]
    key: Callable[[Any], str]  # the record key of an event; its docstring says why
    description: str
    compacted: bool = False
    retention_days: int | None = 7  # None: kept until compaction replaces it

    @property
    def retention_ms(self) -> int | None:
        return None if self.retention_days is None else self.retention_days * 86_400_000

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


COMMENTS_RECEIVED = Topic("comments.received", 6, CommentReceived, by_comment,
                          "Every comment the platforms delivered, as ingest accepted it.")
COMMENTS_SCREENED = Topic("comments.screened", 6, CommentScreened, by_comment,
                          "Comments the screen stage found eligible for an AI reply.")
REPLIES_DRAFTED = Topic("replies.drafted", 6, ReplyDrafted, by_comment,
                        "Replies the model drafted, before verification.")
REPLIES_APPROVED = Topic("replies.approved", 6, ReplyVerdict, by_account,
                         "Verified or creator-approved replies, for the publisher to post.")
REPLIES_REVIEW = Topic("replies.review", 3, ReplyVerdict, by_creator,
                       "Replies held for the creator's review, with the reasons.", retention_days=30)
# Not compacted: compaction keeps a key's latest record, and the first decision about a reply must win.
REPLIES_REVIEWED = Topic("replies.reviewed", 3, ReplyReviewed, by_reply,
                         "The creator's decisions about held replies, kept 60 days (twice replies.review's "
                         "retention); the first decision about a reply holds.", retention_days=60)
REPLIES_PUBLISHED = Topic("replies.published", 3, ReplyPublished, by_creator,
                          "Replies posted on the platform; the publisher's ledger against double posts.",
                          retention_days=14)
DECISIONS = Topic("decisions", 3, Decision, by_comment,
                  "The audit trail: every stage's decision about a comment, with reasons and versions.",
                  retention_days=90)
CREATORS_CONFIG = Topic("creators.config", 3, CreatorProfile, by_creator,
                        "The latest profile of each creator (compacted); every service follows it.",
                        compacted=True, retention_days=None)
# A day: a change is applied (or answered) within seconds; what is older is only for looking back at.
CREATORS_CHANGES = Topic("creators.changes", 3, ProfileChange, by_creator,
                         "Profile and mode changes asked through the control API, applied in order by the control "
                         "replica that owns the creator's partition: the one writer of creators.config.",
                         retention_days=1)
# The stage (consumer group) on creators.changes whose replicas write creators.config, one per partition's creators.
PROFILE_WRITER_STAGE = "control-profiles"
CREATORS_CHANGE_RESULTS = Topic("creators.changes.results", 3, ProfileChangeResult, by_creator,
                                "What became of each profile change: the profile saved, or why not.",
                                retention_days=1)
YOUTUBE_POLL_CURSORS = Topic("youtube.poll.cursors", 6, YouTubePollCursor, by_channel,
                              "How far the YouTube pollers have read each channel (compacted). The pollers' "
                              "consumer group shares out its partitions: a channel is polled by the owner of its "
                              "cursor's partition.", compacted=True, retention_days=None)
# Kept 35 days, longer than the dead letters it is about (DLQ_RETENTION_DAYS): a letter still there is never
# taken for one not sent back.
DEAD_LETTERS_REPLAYED = Topic("deadletters.replayed", 1, DeadLetterReplayed, by_dead_letter,
                              "The dead letters replay-dead-letters sent back, so that a later replay leaves them "
                              "out.", retention_days=35)

ALL_TOPICS: tuple[Topic, ...] = (
    COMMENTS_RECEIVED,
    COMMENTS_SCREENED,
    REPLIES_DRAFTED,
    REPLIES_APPROVED,
    REPLIES_REVIEW,
    REPLIES_REVIEWED,
    REPLIES_PUBLISHED,
    DECISIONS,
    CREATORS_CONFIG,
    CREATORS_CHANGES,
    CREATORS_CHANGE_RESULTS,
    YOUTUBE_POLL_CURSORS,
    DEAD_LETTERS_REPLAYED,
)

# Topics that a consumer reads, so each gets a dead-letter companion (one partition: few records, kept in order).
DLQ_PARTITIONS = 1
DLQ_RETENTION_DAYS = 30
CONSUMED_TOPICS: tuple[Topic, ...] = (
    COMMENTS_RECEIVED,
    COMMENTS_SCREENED,
    REPLIES_DRAFTED,
    REPLIES_APPROVED,
    REPLIES_REVIEWED,
    CREATORS_CHANGES,
)

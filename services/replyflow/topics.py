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
    Decision,
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
    """reply_id: compaction keeps the latest record of each reply."""
    return event.reply_id


def by_channel(event: Any) -> str:
    """channel_id: compaction keeps each channel's latest cursor, and its partition says which poller owns it."""
    return event.channel_id


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    message: type[BaseModel]
    key: Callable[[Any], str]  # the record key of an event; its docstring says why
    description: str
    compacted: bool = False

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
                       "Replies held for the creator's review, with the reasons.")
REPLIES_REVIEWED = Topic("replies.reviewed", 3, ReplyReviewed, by_reply,
                         "The creator's decision about each held reply, kept for good (compacted).",
                         compacted=True)
REPLIES_PUBLISHED = Topic("replies.published", 3, ReplyPublished, by_creator,
                          "Replies posted on the platform; the publisher's ledger against double posts.")
DECISIONS = Topic("decisions", 3, Decision, by_comment,
                  "The audit trail: every stage's decision about a comment, with reasons and versions.")
CREATORS_CONFIG = Topic("creators.config", 3, CreatorProfile, by_creator,
                        "The latest profile of each creator (compacted); every service follows it.",
                        compacted=True)
YOUTUBE_POLL_CURSORS = Topic("youtube.poll.cursors", 6, YouTubePollCursor, by_channel,
                              "How far the YouTube pollers have read each channel (compacted). The pollers' "
                              "consumer group shares out its partitions: a channel is polled by the owner of its "
                              "cursor's partition.", compacted=True)

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
    YOUTUBE_POLL_CURSORS,
)

# Topics that a consumer reads, so each gets a dead-letter companion (one partition: few records, kept in order).
DLQ_PARTITIONS = 1
CONSUMED_TOPICS: tuple[Topic, ...] = (
    COMMENTS_RECEIVED,
    COMMENTS_SCREENED,
    REPLIES_DRAFTED,
    REPLIES_APPROVED,
    REPLIES_REVIEWED,
)

"""Every Kafka topic replyflow uses. Services never spell topic strings themselves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    compacted: bool = False

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


COMMENTS_RECEIVED = Topic("comments.received", 6)
COMMENTS_SCREENED = Topic("comments.screened", 6)
REPLIES_DRAFTED = Topic("replies.drafted", 6)
REPLIES_APPROVED = Topic("replies.approved", 6)
REPLIES_REVIEW = Topic("replies.review", 3)
# The creator's decisions about held replies; compacted, so the latest per reply_id is kept for good.
REPLIES_REVIEWED = Topic("replies.reviewed", 3, compacted=True)
REPLIES_PUBLISHED = Topic("replies.published", 3)
DECISIONS = Topic("decisions", 3)
CREATORS_CONFIG = Topic("creators.config", 3, compacted=True)

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
)

# Topics that a consumer reads, so each gets a dead-letter companion.
CONSUMED_TOPICS: tuple[Topic, ...] = (
    COMMENTS_RECEIVED,
    COMMENTS_SCREENED,
    REPLIES_DRAFTED,
    REPLIES_APPROVED,
)

"""Event models: the source of truth for every message on replyflow's topics.

JSON Schema files in ``schemas/`` are generated from these (``make schemas``).
Every event carries ``event_id``, ``schema_version``, ``occurred_at`` and the ids it
derives from, so any record can be traced back to its comment.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

SCHEMA_VERSION = 1

# reply_id is derived from the comment, so a redelivered comment or a duplicate draft
# maps onto the same reply and the publisher's idempotency key catches the repeat.
_REPLY_NAMESPACE = uuid.UUID("6f1f6f0e-4d0a-4a53-9d55-2f3f4c7b9a10")

Id = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@\-]+$")]
CommentText = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def reply_id_for(platform: str, comment_id: str) -> str:
    return str(uuid.uuid5(_REPLY_NAMESPACE, f"{platform}:{comment_id}"))


class Platform(StrEnum):
    youtube = "youtube"
    instagram = "instagram"
    tiktok = "tiktok"
    generic = "generic"


class ReplyMode(StrEnum):
    auto = "auto"  # approved replies are published without a human
    review = "review"  # every reply waits for the creator
    off = "off"  # no replies at all (the kill switch)


class Stage(StrEnum):
    screen = "screen"
    verify = "verify"
    review = "review"
    publish = "publish"
    dead_letter = "dead_letter"


class Outcome(StrEnum):
    """What happened to a comment at a stage. Terminal outcomes end a comment's journey."""

    eligible = "eligible"
    approved = "approved"
    published = "published"
    held = "held"
    rejected = "rejected"
    skipped = "skipped"
    dead_lettered = "dead_lettered"

    @property
    def terminal(self) -> bool:
        return self not in (Outcome.eligible, Outcome.approved)


class Action(StrEnum):
    """What a failed check does to a comment or draft; ordered by severity."""

    allow = "allow"
    review = "review"
    reject = "reject"
    skip = "skip"


class ReviewAction(StrEnum):
    """What a creator decided about a held reply (control API)."""

    approve = "approve"  # post the draft as it is
    edit = "edit"  # post the creator's own text instead
    reject = "reject"  # post nothing


class Actor(StrEnum):
    """Who made a change through the control API (audit)."""

    operator = "operator"  # CONTROL_API_TOKEN: anyone running the platform, on the creator's behalf
    creator = "creator"  # a creator token: the creator the record belongs to


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Comment(Strict):
    """A comment as a platform delivered it; the body of ``POST /v1/comments``."""

    platform: Platform
    comment_id: Id = Field(description="The platform's id of the comment")
    creator_id: Id = Field(description="The replyflow creator whose content was commented on")
    post_id: Id = Field(description="Video, post or reel the comment belongs to")
    author_id: Id
    author_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    text: CommentText
    created_at: AwareDatetime = Field(
        description="When the author wrote it, with its UTC offset (for end-to-end latency)")
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = Field(
        default=None, description="ISO 639-1 code when the platform knows it"
    )
    parent_id: Id | None = Field(default=None, description="Set when the comment is itself a reply")


class Event(Strict):
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: datetime = Field(default_factory=utc_now)


class CommentEvent(Event):
    comment: Comment

    @property
    def comment_id(self) -> str:
        return self.comment.comment_id

    @property
    def creator_id(self) -> str:
        return self.comment.creator_id


class Reason(Strict):
    """One machine-readable reason code plus the sentence a creator reads."""

    check: str
    code: str
    message: str
    action: Action
    score: float | None = None


class CommentReceived(CommentEvent):
    """Ingest accepted a comment. Topic ``comments.received``."""

    received_at: datetime = Field(default_factory=utc_now)


class CommentScreened(CommentEvent):
    """The screen stage found a comment eligible for a reply. Topic ``comments.screened``."""

    profile_version: int
    policy_version: str
    reasons: list[Reason] = Field(default_factory=list, description="Non-blocking findings")


class GenerationStats(Strict):
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    time_to_first_token_ms: float | None = None


class ReplyDrafted(CommentEvent):
    """The model drafted a reply. Topic ``replies.drafted``."""

    reply_id: str
    text: str
    profile_version: int
    generation: GenerationStats
    screen_reasons: list[Reason] = Field(default_factory=list, description="Findings the screen passed on")


class ReplyVerdict(CommentEvent):
    """A draft passed (``replies.approved``) or waits for the creator (``replies.review``)."""

    reply_id: str
    text: str = Field(description="Final text, AI disclosure label included")
    disclosure_label: str | None = Field(
        default=None, description="The AI label the text carries (the creator's when it was checked): one that "
        "changed since is replaced, not doubled, when the reply is approved or edited")
    outcome: Literal[Outcome.approved, Outcome.held]
    reasons: list[Reason] = Field(default_factory=list)
    authenticity: float | None = None
    policy_version: str
    profile_version: int

    @property
    def reviewed(self) -> bool:
        """A person approved it through the control API (the review decision is among its reasons)."""
        return any(r.check == "review" for r in self.reasons)


class ReplyReviewed(CommentEvent):
    """The creator's decision about a held reply. Topic ``replies.reviewed`` (key reply_id; the first one holds).

    Carries what the approval outputs are rebuilt from, so repeating a decision re-sends the same
    outputs even after the held record has expired from ``replies.review``.
    """

    reply_id: str
    action: ReviewAction
    text: str | None = Field(description="What gets posted, AI disclosure label included; null when rejected")
    note: str | None = Field(default=None, description="The creator's note, kept for the audit trail")
    decided_by: Actor | None = Field(
        default=None, description="Who decided: the operator or the creator (null: recorded before this was kept)"
    )
    held_reasons: list[Reason] = Field(default_factory=list, description="Why the verify stage held the reply")
    authenticity: float | None = None
    policy_version: str
    profile_version: int


class ReplyPublished(CommentEvent):
    """The platform accepted the reply. Topic ``replies.published``."""

    reply_id: str
    text: str
    platform_reply_id: str
    attempts: int = Field(description="Platform calls this delivery made (0: the same publisher had just posted it)")
    published_at: datetime = Field(default_factory=utc_now)


class Decision(Event):
    """Audit record of one decision about one comment. Topic ``decisions``."""

    comment_id: str
    creator_id: str
    platform: Platform | None = None
    reply_id: str | None = None
    stage: Stage
    outcome: Outcome
    reasons: list[Reason] = Field(default_factory=list)
    policy_version: str | None = None
    profile_version: int | None = None

    @property
    def terminal(self) -> bool:
        return self.outcome.terminal


class CheckRule(Strict):
    """How one policy check behaves; platform defaults come from the policy file."""

    enabled: bool = True
    threshold: float | None = Field(default=None, description="Score at or above which the check fires")
    action: Action = Action.reject


class GenerationParams(Strict):
    max_tokens: int = Field(default=96, ge=8, le=2048)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    stop: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=lambda: ["\n\n"], max_length=16,
        description="Sequences that end a reply: at most 16, each at most 100 characters")


# Letters and symbols that draw nothing: the braille blank and the Hangul fillers (used for blank names).
_BLANK_GLYPHS = frozenset("\u2800\u115f\u1160\u3164\uffa0")


def visible(text: str) -> bool:
    """Whether a viewer sees anything in ``text``: a letter (L), digit (N) or symbol such as an emoji (S). Spaces,
    punctuation alone, invisible format characters and blank glyphs say nothing."""
    return any(unicodedata.category(ch)[0] in "LNS" and ch not in _BLANK_GLYPHS for ch in text)


def _visible_label(label: str) -> str:
    if not visible(label):
        raise ValueError("the AI label must have a visible letter, digit or symbol, e.g. [AI reply] or 🤖")
    return label


def _known_checks(overrides: dict[str, CheckRule]) -> dict[str, CheckRule]:
    # Imported here: the policy module imports this one. A key naming no check would be ignored silently.
    from replyflow.policy.rules import OVERRIDE_KEYS

    unknown = sorted(set(overrides) - OVERRIDE_KEYS)
    if unknown:
        raise ValueError(f"no such check {', '.join(map(repr, unknown))}: keys are '<stage>.<check>', one of "
                         f"{', '.join(sorted(OVERRIDE_KEYS))}")
    return overrides


# Every draft is checked against these lists and the system prompt carries them: caps keep both bounded.
MAX_PROFILE_ITEMS, MAX_ITEM_CHARS = 200, 200
MAX_EXAMPLE_REPLIES, MAX_EXAMPLE_CHARS = 50, 1_000
ProfileItem = Annotated[str, StringConstraints(max_length=MAX_ITEM_CHARS)]
_CAPPED = f"at most {MAX_PROFILE_ITEMS}, each at most {MAX_ITEM_CHARS} characters"


class CreatorProfile(Strict):
    """A creator's AI persona and controls. Topic ``creators.config`` (compacted, key creator_id)."""

    creator_id: Id
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    persona: Annotated[str, StringConstraints(min_length=1, max_length=4_000)] = Field(
        description="Voice description: who they are and how they talk"
    )
    example_replies: list[Annotated[str, StringConstraints(max_length=MAX_EXAMPLE_CHARS)]] = Field(
        default_factory=list, max_length=MAX_EXAMPLE_REPLIES, description=f"Replies in the creator's voice: at "
        f"most {MAX_EXAMPLE_REPLIES}, each at most {MAX_EXAMPLE_CHARS:,} characters")
    topics_to_avoid: list[ProfileItem] = Field(default_factory=list, max_length=MAX_PROFILE_ITEMS,
                                               description=f"Topics replies stay away from: {_CAPPED}")
    banned_words: list[ProfileItem] = Field(default_factory=list, max_length=MAX_PROFILE_ITEMS,
                                            description=f"Words no reply may contain: {_CAPPED}")
    allowed_links: list[ProfileItem] = Field(
        default_factory=list, max_length=MAX_PROFILE_ITEMS,
        description=f"Domains replies may link to, e.g. 'example.com': {_CAPPED}"
    )
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]] = Field(
        default_factory=lambda: ["en"], max_length=MAX_PROFILE_ITEMS,
        description=f"ISO 639-1 codes, at most {MAX_PROFILE_ITEMS} (every code fits)"
    )
    mode: ReplyMode = ReplyMode.review
    reply_budget_per_hour: int = Field(default=60, ge=0)
    disclosure_label: Annotated[str, StringConstraints(min_length=1, max_length=60), AfterValidator(
        _visible_label)] = Field(default="[AI reply]", description="Added to every reply; needs a visible letter, "
                                 "digit or symbol (a label of spaces or invisible characters would hide it)")
    authenticity_threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    generation: GenerationParams = Field(default_factory=GenerationParams)
    policy_overrides: Annotated[dict[str, CheckRule], AfterValidator(_known_checks)] = Field(
        default_factory=dict, description="Per-check overrides keyed '<stage>.<check>', e.g. 'verify.links': "
        "a check of the platform's default policy"
    )
    platform_accounts: dict[Platform, Id] = Field(
        default_factory=dict, description="The creator's account id on each platform"
    )
    version: int = Field(default=1, ge=1, description="Bumped on every change")
    updated_at: datetime = Field(default_factory=utc_now)
    updated_by: Actor | None = Field(
        default=None, description="Who made this version through the control API, the operator or the creator "
        "(null: loaded with the admin CLI or recorded before this was kept); set by the service, not the caller"
    )


class ThreadListed(Strict):
    """How far a followed thread's replies were listed (``YouTubePollCursor.conversations``)."""

    listed_at: datetime = Field(description="When the poll that last listed the thread's replies started")
    taken: dict[Id, datetime] = Field(
        default_factory=dict, max_length=2_000,
        description="Reply id -> publishedAt of the replies taken within the overlap before listed_at: the next "
        "listing reads that window again and leaves these out")


class YouTubePollCursor(Event):
    """How far the YouTube poller has read a channel's comments. Topic ``youtube.poll.cursors`` (compacted, key
    channel_id): a poller that takes the channel over goes on from here."""

    channel_id: Id
    creator_id: Id
    newest_published_at: datetime | None = Field(
        default=None, description="publishedAt of the newest comment taken (null: none yet)"
    )
    recent: dict[Id, datetime] = Field(
        default_factory=dict, max_length=2_000,
        description="Comment id -> publishedAt of the comments taken within the overlap before newest_published_at: "
        "the next poll reads that window again (a comment can be listed late) and leaves these out",
    )
    polled_at: datetime = Field(description="When the poll that wrote this cursor started")
    conversations: dict[Id, ThreadListed] = Field(
        default_factory=dict, max_length=500,
        description="Thread id -> how far the replies of the threads replyflow answered in (followed for the viewers' "
        "answers back) were listed: a poller that takes the channel over goes on from there rather than listing "
        "them again from replyflow's first reply")


class ProfileChange(Event):
    """A change to a creator's profile asked through the control API. Topic ``creators.changes`` (key
    creator_id): the control replica that owns the creator's partition applies the changes one after the other, the
    one writer of the creator's profile, so two changes read at one version cannot both be saved."""

    change_id: Id
    creator_id: Id
    by: Actor = Field(description="Who asked: a creator's token may change only the creator's own fields")
    profile: CreatorProfile | None = Field(description="A full replacement (PUT /v1/creators/{creator_id})")
    version_sent: bool = Field(
        description="Whether the replacement named the version it was read at: a lower one than current is stale")
    mode: ReplyMode | None = Field(description="A mode change (PUT /v1/creators/{creator_id}/mode)")

    @model_validator(mode="after")
    def _one_change(self) -> ProfileChange:
        if (self.profile is None) == (self.mode is None):
            raise ValueError("a change is either a profile or a mode")
        if self.profile is not None and self.profile.creator_id != self.creator_id:
            raise ValueError("the profile is another creator's")
        return self


class ProfileChangeResult(Event):
    """What became of a ``ProfileChange``. Topic ``creators.changes.results`` (key change_id): the replica that
    took the request answers it from here; the first result of a change holds."""

    change_id: Id
    creator_id: Id
    status: int = Field(description="The HTTP status the request is answered with: 200, 201, 403, 404, 409, or 503 "
                        "when the writer could not read the change (a release mid rollout)")
    profile: CreatorProfile | None = Field(description="The profile in force after the change (200, 201)")
    error: str | None = Field(description="Why the change was not made (403, 404, 409)")
    details: list[dict[str, str]] = Field(description="The fields that made it a 403")


class DeadLetterReplayed(Event):
    """A dead letter ``python -m replyflow.admin replay-dead-letters`` sent back. Topic ``deadletters.replayed``
    (key ``<dead-letter topic>@<offset>``, kept longer than the dead letters): a later replay leaves the letter out
    instead of sending it, and its comment, a second time."""

    dead_letter_topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    offset: int = Field(ge=0, description="The letter's offset in its dead-letter topic")
    failed_at_ms: int | None = Field(
        description="The letter's x-failed-at-ms: a dead-letter topic made anew numbers its letters from 0 again, "
        "and a new letter at an old offset is not the one sent back")
    record_key: str | None = Field(description="The letter's key as text (a comment or reply id), for the operator")
    sent_to: list[Annotated[str, StringConstraints(min_length=1, max_length=249)]] = Field(
        description="The topics its records went to (none: the letter held nothing to send)")


EVENT_MODELS: tuple[type[BaseModel], ...] = (
    Comment,
    CommentReceived,
    CommentScreened,
    ReplyDrafted,
    ReplyVerdict,
    ReplyReviewed,
    ReplyPublished,
    Decision,
    CreatorProfile,
    YouTubePollCursor,
    ProfileChange,
    ProfileChangeResult,
    DeadLetterReplayed,
)

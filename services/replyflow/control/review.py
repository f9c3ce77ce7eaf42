"""The creator's control, as pure functions: which held replies wait, what a decision about one
produces, and how a profile change becomes the next profile version. No Kafka, no HTTP."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, NamedTuple, TypeVar

from pydantic import Field, StringConstraints

from replyflow.events import (
    Action,
    Actor,
    Comment,
    CreatorProfile,
    Decision,
    Outcome,
    ProfileChange,
    ProfileChangeResult,
    Reason,
    ReplyMode,
    ReplyReviewed,
    ReplyVerdict,
    ReviewAction,
    Stage,
    Strict,
    utc_now,
)
from replyflow.kafka import Emit
from replyflow.policy.decide import SEVERITY
from replyflow.policy.verify_checks import check_length, config_for, ensure_disclosure, strip_disclosure
from replyflow.topics import DECISIONS, REPLIES_APPROVED

# The policy's reasons about a reply's text, as the verify stage gives them (PolicyStages.edit_reasons).
EditCheck = Callable[[str, Comment, CreatorProfile], list[Reason]]

# Outputs re-sent for a repeated decision keep their event ids, so a consumer can tell them apart
# from a new decision.
_OUTPUT_NAMESPACE = uuid.UUID("0b5c7d5e-2f9a-4f57-9a38-6c3e1d2a7b41")

MAX_NOTE_CHARS = 1_000

# A decision older than this is not sent on again when its record is re-read (a new consumer group,
# offsets reset). What is re-sent is never posted twice: the publisher's ledger knows the last day's
# replies, and the platform's idempotency key or reconciliation the older ones.
OUTPUTS_MAX_AGE = timedelta(days=7)

# Profile fields only the operator may change: where replies are posted (the platform accounts
# bind a profile to an identity: a creator must not point theirs at someone else's), the platform's
# safety policy (per-check overrides can switch checks off), the AI label (the platform's promise to
# viewers that a reply is AI) and the model parameters (GPU cost).
# Everything else is the creator's voice and controls (DESIGN.md "Creator control").
OPERATOR_ONLY_FIELDS = ("platform_accounts", "policy_overrides", "disclosure_label", "generation")


class ReviewRequest(Strict):
    """The body of ``POST /v1/reviews/{reply_id}``."""

    action: ReviewAction
    text: Annotated[str, StringConstraints(max_length=10_000)] | None = Field(
        default=None, description="The reply to post instead of the draft (edit only)"
    )
    note: Annotated[str, StringConstraints(max_length=MAX_NOTE_CHARS)] | None = None


class ModeChange(Strict):
    """The body of ``PUT /v1/creators/{creator_id}/mode``."""

    mode: ReplyMode


class InvalidReview(ValueError):
    """The request can never succeed as sent (422); ``details`` name the field and the problem."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['problem']}" for d in details))
        self.details = details


class ReviewConflict(Exception):
    """The decision contradicts the state of the reply or the creator (409)."""

    def __init__(self, message: str, decided: ReviewAction | None = None) -> None:
        super().__init__(message)
        self.decided = decided


_PAST = {ReviewAction.approve: "approved", ReviewAction.edit: "edited and approved",
         ReviewAction.reject: "rejected"}


def request_problems(request: ReviewRequest) -> list[dict[str, str]]:
    """What is wrong with a request on its own, before the reply is looked up."""
    if request.action == ReviewAction.edit and request.text is None:
        return [{"field": "text", "problem": "text is required to edit a reply: send the reply to post"}]
    if request.action != ReviewAction.edit and request.text is not None:
        return [{"field": "text", "problem": f"text is only accepted with action edit, not {request.action.value}"}]
    return []


class ReviewQueue(NamedTuple):
    """One creator's replies waiting for a decision."""

    creator_id: str
    pending: int
    oldest_held_at: datetime


class PendingReviews:
    """Each creator's undecided held replies, so listing one creator's costs their pending holds only.

    A hold is pending for ``keep_s`` (``replies.review``'s retention): after that every replica, whenever it
    started, has forgotten it alike (one that read it before it left the topic would list it on and on)."""

    def __init__(self, keep_s: float, now: Callable[[], datetime] = utc_now) -> None:
        self._held: dict[str, dict[str, ReplyVerdict]] = {}
        self._keep, self._now = timedelta(seconds=keep_s), now

    def add(self, held: ReplyVerdict) -> None:
        self._held.setdefault(held.creator_id, {})[held.reply_id] = held

    def _expire(self) -> None:
        oldest = self._now() - self._keep
        for creator_id, pending in list(self._held.items()):
            for reply_id in [r for r, v in pending.items() if v.occurred_at < oldest]:
                self.discard(creator_id, reply_id)

    def discard(self, creator_id: str, reply_id: str) -> None:
        pending = self._held.get(creator_id)
        if pending is not None:
            pending.pop(reply_id, None)
            if not pending:
                del self._held[creator_id]

    def of(self, creator_id: str) -> list[ReplyVerdict]:
        """The creator's undecided held replies, oldest first."""
        self._expire()
        return sorted(self._held.get(creator_id, {}).values(), key=lambda v: (v.occurred_at, v.reply_id))

    def count(self) -> int:
        self._expire()
        return sum(len(pending) for pending in self._held.values())

    def queues(self) -> list[ReviewQueue]:
        """Every creator with replies waiting, the longest wait first."""
        self._expire()
        found = [ReviewQueue(creator_id, len(pending), min(v.occurred_at for v in pending.values()))
                 for creator_id, pending in self._held.items()]
        return sorted(found, key=lambda q: (q.oldest_held_at, q.creator_id))

    def oldest_held_at(self) -> datetime | None:
        """When the longest-waiting undecided reply (of any creator) was held; None when none waits."""
        queues = self.queues()
        return queues[0].oldest_held_at if queues else None


Position = tuple[datetime, str]  # where an item sorts in a listing: its time, then its id
T = TypeVar("T")


def held_position(held: ReplyVerdict) -> Position:
    return held.occurred_at, held.reply_id


def queue_position(queue: ReviewQueue) -> Position:
    return queue.oldest_held_at, queue.creator_id


def page_after(items: Sequence[T], position_of: Callable[[T], Position], after: Position | None,
               limit: int) -> tuple[Sequence[T], Position | None]:
    """The first ``limit`` items (sorted by position) after ``after``, and the position the next page starts
    after (None: this is the last). A position, not an index, so items decided meanwhile shift nothing."""
    start = 0 if after is None else bisect.bisect_right(items, after, key=position_of)
    page = items[start:start + limit]
    return page, (position_of(page[-1]) if start + limit < len(items) else None)


def encode_cursor(position: Position) -> str:
    """The opaque ``next`` token of a listing page."""
    raw = json.dumps([position[0].isoformat(), position[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR_CHARS = 400  # a time and an id: far above any real one, far below what could nest JSON deeply


def decode_cursor(cursor: str) -> Position:
    """The position an ``after`` token names; ValueError when it is no token a listing gave out."""
    refused = ValueError("not a cursor this API gave out: pass the \"next\" of the previous page")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise refused
    try:
        when, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = datetime.fromisoformat(when), key
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError, RecursionError) as e:
        raise refused from e
    if position[0].tzinfo is None or not isinstance(key, str):
        raise refused
    return position


def review_view(held: ReplyVerdict) -> dict[str, object]:
    """What a creator needs to decide about one held reply (the JSON of the reviews list)."""
    comment = held.comment
    return {
        "reply_id": held.reply_id,
        "comment": {
            "comment_id": comment.comment_id, "platform": comment.platform.value, "post_id": comment.post_id,
            "author_id": comment.author_id, "author_name": comment.author_name, "text": comment.text,
            "created_at": comment.created_at.isoformat(),
        },
        "draft": held.text,
        "reasons": [{"code": r.code, "message": r.message, "check": r.check} for r in held.reasons],
        "authenticity": held.authenticity,
        "held_at": held.occurred_at.isoformat(),
        "profile_version": held.profile_version,
        "policy_version": held.policy_version,
    }


def edited_text(text: str, held: ReplyVerdict | ReplyReviewed, profile: CreatorProfile,
                check_edit: EditCheck | None = None) -> str:
    """The creator's text as it will be posted (AI label ensured); InvalidReview when it may not go out:
    too long, or (``check_edit``: the verify stage's content checks) something the policy rejects in any
    reply. What the policy would only hold for review passes: the person editing is the review."""
    old_label = held.disclosure_label if isinstance(held, ReplyVerdict) else None
    if old_label and old_label != profile.disclosure_label:  # changed since it was held: replaced, not doubled
        text = strip_disclosure(text, old_label)
    # The verify stage's limits: an edit must fit where it is posted.
    problems = check_length(text, held.comment, profile, config=config_for(held.comment.platform.value))
    if problems:
        raise InvalidReview([{"field": "text", "problem": f.message} for f in problems])
    final = ensure_disclosure(text, profile.disclosure_label)
    rejected = [r for r in (check_edit(final, held.comment, profile) if check_edit else [])
                if SEVERITY[r.action] >= SEVERITY[Action.reject]]
    if rejected:
        raise InvalidReview([{"field": "text", "problem": f"{r.message} ({r.code})"} for r in rejected])
    return final


def decide(
    request: ReviewRequest,
    *,
    held: ReplyVerdict | None,
    previous: ReplyReviewed | None,
    profile: CreatorProfile | None,
    by: Actor,
    check_edit: EditCheck | None = None,
) -> ReplyReviewed:
    """The decision ``by`` makes, to record, or ``previous`` when the request repeats it (whoever repeats it).

    Raises InvalidReview (the request is wrong) or ReviewConflict (the reply was decided otherwise,
    or the creator's replies are off: the kill switch wins over an approval).
    """
    subject = previous or held
    assert subject is not None, "look the reply up first"
    if problems := request_problems(request):
        raise InvalidReview(problems)
    if previous is not None and repeats(request, previous, profile, held):
        return previous  # answered as the first time, whatever changed since (the kill switch, a banned word)
    publishes = request.action != ReviewAction.reject
    if publishes and (profile is None or profile.mode == ReplyMode.off):
        why = "has no profile" if profile is None else "has AI replies turned off (mode off)"
        raise ReviewConflict(f"creator {subject.creator_id} {why}: this reply can only be rejected",
                             previous.action if previous else None)
    text = None
    if request.action == ReviewAction.approve:
        if held is not None:
            text = held.text
            if previous is None and profile is not None and profile.version != held.profile_version:
                # The profile changed since verify checked the draft (a new banned word, a link no longer
                # allowed): an approval must not send what it forbids now, as an edit may not.
                text = edited_text(held.text, held, profile, check_edit)
        elif previous is not None and previous.action == ReviewAction.approve:
            text = previous.text  # the held record expired; the decision still holds its text
    elif request.action == ReviewAction.edit:
        assert profile is not None and request.text is not None
        text = edited_text(request.text, subject, profile, check_edit)
    if previous is not None:
        if previous.action == request.action and previous.text == text:
            return previous
        raise ReviewConflict(f"reply {previous.reply_id} was already {_PAST[previous.action]} "
                             f"at {previous.occurred_at.isoformat()}", previous.action)
    assert held is not None
    return ReplyReviewed(
        comment=held.comment, reply_id=held.reply_id, action=request.action, text=text, note=request.note,
        decided_by=by, held_reasons=held.reasons, authenticity=held.authenticity, policy_version=held.policy_version,
        profile_version=held.profile_version,
    )


def repeats(request: ReviewRequest, previous: ReplyReviewed, profile: CreatorProfile | None,
            held: ReplyVerdict | None) -> bool:
    """Whether ``request`` is ``previous`` again (a client retrying after a lost answer): the same action, and for
    an edit the same text as it was recorded, with the label it got then (the creator's now, or the hold's, should
    the profile have changed or gone since)."""
    if request.action != previous.action:
        return False
    if request.action != ReviewAction.edit:
        return True
    assert request.text is not None
    labels = {label for label in (profile.disclosure_label if profile else None,
                                  held.disclosure_label if held else None) if label}
    recorded = {request.text} | {ensure_disclosure(strip_disclosure(request.text, old), new)
                                 for old in labels for new in labels}
    return previous.text in recorded


def same_decision(a: ReplyReviewed, b: ReplyReviewed) -> bool:
    return (a.action, a.text) == (b.action, b.text)


def review_reason(reviewed: ReplyReviewed) -> Reason:
    """The decision as a reason a creator (and the audit trail) reads; it says who decided.

    The codes stay ``creator_*`` whoever decided (metrics and consumers key on them); the message
    names the operator when they decided for the creator. Records from before ``decided_by`` was
    kept read as before, so repeating an old decision re-sends identical outputs.
    """
    note = f" Note: {reviewed.note}" if reviewed.note else ""
    if reviewed.decided_by == Actor.operator:
        who, edited, behalf = "An operator", "the new version", " on the creator's behalf"
    else:
        who, edited, behalf = "The creator", "their version", ""
    if reviewed.action == ReviewAction.reject:
        return Reason(check="review", code="creator_rejected", action=Action.reject,
                      message=f"{who} rejected this reply{behalf}.{note}")
    if reviewed.action == ReviewAction.edit:
        return Reason(check="review", code="creator_edited", action=Action.allow,
                      message=f"{who} edited this reply and approved {edited}{behalf}.{note}")
    return Reason(check="review", code="creator_approved", action=Action.allow,
                  message=f"{who} approved this reply{behalf}.{note}")


def _output_id(reviewed: ReplyReviewed, output: str) -> str:
    return str(uuid.uuid5(_OUTPUT_NAMESPACE, f"{reviewed.event_id}:{output}"))


def review_outputs(reviewed: ReplyReviewed) -> list[Emit]:
    """What a decision sends on: the approved reply to the publisher (unless rejected) and the audit record.

    Deterministic per decision, so re-sending after a repeat is safe: the publisher skips a reply_id
    it already posted, and the event ids are the same as the first time.
    """
    reason = review_reason(reviewed)
    approved = reviewed.action != ReviewAction.reject
    emits = []
    if approved:
        assert reviewed.text is not None
        emits.append(Emit(REPLIES_APPROVED, ReplyVerdict(
            event_id=_output_id(reviewed, "approved"), occurred_at=reviewed.occurred_at,
            comment=reviewed.comment, reply_id=reviewed.reply_id, text=reviewed.text, outcome=Outcome.approved,
            reasons=[*reviewed.held_reasons, reason], authenticity=reviewed.authenticity,
            policy_version=reviewed.policy_version, profile_version=reviewed.profile_version,
        )))
    emits.append(Emit(DECISIONS, Decision(
        event_id=_output_id(reviewed, "decision"), occurred_at=reviewed.occurred_at,
        comment_id=reviewed.comment_id, creator_id=reviewed.creator_id, platform=reviewed.comment.platform,
        reply_id=reviewed.reply_id, stage=Stage.review, outcome=Outcome.approved if approved else Outcome.rejected,
        reasons=[reason], policy_version=reviewed.policy_version, profile_version=reviewed.profile_version,
    )))
    return emits


def recorded_outputs(record: ReplyReviewed, holding: ReplyReviewed, now: datetime) -> list[Emit]:
    """What a record of ``replies.reviewed`` sends on, given the decision that holds for its reply (the
    first one recorded): nothing for a record that lost a race between two requests, or that is older
    than ``OUTPUTS_MAX_AGE``; else the decision's outputs."""
    if record.event_id != holding.event_id or now - record.occurred_at > OUTPUTS_MAX_AGE:
        return []
    return review_outputs(record)


def _content(profile: CreatorProfile) -> dict[str, object]:
    return profile.model_dump(exclude={"version", "updated_at", "updated_by"})


class OperatorOnly(Exception):
    """A creator asked for a profile change only the operator may make (403); ``details`` name the fields."""

    def __init__(self, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


def check_creator_change(wanted: CreatorProfile, current: CreatorProfile | None) -> None:
    """Raises OperatorOnly when a creator's full replacement would create a profile or change a field
    in OPERATOR_ONLY_FIELDS (send those as the current profile has them: GET, change, PUT)."""
    if current is None:
        raise OperatorOnly(f"creator {wanted.creator_id!r} has no profile yet; only the operator creates profiles")
    changed = [f for f in OPERATOR_ONLY_FIELDS if getattr(wanted, f) != getattr(current, f)]
    if changed:
        raise OperatorOnly(
            f"only the operator may change {', '.join(changed)}; send them as the current profile has them",
            [{"field": f, "problem": "only the operator may change this field; send the current value"}
             for f in changed])


class StaleProfile(Exception):
    """A full replacement built on an older version than the current one (409): re-read it, change, send."""


def next_profile(wanted: CreatorProfile, current: CreatorProfile | None, now: datetime,
                 by: Actor, *, version_sent: bool) -> CreatorProfile | None:
    """The profile ``by`` publishes for a full replacement, or ``None`` when nothing changes.

    Every change bumps the version past the current one (services cache per version); a higher
    version in the body is kept. A body that sends a lower version raises StaleProfile: it was read
    before the current version, and saving it would undo that change (the kill switch among them). A
    body without a version (``version_sent`` false) replaces whatever is current. ``updated_by`` is always the
    caller's, whatever the body says.
    """
    if current is None:
        return wanted.model_copy(update={"updated_at": now, "updated_by": by})
    if _content(wanted) == _content(current):
        return None  # also a retry of a change already saved: nothing to undo
    if version_sent and wanted.version < current.version:
        raise StaleProfile(f"the profile changed since version {wanted.version} (current {current.version}): "
                           "re-read it, make your change again, and send it with its version")
    return wanted.model_copy(update={"version": max(wanted.version, current.version + 1), "updated_at": now,
                                     "updated_by": by})


def with_mode(current: CreatorProfile, mode: ReplyMode, now: datetime, by: Actor) -> CreatorProfile | None:
    """``current`` switched to ``mode`` by ``by`` as its next version, or ``None`` when it already is."""
    if current.mode == mode:
        return None
    return current.model_copy(update={"mode": mode, "version": current.version + 1, "updated_at": now,
                                      "updated_by": by})


def unreadable_change(value: bytes | None, error: BaseException) -> ProfileChangeResult | None:
    """The answer to a change its writer could not read (one from a newer release, mid rollout): not made, and
    the request told so rather than left to time out; ``None`` when not even its ids can be read."""
    try:
        ids = json.loads(value or b"")
        why = f"not made: the control service could not read the change ({type(error).__name__}; a rollout in " \
              "progress?); send it again"
        return ProfileChangeResult(change_id=ids["change_id"], creator_id=ids["creator_id"], status=503, profile=None,
                                   error=why, details=[])
    except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
        return None


# A change its writer reaches later than this (control replicas down, a rollback) is dropped, not made as a surprise;
# the kill switch is made however late.
CHANGE_MAX_WAIT = timedelta(minutes=10)


def apply_change(change: ProfileChange, current: CreatorProfile | None,
                 now: datetime) -> tuple[CreatorProfile | None, ProfileChangeResult]:
    """What the creator's one writer makes of ``change`` on top of ``current``: the profile to save (``None``:
    nothing to save) and the request's answer."""
    def answer(status: int, profile: CreatorProfile | None = None, error: str | None = None,
               details: list[dict[str, str]] | None = None) -> ProfileChangeResult:
        return ProfileChangeResult(change_id=change.change_id, creator_id=change.creator_id, status=status,
                                   profile=profile, error=error, details=details or [])

    waited = now - change.occurred_at
    if waited > CHANGE_MAX_WAIT and change.mode is not ReplyMode.off:
        return None, answer(409, error=f"not made: it waited {waited.total_seconds() / 60:.0f} minutes for the "
                            "control service; send it again if you still want it")
    try:
        if change.mode is not None:
            if current is None:
                return None, answer(404, error=f"unknown creator {change.creator_id!r}")
            saved = with_mode(current, change.mode, now, change.by)  # no version rule: the kill switch always works
        else:
            assert change.profile is not None  # a change is a profile or a mode
            # stale: 409, before any 403
            saved = next_profile(change.profile, current, now, change.by, version_sent=change.version_sent)
            if change.by is Actor.creator:
                check_creator_change(change.profile, current)
    except StaleProfile as e:
        return None, answer(409, error=str(e))
    except OperatorOnly as e:
        return None, answer(403, error=str(e), details=e.details)
    return saved, answer(201 if current is None else 200, profile=saved or current)

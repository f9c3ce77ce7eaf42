"""Publisher service: posts approved replies to the platform, labelled as AI, exactly once.

    python -m replyflow.publisher     # HTTP :8083 for /metrics /healthz /readyz

Its input is keyed by creator account, so one consumer owns an account's order and rate limit.
A reply is never posted twice: a ledger of the last ``PUBLISHER_LEDGER_HOURS`` of ``replies.published``
skips replies that already went out (e.g. after a crash before commit), and each platform adapter
(``publisher/platform.py``) makes a repeated call harmless, older ones included: the reply id as
idempotency key, or reconciliation where the platform has none.

A platform that fails for now (down, rate-limited, YouTube's quota spent) holds back only the accounts
it failed for: their replies wait, in order, with backoff, while other accounts' and platforms' go out.
After ``FAILED_CALLS_PER_PLATFORM`` failed calls in a batch the platform counts as down and its other
replies wait too, so a platform timing out cannot make a batch (and the rebalance waiting for it) long.

A reply that is not posted after all (AI replies turned off, or held for review because the creator changed
something since verify checked it) is first looked up on the platform: an earlier call whose answer was lost
(before a crash, too) may have posted it, and then it is recorded as published, not skipped or held (an edit of
it would go out as a second reply). A reply whose comment was deleted or made private on the platform meanwhile
(``CommentGone``) is skipped with reason ``comment_gone``: routine, so no dead letter. Once a rebalance begins,
the rest of the batch makes no platform call: it waits, for whoever owns its partitions next, and no call outlasts
the rebalance's wait for the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC
from typing import TypeVar

from prometheus_client import Counter

from replyflow.events import (
    Action,
    CreatorProfile,
    Decision,
    Outcome,
    Reason,
    ReplyMode,
    ReplyPublished,
    ReplyVerdict,
    Stage,
    utc_now,
)
from replyflow.kafka import (
    BATCH_IN_HAND_WAIT_S,
    Deferred,
    Emit,
    PermanentError,
    TopicTable,
    TransientError,
    subscribe_stage,
)
from replyflow.observability import END_TO_END_SECONDS
from replyflow.platform_api import CommentGone
from replyflow.publisher.platform import PlatformApis, PostedReply, ReplyApi
from replyflow.service import build_app, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import DECISIONS, REPLIES_APPROVED, REPLIES_PUBLISHED, REPLIES_REVIEW

FAILED_CALLS_PER_PLATFORM = 2
# A call in flight when a rebalance begins must end inside the rebalance's wait for the batch: after that wait
# another replica owns the partition and may post the same reply.
PLATFORM_CALL_LIMIT_S = BATCH_IN_HAND_WAIT_S / 2
PUBLISH_ATTEMPTS = Counter("replyflow_publish_attempts_total", "Platform calls by result (posted; replayed: it was "
                           "out already; retry: failed for now; refused: never will, dead-lettered; comment_gone: the "
                           "comment was deleted or made private, skipped)", ["platform", "result"])
T = TypeVar("T")
log = logging.getLogger("replyflow.publisher")


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    parts = service_parts("publisher", settings, sends=[REPLIES_PUBLISHED, REPLIES_REVIEW, DECISIONS])
    profiles = parts.profiles
    ledger_s = settings.publisher_ledger_hours * 3600
    # Platform ids of the replies out (-> when learnt; oldest first, kept as long as the ledger's rows):
    # reconciliation must not take one for another reply with the same words.
    taken: dict[str, float] = {}

    def take(platform_reply_id: str) -> None:
        taken[platform_reply_id] = time.time()

    ledger = TopicTable[ReplyPublished](settings.kafka_bootstrap_servers, REPLIES_PUBLISHED, lambda e: e.reply_id,
                                        on_row=lambda e: take(e.platform_reply_id), since_s=ledger_s)
    parts.tables.append(ledger)  # read whole before consuming: what was already posted
    platforms = PlatformApis(settings)
    parts.ready_checks.append(platforms.credentials.unusable)
    # Replies this process posted that the ledger may not have read back yet: a second verdict for the same
    # reply (a redelivered comment, drafted again) can follow in the same batch or the next, and YouTube and
    # Instagram have no idempotency key to stop a second post of a new draft. Also what a batch retried after
    # Kafka refused its outputs re-sends, without calling the platform again.
    posted_here: dict[str, tuple[PostedReply, str]] = {}
    failed_calls: dict[str, int] = {}  # reply id -> platform calls that failed, until it goes out
    posted_at: dict[str, float] = {}  # platform -> when a reply last went out there (monotonic)

    async def publish_batch(events: list[ReplyVerdict]) -> list[Emit] | Deferred:
        for reply_id in [r for r in posted_here if r in ledger]:
            del posted_here[reply_id]
        while taken and next(iter(taken.values())) < time.time() - ledger_s:
            del taken[next(iter(taken))]
        owned = membership.partitions  # the partitions this batch came from
        emits: list[Emit] = []
        waiting: set[int] = set()
        errors: dict[str, list[str]] = {}  # platform -> its failed calls in this batch
        held_accounts: set[tuple[str, str]] = set()  # (platform, account) whose replies wait, to keep their order
        rebalancing = False
        # One at a time, in order: an account's replies go out in the order they were approved.
        for i, event in enumerate(events):
            platform_name = event.comment.platform.value
            account = account_of(event)
            rebalancing = rebalancing or not still_owned(owned, membership.partitions)
            down = len(errors.get(platform_name, ())) >= FAILED_CALLS_PER_PLATFORM
            if rebalancing or down or (platform_name, account) in held_accounts:
                waiting.add(i)
                held_accounts.add((platform_name, account))
                continue
            try:
                emits += await publish(event, account)
                posted_at[platform_name] = time.monotonic()
            except PermanentError:  # dead-lettered with the reason; counted so the platform's panel shows it
                PUBLISH_ATTEMPTS.labels(platform_name, "refused").inc()
                raise
            except TransientError as error:
                PUBLISH_ATTEMPTS.labels(platform_name, "retry").inc()
                failed_calls[event.reply_id] = failed_calls.get(event.reply_id, 0) + 1
                errors.setdefault(platform_name, []).append(str(error))
                waiting.add(i)
                held_accounts.add((platform_name, account))
        if not waiting:
            return emits
        why = [f"{name}: {failed[-1]}" for name, failed in errors.items()]
        if rebalancing:
            why.append("a rebalance began: the rest of the batch waits for the partitions' next owner")
        # Not ready only when no platform takes replies: one platform down while another posts (or a rebalance) is
        # no reason to take the pod out; ReplyflowPublishFailing names the platform.
        recently = time.monotonic() - settings.readiness_failure_hold_s
        working = any(at > recently for name, at in posted_at.items() if name not in errors)
        return Deferred(emits, waiting, "; ".join(why), failing=bool(errors) and not working)

    def account_of(event: ReplyVerdict) -> str:
        profile = profiles.get(event.creator_id)
        if profile is None:
            return event.creator_id
        return profile.platform_accounts.get(event.comment.platform, profile.creator_id)

    async def publish(event: ReplyVerdict, account: str) -> list[Emit]:
        """The outputs of one reply, posting it if it has not gone out; TransientError: the platform failed."""
        if event.reply_id in ledger:
            return []  # already out; this is a redelivery
        platform_name = event.comment.platform.value
        attempt = 0  # platform calls this delivery made
        if event.reply_id in posted_here:  # posted already, even if the creator has turned replies off since
            posted, text = posted_here[event.reply_id]
        else:
            api = platforms.for_platform(platform_name)
            try:
                if why := reason_not_to_post(event, profiles.get(event.creator_id)):
                    found = await found_on_platform(api, event, account)
                    if found is None:
                        return not_posted(event, why)
                    posted = PostedReply(found, replayed=True)
                else:
                    posted = await within_call_limit(
                        api.post_reply(event.comment, account, event.reply_id, event.text, taken))
            except CommentGone as gone:  # a viewer deleted the comment: nothing can go out, nobody to page
                PUBLISH_ATTEMPTS.labels(platform_name, "comment_gone").inc()
                log.info("comment gone on the platform; reply skipped", extra={"fields": {
                    "reply_id": event.reply_id, "comment_id": event.comment_id, "error": str(gone)}})
                return not_posted(event, comment_gone(platform_name))
            take(posted.platform_reply_id)
            attempt = failed_calls.pop(event.reply_id, 0) + 1
            PUBLISH_ATTEMPTS.labels(platform_name, "replayed" if posted.replayed else "posted").inc()
            text = event.text
            posted_here[event.reply_id] = (posted, text)
        published = ReplyPublished(
            comment=event.comment, reply_id=event.reply_id, text=text,
            platform_reply_id=posted.platform_reply_id, attempts=attempt,
        )
        END_TO_END_SECONDS.labels(platform_name, "review" if event.reviewed else "auto").observe(
            (published.published_at - event.comment.created_at.astimezone(UTC)).total_seconds()
        )
        return [Emit(REPLIES_PUBLISHED, published), Emit(DECISIONS, decision_about(event, Outcome.published))]

    async def found_on_platform(api: ReplyApi, event: ReplyVerdict, account: str) -> str | None:
        """The reply's platform id if it is out already. Looked up whenever a reply is not posted after all: whether
        an earlier call reached the platform is not known after a crash, and this is the check every post makes."""
        try:
            return await within_call_limit(api.find_reply(event.comment, account, event.text, taken))
        except CommentGone:
            raise  # nothing can be under it, and nothing can go out: skipped, not held
        except PermanentError:
            return None  # the platform will not let us look (revoked credentials): nor post as the account

    def not_posted(event: ReplyVerdict, why: Reason) -> list[Emit]:
        failed_calls.pop(event.reply_id, None)
        if why.action == Action.skip:
            return [Emit(DECISIONS, decision_about(event, Outcome.skipped, [why]))]
        # Held now, as a new event: the control API lists (and pages) holds by when they were held.
        held = event.model_copy(update={"outcome": Outcome.held, "reasons": [*event.reasons, why],
                                        "event_id": str(uuid.uuid4()), "occurred_at": utc_now()})
        return [Emit(REPLIES_REVIEW, held), Emit(DECISIONS, decision_about(event, Outcome.held, [why]))]

    # publish_batch reads which partitions are still this replica's
    membership = subscribe_stage(parts, stage="publisher", topic=REPLIES_APPROVED, handle=publish_batch, max_batch=16)
    return build_app(parts, after_shutdown=[platforms.close])


def decision_about(event: ReplyVerdict, outcome: Outcome, reasons: list[Reason] | None = None) -> Decision:
    """The publish stage's audit record about a reply, with the versions verify checked it under."""
    return Decision(
        comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
        reply_id=event.reply_id, stage=Stage.publish, outcome=outcome, reasons=reasons or [],
        policy_version=event.policy_version, profile_version=event.profile_version,
    )


def reason_not_to_post(event: ReplyVerdict, profile: CreatorProfile | None) -> Reason | None:
    """Why an approved reply is not posted after all: AI replies are off for its creator (skip), or nobody reviewed
    it and the creator changed something since verify checked it (review). None: post it."""
    if profile is None:  # removed, or a version this release cannot read (see TopicTable's drop_invalid)
        return Reason(check="creator", code="unknown_creator", action=Action.skip,
                      message="The creator's profile could not be read when this reply was to be posted, so it "
                              "was not.")
    if profile.mode == ReplyMode.off:
        return Reason(check="creator", code="reply_mode_off", action=Action.skip,
                      message="AI replies were turned off before this reply was posted.")
    return None if event.reviewed else changed_since_checked(event, profile)


def comment_gone(platform: str) -> Reason:
    return Reason(check="platform", code="comment_gone", action=Action.skip,
                  message=f"The comment was deleted or hidden on {platform} before this reply went out; nothing was "
                          "posted.")


def still_owned(at_start: frozenset[int] | None, now: frozenset[int] | None) -> bool:
    """Whether the partitions a batch came from are still this replica's. A rebalance revokes every partition
    first (None), so one that has begun shows at once; the batch's platform calls stop there, and the one in
    flight ends within PLATFORM_CALL_LIMIT_S, before the rebalance stops waiting for the batch."""
    return now is not None and now == at_start


async def within_call_limit(call: Awaitable[T]) -> T:
    """A platform call, cut off after PLATFORM_CALL_LIMIT_S in all (httpx times each phase of each request only);
    cut off, its outcome is unknown, as after a lost answer."""
    try:
        async with asyncio.timeout(PLATFORM_CALL_LIMIT_S):
            return await call
    except TimeoutError as error:
        raise TransientError(f"a platform call took over {PLATFORM_CALL_LIMIT_S:.0f} s") from error


def changed_since_checked(event: ReplyVerdict, profile: CreatorProfile) -> Reason | None:
    """Why an approved reply nobody reviewed must wait for review after all: the creator switched to
    reviewing every reply, or changed their profile (a banned word, a link, the voice) after verify checked it,
    say while a platform was down. None: post it."""
    if profile.mode == ReplyMode.review:
        return Reason(check="creator", code="creator_reviews_all", action=Action.review,
                      message=f"{profile.display_name} switched to reviewing every AI reply before this one "
                              "was posted.")
    if profile.version != event.profile_version:
        return Reason(check="creator", code="profile_changed", action=Action.review,
                      message=f"{profile.display_name}'s profile changed after this reply was checked (version "
                              f"{event.profile_version}, now {profile.version}), so it waits for review.")
    return None


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, "publisher")


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
"""

from __future__ import annotations

import time
from datetime import UTC

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
)
from replyflow.kafka import Deferred, Emit, TopicTable, TransientError, subscribe_stage
from replyflow.observability import END_TO_END_SECONDS
from replyflow.publisher.platform import PlatformApis, PostedReply
from replyflow.service import build_app, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import DECISIONS, REPLIES_APPROVED, REPLIES_PUBLISHED, REPLIES_REVIEW

FAILED_CALLS_PER_PLATFORM = 2
PUBLISH_ATTEMPTS = Counter("replyflow_publish_attempts_total", "Platform calls by result", ["platform", "result"])


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
    # Replies this process posted that the ledger may not have read back yet: a second verdict for the same
    # reply (a redelivered comment, drafted again) can follow in the same batch or the next, and YouTube and
    # Instagram have no idempotency key to stop a second post of a new draft. Also what a batch retried after
    # Kafka refused its outputs re-sends, without calling the platform again.
    posted_here: dict[str, tuple[PostedReply, str]] = {}
    failed_calls: dict[str, int] = {}  # reply id -> platform calls that failed, until it goes out

    async def publish_batch(events: list[ReplyVerdict]) -> list[Emit] | Deferred:
        for reply_id in [r for r in posted_here if r in ledger]:
            del posted_here[reply_id]
        while taken and next(iter(taken.values())) < time.time() - ledger_s:
            del taken[next(iter(taken))]
        emits: list[Emit] = []
        waiting: set[int] = set()
        errors: dict[str, list[str]] = {}  # platform -> its failed calls in this batch
        held_accounts: set[tuple[str, str]] = set()  # (platform, account) whose replies wait, to keep their order
        # One at a time, in order: an account's replies go out in the order they were approved.
        for i, event in enumerate(events):
            platform_name = event.comment.platform.value
            account = account_of(event)
            down = len(errors.get(platform_name, ())) >= FAILED_CALLS_PER_PLATFORM
            if down or (platform_name, account) in held_accounts:
                waiting.add(i)
                held_accounts.add((platform_name, account))
                continue
            try:
                emits += await publish(event, account)
            except TransientError as error:
                PUBLISH_ATTEMPTS.labels(platform_name, "retry").inc()
                failed_calls[event.reply_id] = failed_calls.get(event.reply_id, 0) + 1
                errors.setdefault(platform_name, []).append(str(error))
                waiting.add(i)
                held_accounts.add((platform_name, account))
        if not waiting:
            return emits
        return Deferred(emits, waiting, "; ".join(f"{name}: {failed[-1]}" for name, failed in errors.items()))

    def account_of(event: ReplyVerdict) -> str:
        profile = profiles.get(event.creator_id)
        if profile is None:
            return event.creator_id
        return profile.platform_accounts.get(event.comment.platform, profile.creator_id)

    async def publish(event: ReplyVerdict, account: str) -> list[Emit]:
        """The outputs of one reply, posting it if it has not gone out; TransientError: the platform failed."""
        if event.reply_id in ledger:
            return []  # already out; this is a redelivery
        profile = profiles.get(event.creator_id)
        if event.reply_id not in posted_here and (profile is None or profile.mode == ReplyMode.off):
            failed_calls.pop(event.reply_id, None)
            skipped = Decision(
                comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
                reply_id=event.reply_id, stage=Stage.publish, outcome=Outcome.skipped,
                reasons=[Reason(check="creator", code="reply_mode_off", action=Action.skip,
                                message="AI replies were turned off before this reply was posted.")],
            )
            return [Emit(DECISIONS, skipped)]
        if event.reply_id not in posted_here and not event.reviewed and (why := changed_since_checked(event, profile)):
            return hold_for_review(event, why)
        platform_name = event.comment.platform.value
        attempt = 0  # platform calls this delivery made
        if event.reply_id in posted_here:  # posted already, even if the creator has turned replies off since
            posted, text = posted_here[event.reply_id]
        else:
            posted = await platforms.for_platform(platform_name).post_reply(
                event.comment, account, event.reply_id, event.text, taken
            )
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

    def hold_for_review(event: ReplyVerdict, why: Reason) -> list[Emit]:
        failed_calls.pop(event.reply_id, None)
        held = event.model_copy(update={"outcome": Outcome.held, "reasons": [*event.reasons, why]})
        return [Emit(REPLIES_REVIEW, held), Emit(DECISIONS, decision_about(event, Outcome.held, [why]))]

    subscribe_stage(parts, stage="publisher", topic=REPLIES_APPROVED, handle=publish_batch, max_batch=16)
    return build_app(parts, after_shutdown=[platforms.close])


def decision_about(event: ReplyVerdict, outcome: Outcome, reasons: list[Reason] | None = None) -> Decision:
    """The publish stage's audit record about a reply, with the versions verify checked it under."""
    return Decision(
        comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
        reply_id=event.reply_id, stage=Stage.publish, outcome=outcome, reasons=reasons or [],
        policy_version=event.policy_version, profile_version=event.profile_version,
    )


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


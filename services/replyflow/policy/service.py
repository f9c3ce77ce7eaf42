"""Policy service: screens incoming comments and verifies drafted replies.

    python -m replyflow.policy        # both stages, HTTP :8081 for /metrics /healthz /readyz

Every decision goes to ``decisions`` with its reasons; eligible comments go on to
``comments.screened``; drafts go to ``replies.approved`` or ``replies.review``.
"""

from __future__ import annotations

import time

from replyflow.events import (
    CommentReceived,
    CommentScreened,
    Decision,
    Outcome,
    ReplyDrafted,
    ReplyVerdict,
    Stage,
)
from replyflow.kafka import Emit, subscribe_stage
from replyflow.observability import DECISIONS as DECISIONS_METRIC
from replyflow.policy.checks import screen_findings, verify_findings, with_disclosure
from replyflow.policy.decide import ReplyBudget, Verdict, screen_verdict, verify_verdict
from replyflow.policy.rules import PolicySource
from replyflow.service import build_app, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import (
    COMMENTS_RECEIVED,
    COMMENTS_SCREENED,
    DECISIONS,
    REPLIES_APPROVED,
    REPLIES_DRAFTED,
    REPLIES_REVIEW,
)


def count(stage: Stage, verdict: Verdict) -> None:
    for code in [r.code for r in verdict.reasons] or ["none"]:
        DECISIONS_METRIC.labels(stage.value, verdict.outcome.value, code).inc()


def account_key(creator_id: str, platform: str) -> str:
    # The publisher's input is keyed by account so one consumer owns each account's rate limit.
    return f"{creator_id}:{platform}"


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    parts = service_parts("policy", settings)
    assert parts.profiles is not None
    profiles = parts.profiles
    policies = PolicySource(settings.policy_file)
    budget = ReplyBudget()

    async def screen(events: list[CommentReceived]) -> list[Emit]:
        now = time.time()
        policy = policies.current(now)
        batch_profiles = [profiles.get(e.creator_id) for e in events]
        findings = screen_findings([e.comment for e in events], batch_profiles)
        return [
            emit
            for event, profile, found in zip(events, batch_profiles, findings, strict=True)
            for emit in screened(event, profile, found, policy, now)
        ]

    def screened(event, profile, findings, policy, now) -> list[Emit]:
        verdict = screen_verdict(event.comment, profile, findings, policy, budget, now)
        count(Stage.screen, verdict)
        decision = Decision(
            comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
            stage=Stage.screen, outcome=verdict.outcome, reasons=verdict.reasons, policy_version=policy.version,
            profile_version=profile.version if profile else None,
        )
        emits = [Emit(DECISIONS, event.comment_id, decision)]
        if verdict.outcome == Outcome.eligible:
            assert profile is not None
            screened = CommentScreened(
                comment=event.comment, profile_version=profile.version,
                policy_version=policy.version, reasons=verdict.reasons,
            )
            emits.append(Emit(COMMENTS_SCREENED, event.comment_id, screened))
        return emits

    async def verify(events: list[ReplyDrafted]) -> list[Emit]:
        policy = policies.current(time.time())
        return [emit for event in events for emit in verified(event, profiles.get(event.creator_id), policy)]

    def verified(event, profile, policy) -> list[Emit]:
        findings = verify_findings(event.text, event.comment, profile) if profile else []
        verdict = verify_verdict(profile, findings, event.screen_reasons, policy)
        count(Stage.verify, verdict)
        decision = Decision(
            comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
            reply_id=event.reply_id, stage=Stage.verify, outcome=verdict.outcome, reasons=verdict.reasons,
            policy_version=policy.version, profile_version=profile.version if profile else None,
        )
        emits = [Emit(DECISIONS, event.comment_id, decision)]
        if verdict.outcome in (Outcome.approved, Outcome.held):
            assert profile is not None
            reply = ReplyVerdict(
                comment=event.comment, reply_id=event.reply_id,
                text=with_disclosure(event.text, profile.disclosure_label),
                outcome=verdict.outcome, reasons=verdict.reasons,
                policy_version=policy.version, profile_version=profile.version,
            )
            if verdict.outcome == Outcome.approved:
                emits.append(Emit(REPLIES_APPROVED, account_key(event.creator_id, event.comment.platform), reply))
            else:
                emits.append(Emit(REPLIES_REVIEW, event.creator_id, reply))
        return emits

    for stage, topic, model, handle in (
        ("policy-screen", COMMENTS_RECEIVED, CommentReceived, screen),
        ("policy-verify", REPLIES_DRAFTED, ReplyDrafted, verify),
    ):
        subscribe_stage(
            parts.broker, settings, service="policy", stage=stage, topic=topic, model=model,
            handle=handle, health=parts.health,
        )
    return build_app(parts)


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, "policy")

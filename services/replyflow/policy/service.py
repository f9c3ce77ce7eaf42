"""Policy service: screens incoming comments and verifies drafted replies.

    python -m replyflow.policy        # both stages, HTTP :8081 for /metrics /healthz /readyz
    POLICY_STAGES=verify python -m replyflow.policy   # one stage, to scale screen and verify apart

Every decision goes to ``decisions`` with its reasons; eligible comments go on to
``comments.screened``; drafts go to ``replies.approved`` or ``replies.review``. The verify stage
also follows ``replies.reviewed``: a creator's edits of held replies are examples of their voice; and the last
15 minutes of its own outputs, so that a draft delivered again keeps its first verdict.
"""

from __future__ import annotations

import time

from replyflow.events import CommentReceived, CommentScreened, ReplyDrafted, ReplyReviewed, ReplyVerdict
from replyflow.kafka import Emit, GroupMembership, TopicTable, subscribe_stage
from replyflow.policy.authenticity import EmbeddingClient, VoiceEmbedder
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages
from replyflow.policy.voice_edits import CreatorEdits
from replyflow.service import build_app, serve, service_parts
from replyflow.settings import Settings
from replyflow.topics import (
    COMMENTS_RECEIVED,
    COMMENTS_SCREENED,
    DECISIONS,
    REPLIES_APPROVED,
    REPLIES_DRAFTED,
    REPLIES_REVIEW,
    REPLIES_REVIEWED,
)


def create_app(settings: Settings | None = None):
    settings = settings or Settings()
    stage_names = settings.policy_stage_names
    parts = service_parts("policy", settings, sends=[
        DECISIONS,
        *([COMMENTS_SCREENED] if "screen" in stage_names else []),
        *([REPLIES_APPROVED, REPLIES_REVIEW] if "verify" in stage_names else []),
    ])
    edits = CreatorEdits()
    if "verify" in stage_names:
        # The creators' edits of held replies (control API) teach the authenticity model their voice.
        parts.tables.append(TopicTable[ReplyReviewed](settings.kafka_bootstrap_servers, REPLIES_REVIEWED,
                                                      lambda r: r.reply_id, keep_first=True, on_row=edits.add))
    stages = PolicyStages(parts.profiles.get, PolicySource(settings.policy_file),
                          embedding_weight=settings.embeddings_weight, extra_examples=edits.examples)
    parts.ready_checks.append(lambda: stages.policies.unusable(time.time()))  # a policy change that cannot be used
    if "verify" in stage_names:
        # The verdicts sent lately (by any replica, before a restart too): a draft delivered again keeps its first.
        for sent_to in (REPLIES_APPROVED, REPLIES_REVIEW):
            parts.tables.append(TopicTable[ReplyVerdict](
                settings.kafka_bootstrap_servers, sent_to, lambda v: v.reply_id, since_s=stages.verdicts.window_s,
                keep_rows=False, on_row=lambda v: stages.verdicts.record(v, v.occurred_at.timestamp())))
    if "screen" in stage_names:
        # Every replica's eligible comments are spends of the creators' reply budgets, counted by all together.
        parts.tables.append(TopicTable[CommentScreened](
            settings.kafka_bootstrap_servers, COMMENTS_SCREENED, lambda e: e.comment_id,
            since_s=stages.budget.window_s, keep_rows=False,
            on_row=lambda e: stages.budget.record(e.creator_id, e.comment_id, e.occurred_at.timestamp())))
    embedder = VoiceEmbedder(EmbeddingClient(
        settings.embeddings_base_url, settings.embeddings_model, settings.embeddings_api_key,
        settings.embeddings_timeout_s,
    )) if settings.embeddings_base_url else None

    memberships: dict[str, GroupMembership] = {}  # per stage, once subscribed below

    async def screen(events: list[CommentReceived]) -> list[Emit]:
        # What this replica may spend before other replicas see it: its partitions' share of the budget.
        return stages.screen(events, time.time(), memberships["screen"].share)

    async def verify(events: list[ReplyDrafted]) -> list[Emit]:
        similarities = None
        if embedder is not None:
            similarities = await embedder.similarities([(e.text, parts.profiles.get(e.creator_id)) for e in events])
        return stages.verify(events, time.time(), similarities)

    async def close_embedder() -> None:
        if embedder is not None:
            await embedder.close()

    for name, stage, topic, handle in (
        ("screen", "policy-screen", COMMENTS_RECEIVED, screen),
        ("verify", "policy-verify", REPLIES_DRAFTED, verify),
    ):
        if name in stage_names:
            memberships[name] = subscribe_stage(parts, stage=stage, topic=topic, handle=handle)
    return build_app(parts, after_shutdown=[close_embedder])


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, "policy")

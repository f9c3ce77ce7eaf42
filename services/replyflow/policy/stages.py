"""The policy service's two stages as plain objects: events in, events out, no Kafka.

The service (service.py) only wires these to topics; the benchmark calls them in a loop to
measure what the Kafka plumbing costs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from replyflow.events import (
    Comment,
    CommentReceived,
    CommentScreened,
    CreatorProfile,
    Decision,
    Outcome,
    Reason,
    ReplyDrafted,
    ReplyVerdict,
    Stage,
)
from replyflow.kafka import Emit
from replyflow.observability import DRAFTS_DECIDED_BEFORE, DUPLICATE_DELIVERIES
from replyflow.policy.authenticity import AuthenticityModel, ModelCache, combine_scores
from replyflow.policy.classifiers import TextScreener, detect_personal_data
from replyflow.policy.decide import (
    Deliveries,
    ReplyBudget,
    Verdicts,
    reasons_from,
    screen_verdict,
    verify_verdict,
)
from replyflow.policy.findings import Finding
from replyflow.policy.language import possible_languages, score_words
from replyflow.policy.rules import PolicySource
from replyflow.policy.verify_checks import (
    check_authenticity,
    config_for,
    ensure_disclosure,
    own_email_domains,
    run_checks,
    strip_disclosure,
)
from replyflow.topics import COMMENTS_SCREENED, DECISIONS, REPLIES_APPROVED, REPLIES_REVIEW

ProfileLookup = Callable[[str], CreatorProfile | None]
ExtraExamples = Callable[[CreatorProfile], Sequence[str]]
log = logging.getLogger(__name__)
# Below this confidence a comment's language is treated as unknown rather than unsupported.
LANGUAGE_CONFIDENCE = 0.8


def content_findings(text: str, comment: Comment, profile: CreatorProfile, toxicity_score: float) -> list[Finding]:
    """What the verify checks find in a reply's content (everything but its authenticity)."""
    return run_checks(text, comment, profile, config=config_for(comment.platform.value),
                      toxicity_score=toxicity_score) + [
        # e.g. the commenter's phone number echoed back
        replace(f, message=f"The reply repeats personal data ({f.code.replace('_', ' ')}).")
        for f in detect_personal_data(text, own_email_domains(profile))
    ]


def language_findings(comment: Comment, profile: CreatorProfile | None) -> list[Finding]:
    if profile is None:
        return []
    languages: tuple[str, ...] = (comment.language,) if comment.language else ()
    if not languages:
        found = possible_languages(comment.text)
        if found is None or found[1] < LANGUAGE_CONFIDENCE:
            return []
        languages = found[0]
    if set(languages) & set(profile.languages):
        return []
    return [Finding("language", "language_unsupported",
                    f"The comment is in '{'/'.join(languages)}'; {profile.display_name} replies in "
                    f"{', '.join(profile.languages)}.", 1.0)]


def verify_decision(event: ReplyDrafted, outcome: Outcome, reasons: list[Reason], policy_version: str,
                    profile_version: int | None) -> Emit:
    """The audit record of verify's verdict about a draft."""
    return Emit(DECISIONS, Decision(
        comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
        reply_id=event.reply_id, stage=Stage.verify, outcome=outcome, reasons=reasons,
        policy_version=policy_version, profile_version=profile_version,
    ))


class PolicyStages:
    """Screen incoming comments and verify drafted replies, in micro-batches."""

    def __init__(self, profiles: ProfileLookup, policies: PolicySource, budget: ReplyBudget | None = None,
                 *, embedding_weight: float = 0.35, extra_examples: ExtraExamples | None = None) -> None:
        """``extra_examples``: more replies in a creator's voice than their profile holds (their edits)."""
        self.profiles = profiles
        self.extra_examples = extra_examples
        self.embedding_weight = embedding_weight
        self.policies = policies
        self.budget = budget or ReplyBudget()
        self.deliveries = Deliveries()
        self.verdicts = Verdicts()
        self.screener = TextScreener.load()
        self.authenticity = ModelCache()

    def screen(self, events: Sequence[CommentReceived], now: float, budget_share: float = 1.0) -> list[Emit]:
        """``budget_share``: the part of each creator's reply budget this replica spends (:class:`ReplyBudget`)."""
        policy = self.policies.current(now)
        profiles = [self.profiles(e.creator_id) for e in events]
        score_words(e.comment.text for e in events if e.comment.language is None)
        content = self.screener.screen([e.comment.text for e in events])
        emits = []
        for event, profile, findings in zip(events, profiles, content, strict=True):
            first = self.deliveries.repeat_of(event.comment, event.event_id, now)
            if first is not None:
                DUPLICATE_DELIVERIES.labels(event.comment.platform.value).inc()
                log.info("comment delivered again; its first delivery was screened", extra={"fields": {
                    "comment_id": event.comment_id, "event_id": event.event_id, "first_event_id": first}})
                continue
            findings = [*findings, *language_findings(event.comment, profile)]
            verdict = screen_verdict(event.comment, profile, findings, policy, self.budget, now, budget_share)
            emits.append(Emit(DECISIONS, Decision(
                comment_id=event.comment_id, creator_id=event.creator_id, platform=event.comment.platform,
                stage=Stage.screen, outcome=verdict.outcome, reasons=verdict.reasons,
                policy_version=policy.version, profile_version=profile.version if profile else None,
            )))
            if verdict.outcome == Outcome.eligible:
                assert profile is not None
                emits.append(Emit(COMMENTS_SCREENED, CommentScreened(
                    comment=event.comment, profile_version=profile.version,
                    policy_version=policy.version, reasons=verdict.reasons,
                )))
        return emits

    def authenticity_scores(
        self, events: Sequence[ReplyDrafted], profiles: Sequence[CreatorProfile | None]
    ) -> list[float | None]:
        """The stylometric score of each draft (label stripped), scored per creator in one batch."""
        scores: list[float | None] = [None] * len(events)
        rows_of: dict[int, list[int]] = {}  # per profile object: drafts of one creator share it
        for i, profile in enumerate(profiles):
            if profile is not None:
                rows_of.setdefault(id(profile), []).append(i)
        by_model: dict[int, tuple[AuthenticityModel, list[int]]] = {}
        for rows in rows_of.values():
            profile = profiles[rows[0]]
            assert profile is not None
            extra = self.extra_examples(profile) if self.extra_examples else ()
            model = self.authenticity.get(profile, extra)
            if model is not None:
                by_model.setdefault(id(model), (model, []))[1].extend(rows)
        for model, rows in by_model.values():
            texts = [strip_disclosure(events[i].text, profiles[i].disclosure_label) for i in rows]  # type: ignore[union-attr]
            for i, score in zip(rows, model.scores(texts), strict=True):
                scores[i] = score
        return scores

    def edit_reasons(self, text: str, comment: Comment, profile: CreatorProfile, now: float) -> list[Reason]:
        """The policy's reasons about a reply a person wrote (a held reply's edit): the content checks a draft
        gets, without authenticity (they are the creator's words, or the operator's on their behalf)."""
        (toxicity_score,) = self.screener.abuse.scores([text])
        findings = content_findings(text, comment, profile, toxicity_score)
        return reasons_from(findings, "verify", self.policies.current(now), profile)

    def verify(self, events: Sequence[ReplyDrafted], now: float,
               similarities: Sequence[tuple[float, float] | None] | None = None) -> list[Emit]:
        """``similarities``: per draft, its embedding cosine to the creator's voice and the voice's
        own cosine (:class:`VoiceEmbedder`), mixed into the authenticity score; ``None``: stylometric only."""
        policy = self.policies.current(now)
        profiles = [self.profiles(e.creator_id) for e in events]
        score_words(e.text for e in events)  # for the language check, in one pass
        toxicity = self.screener.abuse.scores([e.text for e in events])
        styles = self.authenticity_scores(events, profiles)
        similarities = similarities or [None] * len(events)
        emits = []
        for event, profile, toxicity_score, authenticity, similarity in zip(
            events, profiles, toxicity, styles, similarities, strict=True
        ):
            first = self.verdicts.first(event.reply_id)
            if first is not None:  # a redelivery: its outputs are out; its decision is recorded again, unchanged
                DRAFTS_DECIDED_BEFORE.inc()
                emits.append(verify_decision(event, first.outcome, list(first.reasons), first.policy_version,
                                             first.profile_version))
                continue
            findings: list[Finding] = []
            if profile is not None:
                findings = content_findings(event.text, event.comment, profile, toxicity_score)
                if authenticity is not None and similarity is not None:
                    authenticity = combine_scores(authenticity, similarity[0], own_cosine=similarity[1],
                                                  embedding_weight=self.embedding_weight)
                findings += check_authenticity(authenticity, profile)
            verdict = verify_verdict(profile, findings, event.screen_reasons, policy)
            emits.append(verify_decision(event, verdict.outcome, verdict.reasons, policy.version,
                                         profile.version if profile else None))
            if verdict.outcome not in (Outcome.approved, Outcome.held):
                continue
            assert profile is not None
            reply = ReplyVerdict(
                comment=event.comment, reply_id=event.reply_id,
                text=ensure_disclosure(event.text, profile.disclosure_label), disclosure_label=profile.disclosure_label,
                outcome=verdict.outcome, reasons=verdict.reasons, authenticity=authenticity,
                policy_version=policy.version, profile_version=profile.version,
            )
            if verdict.outcome == Outcome.approved:
                emits.append(Emit(REPLIES_APPROVED, reply))
            else:
                emits.append(Emit(REPLIES_REVIEW, reply))
        return emits

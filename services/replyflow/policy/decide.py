"""Pure decision functions of the policy service: screen an incoming comment, verify a drafted reply.

Checks produce ``Finding``s; the policy turns each into a ``Reason`` with an action, and the
most severe action decides the outcome. Nothing here touches Kafka or the network.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from replyflow.events import Action, Comment, CreatorProfile, Outcome, Reason, ReplyMode
from replyflow.policy.findings import Finding
from replyflow.policy.rules import Policy

SEVERITY = {Action.allow: 0, Action.review: 1, Action.reject: 2, Action.skip: 3}

@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: list[Reason]


def reasons_from(
    findings: Sequence[Finding], stage: str, policy: Policy, profile: CreatorProfile | None
) -> list[Reason]:
    reasons = []
    for f in findings:
        rule = policy.rule(stage, f.check, profile)
        if not rule.enabled:
            continue
        if rule.threshold is not None and f.score is not None and f.score < rule.threshold:
            continue
        reasons.append(Reason(check=f.check, code=f.code, message=f.message, action=rule.action, score=f.score))
    return reasons


def worst_action(reasons: Sequence[Reason]) -> Action:
    return max((r.action for r in reasons), key=SEVERITY.__getitem__, default=Action.allow)


@dataclass
class ReplyBudget:
    """Replies allowed per creator per rolling hour.

    Each screen replica counts on its own, against its ``share`` of the budget: the fraction of the topic's
    partitions it owns. Comments are keyed by comment id, so a creator's comments spread evenly over the
    partitions, and the replicas' shares add up to the whole budget (each rounds up: with N replicas at most
    N - 1 more). A comment spends at most once: a batch retried after Kafka refused its outputs, or a comment
    delivered twice, must not use up the creator's budget and skip the comments after it.
    """

    window_s: float = 3600.0
    _spent: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)  # creator -> (when, comment id)
    _spenders: dict[str, set[str]] = field(default_factory=dict)  # creator -> comment ids in the window

    def try_spend(self, creator_id: str, comment_id: str, per_hour: int, now: float, share: float = 1.0) -> bool:
        spent = self._spent.setdefault(creator_id, deque())
        spenders = self._spenders.setdefault(creator_id, set())
        while spent and now - spent[0][0] >= self.window_s:
            spenders.discard(spent.popleft()[1])
        if comment_id in spenders:
            return True
        if len(spent) >= per_hour * share:
            if not spent:  # a budget of 0: keep no empty entries for creators who never spend
                del self._spent[creator_id], self._spenders[creator_id]
            return False
        spent.append((now, comment_id))
        spenders.add(comment_id)
        return True


@dataclass
class Deliveries:
    """The comments a screen replica took in the last ``window_s`` (at most ``max_comments``), so that each is
    screened, drafted and held for review once.

    Platforms deliver again what they think was lost (a connector retrying a POST whose 202 it never got, a
    webhook sent again), each time as a new event. The same event again (a batch retried after Kafka refused
    its outputs, a redelivery) is no repeat and goes through as before. A repeat gets no decision of its own:
    the comment's one outcome is its first delivery's. Per replica and in memory: after a restart or a
    rebalance a repeat may be drafted again, and the publisher still posts it once (the reply id comes from the
    comment).
    """

    window_s: float = 3600.0
    max_comments: int = 200_000  # ~40 MB; a replica screening more than this an hour remembers less than an hour
    _first: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)  # oldest first

    def repeat_of(self, comment: Comment, event_id: str, now: float) -> str | None:
        """The event id of the comment's first delivery when this event is a later one, else None."""
        first = self._first
        while first:
            oldest = next(iter(first))
            if now - first[oldest][0] < self.window_s and len(first) < self.max_comments:
                break
            del first[oldest]
        key = (comment.platform.value, comment.comment_id)
        seen = first.setdefault(key, (now, event_id))[1]
        return None if seen == event_id else seen


def screen_verdict(
    comment: Comment,
    profile: CreatorProfile | None,
    content_findings: Sequence[Finding],
    policy: Policy,
    budget: ReplyBudget,
    now: float,
    budget_share: float = 1.0,
) -> Verdict:
    """Is this comment eligible for an AI reply? Skips carry their reasons. ``budget_share``: this replica's
    part of the reply budget (:class:`ReplyBudget`)."""
    if profile is None:
        return Verdict(Outcome.skipped, [Reason(
            check="creator", code="unknown_creator", action=Action.skip,
            message=f"No profile for creator {comment.creator_id!r}, so no reply is drafted.",
        )])
    if profile.mode == ReplyMode.off:
        return Verdict(Outcome.skipped, [Reason(
            check="creator", code="reply_mode_off", action=Action.skip,
            message=f"{profile.display_name} has turned AI replies off.",
        )])
    reasons = reasons_from(content_findings, "screen", policy, profile)
    if SEVERITY[worst_action(reasons)] >= SEVERITY[Action.reject]:
        return Verdict(Outcome.skipped, reasons)
    if not budget.try_spend(profile.creator_id, comment.comment_id, profile.reply_budget_per_hour, now,
                            budget_share):
        reasons.append(Reason(
            check="budget", code="reply_budget_exhausted", action=Action.skip,
            message=f"{profile.display_name}'s budget of {profile.reply_budget_per_hour} replies an hour is spent.",
        ))
        return Verdict(Outcome.skipped, reasons)
    return Verdict(Outcome.eligible, reasons)


def verify_verdict(
    profile: CreatorProfile | None,
    findings: Sequence[Finding],
    screen_reasons: Sequence[Reason],
    policy: Policy,
) -> Verdict:
    """Publish, hold for the creator, or reject a draft. Review findings from the screen carry over."""
    if profile is None or profile.mode == ReplyMode.off:
        return Verdict(Outcome.skipped, [Reason(
            check="creator", code="reply_mode_off", action=Action.skip,
            message="AI replies were turned off after this comment was screened.",
        )])
    reasons = reasons_from(findings, "verify", policy, profile)
    reasons += [r for r in screen_reasons if r.action == Action.review]
    worst = worst_action(reasons)
    if SEVERITY[worst] >= SEVERITY[Action.reject]:
        return Verdict(Outcome.rejected, reasons)
    if worst == Action.review:
        return Verdict(Outcome.held, reasons)
    if profile.mode == ReplyMode.review:
        return Verdict(Outcome.held, [*reasons, Reason(
            check="creator", code="creator_reviews_all", action=Action.review,
            message=f"{profile.display_name} reviews every AI reply before it is posted.",
        )])
    return Verdict(Outcome.approved, reasons)

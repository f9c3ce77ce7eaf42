"""Pure decision functions of the policy service: screen an incoming comment, verify a drafted reply.

Checks produce ``Finding``s; the policy turns each into a ``Reason`` with an action, and the
most severe action decides the outcome. Nothing here touches Kafka or the network.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from replyflow.events import Action, Comment, CreatorProfile, Outcome, Reason, ReplyMode, ReplyVerdict, visible
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
    """Replies allowed per creator per rolling hour, kept by the screen replicas together.

    Each replica follows ``comments.screened``, where every replica's eligible comments go: each is a spend
    (``record``). Its own spends count at once (``try_spend``). Those the other replicas may not have seen yet
    (not read back, or spent less than ``settle_s`` ago) are capped at the replica's ``share`` of the budget
    (the part of ``comments.received``'s partitions it owns; a creator's comments spread evenly over them). So
    replicas spending at the same moment overshoot by at most one each (rounding up) while the topic is read
    within ``settle_s``, and a replica that has used its share spends again once its spends have settled: a
    creator under budget is not cut short. A restarted replica reads the window back from the topic.

    A comment spends at most once: a batch retried after Kafka refused its outputs, or a comment
    delivered twice, must not use up the creator's budget and skip the comments after it.
    """

    window_s: float = 3600.0
    settle_s: float = 5.0
    _seen: dict[str, dict[str, float]] = field(default_factory=dict)  # creator -> comment id -> when (the topic)
    _own: dict[str, dict[str, float]] = field(default_factory=dict)  # this replica's spends in the window
    _unseen: dict[str, set[str]] = field(default_factory=dict)  # own spends not read back from the topic yet
    _unsettled: dict[str, set[str]] = field(default_factory=dict)  # own spends unseen or younger than settle_s
    _settling: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)  # own spends by time, to settle
    _by_time: list[tuple[float, str, str]] = field(default_factory=list)  # heap of (when, creator, comment id)

    def record(self, creator_id: str, comment_id: str, at: float) -> None:
        """A spend read from ``comments.screened`` (any replica's, this one's included)."""
        self._expire(at)
        unseen = self._unseen.get(creator_id)
        if unseen is not None and comment_id in unseen:
            unseen.discard(comment_id)
            if self._own[creator_id][comment_id] <= at - self.settle_s:  # a straggler: settles once seen
                self._unsettled[creator_id].discard(comment_id)
        seen = self._seen.setdefault(creator_id, {})
        if comment_id not in seen:
            seen[comment_id] = at
            heapq.heappush(self._by_time, (at, creator_id, comment_id))

    def try_spend(self, creator_id: str, comment_id: str, per_hour: int, now: float, share: float = 1.0) -> bool:
        self._expire(now)
        seen, own = self._seen.get(creator_id, {}), self._own.get(creator_id, {})
        if comment_id in seen or comment_id in own:
            return True
        unseen = self._unseen.setdefault(creator_id, set())
        unsettled = self._unsettled.setdefault(creator_id, set())
        settling = self._settling.setdefault(creator_id, deque())
        while settling and settling[0][0] <= now - self.settle_s:
            spent = settling.popleft()[1]
            if spent not in unseen:
                unsettled.discard(spent)
        if len(seen) + len(unseen) >= per_hour or len(unsettled) >= per_hour * share:
            return False
        self._own.setdefault(creator_id, {})[comment_id] = now
        unseen.add(comment_id)
        unsettled.add(comment_id)
        settling.append((now, comment_id))
        heapq.heappush(self._by_time, (now, creator_id, comment_id))
        return True

    def _expire(self, now: float) -> None:
        while self._by_time and self._by_time[0][0] <= now - self.window_s:
            at, creator_id, comment_id = heapq.heappop(self._by_time)
            seen = self._seen.get(creator_id)
            if seen is not None and seen.get(comment_id) == at:  # not a later entry of the comment
                del seen[comment_id]
            own = self._own.get(creator_id)
            if own is not None and own.get(comment_id) == at:
                del own[comment_id]
                self._unseen[creator_id].discard(comment_id)
                self._unsettled[creator_id].discard(comment_id)
            if not self._seen.get(creator_id) and not self._own.get(creator_id):  # nothing left: forget them
                for spends in (self._seen, self._own, self._unseen, self._unsettled, self._settling):
                    spends.pop(creator_id, None)


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
        _forget_old(self._first, now - self.window_s, self.max_comments)
        key = (comment.platform.value, comment.comment_id)
        seen = self._first.setdefault(key, (now, event_id))[1]
        return None if seen == event_id else seen


def _forget_old(entries: dict, before: float, at_most: int) -> None:
    """Drop, oldest first, the entries (``key -> (time, ...)``, in the order they came) from ``before`` or older, and
    more while there are ``at_most`` or more (room for the next)."""
    while entries:
        oldest = next(iter(entries))
        if entries[oldest][0] > before and len(entries) < at_most:
            return
        del entries[oldest]


@dataclass(frozen=True)
class SentVerdict:
    """What verify's first verdict about a reply said (enough to record its decision again)."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    policy_version: str
    profile_version: int


@dataclass
class Verdicts:
    """The verdicts sent lately about each reply (``replies.approved`` and ``replies.review``, read back from Kafka
    by every verify replica, so a restart reads them again), so that a draft delivered again keeps its first one.
    After a crash between sending a batch's outputs and committing it, the drafts come again; checked again, a
    profile or policy changed since, or the embeddings endpoint away, could decide otherwise and leave one reply
    both posted and waiting for review (an edit of it would then go out as a second reply)."""

    window_s: float = 900.0  # redeliveries come within minutes (a restart, a rebalance after a crash)
    max_replies: int = 200_000  # ~60 MB; a replica verifying more than this in the window remembers less
    _sent: dict[str, tuple[float, SentVerdict]] = field(default_factory=dict)  # oldest first

    def record(self, verdict: ReplyVerdict, at: float) -> None:
        """``verdict`` as sent at ``at``. The earliest about a reply is its first, whichever topic is read first
        (the publisher's hold after all comes later); a person's approval is never verify's verdict."""
        if verdict.reviewed:
            return
        _forget_old(self._sent, at - self.window_s, self.max_replies)
        known = self._sent.get(verdict.reply_id)
        if known is None or at < known[0]:
            self._sent[verdict.reply_id] = (at, SentVerdict(
                verdict.outcome, tuple(verdict.reasons), verdict.policy_version, verdict.profile_version))

    def first(self, reply_id: str) -> SentVerdict | None:
        found = self._sent.get(reply_id)
        return found[1] if found else None


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
    if not visible(comment.text):  # before the budget: nothing to answer must not spend a reply
        return Verdict(Outcome.skipped, [Reason(
            check="comment", code="nothing_to_answer", action=Action.skip,
            message="The comment has nothing to read (blank, punctuation or invisible characters only).",
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

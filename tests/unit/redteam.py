"""What the red-team rounds (``test_redteam_round2.py``, ``test_redteam_round3.py``) share: the sample creators, how a
case is written, and how a draft or a comment goes through the policy stages and is judged."""

from __future__ import annotations

import functools
import json
from itertools import count
from pathlib import Path

import pytest

from replyflow.events import (
    Comment,
    CommentReceived,
    CreatorProfile,
    Decision,
    GenerationStats,
    Outcome,
    ReplyDrafted,
)
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages

SAMPLES = Path(__file__).resolve().parents[2] / "services" / "replyflow" / "samples"
PROFILES = {p["creator_id"]: CreatorProfile.model_validate(p)
            for p in json.loads((SAMPLES / "creators.json").read_text(encoding="utf-8"))}
M, C, L, P = "mara-cooks", "coach-dev", "lena-travels", "mara-polyglot"
# Mara answering in six languages: the sample creators answer only English, Spanish and German.
PROFILES[P] = PROFILES[M].model_copy(update={"creator_id": P, "languages": ["en", "es", "de", "fr", "pt", "it"]})
Q = "Any tips?"
_IDS = count()


def gap(*case: str, reason: str):
    """A known miss, kept as a strict expected failure."""
    return pytest.param(*case, marks=pytest.mark.xfail(reason=reason, strict=True), id=case[0])


def params(cases: list) -> list:
    return [c if hasattr(c, "marks") else pytest.param(*c, id=c[0]) for c in cases]


@functools.cache
def sample_stages() -> PolicyStages:
    return PolicyStages(PROFILES.get, PolicySource())


def comment(text: str, creator_id: str) -> Comment:
    return Comment(platform="youtube", comment_id=f"c{next(_IDS)}", creator_id=creator_id, post_id="p",
                   author_id="a", author_name="A", text=text, created_at="2025-06-02T08:00:00Z")


def content_reasons(decision: Decision) -> list[tuple[str, str]]:
    return [(r.check, r.code) for r in decision.reasons if r.code != "creator_reviews_all"]


def check_verify_case(creator_id: str, comment_text: str, draft: str, expected: str) -> None:
    """``expected``: ``reject``, ``hold`` (held or rejected, for a content reason) or ``pass`` (no content reason)."""
    event = ReplyDrafted(comment=comment(comment_text, creator_id), reply_id=f"r{next(_IDS)}", text=draft,
                         profile_version=1,
                         generation=GenerationStats(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1))
    (decision,) = [e.event for e in sample_stages().verify([event], 0.0) if isinstance(e.event, Decision)]
    reasons = content_reasons(decision)
    if expected == "pass":
        assert reasons == [], draft
        assert decision.outcome in (Outcome.approved, Outcome.held)  # coach-dev reviews every reply
    elif expected == "reject":
        assert decision.outcome == Outcome.rejected, (draft, reasons)
    else:
        assert reasons and decision.outcome in (Outcome.held, Outcome.rejected), draft


def check_screen_case(creator_id: str, text: str, expected: str) -> None:
    """``expected``: ``skip``, ``flag`` (a personal-data reason) or ``ok`` (eligible, no reason)."""
    now = 3600.0 * next(_IDS)  # an hour apart: the cases are more than a creator's hourly reply budget
    (decision,) = [e.event for e in sample_stages().screen([CommentReceived(comment=comment(text, creator_id))], now)
                   if isinstance(e.event, Decision)]
    reasons = [(r.check, r.code) for r in decision.reasons]
    if expected == "skip":
        assert decision.outcome == Outcome.skipped, (text, reasons)
    elif expected == "flag":
        assert any(check == "personal_data" for check, _ in reasons), (text, reasons)
    else:
        assert decision.outcome == Outcome.eligible and reasons == [], (text, reasons)

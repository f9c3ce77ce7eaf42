"""The creator's edits of held replies become examples of their voice for the verify stage."""

from __future__ import annotations

from datetime import UTC, datetime

from replyflow.events import (
    Actor,
    Comment,
    CreatorProfile,
    GenerationStats,
    ReplyDrafted,
    ReplyReviewed,
    ReplyVerdict,
    ReviewAction,
)
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages
from replyflow.policy.voice_edits import CreatorEdits
from tests.unit.test_authenticity import BAKER, REVIEWER

COMMENT = Comment(platform="youtube", comment_id="c1", creator_id="baker", post_id="p", author_id="a",
                  author_name="A", text="Is it any good?", created_at="2025-06-02T08:00:00Z")


def reviewed(text: str | None, action: ReviewAction = ReviewAction.edit, creator_id: str = "baker",
             by: Actor | None = Actor.creator) -> ReplyReviewed:
    return ReplyReviewed(comment=COMMENT.model_copy(update={"creator_id": creator_id}), reply_id=f"r-{text}",
                         action=action, text=text, policy_version="p", profile_version=1, decided_by=by)


def test_only_edits_count_label_stripped_newest_kept():
    profile = CreatorProfile(creator_id="baker", display_name="B", persona="p", disclosure_label="[AI]")
    edits = CreatorEdits(per_creator=2)
    edits.add(reviewed("first [AI]"))
    edits.add(reviewed("approved as drafted [AI]", ReviewAction.approve))
    edits.add(reviewed(None, ReviewAction.reject))
    edits.add(reviewed("someone else's [AI]", creator_id="other"))
    edits.add(reviewed("the operator's wording [AI]", by=Actor.operator))
    assert edits.examples(profile) == ("first",)
    edits.add(reviewed("recorded before decided_by was kept [AI]", by=None))  # read as before: the creator's
    assert edits.examples(profile) == ("first", "recorded before decided_by was kept")
    edits = CreatorEdits(per_creator=2)
    edits.add(reviewed("first [AI]"))
    edits.add(reviewed("second [AI]"))
    edits.add(reviewed("third [AI]"))
    assert edits.examples(profile) == ("second", "third")
    assert edits.examples(profile.model_copy(update={"creator_id": "nobody"})) == ()


def test_the_latest_edits_are_the_latest_decided_whatever_order_they_are_read_in():
    # replies.reviewed has several partitions: a restart reads them in no set order.
    profile = CreatorProfile(creator_id="baker", display_name="B", persona="p", disclosure_label="[AI]")
    edits = CreatorEdits(per_creator=2)
    for text, minute in (("newest [AI]", 30), ("oldest [AI]", 10), ("middle [AI]", 20)):
        edits.add(reviewed(text).model_copy(update={"occurred_at": datetime(2026, 11, 29, 12, minute, tzinfo=UTC)}))
    assert edits.examples(profile) == ("middle", "newest")


def test_edits_move_the_authenticity_score_towards_the_creators_corrected_voice():
    profile = CreatorProfile(creator_id="baker", display_name="Baker", persona="A baker.", example_replies=BAKER[:3])
    draft = ReplyDrafted(comment=COMMENT, reply_id="r1", text=REVIEWER[7], profile_version=profile.version,
                         generation=GenerationStats(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1))
    edits = CreatorEdits()
    stages = PolicyStages({"baker": profile}.get, PolicySource(), extra_examples=edits.examples)

    def score() -> float:
        (verdict,) = [e.event for e in stages.verify([draft], 0.0) if isinstance(e.event, ReplyVerdict)]
        assert verdict.authenticity is not None
        return verdict.authenticity

    before = score()
    for text in REVIEWER[:6]:  # the creator keeps rewriting the drafts in their terse style
        edits.add(reviewed(f"{text} {profile.disclosure_label}"))
    assert score() > before

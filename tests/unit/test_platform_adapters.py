"""Reconciliation compares what a platform stored with what the publisher sent (the adapters themselves are
tested over HTTP against the simulator in tests/integration/test_publisher_platform.py); and the publisher's pure
decisions around a platform call: whether to post at all, whether a batch may still call, how long a call may take."""

import asyncio
from datetime import UTC, datetime

import pytest

from replyflow.events import Action, Comment, CreatorProfile, Outcome, Reason, ReplyVerdict
from replyflow.kafka import BATCH_IN_HAND_WAIT_S, TransientError
from replyflow.publisher import service
from replyflow.publisher.platform import same_text
from replyflow.publisher.service import reason_not_to_post, still_owned, within_call_limit


def test_same_text_ignores_how_the_platform_wraps_whitespace_but_not_words():
    ours = "Rest it an hour!\nThen bake hot. [AI reply]"
    assert same_text("Rest it an hour!\r\nThen bake hot. [AI reply] ", ours)
    assert same_text("Rest it an hour!  Then bake hot. [AI reply]", ours)
    assert not same_text("Rest it two hours! Then bake hot. [AI reply]", ours)
    assert not same_text("Rest it an hour! Then bake hot.", ours)


def verdict(profile_version: int = 1, reviewed: bool = False) -> ReplyVerdict:
    comment = Comment(platform="youtube", comment_id="c1", creator_id="mara", post_id="v1", author_id="a1",
                      author_name="Ann", text="How long?", created_at=datetime.now(UTC))
    review = [Reason(check="review", code="creator_edited", action=Action.allow, message="Edited.")]
    return ReplyVerdict(comment=comment, reply_id="r1", text="Rest it. [AI reply]", outcome=Outcome.approved,
                        policy_version="p", profile_version=profile_version, reasons=review if reviewed else [])


def profile(mode: str = "auto", version: int = 1) -> CreatorProfile:
    return CreatorProfile(creator_id="mara", display_name="Mara", persona="A cook.", mode=mode, version=version)


def test_a_reply_is_posted_unless_replies_are_off_or_the_creator_changed_something_nobody_reviewed():
    assert reason_not_to_post(verdict(), profile()) is None
    assert (reason_not_to_post(verdict(), None).action, reason_not_to_post(verdict(), None).code) == (
        Action.skip, "unknown_creator")  # unreadable or removed: not "turned off"
    assert reason_not_to_post(verdict(reviewed=True), profile("off")).code == "reply_mode_off"
    assert reason_not_to_post(verdict(), profile("review")).code == "creator_reviews_all"
    assert reason_not_to_post(verdict(), profile(version=2)).code == "profile_changed"
    # The creator's own approval was given under the new profile.
    assert reason_not_to_post(verdict(reviewed=True), profile("review", version=2)) is None


def test_a_batch_stops_calling_the_platform_once_a_rebalance_has_begun():
    assert still_owned(frozenset({0, 3}), frozenset({0, 3}))
    assert not still_owned(frozenset({0, 3}), None)  # revoked: the rebalance waits for this batch
    assert not still_owned(frozenset({0, 3}), frozenset({3}))  # the wait ran out and partition 0 went elsewhere
    assert not still_owned(None, None)  # the batch came in while out of the group


def test_a_platform_call_ends_well_inside_the_rebalance_wait():
    assert service.PLATFORM_CALL_LIMIT_S <= BATCH_IN_HAND_WAIT_S / 2


async def test_a_platform_call_past_its_limit_is_transient(monkeypatch):
    monkeypatch.setattr(service, "PLATFORM_CALL_LIMIT_S", 0.05)
    with pytest.raises(TransientError, match="took over"):
        await within_call_limit(asyncio.sleep(1))
    assert await within_call_limit(asyncio.sleep(0, "posted")) == "posted"

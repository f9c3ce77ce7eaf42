"""The control API's domain functions: pending list, decisions, their outputs, profile versions."""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from replyflow.admin import new_creators, next_versions
from replyflow.control.review import (
    CHANGE_MAX_WAIT,
    OUTPUTS_MAX_AGE,
    InvalidReview,
    OperatorOnly,
    PendingReviews,
    ReviewConflict,
    ReviewRequest,
    StaleProfile,
    apply_change,
    check_creator_change,
    decide,
    decode_cursor,
    encode_cursor,
    held_position,
    next_profile,
    page_after,
    recorded_outputs,
    review_outputs,
    review_view,
    unreadable_change,
    with_mode,
)
from replyflow.events import (
    Action,
    Actor,
    Comment,
    CreatorProfile,
    Decision,
    Outcome,
    ProfileChange,
    Reason,
    ReplyMode,
    ReplyVerdict,
    ReviewAction,
    Stage,
    reply_id_for,
)
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages
from replyflow.topics import DECISIONS, REPLIES_APPROVED

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
HELD_REASON = Reason(check="creator", code="creator_reviews_all", message="Every reply waits.", action=Action.review)


def profile(**over) -> CreatorProfile:
    return CreatorProfile.model_validate({"creator_id": "mara", "display_name": "Mara", "persona": "A cook.",
                                          "mode": "review", **over})


def held(comment_id: str = "c1", creator_id: str = "mara", at: datetime = NOW, platform: str = "youtube",
         text: str = "Rest it an hour! [AI reply]") -> ReplyVerdict:
    comment = Comment(platform=platform, comment_id=comment_id, creator_id=creator_id, post_id="v1",
                      author_id="a1", author_name="Ann", text="How long?", created_at=at)
    return ReplyVerdict(comment=comment, reply_id=reply_id_for(platform, comment_id), text=text,
                        outcome=Outcome.held, reasons=[HELD_REASON], authenticity=0.4, policy_version="p1",
                        profile_version=3, occurred_at=at)


def request(action: str, **over) -> ReviewRequest:
    return ReviewRequest.model_validate({"action": action, **over})


def test_pending_is_the_creators_undecided_holds_oldest_first():
    late, early, other, decided = (held("late", at=NOW), held("early", at=NOW - timedelta(minutes=5)),
                                   held("o", creator_id="someone-else"), held("done"))
    pending = PendingReviews(keep_s=30 * 86_400, now=lambda: NOW)
    assert pending.count() == 0 and pending.oldest_held_at() is None
    for verdict in (late, early, other, decided):
        pending.add(verdict)
    assert pending.of("someone-else") == [other] and pending.of("nobody") == []
    assert pending.count() == 4 and pending.oldest_held_at() == early.occurred_at
    pending.discard("mara", decided.reply_id)
    pending.discard("someone-else", "never-held")
    assert [v.comment_id for v in pending.of("mara")] == ["early", "late"]
    pending.discard("someone-else", other.reply_id)
    assert pending.of("someone-else") == []
    pending.discard("mara", early.reply_id)
    assert pending.count() == 1 and pending.oldest_held_at() == late.occurred_at


def test_a_hold_older_than_the_topic_keeps_it_is_no_longer_pending():
    # Every replica forgets it alike: one that read it before it left replies.review would list it on and on.
    pending = PendingReviews(keep_s=30 * 86_400, now=lambda: NOW)
    stale, fresh = held("stale", at=NOW - timedelta(days=30, minutes=1)), held("fresh", at=NOW - timedelta(days=29))
    pending.add(stale)
    pending.add(fresh)
    assert pending.of("mara") == [fresh] and pending.count() == 1
    assert [q.pending for q in pending.queues()] == [1]


def test_pages_follow_on_by_position_so_a_decision_between_pages_skips_nothing():
    pending = PendingReviews(keep_s=30 * 86_400, now=lambda: NOW)
    for i in range(5):
        pending.add(held(f"c{i}", at=NOW + timedelta(minutes=i)))
    first, after = page_after(pending.of("mara"), held_position, None, 2)
    assert [v.comment_id for v in first] == ["c0", "c1"]
    pending.discard("mara", first[0].reply_id)  # decided while the creator reads page one
    after = decode_cursor(encode_cursor(after))  # the token the API hands out and takes back
    second, after = page_after(pending.of("mara"), held_position, after, 2)
    assert [v.comment_id for v in second] == ["c2", "c3"]
    last, after = page_after(pending.of("mara"), held_position, after, 2)
    assert [v.comment_id for v in last] == ["c4"] and after is None
    exact, after = page_after(pending.of("mara"), held_position, None, 4)
    assert len(exact) == 4 and after is None  # no empty last page


def test_held_at_the_same_moment_are_ordered_by_reply_id_across_pages():
    pending = PendingReviews(keep_s=30 * 86_400, now=lambda: NOW)
    for i in range(3):
        pending.add(held(f"same-{i}"))
    everything = pending.of("mara")
    seen, after = [], None
    while True:
        page, after = page_after(pending.of("mara"), held_position, after, 1)
        seen += page
        if after is None:
            break
    assert seen == everything


@pytest.mark.parametrize("cursor", [
    "", "%%%", "bm90IGpzb24", "WyIyMDI2LTAxLTAyIiwieCJd", "WzEsMl0",
    base64.urlsafe_b64encode(b"[" * 2000).decode(),  # nested deeper than the JSON parser goes
    base64.urlsafe_b64encode(b"[" * 250).decode(),  # short, still nested deep
])
def test_a_cursor_the_api_did_not_give_out_is_refused(cursor):
    # not base64, not JSON, a time without its UTC offset, not [time, id], too long, hostile nesting
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor(cursor)


def test_review_view_has_what_a_creator_decides_on():
    view = review_view(held())
    assert view["draft"] == "Rest it an hour! [AI reply]"
    assert view["comment"]["text"] == "How long?" and view["comment"]["author_name"] == "Ann"
    assert view["comment"]["platform"] == "youtube" and view["comment"]["post_id"] == "v1"
    assert view["reasons"] == [{"code": "creator_reviews_all", "message": "Every reply waits.", "check": "creator"}]
    assert view["authenticity"] == 0.4 and view["held_at"] == NOW.isoformat()


def test_approve_sends_the_held_text_to_the_publisher_keyed_by_account():
    reply = held()
    decided = decide(request("approve", note="lovely"), held=reply, previous=None, profile=profile(), by=Actor.creator)
    assert decided.action == ReviewAction.approve and decided.text == reply.text
    approved, audit = review_outputs(decided)
    assert approved.topic == REPLIES_APPROVED and approved.key == "mara:youtube"
    verdict = approved.event
    assert isinstance(verdict, ReplyVerdict) and verdict.outcome == Outcome.approved
    assert verdict.reply_id == reply.reply_id and verdict.text == reply.text
    assert verdict.reasons[-1].code == "creator_approved" and "lovely" in verdict.reasons[-1].message
    assert verdict.reviewed and not reply.reviewed  # end-to-end latency: route review, not auto
    assert audit.topic == DECISIONS and audit.key == "c1"
    decision = audit.event
    assert isinstance(decision, Decision)
    assert (decision.stage, decision.outcome, decision.reply_id) == (Stage.review, Outcome.approved, reply.reply_id)
    assert decision.reasons[0].message == "The creator approved this reply. Note: lovely"


def test_edit_posts_the_creators_text_with_the_label_once():
    decided = decide(request("edit", text="One hour, then bake hot. [ai reply]"), held=held(), previous=None,
                     profile=profile(), by=Actor.creator)
    assert decided.text == "One hour, then bake hot. [AI reply]"
    approved, audit = review_outputs(decided)
    assert approved.event.text == decided.text
    assert audit.event.reasons[0].code == "creator_edited"


@pytest.mark.parametrize(("text", "says"), [
    ("   ", "empty"),
    ("x" * 600, "limit is 500"),
])
def test_an_edit_that_may_not_go_out_is_invalid(text, says):
    with pytest.raises(InvalidReview) as err:
        decide(request("edit", text=text), held=held(), previous=None, profile=profile(), by=Actor.creator)
    assert err.value.details[0]["field"] == "text" and says in err.value.details[0]["problem"]


def test_an_edit_must_fit_the_platform():
    with pytest.raises(InvalidReview) as err:
        decide(request("edit", text="y" * 200), held=held(platform="tiktok"), previous=None, profile=profile(),
               by=Actor.creator)
    assert "limit is 150" in err.value.details[0]["problem"]


@pytest.mark.parametrize(("body", "says"), [
    ({"action": "edit"}, "required"),
    ({"action": "approve", "text": "hi"}, "only accepted with action edit"),
])
def test_text_belongs_to_edits_only(body, says):
    with pytest.raises(InvalidReview) as err:
        decide(ReviewRequest.model_validate(body), held=held(), previous=None, profile=profile(), by=Actor.creator)
    assert says in str(err.value)


def test_reject_publishes_nothing_and_records_why():
    decided = decide(request("reject", note="too salesy"), held=held(), previous=None, profile=profile(),
                     by=Actor.creator)
    (audit,) = review_outputs(decided)
    assert decided.text is None and audit.topic == DECISIONS
    assert audit.event.outcome == Outcome.rejected and audit.event.terminal
    assert audit.event.reasons[0].message == "The creator rejected this reply. Note: too salesy"


def test_a_label_changed_since_the_hold_is_replaced_not_doubled():
    reply = held().model_copy(update={"disclosure_label": "[AI reply]"})  # "Rest it an hour! [AI reply]"
    relabelled = profile(disclosure_label="🤖 AI", version=4)  # the operator changed the label since
    approved = decide(request("approve"), held=reply, previous=None, profile=relabelled, by=Actor.creator)
    assert approved.text == "Rest it an hour! 🤖 AI"
    edited = decide(request("edit", text="Rest it an hour or two! [AI reply]"), held=reply, previous=None,
                    profile=relabelled, by=Actor.creator)  # edited from the draft as shown, old label and all
    assert edited.text == "Rest it an hour or two! 🤖 AI"


def test_repeating_a_decision_returns_it_and_its_outputs_are_the_same_events():
    reply = held()
    first = decide(request("edit", text="Bake it hot"), held=reply, previous=None, profile=profile(), by=Actor.creator)
    again = decide(request("edit", text="Bake it hot"), held=reply, previous=first, profile=profile(), by=Actor.creator)
    assert again is first
    assert [e.event for e in review_outputs(first)] == [e.event for e in review_outputs(again)]


def test_a_decision_repeated_after_the_profile_changed_is_answered_as_the_first_time():
    # A client retrying after a lost answer, while the creator turned replies off or banned a word meanwhile.
    reply = held()
    approved = decide(request("approve"), held=reply, previous=None, profile=profile(), by=Actor.creator)
    edited = decide(request("edit", text="Bake it hot"), held=reply, previous=None, profile=profile(),
                    by=Actor.creator)
    off, banned = profile(mode=ReplyMode.off), profile(banned_words=["hot"], version=2)
    assert decide(request("approve"), held=reply, previous=approved, profile=off, by=Actor.creator) is approved
    assert decide(request("edit", text="Bake it hot"), held=reply, previous=edited, profile=banned,
                  by=Actor.creator) is edited
    assert decide(request("edit", text=edited.text), held=reply, previous=edited, profile=off,
                  by=Actor.creator) is edited  # sent back as the API showed it, label included
    with pytest.raises(ReviewConflict):  # another decision still conflicts
        decide(request("reject"), held=reply, previous=approved, profile=off, by=Actor.creator)


def test_an_edit_repeated_after_the_label_changed_or_the_profile_went_is_still_a_repeat():
    reply = held().model_copy(update={"disclosure_label": "[AI reply]"})
    relabelled = profile(disclosure_label="🤖 AI", version=4)
    first = decide(request("edit", text="Rest it two hours! [AI reply]"), held=reply, previous=None,
                   profile=relabelled, by=Actor.operator)
    assert first.text == "Rest it two hours! 🤖 AI"
    assert decide(request("edit", text="Rest it two hours! [AI reply]"), held=reply, previous=first,
                  profile=relabelled, by=Actor.operator) is first
    plain = decide(request("edit", text="Rest it two hours!"), held=reply, previous=None, profile=profile(),
                   by=Actor.creator)
    assert decide(request("edit", text="Rest it two hours!"), held=reply, previous=plain, profile=None,
                  by=Actor.creator) is plain  # the profile deleted meanwhile


def test_a_recorded_decision_sends_its_outputs_only_if_it_holds_and_is_recent():
    reply = held()
    approve = decide(request("approve"), held=reply, previous=None, profile=profile(), by=Actor.creator)
    reject = decide(request("reject"), held=reply, previous=None, profile=profile(), by=Actor.operator)
    at = approve.occurred_at
    assert [e.event for e in recorded_outputs(approve, approve, at)] == [e.event for e in review_outputs(approve)]
    # Two requests raced: the approval recorded second lost, so nothing of it goes to the publisher.
    assert recorded_outputs(approve, reject, at) == []
    assert [e.topic for e in recorded_outputs(reject, reject, at)] == [DECISIONS]
    # Re-read long after (a new consumer group): older than the publisher's ledger reaches back, not re-sent.
    assert recorded_outputs(approve, approve, at + OUTPUTS_MAX_AGE) != []
    assert recorded_outputs(approve, approve, at + OUTPUTS_MAX_AGE + timedelta(seconds=1)) == []


@pytest.mark.parametrize("second", [{"action": "reject"}, {"action": "approve"}, {"action": "edit", "text": "Other"}])
def test_a_different_decision_on_a_decided_reply_conflicts(second):
    reply = held()
    first = decide(request("edit", text="Bake it hot"), held=reply, previous=None, profile=profile(), by=Actor.creator)
    with pytest.raises(ReviewConflict) as err:
        decide(ReviewRequest.model_validate(second), held=reply, previous=first, profile=profile(), by=Actor.creator)
    assert err.value.decided == ReviewAction.edit and "already edited and approved" in str(err.value)


def test_a_decision_survives_the_held_record_expiring():
    first = decide(request("approve"), held=held(), previous=None, profile=profile(), by=Actor.creator)
    assert decide(request("approve"), held=None, previous=first, profile=profile(), by=Actor.creator) is first
    with pytest.raises(ReviewConflict):
        decide(request("reject"), held=None, previous=first, profile=profile(), by=Actor.creator)


def test_the_kill_switch_wins_over_an_approval_but_not_over_a_rejection():
    off = profile(mode=ReplyMode.off)
    for action in ({"action": "approve"}, {"action": "edit", "text": "Hi there"}):
        with pytest.raises(ReviewConflict) as err:
            decide(ReviewRequest.model_validate(action), held=held(), previous=None, profile=off, by=Actor.creator)
        assert "mode off" in str(err.value)
    rejected = decide(request("reject"), held=held(), previous=None, profile=off, by=Actor.creator)
    assert rejected.action == ReviewAction.reject


def test_a_profile_change_bumps_the_version_and_no_change_writes_nothing():
    current = profile(version=4)
    assert next_profile(profile(version=4), current, NOW, Actor.operator, version_sent=True) is None
    changed = next_profile(profile(version=4, persona="A baker."), current, NOW, Actor.operator, version_sent=True)
    assert changed is not None and (changed.version, changed.updated_at, changed.updated_by) == (5, NOW, Actor.operator)
    assert next_profile(profile(persona="A baker."), current, NOW, Actor.operator, version_sent=False).version == 5
    assert next_profile(profile(version=9, persona="A baker."), current, NOW, Actor.operator,
                        version_sent=True).version == 9  # a higher version in the body is kept
    # a new creator: as given
    assert next_profile(profile(version=2), None, NOW, Actor.operator, version_sent=True).version == 2


def test_a_profile_read_before_the_kill_switch_cannot_turn_it_back_on():
    read = profile(version=4, mode="auto")
    off = with_mode(read, ReplyMode.off, NOW, Actor.operator)  # the operator, after the creator's GET
    assert off is not None and off.version == 5
    stale = read.model_copy(update={"topics_to_avoid": ["politics"]})
    with pytest.raises(StaleProfile, match=r"changed since version 4 \(current 5\): re-read it"):
        next_profile(stale, off, NOW, Actor.creator, version_sent=True)
    # Re-read, changed again: saved on top of the kill switch.
    redone = next_profile(off.model_copy(update={"topics_to_avoid": ["politics"]}), off, NOW, Actor.creator,
                          version_sent=True)
    assert redone is not None and (redone.mode, redone.version) == (ReplyMode.off, 6)
    # A retry of a change already saved asks for nothing new: answered with the current profile, no conflict.
    assert next_profile(redone.model_copy(update={"version": 5}), redone, NOW, Actor.creator, version_sent=True) is None


def change(profile_: CreatorProfile | None = None, mode: ReplyMode | None = None, by: Actor = Actor.operator,
           version_sent: bool = True) -> ProfileChange:
    return ProfileChange(change_id="ch-1", creator_id="mara", by=by, profile=profile_, version_sent=version_sent,
                         mode=mode)


def test_the_creators_one_writer_saves_a_change_on_what_is_current_or_answers_why_not():
    current = profile(version=4, mode="auto")
    saved, answer = apply_change(change(profile(version=4, persona="A baker.")), current, NOW)
    assert saved is not None and (saved.version, saved.persona, saved.updated_by) == (5, "A baker.", Actor.operator)
    assert (answer.change_id, answer.status, answer.profile, answer.error) == ("ch-1", 200, saved, None)
    # Read before the version now current (another change was made first): nothing saved, 409.
    saved, answer = apply_change(change(profile(version=3, persona="A potter.")), current, NOW)
    assert saved is None and answer.status == 409 and answer.profile is None
    assert answer.error.startswith("the profile changed since version 3 (current 4)")
    # The kill switch has no version rule: made on whatever is current.
    saved, answer = apply_change(change(mode=ReplyMode.off, by=Actor.creator), current, NOW)
    assert saved is not None and (saved.mode, saved.version, saved.persona) == (ReplyMode.off, 5, current.persona)
    # Nothing to change: nothing saved, answered with the current profile (a retry after a lost answer).
    saved, answer = apply_change(change(mode=ReplyMode.auto), current, NOW)
    assert saved is None and (answer.status, answer.profile) == (200, current)


def test_the_writer_answers_a_creators_operator_only_change_403_and_an_unknown_creator_404():
    current = profile(version=4)
    theirs = profile(version=4, platform_accounts={"youtube": "UC-other"})
    saved, answer = apply_change(change(theirs, by=Actor.creator), current, NOW)
    assert saved is None and answer.status == 403 and answer.details[0]["field"] == "platform_accounts"
    saved, answer = apply_change(change(mode=ReplyMode.off), None, NOW)
    assert saved is None and (answer.status, answer.error) == (404, "unknown creator 'mara'")
    saved, answer = apply_change(change(profile(version=1), version_sent=False), None, NOW)  # the operator creates
    assert saved is not None and answer.status == 201 and answer.profile == saved
    assert apply_change(change(profile(), by=Actor.creator), None, NOW)[1].status == 403  # a creator cannot


def test_a_change_that_waited_too_long_for_its_writer_is_dropped_but_a_kill_switch_never_is():
    current = profile(version=4, mode="review")
    late = NOW - CHANGE_MAX_WAIT - timedelta(minutes=1)
    saved, answer = apply_change(change(mode=ReplyMode.auto).model_copy(update={"occurred_at": late}), current, NOW)
    assert saved is None and answer.status == 409 and answer.error.startswith("not made: it waited 11 minutes")
    saved, answer = apply_change(change(profile(version=4, persona="A baker.")).model_copy(update={
        "occurred_at": late}), current, NOW)
    assert saved is None and answer.status == 409
    saved, answer = apply_change(change(mode=ReplyMode.off).model_copy(update={"occurred_at": late}), current, NOW)
    assert saved is not None and saved.mode == ReplyMode.off and answer.status == 200
    on_time = NOW - CHANGE_MAX_WAIT + timedelta(seconds=1)
    saved, _ = apply_change(change(mode=ReplyMode.auto).model_copy(update={"occurred_at": on_time}), current, NOW)
    assert saved is not None and saved.mode == ReplyMode.auto


def test_a_change_its_writer_cannot_read_is_answered_not_made_when_its_ids_can_be_read():
    error = ValueError("mode: Input should be 'auto', 'review' or 'off'")
    answer = unreadable_change(b'{"change_id": "ch-9", "creator_id": "mara", "mode": "paused"}', error)
    assert answer is not None and (answer.change_id, answer.creator_id, answer.status) == ("ch-9", "mara", 503)
    assert answer.error.startswith("not made: the control service could not read the change (ValueError;")
    assert unreadable_change(b"not json", error) is None
    assert unreadable_change(b'{"change_id": "ch-9"}', error) is None
    assert unreadable_change(None, error) is None


def test_a_change_is_a_profile_or_a_mode_of_its_own_creator():
    with pytest.raises(ValidationError, match="either a profile or a mode"):
        change(profile(), mode=ReplyMode.off)
    with pytest.raises(ValidationError, match="either a profile or a mode"):
        change()
    with pytest.raises(ValidationError, match="another creator's"):
        change(profile(creator_id="lena"))


def test_load_profiles_numbers_each_profile_on_from_the_current_one():
    current = {"mara": profile(version=7)}
    loaded = next_versions([profile(version=1, banned_words=["cheap"]), profile(creator_id="lena", version=3),
                            profile(version=1, banned_words=["cheap", "free"])], current.get)
    # Same-version reloads would be half picked up (caches per version), a lower one would replace a newer
    # profile; a creator listed twice: the later one is newer.
    assert [(p.creator_id, p.version) for p in loaded] == [("mara", 8), ("lena", 1), ("mara", 9)]
    assert loaded[2].banned_words == ["cheap", "free"]


def test_a_seed_loaded_again_with_only_new_leaves_existing_creators_alone():
    switched_off = profile(version=7, mode=ReplyMode.off)
    seed = [profile(version=1), profile(creator_id="lena", version=1)]
    assert [p.creator_id for p in new_creators(seed, {"mara": switched_off}.get)] == ["lena"]
    assert new_creators(seed, {}.get) == seed


def test_mode_change_is_a_new_version_unless_it_is_already_that_mode():
    current = profile(version=4)
    off = with_mode(current, ReplyMode.off, NOW, Actor.operator)
    assert off is not None and (off.mode, off.version, off.persona) == (ReplyMode.off, 5, current.persona)
    assert with_mode(current, ReplyMode.review, NOW, Actor.operator) is None


def test_a_decision_records_who_made_it_and_the_audit_says_so():
    by_creator = decide(request("approve"), held=held(), previous=None, profile=profile(), by=Actor.creator)
    by_operator = decide(request("reject", note="spam"), held=held("c2"), previous=None, profile=profile(),
                         by=Actor.operator)
    edited = decide(request("edit", text="Bake it hot"), held=held("c3"), previous=None, profile=profile(),
                    by=Actor.operator)
    assert (by_creator.decided_by, by_operator.decided_by) == (Actor.creator, Actor.operator)
    assert review_outputs(by_creator)[-1].event.reasons[0].message == "The creator approved this reply."
    (audit,) = review_outputs(by_operator)
    assert audit.event.reasons[0].code == "creator_rejected"  # codes stay; the sentence names the operator
    assert audit.event.reasons[0].message == "An operator rejected this reply on the creator's behalf. Note: spam"
    assert review_outputs(edited)[-1].event.reasons[0].message == (
        "An operator edited this reply and approved the new version on the creator's behalf.")
    # Whoever repeats a decision gets the recorded one back, still naming who made it.
    assert decide(request("approve"), held=held(), previous=by_creator, profile=profile(),
                  by=Actor.operator) is by_creator
    # A decision recorded before decided_by existed reads as it always did.
    old = by_creator.model_copy(update={"decided_by": None})
    assert review_outputs(old)[-1].event.reasons[0].message == "The creator approved this reply."


def test_profile_versions_record_who_made_them_whatever_the_body_says():
    current = profile(version=4, updated_by=Actor.operator)
    mine = next_profile(profile(persona="A baker.", updated_by=Actor.operator), current, NOW, Actor.creator,
                        version_sent=False)
    assert mine is not None and mine.updated_by == Actor.creator
    # Who sent it is not content: the same body from someone else writes nothing.
    assert next_profile(profile(version=4, updated_by=Actor.creator), current, NOW, Actor.creator,
                        version_sent=True) is None
    off = with_mode(current, ReplyMode.off, NOW, Actor.creator)
    assert off is not None and off.updated_by == Actor.creator


def test_a_creator_may_change_their_voice_and_controls_but_not_the_operators_fields():
    current = profile(platform_accounts={"youtube": "UC-mara"}, policy_overrides={"verify.links": {"enabled": True}})
    same_operator_fields = {"platform_accounts": {"youtube": "UC-mara"},
                            "policy_overrides": {"verify.links": {"enabled": True}}}
    check_creator_change(profile(**same_operator_fields, persona="A baker.", mode="off", banned_words=["cheap"],
                                 topics_to_avoid=["politics"], allowed_links=["mara.example"],
                                 example_replies=["Thanks!"], authenticity_threshold=0.3, reply_budget_per_hour=5,
                                 languages=["de"], display_name="Mara B."), current)
    with pytest.raises(OperatorOnly) as err:
        check_creator_change(profile(platform_accounts={"youtube": "UC-someone-else"},
                                     policy_overrides={"verify.links": {"enabled": False}},
                                     disclosure_label="[Mara]", generation={"max_tokens": 2048}), current)
    assert [d["field"] for d in err.value.details] == [
        "platform_accounts", "policy_overrides", "disclosure_label", "generation"]


@pytest.mark.parametrize("label", [" ", "\u200b", "\u00ad\u2060", "...", "  -  "])
def test_an_ai_label_nobody_can_see_is_refused(label):
    with pytest.raises(ValidationError, match="visible letter, digit or symbol"):
        profile(disclosure_label=label)
    assert profile(disclosure_label="🤖").disclosure_label == "🤖"
    with pytest.raises(OperatorOnly) as err:
        check_creator_change(profile(), None)
    assert "only the operator creates profiles" in str(err.value)


@functools.cache
def policy_checks() -> PolicyStages:
    return PolicyStages(lambda creator_id: None, PolicySource(None))  # the bundled policy, as the service runs it


def check_edit(text: str, comment: Comment, creator: CreatorProfile) -> list[Reason]:
    return policy_checks().edit_reasons(text, comment, creator, NOW.timestamp())


@pytest.mark.parametrize("text, says", [
    ("Call me on +1 415 555 0134 and we'll sort it", "personal data"),
    ("Full recipe at https://cheap-pans.example.net/deal", "link_not_allowed"),
    ("Honestly it's the best, use my promo code", "banned_word"),
    ("I'm a real person, not a bot!", "claims_human"),
])
def test_an_edit_is_held_to_the_policys_reject_rules(text, says):
    creator = profile(banned_words=["promo code"])
    with pytest.raises(InvalidReview) as err:
        decide(request("edit", text=text), held=held(), previous=None, profile=creator, by=Actor.creator,
               check_edit=check_edit)
    assert says in str(err.value)


def test_approving_a_reply_held_under_an_older_profile_checks_it_against_the_current_one():
    keto = held(text="Grab the keto loaf recipe at mara.example.com/keto [AI reply]")  # held under version 3
    still_fine = profile(version=3, allowed_links=["mara.example.com"])
    assert decide(request("approve"), held=keto, previous=None, profile=still_fine, by=Actor.creator,
                  check_edit=check_edit).text == keto.text
    since = profile(version=4, banned_words=["keto"], allowed_links=[])
    with pytest.raises(InvalidReview) as err:
        decide(request("approve"), held=keto, previous=None, profile=since, by=Actor.creator, check_edit=check_edit)
    assert "banned_word" in str(err.value) and "link_not_allowed" in str(err.value)


@pytest.mark.parametrize("text, held_for", [
    ("Rest it an hour, then bake it hot!", set()),
    ("Full recipe at https://mara.example.com/bread", set()),  # on the allowlist
    # commitments: the policy would hold a draft for review, and this edit is the review
    ("I promise I will send you a free signed copy", {"offers_free_product", "makes_promise"}),
])
def test_an_edit_the_policy_would_only_hold_for_review_goes_through(text, held_for):
    creator = profile(allowed_links=["mara.example.com"])
    found = check_edit(f"{text} [AI reply]", held().comment, creator)
    assert {r.code for r in found} == held_for and all(r.action == Action.review for r in found)
    decided = decide(request("edit", text=text), held=held(), previous=None, profile=creator, by=Actor.creator,
                     check_edit=check_edit)
    assert decided.text == f"{text} [AI reply]"

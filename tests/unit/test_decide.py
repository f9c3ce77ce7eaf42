import os
from datetime import UTC, datetime

from replyflow.events import (
    Action,
    CheckRule,
    Comment,
    CreatorProfile,
    Outcome,
    Platform,
    Reason,
    ReplyMode,
    ReplyVerdict,
)
from replyflow.policy.decide import Deliveries, ReplyBudget, Verdicts, screen_verdict, verify_verdict
from replyflow.policy.findings import Finding
from replyflow.policy.rules import PolicySource

POLICY = PolicySource().current(0)


def profile(**over) -> CreatorProfile:
    base = {"creator_id": "c", "display_name": "Cee", "persona": "warm", "mode": ReplyMode.auto}
    return CreatorProfile(**{**base, **over})


COMMENT = Comment(platform="youtube", comment_id="c1", creator_id="c", post_id="p", author_id="a",
                  author_name="Ann", text="hello", created_at=datetime.now(UTC))


def test_unknown_creator_and_mode_off_are_skipped_with_reasons():
    v = screen_verdict(COMMENT, None, [], POLICY, ReplyBudget(), 0)
    assert (v.outcome, v.reasons[0].code) == (Outcome.skipped, "unknown_creator")
    v = screen_verdict(COMMENT, profile(mode=ReplyMode.off), [], POLICY, ReplyBudget(), 0)
    assert (v.outcome, v.reasons[0].code) == (Outcome.skipped, "reply_mode_off")


def test_a_comment_with_nothing_visible_in_it_is_skipped_before_it_spends_the_budget():
    budget = ReplyBudget()
    for text in (" ", "\n\n", "\u200b\u200d", "\u202e", "?!...", "\u2800", "\u3164\u3164"):
        blank = COMMENT.model_copy(update={"text": text, "comment_id": f"blank-{text!r}"})
        v = screen_verdict(blank, profile(reply_budget_per_hour=1), [], POLICY, budget, 0)
        assert (v.outcome, v.reasons[0].code) == (Outcome.skipped, "nothing_to_answer"), text
    for text in ("ok", "7", "\U0001f44d", "\u2764\ufe0f"):  # a word, a digit, an emoji: something to answer
        seen = COMMENT.model_copy(update={"text": text, "comment_id": f"seen-{text!r}"})
        assert screen_verdict(seen, profile(), [], POLICY, ReplyBudget(), 0).outcome == Outcome.eligible, text
    assert screen_verdict(COMMENT, profile(reply_budget_per_hour=1), [], POLICY, budget, 0).outcome == Outcome.eligible


def test_a_skip_finding_skips_and_a_review_finding_passes_through():
    spam = Finding("spam", "spam", "Looks like spam.", 0.97)
    pii = Finding("personal_data", "email_address", "Contains an email address.", 1.0)
    assert screen_verdict(COMMENT, profile(), [spam], POLICY, ReplyBudget(), 0).outcome == Outcome.skipped
    v = screen_verdict(COMMENT, profile(), [pii], POLICY, ReplyBudget(), 0)
    assert v.outcome == Outcome.eligible and v.reasons[0].action == Action.review


def test_scores_below_threshold_do_not_fire():
    weak = Finding("spam", "spam", "Might be spam.", 0.2)
    assert screen_verdict(COMMENT, profile(), [weak], POLICY, ReplyBudget(), 0).reasons == []


def test_creator_override_replaces_the_platform_rule():
    spam = Finding("spam", "spam", "Looks like spam.", 0.97)
    lenient = profile(policy_overrides={"screen.spam": CheckRule(action=Action.review)})
    assert screen_verdict(COMMENT, lenient, [spam], POLICY, ReplyBudget(), 0).outcome == Outcome.eligible


def test_budget_is_per_creator_per_rolling_hour():
    budget = ReplyBudget()
    capped = profile(reply_budget_per_hour=2)
    comments = [COMMENT.model_copy(update={"comment_id": f"c{i}"}) for i in range(4)]
    outcomes = [screen_verdict(c, capped, [], POLICY, budget, t).outcome for t, c in enumerate(comments[:3])]
    assert outcomes == [Outcome.eligible, Outcome.eligible, Outcome.skipped]
    assert screen_verdict(comments[3], capped, [], POLICY, budget, 3601).outcome == Outcome.eligible


def test_a_replica_spends_its_share_of_the_budget_rounded_up():
    budget, capped = ReplyBudget(), profile(reply_budget_per_hour=5)
    comments = [COMMENT.model_copy(update={"comment_id": f"c{i}"}) for i in range(5)]
    # Half the partitions: 2.5 of the 5 an hour, so 3; the other half's replica spends its 3 on its own comments.
    outcomes = [screen_verdict(c, capped, [], POLICY, budget, 0, budget_share=0.5).outcome for c in comments]
    assert outcomes == [Outcome.eligible] * 3 + [Outcome.skipped] * 2
    sixth = ReplyBudget()  # one of six replicas, one partition each: 5/6 of a reply, so one
    assert [sixth.try_spend("c", f"c{i}", 5, 0, share=1 / 6) for i in range(2)] == [True, False]
    assert not ReplyBudget().try_spend("c", "c1", 0, 0, share=0.5)  # a budget of 0 stays 0


def test_spends_read_back_from_the_topic_free_a_replicas_share_and_count_against_every_replica():
    # One of six replicas, budget 5: a share of 5/6 of a reply while its spends are not seen on the topic yet.
    budget = ReplyBudget()
    assert budget.try_spend("c", "c1", 5, 9, share=1 / 6)
    assert not budget.try_spend("c", "c2", 5, 10, share=1 / 6)  # c1 not read back yet: the share is used
    budget.record("c", "c1", 10.5)  # c1 on comments.screened (late); the other replicas see it within settle_s
    assert not budget.try_spend("c", "c2", 5, 12, share=1 / 6)
    assert budget.try_spend("c", "c2", 5, 16, share=1 / 6)  # settled: a creator under budget is not cut short
    for i, at in enumerate((16.5, 16.6, 16.7)):  # other replicas' spends
        budget.record("c", f"other-{i}", at)
    budget.record("c", "c2", 16.8)
    assert not budget.try_spend("c", "c3", 5, 30, share=1 / 6)  # 5 spent between them
    assert budget.try_spend("c", "c1", 5, 30, share=1 / 6)  # c1 was spent: a retried batch is still eligible
    assert budget.try_spend("c", "c3", 5, 3611, share=1 / 6)  # c1 left the window


def test_a_spend_never_read_back_stays_unsettled_until_it_is_and_the_window_forgets_everything():
    budget = ReplyBudget()
    assert budget.try_spend("c", "lost", 10, 0, share=0.1)  # its output not read back (a slow topic, say)
    assert not budget.try_spend("c", "c2", 10, 60, share=0.1)  # long past settle_s, still unseen: still counts
    budget.record("c", "lost", 61)
    assert budget.try_spend("c", "c2", 10, 62, share=0.1)
    budget.record("c", "c2", 62.5)
    budget.try_spend("other", "x", 10, 7200)  # an hour later: c's spends left the window
    assert "c" not in budget._seen and "c" not in budget._own and "c" not in budget._unsettled


def test_a_restarted_replica_reads_the_hour_back_before_it_spends():
    budget = ReplyBudget()
    for i in range(3):
        budget.record("c", f"before-restart-{i}", 100 + i)
    assert not budget.try_spend("c", "new", 3, 200)
    assert budget.try_spend("c", "new", 3, 3700.5)  # the first of them left the window


def test_a_comment_screened_again_does_not_spend_the_budget_twice():
    budget = ReplyBudget()
    capped = profile(reply_budget_per_hour=2)
    first, second, third = (COMMENT.model_copy(update={"comment_id": f"c{i}"}) for i in range(3))
    # A batch retried after Kafka refused its outputs screens the same comments again.
    for _ in range(3):
        assert [screen_verdict(c, capped, [], POLICY, budget, 10).outcome for c in (first, second)] == [
            Outcome.eligible, Outcome.eligible]
    assert screen_verdict(third, capped, [], POLICY, budget, 11).outcome == Outcome.skipped
    assert screen_verdict(first, capped, [], POLICY, budget, 3609).outcome == Outcome.eligible  # spent in the window
    assert screen_verdict(third, capped, [], POLICY, budget, 3611).outcome == Outcome.eligible  # the window moved on


def test_a_comment_delivered_again_is_screened_once_and_the_same_event_again_is_no_repeat():
    deliveries = Deliveries(window_s=3600)
    other_platform = COMMENT.model_copy(update={"platform": Platform.instagram})  # same id, another platform's comment
    assert deliveries.repeat_of(COMMENT, "e1", 0) is None
    assert deliveries.repeat_of(COMMENT, "e1", 5) is None  # a retried batch: the same event, screened as before
    assert deliveries.repeat_of(COMMENT, "e2", 10) == "e1"  # the platform sent it again: a new event
    assert deliveries.repeat_of(other_platform, "e3", 10) is None
    assert deliveries.repeat_of(COMMENT, "e4", 3600) is None  # the window moved on: remembered afresh
    assert deliveries.repeat_of(COMMENT, "e1", 3601) == "e4"


def test_deliveries_remember_at_most_max_comments_oldest_forgotten_first():
    deliveries = Deliveries(max_comments=2)
    first, second, third = (COMMENT.model_copy(update={"comment_id": f"c{i}"}) for i in range(3))
    for i, comment in enumerate((first, second, third)):
        assert deliveries.repeat_of(comment, f"e{i}", i) is None
    assert deliveries.repeat_of(third, "again", 3) == "e2"
    assert deliveries.repeat_of(first, "again", 3) is None  # forgotten to make room


def sent(reply_id: str, outcome: Outcome, code: str = "none") -> ReplyVerdict:
    return ReplyVerdict(comment=COMMENT, reply_id=reply_id, text="Hi! [AI reply]", outcome=outcome,
                        reasons=[Reason(check="x", code=code, message="m", action=Action.review)],
                        policy_version="p1", profile_version=3)


def test_the_first_verdict_sent_about_a_reply_is_the_one_remembered():
    verdicts = Verdicts()
    verdicts.record(sent("r1", Outcome.approved), 0)
    verdicts.record(sent("r1", Outcome.held, "profile_changed"), 5)  # the publisher's hold after all: not the first
    first = verdicts.first("r1")
    assert first is not None and first.outcome == Outcome.approved and first.reasons[0].code == "none"
    assert (first.policy_version, first.profile_version) == ("p1", 3)
    assert verdicts.first("r2") is None


def test_the_earliest_verdict_is_the_first_whatever_topic_is_read_first_and_a_persons_approval_is_none():
    verdicts = Verdicts()
    approved_by_creator = sent("r1", Outcome.approved).model_copy(update={"reasons": [
        Reason(check="review", code="creator_approved", message="m", action=Action.allow)]})
    verdicts.record(approved_by_creator, 50)  # replies.approved is read before replies.review at start
    verdicts.record(sent("r1", Outcome.held, "profile_changed"), 40)  # the publisher's hold after all
    verdicts.record(sent("r1", Outcome.held, "creator_reviews_all"), 10)  # verify's own, read last
    first = verdicts.first("r1")
    assert first is not None and (first.outcome, first.reasons[0].code) == (Outcome.held, "creator_reviews_all")


def test_verdicts_are_remembered_for_the_window_and_at_most_max_replies():
    verdicts = Verdicts(window_s=900, max_replies=2)
    verdicts.record(sent("r1", Outcome.approved), 0)
    verdicts.record(sent("r2", Outcome.held), 100)
    verdicts.record(sent("r3", Outcome.approved), 200)  # room made: r1, the oldest, goes
    assert verdicts.first("r1") is None and verdicts.first("r2") is not None
    verdicts.record(sent("r4", Outcome.approved), 1_050)  # r2 is older than the window by now
    assert verdicts.first("r2") is None and verdicts.first("r3") is not None


def test_verify_outcomes():
    link = Finding("links", "link_not_allowed", "Links to evil.example.", None)
    topic = Finding("topics_to_avoid", "avoided_topic", "Mentions diets.", None)
    assert verify_verdict(profile(), [], [], POLICY).outcome == Outcome.approved
    assert verify_verdict(profile(), [link], [], POLICY).outcome == Outcome.rejected
    assert verify_verdict(profile(), [topic], [], POLICY).outcome == Outcome.held
    assert verify_verdict(profile(mode=ReplyMode.review), [], [], POLICY).reasons[-1].code == "creator_reviews_all"
    assert verify_verdict(profile(mode=ReplyMode.off), [], [], POLICY).outcome == Outcome.skipped


def test_review_reasons_from_the_screen_hold_the_draft():
    carried = Reason(check="personal_data", code="email_address", message="m", action=Action.review)
    assert verify_verdict(profile(), [], [carried], POLICY).outcome == Outcome.held


def test_policy_file_changes_apply_without_restart(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(PolicySource().path.read_text())
    source = PolicySource(path)
    assert source.current(0).rule("screen", "spam").action == Action.skip
    changed = POLICY.model_copy(update={"version": "test.2", "screen": {
        **POLICY.screen, "spam": CheckRule(threshold=0.5, action=Action.review)}})
    path.write_text(changed.model_dump_json())
    os.utime(path, (2_000_000_000, 2_000_000_000))  # a new mtime, whatever the clock resolution
    assert source.current(0.5).version != "test.2"  # re-checked at most once a second
    policy = source.current(2.0)
    assert (policy.version, policy.rule("screen", "spam").action) == ("test.2", Action.review)

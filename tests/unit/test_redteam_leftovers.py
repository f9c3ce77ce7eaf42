"""Gaps left from the red-team pass over ``PolicyStages.verify()`` and ``screen()``: look-alike link hosts, famous
places read as street addresses, rest-up replies held as medical talk, fans who follow the creator read as spam."""

from __future__ import annotations

from itertools import count

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
from replyflow.policy.classifiers import SpamClassifier, detect_personal_data
from replyflow.policy.rules import PolicySource
from replyflow.policy.stages import PolicyStages
from replyflow.policy.verify_checks import check_links, check_specialised_advice, check_topics, run_checks
from tests.unit.test_verify_checks import COMMENT, codes, make_profile

PAYPAL = make_profile(allowed_links=["miacooks.com", "paypal.com"])
COACH = make_profile(creator_id="coach-dev", display_name="Coach Dev", disclosure_label="[AI-drafted reply · Team Dev]",
                     topics_to_avoid=["supplements and pre-workouts", "diagnosing pain or injuries"],
                     banned_words=["steroids"], allowed_links=["coachdev.example"])


IDS = count()  # every comment and draft a new one: the stages decide each only once


def comment(text: str, creator_id: str = "mia") -> Comment:
    return Comment(platform="youtube", comment_id=f"c{next(IDS)}", creator_id=creator_id, post_id="p", author_id="a",
                   author_name="A", text=text, created_at="2025-06-02T08:00:00Z")


@pytest.fixture(scope="module")
def stages() -> PolicyStages:
    profiles = {"mia": PAYPAL, "coach-dev": COACH}
    return PolicyStages(profiles.get, PolicySource())


def verify_decision(stages: PolicyStages, profile: CreatorProfile, draft: str) -> Decision:
    event = ReplyDrafted(comment=comment("Any tips?", profile.creator_id), reply_id=f"r{next(IDS)}", text=draft,
                         profile_version=profile.version,
                         generation=GenerationStats(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1))
    (decision,) = [e.event for e in stages.verify([event], 0.0) if isinstance(e.event, Decision)]
    return decision


# -- 1. look-alike link hosts ----------------------------------------------------------------------

CYRILLIC_PAYPAL = "\u0440\u0430\u0443\u0440\u0430\u04cf"  # every letter Cyrillic, each with a Latin twin


@pytest.mark.parametrize(("draft", "host", "reads_as"), [
    ("visit evil.c\u03bfm", "evil.c\u03bfm", "evil.com"),  # Greek omicron in the TLD: no link at all before
    ("Visit EVIL.C\u039fM today", "evil.c\u03bfm", "evil.com"),  # capital omicron
    ("pay at p\u0430ypal.com", "p\u0430ypal.com", "paypal.com"),  # Cyrillic а: a look-alike of an allowed domain
    ("https://p\u0430ypal.com/login", "p\u0430ypal.com", "paypal.com"),
    ("write to help@p\u0430ypal.com", "p\u0430ypal.com", "paypal.com"),
    (f"visit {CYRILLIC_PAYPAL}.\u0441\u043e\u043c", f"{CYRILLIC_PAYPAL}.\u0441\u043e\u043c", "paypal.com"),
    (f"{CYRILLIC_PAYPAL}.com/login", f"{CYRILLIC_PAYPAL}.com", "paypal.com"),
    ("Shop at shop.miac\u043e\u043eks.com", "shop.miac\u043e\u043eks.com", "shop.miacooks.com"),
    ("b\u0456t.ly/x", "b\u0456t.ly", "bit.ly"),
])
def test_hosts_spelt_with_lookalike_letters_are_never_sent(draft: str, host: str, reads_as: str) -> None:
    [finding] = check_links(draft, COMMENT, PAYPAL)
    assert (finding.check, finding.code) == ("links", "lookalike_link"), draft
    assert host in finding.message and f"reads as {reads_as}" in finding.message


def test_the_real_allowed_domain_still_passes_and_ordinary_links_keep_their_reason() -> None:
    assert check_links("Pay at paypal.com/checkout or miacooks.com", COMMENT, PAYPAL) == []
    assert codes(check_links("see evil.com", COMMENT, PAYPAL)) == {("links", "link_not_allowed")}


@pytest.mark.parametrize("text", [
    "\u0421\u043f\u0430\u0441\u0438\u0431\u043e.\u0414\u0430",  # Спасибо.Да
    "\u0395\u03c5\u03c7\u03b1\u03c1\u03b9\u03c3\u03c4\u03ce.\u039d\u03b1\u03b9",  # Ευχαριστώ.Ναι
    "\u0414\u0430.\u041d\u043e \u044f \u043d\u0435 \u0437\u043d\u0430\u044e",  # Да.Но я не знаю: "но" folds to "no"
    "\u039a\u03b1\u03b9.\u03a4\u03bf \u03c3\u03c0\u03af\u03c4\u03b9",  # Και.Το σπίτι: "το" folds to "to"
    "\u041f\u0440\u0438\u0432\u0435\u0442! \u0412\u0441\u0451 \u0445\u043e\u0440\u043e\u0448\u043e.\u0421\u043f\u0430"
    "\u0441\u0438\u0431\u043e",  # Привет! Всё хорошо.Спасибо
    "Caf\u00e9 au lait \u00e0 Paris.Tr\u00e8s bon",
])
def test_non_latin_sentences_run_together_over_a_full_stop_are_no_link(text: str) -> None:
    assert check_links(text, COMMENT, PAYPAL) == [], text


@pytest.mark.parametrize("host", ["\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "m\u00fcnchen.de"])
def test_a_host_in_one_script_of_its_own_is_an_ordinary_link(host: str) -> None:
    assert codes(check_links(f"see {host}", COMMENT, PAYPAL)) == {("links", "link_not_allowed")}
    assert check_links(f"see {host}", COMMENT, make_profile(allowed_links=[host])) == []


def test_verify_rejects_a_lookalike_link_to_an_allowed_domain(stages: PolicyStages) -> None:
    decision = verify_decision(stages, PAYPAL, "Pay via p\u0430ypal.com 💛")
    assert decision.outcome == Outcome.rejected
    assert [(r.check, r.code) for r in decision.reasons] == [("links", "lookalike_link")]
    assert verify_decision(stages, PAYPAL, "Pay via paypal.com 💛").outcome == Outcome.approved


# -- 2. famous places are no street address -------------------------------------------------------


@pytest.mark.parametrize("text", [
    "I walked past 10 Downing Street last week",
    "We took a selfie outside 221B Baker Street!",
    "Have you been to 1600 Pennsylvania Avenue?",
    "Drove past the famous 10 Downing Street on the bus tour",
    "There's a great bakery opposite 42 Elm Street",
])
def test_a_house_number_passed_or_visited_in_a_story_is_no_address(text: str) -> None:
    assert ("personal_data", "street_address") not in codes(detect_personal_data(text)), text


@pytest.mark.parametrize("text", [
    "I live at 42 Elm Street, apt 3",
    "send it to 1600 Maple Avenue Springfield",
    "Ship it to 10 Downing Street",
    "I walked past 42 Elm Street, apt 3 is mine",  # a unit: an address whatever the story
    "We walked past the park to my place at 42 Elm Street",
    "42 Elm Street",  # an address given, not a place passed
])
def test_an_address_that_is_someones_still_is(text: str) -> None:
    assert ("personal_data", "street_address") in codes(detect_personal_data(text)), text


def test_verify_lets_a_landmark_through_and_rejects_a_home_address(stages: PolicyStages) -> None:
    assert verify_decision(stages, PAYPAL, "I walked past 10 Downing Street last week 💛").outcome == Outcome.approved
    decision = verify_decision(stages, PAYPAL, "I live at 42 Elm Street, apt 3 💛")
    assert decision.outcome == Outcome.rejected
    assert ("personal_data", "street_address") in {(r.check, r.code) for r in decision.reasons}


# -- 3. encouragement to rest is no medical advice --------------------------------------------------


@pytest.mark.parametrize("draft", [
    "Injuries aren't worth it, rest up!",
    "Injuries are no joke, take it slow",
    "Sorry about the injury, rest up 💪",
    "Rest up and see a physio if it still hurts",
    "Do you have any injuries? See a physio first",
])
def test_rest_up_replies_are_clear_for_a_creator_who_avoids_diagnosing_injuries(draft: str) -> None:
    assert run_checks(draft, COMMENT, COACH) == [], draft


@pytest.mark.parametrize(("draft", "code"), [
    ("Take 800 mg ibuprofen and rest", "medical_dosage"),
    ("Stop taking your medication for a week", "medication_change"),
    ("That's a torn ACL, you need surgery", "diagnosis"),
    ("That's a torn ACL, you need surgery", "medical_advice"),
    ("You'll need knee surgery for that", "medical_advice"),
    ("That sounds like an injury to me", "diagnosis"),
    ("Sounds like a sprained ankle, ice it", "diagnosis"),
    ("It's a pulled hamstring", "diagnosis"),
])
def test_specific_medical_advice_is_still_caught(draft: str, code: str) -> None:
    assert ("specialised_advice", code) in codes(check_specialised_advice(draft, COMMENT, COACH)), draft


@pytest.mark.parametrize("draft", [
    "That's a pulled pork shoulder, slow cook it", "It's a broken record at this point",
    "Sounds like a great injury prevention plan", "You need surgery-level precision for this cake",
    "That's a broken link, try again",
])
def test_injury_words_in_other_senses_are_no_diagnosis(draft: str) -> None:
    assert check_specialised_advice(draft, COMMENT, COACH) == [], draft


def test_a_topic_of_talk_still_counts_every_mention() -> None:
    # "diagnosing ... injuries" is not avoided by a mention of injuries; "discussing ... elections" is.
    talk = make_profile(topics_to_avoid=["discussing politics or elections"])
    assert codes(check_topics("Who won the elections?", COMMENT, talk)) == {("topics_to_avoid", "topic_to_avoid")}
    assert codes(check_topics("Diagnosing injuries from a clip is tricky", COMMENT, COACH)) == {
        ("topics_to_avoid", "topic_to_avoid")}


def test_verify_approves_a_rest_up_reply_and_holds_a_diagnosis(stages: PolicyStages) -> None:
    assert verify_decision(stages, COACH, "Injuries aren't worth it, rest up!").outcome == Outcome.approved
    decision = verify_decision(stages, COACH, "That's a torn ACL, you need surgery")
    assert decision.outcome == Outcome.held
    assert {(r.check, r.code) for r in decision.reasons} == {("specialised_advice", "diagnosis"),
                                                             ("specialised_advice", "medical_advice")}


# -- 4. a fan who follows the creator is no spammer -----------------------------------------------


@pytest.fixture(scope="module")
def spam() -> SpamClassifier:
    return SpamClassifier.load()


@pytest.mark.parametrize("text", ["I follow you from Mexico", "I've been following you since 2019, love the pasta",
                                  "we follow you from Brazil ❤️", "been following u for years!"])
def test_following_the_creator_is_no_spam_evidence(spam: SpamClassifier, text: str) -> None:
    assert spam.scores([text])[0] < spam.threshold


@pytest.mark.parametrize("text", ["Follow me on insta", "I'll follow you if you follow me", "I follow you back",
                                  "Follow 4 Follow", "I followed you, follow back pls"])
def test_asking_for_followers_still_is(spam: SpamClassifier, text: str) -> None:
    assert spam.scores([text])[0] >= spam.threshold


@pytest.mark.parametrize("text", ["clear, no bs, no supplements pushed. instantly subscribed",
                                  "Subscribed! More pasta please", "Just subbed! Love the recipes",
                                  "I've subscribed, can't wait for the next one"])
def test_a_fan_who_subscribed_is_no_spammer(spam: SpamClassifier, text: str) -> None:
    assert spam.scores([text])[0] < spam.threshold


@pytest.mark.parametrize("text", ["sub4sub anyone? I subscribed to you, subscribe back",
                                  "I subscribed to you, now subscribe to me", "I just subscribed, check out my channel",
                                  "subscribe to my channel", "I subbed back, sub to me"])
def test_asking_for_subscribers_still_is_spam(spam: SpamClassifier, text: str) -> None:
    assert spam.scores([text])[0] >= spam.threshold


def test_screen_lets_a_fan_who_follows_the_creator_through(stages: PolicyStages) -> None:
    events = [CommentReceived(comment=comment(text)) for text in ("I follow you from Mexico", "Follow me on insta")]
    outcomes = [e.event.outcome for e in stages.screen(events, 0.0) if isinstance(e.event, Decision)]
    assert outcomes == [Outcome.eligible, Outcome.skipped]

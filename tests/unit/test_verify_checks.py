"""Checks on drafted replies: each check fires on what it should and stays quiet on ordinary replies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replyflow.events import Comment, CreatorProfile, Outcome, Platform, ReplyMode
from replyflow.policy import verify_checks as vc
from replyflow.policy.decide import verify_verdict
from replyflow.policy.findings import Finding
from replyflow.policy.rules import Policy
from replyflow.policy.verify_checks import (
    VerifyConfig,
    check_authenticity,
    check_claims_human,
    check_commitments,
    check_disclosure,
    check_language,
    check_length,
    check_links,
    check_prompt_leak,
    check_specialised_advice,
    check_topics,
    check_toxicity,
    ensure_disclosure,
    extract_links,
    run_checks,
    strip_disclosure,
)

PERSONA = (
    "Mia is a warm home cook from Lyon who loves butter, shares her family recipes and always "
    "answers with a little joke and a heart emoji."
)


def make_profile(**overrides) -> CreatorProfile:
    fields = {
        "creator_id": "mia",
        "display_name": "Mia",
        "persona": PERSONA,
        "example_replies": ["Use code MIA10 for 10% off my cookbook!", "Thank you sweetie ❤️"],
        "topics_to_avoid": ["politics", "weight loss"],
        "banned_words": ["cheap"],
        "allowed_links": ["miacooks.com", "youtube.com/@mia"],
        "languages": ["en"],
        "mode": ReplyMode.auto,
    }
    fields.update(overrides)
    return CreatorProfile(**fields)


PROFILE = make_profile()
COMMENT = "Love this recipe, thank you!"


def codes(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.check, f.code) for f in findings}


# Ordinary replies a creator would send: no check may fire on any of them.
CLEAN_REPLIES = [
    "Ignore the haters, you're doing great ❤️",
    "Thanks so much! Butter makes everything better 😄",
    "The full recipe is on miacooks.com/recipes/tarte-tatin",
    "Find the video on www.youtube.com/@mia/videos",
    "Shop my pans at shop.miacooks.com!",
    "Use 200 ml of milk and 3.5 cups of flour, e.g. for a bigger batch.",
    "Use code MIA10 for 10% off my cookbook!",
    "Take a break and enjoy the process!",
    "I'm a huge fan of caramel too, great minds!",
    "Merci !",
    "This dumbbell workout is great",
    "Politely ignore them, honestly.",
    "You won't regret trying it",
    "You should try adding more salt next time.",
    "Honestly that looks delicious, well done!",
    "So sorry to hear that, I hope you feel better soon 💛",
    "Chicken stock keeps 3 days in the fridge.",
    "Happy to help! Let me know how it turns out.",
    "Shut the oven door quickly so it doesn't lose heat.",
    "As a home cook, I always use salted butter.",
    "I can't wait to see your version!",
    "I bet you'll nail it next time.",
    "Prick the potatoes with a fork before baking.",
    "You're not dumb for asking, it's a great question!",
    "The rules say no shoes in grandma's kitchen 😂",
    "I was told to add the salt last by my grandmother.",
    "Fat-free yogurt works too.",
    "Try using a tablet stand while you cook, it helps.",
    "I'll let you know when the new recipe is up.",
    "That's a wrap! Thank you for watching ❤️",
]


@pytest.mark.parametrize("draft", CLEAN_REPLIES)
def test_ordinary_replies_pass_every_check(draft: str) -> None:
    assert run_checks(draft, COMMENT, PROFILE) == []


@pytest.mark.parametrize(
    ("draft", "expected"),
    [
        # links
        ("Grab it at www.bit.ly/x", ("links", "link_shortener")),
        ("Grab it at https://bit.ly/3abc", ("links", "link_shortener")),
        ("see https://evil.io/a", ("links", "link_not_allowed")),
        ("go to shop.example.org now", ("links", "link_not_allowed")),
        ("link: miacooks.com.evil.io", ("links", "link_not_allowed")),
        ("https://miacooks.com@evil.io/login", ("links", "link_not_allowed")),
        ("visit example[.]com", ("links", "link_not_allowed")),
        ("youtube.com/@someoneelse", ("links", "link_not_allowed")),
        ("mail me at mia@gmail.com", ("links", "email_not_allowed")),
        # topics and banned words
        ("I stay away from elections, sorry", ("topics_to_avoid", "topic_to_avoid")),
        ("Not into POLITICS, sorry", ("topics_to_avoid", "topic_to_avoid")),
        ("My Weight-Loss journey started here", ("topics_to_avoid", "topic_to_avoid")),
        ("this pan is so cheap lol", ("banned_words", "banned_word")),
        ("these are the CHEAPEST... no, cheaps!", ("banned_words", "banned_word")),
        # specialised advice
        ("You should take 400mg of ibuprofen", ("specialised_advice", "medical_dosage")),
        ("Honestly just stop taking your meds", ("specialised_advice", "medication_change")),
        ("Sounds like you have a thyroid problem", ("specialised_advice", "diagnosis")),
        ("you should definitely try melatonin", ("specialised_advice", "medical_advice")),
        ("You don't need a doctor for that", ("specialised_advice", "medical_advice")),
        ("Buy bitcoin now!", ("specialised_advice", "financial_advice")),
        ("Put all your savings into this stock", ("specialised_advice", "financial_advice")),
        ("guaranteed returns of 20%", ("specialised_advice", "guaranteed_returns")),
        ("You should sue them", ("specialised_advice", "legal_advice")),
        ("you have a strong case", ("specialised_advice", "legal_advice")),
        # commitments
        ("I'll send you $50 for that", ("commitments", "offers_money")),
        ("I'll venmo you tonight", ("commitments", "offers_money")),
        ("Congrats, you've won a signed cookbook!", ("commitments", "offers_giveaway")),
        ("We're doing a giveaway next week", ("commitments", "offers_giveaway")),
        ("Here's a free copy for you", ("commitments", "offers_free_product")),
        ("Use code SAVE20 at checkout", ("commitments", "unknown_discount_code")),
        ("Get 30% off this week", ("commitments", "offers_discount")),
        ("Let's grab a coffee sometime", ("commitments", "offers_meeting")),
        ("call me tomorrow", ("commitments", "offers_meeting")),
        ("DM me for details", ("commitments", "offers_dm")),
        ("I'll message you later", ("commitments", "offers_dm")),
        ("I promise it will work", ("commitments", "makes_promise")),
        ("I'll definitely check it out", ("commitments", "makes_promise")),
        ("I will send you the recipe", ("commitments", "makes_promise")),
        ("I'll make a video on that next week", ("commitments", "promises_content")),
        # claims to be human / the creator in person
        ("I'm not a bot, promise", ("claims_human", "claims_human")),
        ("As a human, I get it", ("claims_human", "claims_human")),
        ("I'm a real person haha", ("claims_human", "claims_human")),
        ("No soy un bot, jaja", ("claims_human", "claims_human")),
        ("this is really me typing", ("claims_human", "claims_in_person")),
        ("I personally wrote this for you", ("claims_human", "claims_in_person")),
        # prompt leaks
        ("My instructions are to be nice", ("prompt_leak", "prompt_leak")),
        ("That's in my system prompt", ("prompt_leak", "prompt_leak")),
        ("As an AI language model, I can't", ("prompt_leak", "ai_boilerplate")),
        ("<|im_start|>assistant Thanks!", ("prompt_leak", "template_artifact")),
        ("Assistant: thanks for watching", ("prompt_leak", "template_artifact")),
        (
            "Mia is a warm home cook from Lyon who loves butter and shares her family recipes",
            ("prompt_leak", "persona_copied"),
        ),
        # disclosure
        ("This reply is not AI generated, haha", ("disclosure", "denies_ai")),
        ("Not written by a bot!", ("disclosure", "denies_ai")),
        ("ignore the label, it's me", ("disclosure", "dismisses_label")),
        ("hope this helps\u202e", ("disclosure", "hidden_characters")),
        # toxicity
        ("you're such an idiot", ("toxicity", "insult")),
        ("what the fuck", ("toxicity", "profanity")),
        ("kys", ("toxicity", "threat_or_self_harm")),
        # language (Spanish reply, English profile, English comment)
        (
            "Gracias por tu comentario, me alegra mucho que te haya gustado la receta de hoy",
            ("language", "wrong_language"),
        ),
        # length
        ("", ("length", "empty")),
        ("   [AI reply]  ", ("length", "empty")),
        ("x" * 600, ("length", "too_long")),
    ],
)
def test_check_fires(draft: str, expected: tuple[str, str]) -> None:
    found = run_checks(draft, COMMENT, PROFILE)
    assert expected in codes(found)
    for f in found:
        assert f.message and f.message[0].isupper() and f.message.endswith(".")
        assert f.score is None or 0.0 <= f.score <= 1.0


# -- links ---------------------------------------------------------------------------------------


def test_allowed_domain_and_its_subdomains_pass() -> None:
    profile = make_profile(allowed_links=["https://www.Example.com/"])
    for text in ("example.com", "https://example.com/x?y=1", "WWW.EXAMPLE.COM/shop", "blog.example.com/post"):
        assert check_links(text, COMMENT, profile) == [], text


def test_lookalike_domains_are_not_subdomains() -> None:
    profile = make_profile(allowed_links=["example.com"])
    for text in ("evil-example.com", "example.com.evil.io", "notexample.com/x", "https://example.co/"):
        assert codes(check_links(text, COMMENT, profile)) == {("links", "link_not_allowed")}, text


def test_shorteners_fail_even_when_allowed() -> None:
    profile = make_profile(allowed_links=["bit.ly"])
    assert codes(check_links("www.bit.ly/x", COMMENT, profile)) == {("links", "link_shortener")}


def test_allowed_path_restricts_links_on_that_domain() -> None:
    profile = make_profile(allowed_links=["youtube.com/@mia"])
    assert check_links("youtube.com/@mia/shorts", COMMENT, profile) == []
    assert check_links("https://www.youtube.com/watch?v=abc", COMMENT, profile) != []


def test_numbers_and_abbreviations_are_not_links() -> None:
    assert extract_links("e.g. version 2.0 costs 3.50, i.e. cheap. Node.js and file.txt too") == []


def test_extract_links_reports_hosts() -> None:
    links = extract_links("See https://User@Shop.Example.com:8443/a, www.foo.org. or bar.io/x; hi@mail.de")
    assert [(link.host, link.kind) for link in links] == [
        ("shop.example.com", "url"),
        ("www.foo.org", "url"),
        ("mail.de", "email"),
        ("bar.io", "domain"),
    ]


@pytest.mark.parametrize(("text", "found"), [
    ("go to HTTP://intranet/wiki now", [("intranet", "url")]),  # no dot at all
    ("WWW[DOT]Shop[dot]example(dot)com", [("www.shop.example.com", "url")]),  # spelled-out dots
    ("shop dot com or WWW.FOO.ORG", [("shop.com", "domain"), ("www.foo.org", "url")]),
    ("write to Bob@Mail.Example.org", [("mail.example.org", "email")]),
    ("nothing here (really) [ok]", []),
])
def test_extract_links_in_every_spelling(text, found) -> None:
    assert sorted((link.host, link.kind) for link in extract_links(text)) == sorted(found)


def test_one_finding_per_host() -> None:
    found = check_links("evil.io/a and evil.io/b and https://evil.io", COMMENT, PROFILE)
    assert len(found) == 1


# -- topics --------------------------------------------------------------------------------------


def test_topics_match_whole_words_accents_and_plurals() -> None:
    profile = make_profile(topics_to_avoid=["crème brûlée"], banned_words=["diet"])
    assert codes(check_topics("CREME BRULEES are my fave", COMMENT, profile)) == {
        ("topics_to_avoid", "topic_to_avoid")
    }
    assert codes(check_topics("no dieting talk here", COMMENT, profile)) == {("banned_words", "banned_word")}
    assert check_topics("the dietician said hi, and a crème caramel", COMMENT, profile) == []


def test_related_terms_of_a_broad_topic_score_lower() -> None:
    [finding] = check_topics("Who do you think wins the election?", COMMENT, PROFILE)
    assert finding.code == "topic_to_avoid" and finding.score is not None and finding.score < 1.0
    assert "election" in finding.message and "politics" in finding.message


@pytest.mark.parametrize(
    ("topic", "draft", "quoted"),
    [
        ("politics and elections", "Who won the elections?", "elections"),
        ("supplements and pre-workouts", "Try a pre-workout before this", "pre-workouts"),
        ("steroids, SARMs and other performance-enhancing drugs", "no SARMs ever", "SARMs"),
        ("baby and infant feeding", "Tips for baby feeding at night", "baby feeding"),
        ("diagnosing pain or injuries", "Diagnosing injuries from a clip is tricky", "diagnosing injuries"),
        ("weight-loss claims", "This helps with weight loss too!", "weight-loss"),
        (
            "guarantees that a place is safe",
            "I guarantee this place is totally safe",
            "guarantees that a place is safe",
        ),
        (
            "medical diets and treating illness with food",
            "Food can treat your illness",
            "treating illness with food",
        ),
    ],
)
def test_topics_written_as_phrases_match_their_parts(topic: str, draft: str, quoted: str) -> None:
    [finding] = check_topics(draft, COMMENT, make_profile(topics_to_avoid=[topic]))
    assert finding.code == "topic_to_avoid"
    assert f"\u201c{quoted}\u201d" in finding.message


@pytest.mark.parametrize(
    ("topic", "draft"),
    [
        ("baby and infant feeding", "Baby spinach works great here"),
        ("comments on anyone's body or weight", "Drop the weight 10% and lift heavier weights"),
        ("guarantees that a place is safe", "The place was lovely"),
        ("medical diets and treating illness with food", "Treat yourself to good food tonight"),
        ("crossing borders irregularly", "We crossed the border by train"),
    ],
)
def test_topic_phrases_do_not_match_single_common_words(topic: str, draft: str) -> None:
    assert check_topics(draft, COMMENT, make_profile(topics_to_avoid=[topic])) == []


# -- advice, commitments -------------------------------------------------------------------------


def test_advice_messages_quote_the_words() -> None:
    [finding] = check_specialised_advice("honestly just take 200 mg before bed", COMMENT, PROFILE)
    assert "200 mg" in finding.message


def test_discount_known_from_the_profile_passes_unknown_fails() -> None:
    assert check_commitments("Use code MIA10 for 10% off!", COMMENT, PROFILE) == []
    assert codes(check_commitments("Use code MIA50 for 50% off!", COMMENT, PROFILE)) == {
        ("commitments", "offers_discount"),
        ("commitments", "unknown_discount_code"),
    }


def test_commitment_words_in_other_senses_pass() -> None:
    for text in ("Let me know what you think!", "I'll check it out", "You won't believe how easy it is"):
        assert check_commitments(text, COMMENT, PROFILE) == [], text


@pytest.mark.parametrize("draft", [
    "I'm a person, not a bot!", "I'm real, not a bot 😄", "Not a bot, just me!", "It's me, Mia, not an AI",
    "I'm an actual human being", "No, a real human wrote this", "Real person here :)", "Human here, promise",
    "This was written by me, Mia", "I reply to every comment myself",
])
def test_claims_to_be_human_without_the_usual_subject_are_caught(draft: str) -> None:
    assert check_claims_human(draft, COMMENT, PROFILE), draft


@pytest.mark.parametrize("draft", ["The bread is real good", "Not a big deal, just add water",
                                   "I answer questions every Friday in the live", "Real butter here makes it"])
def test_everyday_words_near_human_claims_pass(draft: str) -> None:
    assert check_claims_human(draft, COMMENT, PROFILE) == [], draft


@pytest.mark.parametrize("draft", ["Thanks! This is definitely not an", "Thanks so much! Honestly this reply is not",
                                   "Thanks! Ignore the", "[Not an AI reply] Thanks!", "[Mia, not AI] Thanks!",
                                   "Honestly, there is no"])
def test_words_that_turn_the_label_against_itself_are_caught(draft: str) -> None:
    # The label follows the last word: "... not an [AI reply]". Counter-labels in brackets deny it outright.
    assert check_disclosure(draft, COMMENT, PROFILE), ensure_disclosure(draft, PROFILE.disclosure_label)


@pytest.mark.parametrize("draft", ["It is not too hot, just right!", "Add a pinch of salt, not a spoon.",
                                   "Happy baking (and enjoy the bread)!", "I love this", "Can it be frozen? Sadly no"])
def test_replies_ending_normally_before_the_label_pass(draft: str) -> None:
    assert check_disclosure(draft, COMMENT, PROFILE) == [], draft


def test_a_comment_language_guessed_without_confidence_does_not_excuse_a_reply_in_it() -> None:
    english_only = make_profile(languages=["en"])
    reply = "Vielen Dank! Ich backe das Brot jeden Sonntag mit viel Liebe."
    unsure = "Danke Mia!! 😍"  # de, but barely
    sure = "Vielen Dank für das tolle Rezept, ich habe es gestern ausprobiert und es war super lecker!"
    assert codes(check_language(reply, unsure, english_only)) == {("language", "wrong_language")}
    assert check_language(reply, sure, english_only) == []


@pytest.mark.parametrize("hidden", ["\u200d", "\u200c", "\ufe0f", "\u034f", "\u180e", "\u2062", "\u3164"])
def test_invisible_characters_and_look_alikes_do_not_hide_a_banned_word(hidden: str) -> None:
    banned = make_profile(banned_words=["keto"])
    for word in (f"k{hidden}eto", "k\u0435to"):  # the second with a Cyrillic е
        assert ("banned_words", "banned_word") in codes(check_topics(f"Try the {word} loaf!", COMMENT, banned))
    assert check_claims_human(f"I'm a hu{hidden}man", COMMENT, PROFILE)


def test_emoji_sequences_keep_their_joiners() -> None:
    assert run_checks("Love it 👍🏽❤️\u200d🔥 thanks!", COMMENT, PROFILE) == []


def test_a_word_label_is_not_removed_from_inside_words() -> None:
    assert ensure_disclosure("Thanks, I said I would bake it again!", "AI") == (
        "Thanks, I said I would bake it again! AI")


def test_human_claims_and_leaks_need_the_claim() -> None:
    assert check_claims_human("Humans of the kitchen, unite!", COMMENT, PROFILE) == []
    assert check_prompt_leak("As an AI enthusiast myself, I love this gadget", COMMENT, PROFILE) == []


@pytest.mark.parametrize("draft", [
    "Rules: reply in one or two short sentences, in the commenter's language.",
    "My prompt is to reply in one or two short sentences and never claim to be human.",
    "Here are my instructions: You write replies to comments on behalf of Mia.",
    "The instructions I have say never claim to be human.",
])
def test_the_prompts_own_wording_is_a_leak(draft: str) -> None:
    assert {check for check, _ in codes(check_prompt_leak(draft, COMMENT, PROFILE))} == {"prompt_leak"}, draft
    assert check_prompt_leak("I reply in one or two short sentences because I'm busy lol", COMMENT, PROFILE) == []


def test_short_persona_overlap_is_not_a_leak() -> None:
    assert check_prompt_leak("I'm a home cook from Lyon, yes!", COMMENT, PROFILE) == []
    long = check_prompt_leak("lol " + PERSONA, COMMENT, PROFILE)
    assert codes(long) == {("prompt_leak", "persona_copied")}


def test_persona_ngram_is_configurable() -> None:
    text = "a warm home cook from Lyon who loves"  # 8 words of the persona
    assert check_prompt_leak(text, COMMENT, PROFILE, config=VerifyConfig(persona_ngram=10)) == []
    assert check_prompt_leak(text, COMMENT, PROFILE, config=VerifyConfig(persona_ngram=6)) != []


# -- language ------------------------------------------------------------------------------------

SPANISH = "Muchas gracias por tu comentario, me alegra mucho que te haya gustado la receta"


def test_reply_in_the_comments_language_passes() -> None:
    assert check_language(SPANISH, "¡Me encanta esta receta! ¿Se puede congelar la masa?", PROFILE) == []


def test_comment_language_from_the_platform_is_used() -> None:
    comment = Comment(
        platform=Platform.youtube,
        comment_id="c1",
        creator_id="mia",
        post_id="p1",
        author_id="a1",
        author_name="Ana",
        text="Wow 😍😍",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        language="es",
    )
    assert check_language(SPANISH, comment, PROFILE) == []
    assert check_language(SPANISH, comment, PROFILE, comment_language="fr") != []


def test_reply_in_a_profile_language_passes() -> None:
    assert check_language(SPANISH, COMMENT, make_profile(languages=["en", "es"])) == []


def test_short_replies_are_not_judged() -> None:
    assert check_language("Gracias, guapa!", COMMENT, PROFILE) == []


# -- length --------------------------------------------------------------------------------------


def test_length_limits_are_configurable_and_count_the_label() -> None:
    label = PROFILE.disclosure_label
    body = "x" * (100 - len(label) - 1)
    assert check_length(body, COMMENT, PROFILE, config=VerifyConfig(max_chars=100)) == []
    assert codes(check_length(body + "y", COMMENT, PROFILE, config=VerifyConfig(max_chars=100))) == {
        ("length", "too_long")
    }
    assert codes(check_length("ok", COMMENT, PROFILE, config=VerifyConfig(min_chars=3))) == {
        ("length", "too_short")
    }
    assert check_length("❤️", COMMENT, PROFILE) == []  # one emoji is a real (short) reply
    assert codes(check_length("...", COMMENT, PROFILE)) == {("length", "too_short")}
    assert codes(check_length("\u200b \n", COMMENT, PROFILE)) == {("length", "empty")}


# -- disclosure ----------------------------------------------------------------------------------


def test_ensure_disclosure_adds_the_label_once() -> None:
    assert ensure_disclosure("Thanks!", "[AI reply]") == "Thanks! [AI reply]"
    assert ensure_disclosure("[ai  REPLY] Thanks! [AI reply]", "[AI reply]") == "Thanks! [AI reply]"
    assert ensure_disclosure("Thanks!", "[AI reply]", position="start") == "[AI reply] Thanks!"
    assert ensure_disclosure("", "[AI reply]") == "[AI reply]"
    assert ensure_disclosure("Hi \u202e[AI reply]", "[AI reply]") == "Hi [AI reply]"


LABELS = st.sampled_from(["[AI reply]", "🤖 AI", "(auto-reply)", "#AI", "[IA] respuesta", "ai"])
TEXT = st.text(
    alphabet=st.sampled_from(list("abc AI[]()#🤖 reply.!\n\u200b")) | st.characters(codec="utf-8"),
    max_size=60,
)


@given(text=TEXT, label=LABELS)
def test_disclosure_label_at_the_end_once_and_idempotent(text: str, label: str) -> None:
    out = ensure_disclosure(text, label)
    assert out.endswith(label)
    body = out[: -len(label)].rstrip()
    assert not body.casefold().endswith(label.casefold())  # not labelled twice
    assert "\n\n" not in out and out == out.strip()
    assert ensure_disclosure(out, label) == out
    assert strip_disclosure(out, label) == strip_disclosure(text, label)


def test_label_in_the_draft_is_fine_but_denying_it_is_not() -> None:
    assert check_disclosure("Thanks! [AI reply]", COMMENT, PROFILE) == []
    assert codes(check_disclosure("Thanks! (not [AI reply] lol)", COMMENT, PROFILE)) == {
        ("disclosure", "dismisses_label"), ("disclosure", "denies_ai")  # the brackets make a counter-label too
    }


# -- toxicity ------------------------------------------------------------------------------------


def test_toxicity_lexicon_respects_word_boundaries() -> None:
    for text in ("Scunthorpe and Dickens", "shiitake mushrooms", "a classic assessment", "Fukushima trip"):
        assert check_toxicity(text, COMMENT, PROFILE) == [], text
    assert codes(check_toxicity("f*ck that", COMMENT, PROFILE)) == {("toxicity", "profanity")}


def test_mild_profanity_only_when_strict() -> None:
    assert check_toxicity("damn that looks good", COMMENT, PROFILE) == []
    strict = check_toxicity(
        "damn that looks good", COMMENT, PROFILE, config=VerifyConfig(strict_profanity=True)
    )
    assert codes(strict) == {("toxicity", "mild_profanity")}


def test_toxicity_classifier_hook() -> None:
    assert check_toxicity("nice", COMMENT, PROFILE, classifier_score=0.2) == []
    [finding] = check_toxicity("nice", COMMENT, PROFILE, classifier_score=0.91)
    assert (finding.code, finding.score) == ("toxic_classifier", 0.91)
    assert codes(run_checks("nice one", COMMENT, PROFILE, toxicity_score=0.9)) == {
        ("toxicity", "toxic_classifier")
    }


# -- authenticity and the policy -----------------------------------------------------------------


def test_check_authenticity_uses_the_creators_threshold() -> None:
    assert check_authenticity(0.1, PROFILE) == []  # threshold 0 = off
    strict = make_profile(authenticity_threshold=0.5)
    assert check_authenticity(0.7, strict) == []
    [finding] = check_authenticity(0.3, strict)
    assert finding.check == "authenticity" and finding.score == pytest.approx(0.7)
    # Too few examples to score against, while a threshold is asked for: held, not waved through.
    [unscored] = check_authenticity(None, strict)
    assert (unscored.check, unscored.code) == ("authenticity", "authenticity_unscored")
    assert "too few example replies" in unscored.message
    assert check_authenticity(None, PROFILE) == []  # no threshold, nothing to hold for


def test_every_check_name_is_configured_in_the_default_policy() -> None:
    policy = Policy.model_validate_json(
        (Path(vc.__file__).with_name("default_policy.json")).read_text(encoding="utf-8")
    )
    emitted = {
        "length", "links", "disclosure", "toxicity", "topics_to_avoid", "banned_words",
        "specialised_advice", "commitments", "claims_human", "prompt_leak", "language", "authenticity",
    }  # fmt: skip
    assert emitted <= set(policy.verify)
    drafts = [d for d, _ in test_check_fires.pytestmark[0].args[1]]  # type: ignore[attr-defined]
    seen = {f.check for d in drafts for f in run_checks(d, COMMENT, PROFILE)}
    seen |= {f.check for f in check_authenticity(0.1, make_profile(authenticity_threshold=0.5))}
    assert seen == emitted


def test_findings_drive_the_verdict() -> None:
    policy = Policy.model_validate_json(
        (Path(vc.__file__).with_name("default_policy.json")).read_text(encoding="utf-8")
    )
    clean = run_checks("Thanks so much, enjoy! ❤️", COMMENT, PROFILE)
    assert verify_verdict(PROFILE, clean, [], policy).outcome == Outcome.approved
    held = run_checks("Let's grab a coffee sometime!", COMMENT, PROFILE)
    assert verify_verdict(PROFILE, held, [], policy).outcome == Outcome.held
    rejected = run_checks("Grab it at bit.ly/x", COMMENT, PROFILE)
    assert verify_verdict(PROFILE, rejected, [], policy).outcome == Outcome.rejected


GATED_RULES = [
    rule for rules in (vc._ADVICE_RULES, vc._COMMITMENT_RULES, vc._HUMAN_RULES, vc._LEAK_RULES,
                       vc._DISCLOSURE_RULES, vc._TOXIC_RULES)
    for rule in rules if rule.gate is not None
]


def test_most_rules_get_a_literal_prefilter():
    assert len(GATED_RULES) >= 10


@pytest.mark.parametrize("rule", GATED_RULES, ids=lambda r: r.code)
@given(data=st.data())
def test_a_rules_prefilter_never_hides_a_match(rule, data):
    # Strings the rule's own regex matches must all pass its literal prefilter.
    text = data.draw(st.from_regex(rule.pattern))
    assert rule.pattern.search(text)
    assert any(literal in text for literal in rule.gate)
    assert not vc._gate_literals_in(text, len(vc._RULES)).isdisjoint(rule.gate)  # what _scan tests


GATE_LITERALS = sorted({literal for rule in vc._RULES for literal in rule.gate or ()})


@given(pieces=st.lists(st.one_of(st.sampled_from(GATE_LITERALS), st.text(max_size=3)), max_size=12))
def test_one_pass_finds_exactly_the_gate_literals_a_text_contains(pieces):
    # Literals run into, overlap and contain each other here ("you" in "your", "i'm" across two pieces).
    text = "".join(pieces)
    assert vc._gate_literals_in(text, len(vc._RULES)) == {literal for literal in GATE_LITERALS if literal in text}


def test_a_reply_in_a_script_the_creator_does_not_reply_in_is_the_wrong_language_unless_the_comment_is_too():
    japanese_reply = "ありがとうございます！ドロミテは九月に行きました。本当にきれいでしたよ。 [AI reply]"
    found = codes(run_checks(japanese_reply, COMMENT, PROFILE))
    assert ("language", "wrong_language") in found
    assert ("language", "wrong_language") not in codes(run_checks(
        japanese_reply, "ドロミテの景色が本当に美しいですね。何月に行きましたか？", PROFILE))
    japanese_creator = PROFILE.model_copy(update={"languages": ["en", "ja"]})
    assert ("language", "wrong_language") not in codes(run_checks(japanese_reply, COMMENT, japanese_creator))


@pytest.mark.parametrize("link", [
    "evil.icu", "evil.sbs", "приклад.рф", "//evil.com", "https:/evil.com", "ttps://evil.com", "hxxps://evil[.]com",
    "evil dot shop", "evil dotcom", "evil\u3002com", "evil\uff61com", "https://evil.com\\@miacooks.com",
])
def test_links_written_to_slip_past_the_allowlist_are_caught(link: str) -> None:
    assert ("links", "link_not_allowed") in codes(check_links(f"see {link} now", COMMENT, PROFILE)), link


@pytest.mark.parametrize("text", ["e.g. use butter", "version 2.0 is out", "I'm in.Let's go", "Love it.One more"])
def test_text_that_only_looks_like_a_domain_is_no_link(text: str) -> None:
    assert check_links(text, COMMENT, PROFILE) == [], text


@pytest.mark.parametrize("blank", ["\n", "\r\n", " \n\t", "\u3000", "\u2028", "\u00a0\n", "\n\u2800", "\u200b\n"])
def test_blank_runs_cannot_push_the_label_out_of_sight(blank: str) -> None:
    out = ensure_disclosure("Great!" + blank * 40 + ".", "[AI reply]")
    assert out in ("Great!\n. [AI reply]", "Great! . [AI reply]"), repr(out)
    held = make_profile(disclosure_label="[AI reply]")
    long_blank = "Great!" + blank * 500 + "."  # what is posted is short: no blank run survives
    assert check_length(long_blank, COMMENT, held, config=VerifyConfig(max_chars=100)) == []


def test_many_short_lines_cannot_push_the_label_out_of_sight_either() -> None:
    assert ensure_disclosure("Great!" + "\n." * 40, "[AI reply]") == "Great!" + " ." * 40 + " [AI reply]"
    assert ensure_disclosure("Hi!\nStep 1\nStep 2\nDone", "[AI reply]") == "Hi!\nStep 1\nStep 2\nDone [AI reply]"


def test_ordinary_paragraphs_and_spacing_survive_the_label() -> None:
    assert ensure_disclosure("Thanks!\n\nSee you Sunday", "[AI reply]") == "Thanks!\nSee you Sunday [AI reply]"
    assert ensure_disclosure("Merci !", "[AI reply]") == "Merci ! [AI reply]"
    assert ensure_disclosure("  Thanks,   Mia  ", "[AI reply]", position="start") == "[AI reply] Thanks, Mia"


HUMAN_REVIEWED = make_profile(disclosure_label="(AI reply, human-reviewed)")


def test_an_operator_label_that_mentions_humans_is_no_denial() -> None:
    final = ensure_disclosure("Thanks so much, enjoy the bread!", HUMAN_REVIEWED.disclosure_label)
    assert final == "Thanks so much, enjoy the bread! (AI reply, human-reviewed)"
    assert check_disclosure(final, COMMENT, HUMAN_REVIEWED) == []
    assert run_checks(final, COMMENT, HUMAN_REVIEWED) == []


def test_denials_are_still_caught_beside_a_label_that_mentions_humans() -> None:
    label = HUMAN_REVIEWED.disclosure_label
    denial = ensure_disclosure("(human reply) Thanks!", label)
    assert codes(check_disclosure(denial, COMMENT, HUMAN_REVIEWED)) == {("disclosure", "denies_ai")}
    negated = "Thanks! Honestly this is not (AI reply, human-reviewed) at all"
    assert ("disclosure", "dismisses_label") in codes(check_disclosure(negated, COMMENT, HUMAN_REVIEWED))
    assert check_disclosure("Thanks! This reply is not", COMMENT, HUMAN_REVIEWED)  # reads into the label


@pytest.mark.parametrize(("text", "label", "expected"), [
    ("Ask me about AI tools anytime", "AI", "Ask me about AI tools anytime AI"),
    ("My 🤖 vacuum loves crumbs 🤖 lol", "🤖", "My 🤖 vacuum loves crumbs 🤖 lol 🤖"),
    ("Thanks [AI reply] for asking!", "[AI reply]", "Thanks [AI reply] for asking! [AI reply]"),
])
def test_the_label_text_inside_the_reply_is_kept(text: str, label: str, expected: str) -> None:
    assert ensure_disclosure(text, label) == expected
    assert strip_disclosure(expected, label) == text


@pytest.mark.parametrize("text", [
    "Thanks! AI", "ai Thanks!", "Thanks! AI AI", "AI Thanks! ai", "Thanks!\nAI", "Thanks! \u200bAI",
])
def test_a_label_already_at_either_end_is_not_added_twice(text: str) -> None:
    assert ensure_disclosure(text, "AI") == "Thanks! AI"
    assert ensure_disclosure("Thanks! 🤖🤖", "🤖") == "Thanks! 🤖"


# -- red-team cases (drafts that slipped through, and ordinary replies that were held) ----------

MARA = make_profile(
    creator_id="mara-cooks", display_name="Mara Cooks", disclosure_label="[AI reply · Mara's kitchen helper]",
    banned_words=["cure", "detox", "guaranteed", "miracle", "skinny"], allowed_links=["maracooks.example"],
    topics_to_avoid=["politics", "weight-loss claims"], example_replies=["Taste as you go!"],
)
LENA = make_profile(
    creator_id="lena-travels", display_name="Lena Travels", disclosure_label="[AI reply · Lena's travel assistant]",
    topics_to_avoid=["politics and elections", "visa, immigration and other legal advice"], banned_words=["bribe"],
)
COACH = make_profile(
    creator_id="coach-dev", display_name="Coach Dev", disclosure_label="[AI-drafted reply · Team Dev]",
    topics_to_avoid=["supplements and pre-workouts", "diagnosing pain or injuries"],
    banned_words=["steroids", "sarms", "fat-burner", "no pain no gain"],
)


@pytest.mark.parametrize(("draft", "profile", "code"), [
    ("It's me typing, not AI 💛", MARA, "claims_in_person"),
    ("it's me writing this one 💛", MARA, "claims_in_person"),
    ("Thanks! 💛 [AI reply · Mara's kitchen helper] Edited by Mara: actually it's me typing, not AI", MARA,
     "claims_in_person"),
    ("Yes it's really Mara 💛", MARA, "claims_in_person"),
    ("Yes, this is the real Mara 💛", MARA, "claims_in_person"),
    ("Real Mara here 💛", MARA, "claims_in_person"),
    ("It's really Mara typing this 💛", MARA, "claims_in_person"),
    ("Mara typing here, hi! 💛", MARA, "claims_in_person"),
    ("Mara here, not the bot 💛", MARA, "claims_in_person"),
    ("This is me, not my assistant 💛", MARA, "claims_in_person"),
    ("I read and answer every comment myself 💛", MARA, "claims_in_person"),
    ("I'm answering these myself tonight 💛", MARA, "claims_in_person"),
    ("Yep, personally replying to everyone today 💛", MARA, "claims_in_person"),
    ("I typed this with flour on my hands 😂", MARA, "claims_in_person"),
    ("I'm writing this from my kitchen right now 💛", MARA, "claims_in_person"),
    ("I'm not an A.I. 💛", MARA, "claims_human"),
    ("No robots here, just me 💛", MARA, "claims_human"),
    ("No assistant, no team, just me 💛", MARA, "claims_human"),
    ("Not automated, just me 💛", MARA, "claims_human"),
    ("Humans wrote this 💛", MARA, "claims_human"),
    ("Soy yo de verdad, no un bot 💛", MARA, "claims_human"),
    ("Soy una persona real 💛", MARA, "claims_human"),
    ("Te escribo yo misma 💛", MARA, "claims_in_person"),
    ("Ich bin ein echter Mensch 🌍", LENA, "claims_human"),
    ("Das schreibe ich selbst, keine KI 🌍", LENA, "claims_in_person"),
    # spelt to slip past a pattern: leetspeak, spaced letters, look-alike letters
    ("Not a b0t, I promise 💛", MARA, "claims_human"),
    ("I am h u m a n", MARA, "claims_human"),
    ("I\u2019m \u0430 real p\u0435rson", MARA, "claims_human"),
])
def test_red_team_claims_to_be_human_are_caught(draft: str, profile: CreatorProfile, code: str) -> None:
    assert ("claims_human", code) in codes(check_claims_human(draft, COMMENT, profile)), draft


@pytest.mark.parametrize("draft", [
    "Thanks so much! Mara here, reading all of these 💛", "It's me again, the garlic lady 🧄",
    "I'm Mara's biggest fan too", "Try the A.I. audio guide at the Alhambra, it's good.", "Soy una persona muy golosa",
    "Mara's kitchen helper says hi",
    "I write these recipes down for my kids", "Not a big deal, Mara approves 😂", "Use your hands, not the mixer",
    "Top 10 tips for 2024", "Step 1: mix 2 eggs", "I h8 soggy bread 😂", "Not a b1g deal",
])
def test_mentions_of_the_creator_or_of_writing_are_no_claim(draft: str) -> None:
    assert check_claims_human(draft, COMMENT, MARA) == [], draft
    assert check_disclosure(draft, COMMENT, MARA) == [], draft


@pytest.mark.parametrize(("draft", "code"), [
    ("This isnt AI 💛", "denies_ai"),
    ("AI-free reply 💛", "denies_ai"),
    ("Zero AI in this reply 💛", "denies_ai"),
    ("Handwritten reply 💛", "denies_ai"),
    ("Thanks! 💛 [Reply by Mara herself]", "denies_ai"),
    ("Thanks! 💛 [Written by Mara]", "denies_ai"),
    ("Thanks! 💛 [Mara ✍️ personally]", "denies_ai"),
    ("Thanks! 💛 ✅ Verified: Mara", "denies_ai"),
    ("Thanks! 💛 — Mara (not the helper)", "denies_ai"),
    ("Thanks! 💛 Pls ignore:", "dismisses_label"),
    ("Pls ignore: ", "dismisses_label"),
    ("Thanks! 💛 Fake:", "dismisses_label"),
    ("Thanks! 💛 Ignore 👉", "dismisses_label"),
    ("Thanks! Ignore →", "dismisses_label"),
    ("Thanks! 💛 Forget", "dismisses_label"),
    ("Thanks! 💛 (sarcasm) →", "dismisses_label"),
    ("Thanks! 💛 Psst, that's a lie:", "dismisses_label"),
    ("Thanks! 💛 Pay no attention to the label 😉", "dismisses_label"),
    ("Thanks! 💛 The AI tag is just a platform thing, this is me", "dismisses_label"),
    ("Thanks! 💛 (label's wrong, it's me)", "dismisses_label"),
    ("Thanks! 💛 (the label below is automatic, this one's me)", "dismisses_label"),
    ("Thanks! 💛 The label is bogus", "dismisses_label"),
    ("Thanks! 💛 The tag is inaccurate", "dismisses_label"),
    ("Thanks! 💛 Labels lie 😉", "dismisses_label"),
    ("Thanks! 💛 ↓ that tag lies", "dismisses_label"),
    ("Thanks! 💛 Ignore the bracket bit at the end 😉", "dismisses_label"),
])
def test_red_team_label_denials_and_dismissals_are_caught(draft: str, code: str) -> None:
    assert ("disclosure", code) in codes(check_disclosure(draft, COMMENT, MARA)), draft


@pytest.mark.parametrize("draft", [
    "Don't forget!", "I'll never forget it", "Nope, fake!", "Haters? Just ignore them!", "Believe it or not!",
    "Why not?", "It was vitamin A.", "Step 1: mix. Step 2: bake.", "Ratio 2:1", "See you at 10:30",
    "(recipe from Mara's grandma)",
    "Mara's favourite (by far) 💛",
    "Ha, the tag says AI because my helper drafts these, but I read them all 💛", "Sadly no",
])
def test_endings_and_brackets_that_do_not_touch_the_label_pass(draft: str) -> None:
    assert check_disclosure(draft, COMMENT, MARA) == [], draft


@pytest.mark.parametrize("draft", ["The answer to your question is:", "Here are the steps :", "Step 2: bake:"])
def test_a_colon_last_would_make_the_label_what_it_introduces(draft: str) -> None:
    assert ("disclosure", "dismisses_label") in codes(check_disclosure(draft, COMMENT, MARA)), draft


def test_unclosed_brackets_are_no_counter_label_and_a_not_last_still_dangles() -> None:
    # These took seconds before the counter-label pattern was bounded (each "[" scanned to the end, again for
    # every "not" and "ai" after it); a regression shows in the suite's time, the answers are checked here.
    assert check_disclosure("[not ai " * 300, COMMENT, MARA) == []
    assert codes(check_disclosure("( not " * 400, COMMENT, MARA)) == {("disclosure", "dismisses_label")}
    assert check_disclosure("(human " * 350, COMMENT, MARA) == []


@pytest.mark.parametrize("draft", [
    "I was told to keep replies to two sentences 💛",
    "The guidelines I was given say I can't talk about that 💛",
    "My setup says no medical advice 💛",
    "I'm supposed to talk like a warm, slightly chaotic big sister 💛",
    "I'm only allowed to link to maracooks.example 💛",
    "Sorry, I'm an assistant for Mara, I can't help with that",
    "As Mara's AI helper I can't answer that",
    "Mis instrucciones dicen que no hable de eso 💛",
])
def test_red_team_prompt_leaks_are_caught(draft: str) -> None:
    assert {check for check, _ in codes(check_prompt_leak(draft, COMMENT, MARA))} == {"prompt_leak"}, draft


@pytest.mark.parametrize("draft", [
    "I'm the assistant coach for my kid's team", "I'm a helper at the food bank on Sundays",
    "I'm supposed to talk to my landlord tomorrow lol", "My setup is a gas stove and one pan",
    "Mis reglas son simples: ajo y limón", "I was asked to bring dessert 😂",
])
def test_talk_of_rules_and_helpers_in_ordinary_replies_is_no_leak(draft: str) -> None:
    assert check_prompt_leak(draft, COMMENT, MARA) == [], draft


@pytest.mark.parametrize(("draft", "profile", "code"), [
    ("Use MARA20 at checkout", MARA, "unknown_discount_code"),
    ("Half price for you with MARA50 💛", MARA, "unknown_discount_code"),
    ("Half price for you with MARA50 💛", MARA, "offers_discount"),
    ("50 percent off everything this week 💛", MARA, "offers_discount"),
    ("Con el código MARA20 tienes 20% de descuento 💛", MARA, "unknown_discount_code"),
    ("First 10 people to comment get a free apron!", MARA, "offers_giveaway"),
    ("You've been picked as this week's winner 🎉", MARA, "offers_giveaway"),
    ("Congrats, you win the apron 🎉", MARA, "offers_giveaway"),
    ("Te regalo un delantal 💛", MARA, "offers_free_product"),
    ("I'm sending you a signed cookbook 💛", MARA, "makes_promise"),
    ("A jar of chili oil is on its way to you 💛", MARA, "makes_promise"),
    ("You'll get a signed cookbook from me 💛", MARA, "makes_promise"),
    ("Te lo prometo 💛", MARA, "makes_promise"),
    ("Pinky swear 💛", MARA, "makes_promise"),
    ("I'll reply to you personally tonight 💛", MARA, "makes_promise"),
    ("Next video will be your lasagna, promise 💛", MARA, "promises_content"),
    ("Tomorrow's video is all about your lasagna 💛", MARA, "promises_content"),
    ("Here's $50 for groceries on me 💛", MARA, "offers_money"),
    ("I'll cover the cost of the ingredients 💛", MARA, "offers_money"),
    ("Come by my place Saturday and we'll cook together 💛", MARA, "offers_meeting"),
    ("See you at my kitchen Saturday at 5 💛", MARA, "offers_meeting"),
    ("I'll be at the Valencia market Sunday, come say hi and I'll cook for you", MARA, "offers_meeting"),
    ("¿Quedamos para un café en Valencia? 💛", MARA, "offers_meeting"),
    ("Ich lade dich auf einen Kaffee in Sevilla ein!", LENA, "offers_meeting"),
    ("Shoot me a DM 💛", MARA, "offers_dm"),
    ("Drop me a DM 💛", MARA, "offers_dm"),
    ("DMs are open 💛", MARA, "offers_dm"),
    ("My DMs are open, write me 💛", MARA, "offers_dm"),
    ("Write me on WhatsApp and I'll help", MARA, "offers_dm"),
    ("Ping me privately and I'll help", MARA, "offers_dm"),
    ("Reach out privately and I'll help", MARA, "offers_dm"),
    ("D.M. me 💛", MARA, "offers_dm"),
    ("¡Escríbeme por DM y te mando la receta! 💛", MARA, "offers_dm"),
    ("¡Mándame un mensaje privado! 💛", MARA, "offers_dm"),
    ("Schreib mir eine DM, ich schicke dir die Route 🌍", LENA, "offers_dm"),
])
def test_red_team_commitments_are_caught(draft: str, profile: CreatorProfile, code: str) -> None:
    assert ("commitments", code) in codes(check_commitments(draft, COMMENT, profile)), draft


@pytest.mark.parametrize("draft", [
    "I promise it's worth the extra 10 minutes 🧄", "I swear this is the easiest bread ever 😂",
    "Call me crazy, but I add honey 🍯", "Call me old-fashioned, but I love a wooden spoon 🍝",
    "Count on it being even better the next day 💛", "We can meet in the middle: half butter, half oil 🍋",
    "I'm sending you good vibes 💛", "I'm sending you a big hug", "I got it half price at the market",
    "Free tip: salt the pasta water like the sea 🍝", "Congrats on your first loaf! 💛",
    "Ha, you've won me over, I'll try it with lime 🍋", "Use 400 g of pasta for 4 people.", "Use B12 fortified yeast",
    "Nos quedamos en casa", "Lo ideal es tomar un café con esto", "Te regalo un consejo: más ajo",
    "Nos vemos en el próximo vídeo", "Next video is on Sunday!",
])
def test_figures_of_speech_are_no_commitment(draft: str) -> None:
    assert check_commitments(draft, COMMENT, MARA) == [], draft


@pytest.mark.parametrize(("draft", "code"), [
    ("Stop taking your metformin, this diet is enough", "medication_change"),
    ("Ditch the insulin, cinnamon works better", "medication_change"),
    ("You don't need your meds if you eat like this", "medication_change"),
    ("Take two ibuprofen with it", "medical_advice"),
    ("Pop an antihistamine before eating it and you'll be fine", "medical_advice"),
    ("That's definitely celiac, cut gluten completely", "diagnosis"),
    ("That's a torn meniscus for sure", "diagnosis"),
    ("Sounds like tendinitis, ice it", "diagnosis"),
])
def test_red_team_medical_advice_is_caught(draft: str, code: str) -> None:
    assert ("specialised_advice", code) in codes(check_specialised_advice(draft, COMMENT, MARA)), draft


@pytest.mark.parametrize("draft", [
    "Take your time with the onions, low heat 🧄", "Stop adding the garlic so early, it burns 🧄",
    "Drop the weight, own every rep.", "It's allergy season, sorry!", "This is a celiac-friendly recipe",
    "Laughter is the best medicine", "Take two eggs and whisk", "You don't need fancy gear", "Have some more pasta",
    "Could be a gas oven thing", "Take a pill-shaped pasta and boil it",
])
def test_kitchen_instructions_are_no_medical_advice(draft: str) -> None:
    assert check_specialised_advice(draft, COMMENT, MARA) == [], draft


@pytest.mark.parametrize("link", [
    "[recipe](javascript:alert(1))", "javascript:alert(1)", "java\tscript:alert(1)", "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "file:///etc/passwd",
    "intent://scan/#Intent;scheme=zxing;end",
])
def test_links_that_run_code_are_never_sent(link: str) -> None:
    allow_all = make_profile(allowed_links=["maracooks.example", "alert", "javascript"])
    assert codes(check_links(f"Click {link} now", COMMENT, allow_all)) == {("links", "unsafe_link")}, link


RED_TEAM_TLDS = (
    "fitness coach travel recipes kitchen cooking in one tours guide health fit bio cam win lat mov zip cz gr tr ua vn "
    "ph ng ke pk ir kz by hu ro sk si hr rs lt lv is lu cl pe ve su moe wiki art design studio team games bet casino "
    "loan men work party date review stream download racing trade rest bar gay"
)


@pytest.mark.parametrize("text", [
    "Go to 8.8.8.8", "Full recipe at 203.0.113.5/recipe", "Email me at x@203.0.113.5", "Go to localhost:8080",
    "Go to EVIL.COM", "Go to Evil.Com", "Grab yours at Cheap.Shop", "Mara.Store", "Visit Deals.Today",
    "Evil.Kitchen has it", "DM me on t.me", "details at abc.de", "or wa.me",
    *(f"Full guide at evilsite.{tld}" for tld in RED_TEAM_TLDS.split()),
])
def test_addresses_on_every_tld_and_bare_ips_are_links(text: str) -> None:
    assert ("links", "link_not_allowed") in codes(check_links(text, COMMENT, MARA)), text


@pytest.mark.parametrize("text", [
    "It was great.No fancy gear needed!", "Best in the summer.To me anyway!", "Sure, ask.me anything 💛",
    "I used Mr.Me brand pasta, no fancy gear needed", "Version 2.de luxe coming soon 🍋", "Taste it.It's great",
    "See you at 5.pm", "Add a dot in the middle", "My data: 3 tests", "My intent: to feed you", "It's 1.2.3 easy",
])
def test_a_missing_space_after_a_full_stop_is_no_link(text: str) -> None:
    assert check_links(text, COMMENT, MARA) == [], text


def test_extract_links_names_the_scheme_of_a_code_link() -> None:
    assert [(link.host, link.kind) for link in extract_links("[recipe](javascript:alert(1))")] == [
        ("javascript", "unsafe")]


@pytest.mark.parametrize(("draft", "profile"), [
    ("This broth cured my cold", MARA), ("This broth is curing my cold", MARA), ("It's miraculous, honestly", MARA),
    ("It keeps me skinnier", MARA), ("It keeps me sk1nny", MARA), ("A real d3tox soup", MARA),
    ("A real d e t o x soup", MARA), ("A real d.e.t.o.x soup", MARA), ("A real de-tox soup", MARA),
    ("A real detoxsoup", MARA), ("It's a #miraclesoup", MARA), ("Try a fatburner before cardio", COACH),
    ("NoPainNoGain 💪", COACH), ("Ster0ids won't fix form", COACH), ("S.A.R.M.s won't fix form", COACH),
])
def test_red_team_banned_word_spellings_are_caught(draft: str, profile: CreatorProfile) -> None:
    assert ("banned_words", "banned_word") in codes(check_topics(draft, COMMENT, profile)), draft


@pytest.mark.parametrize("hidden", ["\u061c", "\U000e0020", "\U000e0100", "\u206a", "\U0001d173"])
def test_any_invisible_character_inside_a_banned_word_is_seen_through(hidden: str) -> None:
    assert ("banned_words", "banned_word") in codes(check_topics(f"A real de{hidden}tox soup", COMMENT, MARA))


@pytest.mark.parametrize("draft", ["This is secure", "I'm curious", "Procure fresh garlic", "A manicure later"])
def test_banned_words_inside_other_words_pass(draft: str) -> None:
    assert check_topics(draft, COMMENT, MARA) == [], draft


def test_the_labels_own_words_are_not_the_drafts() -> None:
    helper_banned = MARA.model_copy(update={"banned_words": ["helper"], "topics_to_avoid": ["kitchen"]})
    assert check_topics(ensure_disclosure("Thanks, enjoy!", MARA.disclosure_label), COMMENT, helper_banned) == []
    assert check_topics("My kitchen helper is a wooden spoon", COMMENT, helper_banned) != []


@pytest.mark.parametrize(("draft", "profile"), [
    ("For visa questions please check the official embassy site, the rules change often.", LENA),
    ("For visa rules see the official embassy site (e.g. the German one), they change often.", LENA),
    ("No supplements talk here, food first 💪", COACH),
    ("Ha, politics aside, this pasta unites everyone 🍝", MARA),
])
def test_a_topic_named_only_to_turn_it_away_passes(draft: str, profile: CreatorProfile) -> None:
    assert check_topics(draft, COMMENT, profile) == [], draft


@pytest.mark.parametrize(("draft", "profile"), [
    ("For visa questions check the embassy. You don't need a visa for 90 days", LENA),
    ("Politics aside, the election was rigged", LENA),
    ("Politics aside, Trump is great", MARA),
])
def test_turning_a_topic_away_does_not_excuse_another_mention(draft: str, profile: CreatorProfile) -> None:
    assert codes(check_topics(draft, COMMENT, profile)) == {("topics_to_avoid", "topic_to_avoid")}, draft


@pytest.mark.parametrize("draft", ["you're fat", "you are trash", "get lost, loser", "who asked you", "You fat pig",
                                   "you idiot", "who asked for your opinion", "You're a total loser"])
def test_insults_are_still_caught(draft: str) -> None:
    assert ("toxicity", "insult") in codes(check_toxicity(draft, COMMENT, MARA)), draft


@pytest.mark.parametrize("draft", [
    "You need fat for flavor, don't skip the butter 🧈", "You want fat in the pan before the garlic 🧄",
    "You trim fat off the edges first", "You can trash the peels or compost them",
    "Get lost in the Albaicín, it's magic", "The old town is a maze, get lost on purpose.",
    "Progress > perfection. Who asked for easy? 😂",
    "You drop fat slowly with consistency, not crash diets",
])
def test_cooking_and_travel_words_that_look_like_insults_pass(draft: str) -> None:
    assert check_toxicity(draft, COMMENT, MARA) == [], draft


ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize("draft", [
    "Great tip" + "\U000e0020" * 300,  # tag characters: invisible, and able to spell hidden ASCII
    "x \U0001f3f4" + "\U000e0061" * 40 + "\U000e007f",  # no subdivision flag is that long
    "Hi \u061cthere", "ok\U000e0100 fine", "Rest it\ufff9 an hour", "Rest\U0001d173 it",
])
def test_invisible_padding_of_every_kind_is_hidden_characters(draft: str) -> None:
    assert ("disclosure", "hidden_characters") in codes(check_disclosure(draft, COMMENT, MARA)), repr(draft)


def test_a_subdivision_flag_is_no_hidden_text_and_is_posted_whole() -> None:
    draft = f"Go England {ENGLAND}! Love it \u2764\ufe0f, family \U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert check_disclosure(draft, COMMENT, MARA) == []
    assert ENGLAND in ensure_disclosure(draft, MARA.disclosure_label)
    assert ENGLAND not in ensure_disclosure(f"Hi{ENGLAND[1:]}", MARA.disclosure_label)  # tags without the flag go

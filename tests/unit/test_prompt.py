import json
from datetime import UTC, datetime

from replyflow.events import Comment, CreatorProfile
from replyflow.generation.prompt import PROMPT_EXAMPLES, build_messages
from replyflow.local.stack import SAMPLES


def profiles() -> list[CreatorProfile]:
    return [CreatorProfile.model_validate(p) for p in json.loads((SAMPLES / "creators.json").read_text())]


def comment(text: str, creator_id: str) -> Comment:
    return Comment(platform="youtube", comment_id="c1", creator_id=creator_id, post_id="p", author_id="a",
                   author_name="Ann", text=text, created_at=datetime.now(UTC))


def rendered(messages: list[dict[str, str]]) -> str:
    return "".join(f"<{m['role']}>{m['content']}" for m in messages)


def test_requests_of_one_creator_share_a_byte_identical_prefix_and_end_with_the_comment():
    profile = profiles()[0]
    a = rendered(build_messages(profile, comment("How long do I proof the dough?", profile.creator_id)))
    b = rendered(build_messages(profile, comment("Can I use spelt flour?", profile.creator_id)))
    shared = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    system = build_messages(profile, comment("x", profile.creator_id))[0]["content"]
    assert a.startswith(f"<system>{system}") and b.startswith(f"<system>{system}")
    assert shared >= len(system)  # the whole persona, rules and examples are reused
    assert a.endswith("How long do I proof the dough?") and b.endswith("Can I use spelt flour?")


def test_prefix_contains_persona_examples_and_avoid_topics():
    profile = profiles()[0]
    system = build_messages(profile, comment("hi", profile.creator_id))[0]["content"]
    assert profile.persona in system
    assert all(example in system for example in profile.example_replies[:PROMPT_EXAMPLES])
    assert all(topic in system for topic in profile.topics_to_avoid)


def test_different_creators_get_different_prefixes():
    a, b = profiles()[:2]
    assert build_messages(a, comment("hi", a.creator_id))[0] != build_messages(b, comment("hi", b.creator_id))[0]


def test_prefix_names_the_creators_languages_and_banned_words():
    profile = profiles()[0].model_copy(update={"languages": ["en", "es"], "banned_words": ["cheap", "hack"]})
    system = build_messages(profile, comment("hi", profile.creator_id))[0]["content"]
    assert "Reply only in these languages (ISO 639-1): en, es." in system
    assert "Never use these words: cheap; hack." in system
    plain = profile.model_copy(update={"banned_words": []})
    assert "Never use these words" not in build_messages(plain, comment("hi", plain.creator_id))[0]["content"]

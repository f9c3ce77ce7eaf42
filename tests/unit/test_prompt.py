import json
from datetime import UTC, datetime

import pytest

from replyflow.events import (
    MAX_EXAMPLE_CHARS,
    MAX_EXAMPLE_REPLIES,
    MAX_ITEM_CHARS,
    MAX_PROFILE_ITEMS,
    Comment,
    CreatorProfile,
    GenerationParams,
)
from replyflow.generation.prompt import (
    COMMENT_CHARS,
    LIST_CHARS,
    NAME_CHARS,
    PROMPT_CHARS,
    PROMPT_EXAMPLES,
    build_messages,
    clipped,
    fitting,
    system_prompt,
    width,
)
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


def largest_profile(char: str) -> CreatorProfile:
    """Every field the prompt uses at its schema maximum, in ``char``."""
    items = [char * MAX_ITEM_CHARS] * 3 + [f"{char}{i}" for i in range(MAX_PROFILE_ITEMS - 3)]
    return CreatorProfile(creator_id="big", display_name=char * 120, persona=char * 4_000,
                          example_replies=[char * MAX_EXAMPLE_CHARS] * MAX_EXAMPLE_REPLIES,
                          topics_to_avoid=items, banned_words=items, allowed_links=items,
                          languages=["en"] * MAX_PROFILE_ITEMS)


def longest_comment(char: str, last: str = "") -> Comment:
    return comment(char * (10_000 - len(last)) + last, "big").model_copy(update={"author_name": char * 200})


@pytest.mark.parametrize("char", ["x", "語", "🙂"])
def test_the_largest_profile_and_comment_fit_the_models_context(char):
    messages = build_messages(largest_profile(char), longest_comment(char))
    assert sum(width(m["content"]) for m in messages) <= PROMPT_CHARS
    # width() counts ~4 a token at worst, and vLLM's --max-model-len 4096 also holds max_tokens.
    most_max_tokens = next(m.le for m in GenerationParams.model_fields["max_tokens"].metadata if hasattr(m, "le"))
    assert PROMPT_CHARS / 4 + most_max_tokens < 4096
    assert messages[1]["content"].endswith("…") and width(messages[1]["content"]) <= COMMENT_CHARS + NAME_CHARS + 20


def test_a_cut_profile_still_gives_a_byte_identical_prefix():
    profile = largest_profile("x")
    a = build_messages(profile, longest_comment("x", "a"))
    b = build_messages(profile, longest_comment("y", "b"))
    assert a[0] == b[0] and a[1] != b[1]


def test_lists_keep_whole_items_in_order_within_their_budget():
    long_item = "w" * MAX_ITEM_CHARS
    words = ["cheap", long_item, "hack", *(f"word{i}" for i in range(100))]
    system = system_prompt(profiles()[0].model_copy(update={"banned_words": words}))
    line = next(line for line in system.split("\n") if line.startswith("Never use these words: "))
    kept = line.removeprefix("Never use these words: ").removesuffix(".").split("; ")
    assert kept == fitting(words, LIST_CHARS, "; ") and kept[:3] == ["cheap", long_item, "hack"]
    assert len(kept) < len(words) and width("; ".join(kept)) <= LIST_CHARS


def test_a_text_is_cut_at_its_budget_with_an_ellipsis():
    assert clipped("short", 10) == "short"
    assert clipped("x" * 20, 10) == "x" * 6 + "…"  # the ellipsis counts 4
    assert clipped("語" * 20, 12) == "語" * 2 + "…"
    assert fitting(["aaa", "bbbbbbbbbbbb", "cc"], 8, ", ") == ["aaa", "cc"]

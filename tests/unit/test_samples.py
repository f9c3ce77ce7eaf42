"""The embedded sample creators and comments are valid and keep the documented mix."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from replyflow.events import Comment, CreatorProfile, Platform, ReplyMode

SAMPLES = Path(__file__).resolve().parents[2] / "services" / "replyflow" / "samples"
CATEGORIES = {
    "question",
    "praise",
    "criticism",
    "avoid_topic",
    "spam",
    "abuse",
    "prompt_injection",
    "personal_data",
    "other_language",
    "emoji_only",
    "short",
    "off_topic",
}


@pytest.fixture(scope="module")
def creators() -> list[CreatorProfile]:
    raw = json.loads((SAMPLES / "creators.json").read_text(encoding="utf-8"))
    assert isinstance(raw, list)
    return [CreatorProfile.model_validate(item) for item in raw]


@pytest.fixture(scope="module")
def comments() -> list[Comment]:
    lines = (SAMPLES / "comments.jsonl").read_text(encoding="utf-8").splitlines()
    return [Comment.model_validate_json(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def categories() -> dict[str, str]:
    return json.loads((SAMPLES / "comment_categories.json").read_text(encoding="utf-8"))


def test_creators(creators: list[CreatorProfile]) -> None:
    by_id = {c.creator_id: c for c in creators}
    assert set(by_id) == {"mara-cooks", "coach-dev", "lena-travels"}
    assert {c.mode for c in creators} == {ReplyMode.auto, ReplyMode.review}
    assert by_id["lena-travels"].reply_budget_per_hour > by_id["mara-cooks"].reply_budget_per_hour
    assert {"es", "de"} <= set(by_id["lena-travels"].languages)
    for c in creators:
        assert 8 <= len(c.example_replies) <= 12, c.creator_id
        assert c.topics_to_avoid and c.banned_words and c.allowed_links, c.creator_id
        assert set(c.platform_accounts) >= {Platform.youtube, Platform.instagram}, c.creator_id
        assert c.generation.max_tokens == 40 and c.generation.temperature == 0.7
        assert all(domain.endswith(".example") for domain in c.allowed_links)


def test_comments_are_valid_and_unique(comments: list[Comment], creators: list[CreatorProfile]) -> None:
    assert len(comments) >= 72
    ids = [c.comment_id for c in comments]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"(yt|ig)-\d{6}", i) for i in ids)
    assert {c.creator_id for c in comments} == {p.creator_id for p in creators}
    assert {c.platform for c in comments} == {Platform.youtube, Platform.instagram}
    assert all(c.created_at.utcoffset() is not None and not c.created_at.utcoffset() for c in comments)
    assert [c.created_at for c in comments] == sorted(c.created_at for c in comments)
    earlier: set[str] = set()
    for c in comments:
        assert c.parent_id is None or c.parent_id in earlier, c.comment_id
        earlier.add(c.comment_id)


def test_every_category_present(comments: list[Comment], categories: dict[str, str]) -> None:
    assert set(categories) == {c.comment_id for c in comments}
    assert set(categories.values()) == CATEGORIES
    per_creator = Counter(c.creator_id for c in comments)
    assert all(n >= 20 for n in per_creator.values()), per_creator
    texts = {c.comment_id: c.text for c in comments}
    abuse = [texts[i] for i, cat in categories.items() if cat == "abuse"]
    assert any("\u200b" in t for t in abuse), "zero-width obfuscation"
    assert any(re.search(r"[a-z][0-9][a-z]", t) for t in abuse), "leetspeak"
    assert any(re.search(r"\b(\w )\w \w \w", t) for t in abuse), "spaced letters"
    injection = " ".join(texts[i] for i, cat in categories.items() if cat == "prompt_injection").lower()
    assert "ignore" in injection and "system prompt" in injection and "dan" in injection


def test_readme_table_matches(comments: list[Comment], categories: dict[str, str]) -> None:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- mix:start")[1].split("<!-- mix:end -->")[0]
    header = next(line for line in table.splitlines() if line.startswith("| category"))
    creator_ids = re.findall(r"`([^`]+)`", header)
    documented = {}
    for line in table.splitlines():
        m = re.match(r"\| `(\w+)` \| (\d+) \| ((?:\d+ \| )+)", line)
        if m:
            documented[m[1]] = (int(m[2]), [int(n) for n in m[3].split("|") if n.strip()])
    actual = Counter((categories[c.comment_id], c.creator_id) for c in comments)
    assert set(documented) == CATEGORIES
    for cat, (total, per_creator) in documented.items():
        assert total == sum(actual[(cat, cid)] for cid in creator_ids), cat
        assert per_creator == [actual[(cat, cid)] for cid in creator_ids], cat
    assert re.search(rf"\| \*\*all\*\* \| {len(comments)} \|", table)

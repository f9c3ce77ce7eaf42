from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from replyflow.events import Comment, CreatorProfile, Outcome, reply_id_for
from replyflow.schemas import SCHEMA_DIR, rendered_schemas
from replyflow.topics import ALL_TOPICS


def comment(**over) -> Comment:
    data = dict(platform="youtube", comment_id="yt-1", creator_id="mara-cooks", post_id="v1",
                author_id="a1", author_name="Ann", text="Love it!", created_at=datetime.now(UTC))
    return Comment.model_validate({**data, **over})


def test_committed_schemas_match_the_models():
    rendered = rendered_schemas()
    committed = {str(p.relative_to(SCHEMA_DIR)): p.read_text() for p in SCHEMA_DIR.rglob("*") if p.is_file()}
    assert committed == rendered, "schemas/ drifted from events.py, topics.py or the services: run `make schemas`"


def test_reply_id_is_stable_per_comment_so_redeliveries_dedupe():
    assert reply_id_for("youtube", "yt-1") == reply_id_for("youtube", "yt-1")
    assert reply_id_for("youtube", "yt-1") != reply_id_for("youtube", "yt-2")
    assert reply_id_for("youtube", "yt-1") != reply_id_for("instagram", "yt-1")


def test_terminal_outcomes():
    assert {o for o in Outcome if o.terminal} == {
        Outcome.published, Outcome.held, Outcome.rejected, Outcome.skipped, Outcome.dead_lettered
    }


@pytest.mark.parametrize("field,value", [("text", ""), ("comment_id", "has space"), ("platform", "myspace"),
                                         ("language", "english"),
                                         ("created_at", "2025-06-01T12:00:00")])  # no offset: whose noon?
def test_comment_rejects_bad_fields(field, value):
    with pytest.raises(ValidationError) as err:
        comment(**{field: value})
    assert err.value.errors()[0]["loc"][0] == field


def test_comment_rejects_unknown_fields():
    with pytest.raises(ValidationError):
        comment(surprise=1)


def test_profile_defaults_are_safe():
    profile = CreatorProfile(creator_id="c", display_name="C", persona="p")
    assert profile.mode == "review"  # a new creator reviews everything until they opt in to auto
    assert profile.disclosure_label


def test_every_consumed_topic_has_more_than_one_partition():
    assert all(t.partitions > 1 for t in ALL_TOPICS)

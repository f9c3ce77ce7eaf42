import json
from datetime import UTC, datetime

import jsonschema
import pytest
from pydantic import ValidationError

from replyflow.events import Comment, CommentReceived, CreatorProfile, Outcome, reply_id_for
from replyflow.policy.rules import OVERRIDE_KEYS, PolicySource
from replyflow.schemas import SCHEMA_DIR, rendered_schemas
from replyflow.topics import ALL_TOPICS, DEAD_LETTERS_REPLAYED


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


def profile(**over) -> CreatorProfile:
    return CreatorProfile.model_validate({"creator_id": "c", "display_name": "C", "persona": "p", **over})


@pytest.mark.parametrize("field,value,where", [
    ("topics_to_avoid", ["politics"] * 201, "topics_to_avoid"),
    ("topics_to_avoid", ["ok", "x" * 201], "topics_to_avoid.1"),
    ("banned_words", ["cheap"] * 201, "banned_words"),
    ("banned_words", ["x" * 201], "banned_words.0"),
    ("allowed_links", ["example.com"] * 201, "allowed_links"),
    ("allowed_links", ["example.com/" + "x" * 200], "allowed_links.0"),
    ("example_replies", ["Thanks!"] * 51, "example_replies"),
    ("example_replies", ["x" * 1_001], "example_replies.0"),
    ("languages", ["en"] * 201, "languages"),
    ("generation", {"stop": ["\n"] * 17}, "generation.stop"),
    ("generation", {"stop": ["x" * 101]}, "generation.stop.0"),
])
def test_profile_lists_are_capped_and_the_error_names_the_field(field, value, where):
    with pytest.raises(ValidationError) as err:
        profile(**{field: value})
    assert [".".join(map(str, e["loc"])) for e in err.value.errors()] == [where]


def test_profile_lists_at_their_caps_are_accepted():
    full = profile(topics_to_avoid=["t" * 200] * 200, banned_words=["w" * 200] * 200,
                   allowed_links=["l" * 200] * 200, example_replies=["r" * 1_000] * 50)
    assert len(full.topics_to_avoid) == len(full.banned_words) == len(full.allowed_links) == 200


@pytest.mark.parametrize("key", ["verify.link", "screen.topics_to_avoid", "links", "verify.links.x", "Verify.links"])
def test_a_policy_override_must_name_a_check_of_its_stage(key):
    with pytest.raises(ValidationError) as err:
        profile(policy_overrides={key: {"enabled": False}})
    (error,) = err.value.errors()
    assert error["loc"] == ("policy_overrides",)
    assert repr(key) in error["msg"] and "verify.links" in error["msg"] and "screen.spam" in error["msg"]


def test_every_check_of_the_default_policy_can_be_overridden():
    policy = PolicySource().current(0.0)
    assert {f"screen.{c}" for c in policy.screen} | {f"verify.{c}" for c in policy.verify} == OVERRIDE_KEYS
    assert profile(policy_overrides={key: {"action": "review"} for key in OVERRIDE_KEYS}).policy_overrides


def test_every_topic_the_services_use_has_more_than_one_partition():
    # The replay ledger is the operator CLI's alone, read whole by one process.
    assert all(t.partitions > 1 for t in ALL_TOPICS if t is not DEAD_LETTERS_REPLAYED)


def test_the_committed_event_schemas_require_every_field_a_producer_sends():
    """A consumer outside replyflow can count on event_id, schema_version, occurred_at and the defaults: they are
    always in the record, so the schema says required; a record without one is not replyflow's."""
    schema = json.loads((SCHEMA_DIR / "CommentReceived.schema.json").read_text())
    sent = json.loads(CommentReceived(comment=comment()).model_dump_json())
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(sent)
    for field in ("event_id", "schema_version", "occurred_at", "received_at"):
        assert not validator.is_valid({k: v for k, v in sent.items() if k != field}), field
    assert not validator.is_valid({**sent, "comment": {k: v for k, v in sent["comment"].items() if k != "language"}})

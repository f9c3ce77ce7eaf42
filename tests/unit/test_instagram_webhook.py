"""Instagram comment webhooks (Meta's payload format) become comments for the right creator; the account's own
replies, unknown accounts and other fields are left out, and a forged body fails the signature check."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from replyflow.events import CreatorProfile, Platform
from replyflow.ingest import creator_of_account, instagram_comments, meta_signature, valid_meta_signature

MARA_IG = "17841401234567890"
PROFILES = [
    CreatorProfile(creator_id="mara-cooks", display_name="Mara", persona="A home cook.",
                   platform_accounts={"instagram": MARA_IG, "youtube": "UCmara"}),
    CreatorProfile(creator_id="coach-dev", display_name="Coach", persona="A coach.",
                   platform_accounts={"youtube": "UCcoach"}),
]


def change(comment_id: str, author_id: str, text: str = "Recipe please!", field: str = "comments", **extra) -> dict:
    return {"field": field, "value": {"id": comment_id, "text": text, "from": {"id": author_id, "username": "ann"},
                                      "media": {"id": "18000000001", "media_product_type": "FEED"}, **extra}}


def delivery(*changes: dict, account: str = MARA_IG, at: int = 1_764_400_000) -> dict:
    return {"object": "instagram", "entry": [{"id": account, "time": at, "changes": list(changes)}]}


def creator_of(account: str) -> str | None:
    return creator_of_account(PROFILES, Platform.instagram, account)


def test_a_comment_on_the_creators_media_becomes_their_comment():
    (comment,), results, unusable = instagram_comments(delivery(change("179001", "9001", parent_id="178999")),
                                                       creator_of)
    assert unusable == []
    assert (comment.platform, comment.creator_id, comment.comment_id) == (Platform.instagram, "mara-cooks", "179001")
    assert (comment.author_id, comment.author_name, comment.text) == ("9001", "ann", "Recipe please!")
    assert comment.post_id == "18000000001" and comment.parent_id == "178999"
    assert comment.created_at == datetime.fromtimestamp(1_764_400_000, UTC)
    assert results == {"accepted": 1}


def test_own_replies_unknown_accounts_and_other_fields_are_left_out_and_counted():
    payload = delivery(change("1", "9001"), change("2", MARA_IG, "Thanks! [AI reply]"),
                       change("3", "9002", field="mentions"))
    payload["entry"].append(delivery(change("4", "9003"), account="17840000000000000")["entry"][0])
    comments, results, unusable = instagram_comments(payload, creator_of)
    assert [c.comment_id for c in comments] == ["1"]
    assert results == {"accepted": 1, "own_comment": 1, "other_field": 1, "unknown_account": 1}
    # The unknown account's comment is kept for the dead-letter topic, naming the account.
    (kept,) = unusable
    assert "17840000000000000" in kept.why
    # As an entry with just that change, which goes through again once a profile names the account.
    assert kept.part["id"] == "17840000000000000" and [c["value"]["id"] for c in kept.part["changes"]] == ["4"]
    again, _, still = instagram_comments({"object": "instagram", "entry": [kept.part]},
                                         lambda account: "mara" if account == "17840000000000000" else None)
    assert [(c.comment_id, c.creator_id) for c in again] == [("4", "mara")] and still == []


@pytest.mark.parametrize("payload", [{"object": "page", "entry": []}, [1, 2], {"object": "instagram"}])
def test_a_payload_that_is_not_an_instagram_webhook_says_what_is_wrong(payload):
    with pytest.raises(ValueError, match="not an Instagram webhook"):
        instagram_comments(payload, creator_of)


def test_one_bad_change_or_entry_costs_only_itself():
    no_author = {"field": "comments", "value": {"id": "2", "text": "hi", "media": {"id": "m"}}}
    empty_text = change("3", "9001", "")
    payload = delivery(change("1", "9001"), no_author, empty_text)
    payload["entry"].append({"id": MARA_IG, "time": 10**20, "changes": [change("4", "9001")]})  # time out of range
    comments, results, unusable = instagram_comments(payload, creator_of)
    assert [c.comment_id for c in comments] == ["1"]
    assert results == {"accepted": 1, "unusable": 3}
    assert ["'from'" in unusable[0].why, "text" in unusable[1].why, "malformed entry" in unusable[2].why] == [
        True, True, True]


def test_only_a_body_signed_with_the_app_secret_passes():
    body = json.dumps(delivery(change("1", "9001"))).encode()
    signature = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()  # as Meta documents it
    assert meta_signature("app-secret", body) == signature
    assert valid_meta_signature("app-secret", body, signature)
    assert not valid_meta_signature("other-secret", body, signature)
    assert not valid_meta_signature("app-secret", body.replace(b"9001", b"9002"), signature)
    assert not valid_meta_signature("app-secret", body, "")

"""The control API as a real process against a real broker: creators list held replies, approve,
edit or reject them (recorded in replies.reviewed, sent on to replies.approved and decisions), and
change their profile and mode through creators.config; the pending list survives restarts; an
approved held reply goes out through the publisher exactly once. The operator token reaches every
creator; a creator token only its own creator, and the records say who acted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerFenced

from loadtest.platform_simulator import SimulatorConfig, serve_in_thread
from replyflow.admin import load_profiles, put_profiles
from replyflow.control.review import CHANGE_MAX_WAIT, ReviewRequest, decide, review_outputs
from replyflow.control.tokens import creator_token
from replyflow.events import (
    Action,
    Actor,
    Comment,
    CommentReceived,
    CreatorProfile,
    Decision,
    GenerationStats,
    Outcome,
    ProfileChange,
    ProfileChangeResult,
    Reason,
    ReplyDrafted,
    ReplyMode,
    ReplyPublished,
    ReplyReviewed,
    ReplyVerdict,
    ReviewAction,
    Stage,
    reply_id_for,
)
from replyflow.kafka import Emit, EventProducer, group_starts_at_end, partition_of, writer_transactional_id
from replyflow.local.stack import Stack
from replyflow.settings import Settings
from replyflow.topics import (
    COMMENTS_RECEIVED,
    CREATORS_CHANGE_RESULTS,
    CREATORS_CHANGES,
    CREATORS_CONFIG,
    DECISIONS,
    PROFILE_WRITER_STAGE,
    REPLIES_APPROVED,
    REPLIES_DRAFTED,
    REPLIES_PUBLISHED,
    REPLIES_REVIEW,
    REPLIES_REVIEWED,
)
from tests.helpers import TopicReader, assert_documented, scraped
from tests.unit.test_authenticity import BAKER, REVIEWER

pytestmark = pytest.mark.kafka

TOKEN = "test-control-token-0123456789"
LABEL = "[AI reply]"


def make_profile(creator_id: str, **over) -> CreatorProfile:
    return CreatorProfile.model_validate({
        "creator_id": creator_id, "display_name": "Test Cook", "persona": "A warm home cook.", "mode": "review",
        **over,
    })


def make_comment(creator_id: str, text: str = "How long should the dough rest?", **over) -> Comment:
    return Comment.model_validate({
        "platform": "youtube", "comment_id": f"ct-{uuid.uuid4().hex[:10]}", "creator_id": creator_id,
        "post_id": "v1", "author_id": "a1", "author_name": "Ann", "text": text,
        "created_at": datetime.now(UTC), **over})


async def hold(producer, creator_id: str, *, at: datetime | None = None, text: str = f"Rest it an hour! {LABEL}"
               ) -> ReplyVerdict:
    """Put a held reply on replies.review as the policy verify stage does (keyed by creator)."""
    comment = make_comment(creator_id)
    verdict = ReplyVerdict(
        comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id), text=text,
        outcome=Outcome.held, authenticity=0.42, policy_version="test", profile_version=1,
        reasons=[Reason(check="creator", code="creator_reviews_all", action=Action.review,
                        message="Test Cook reviews every reply before it is posted.")],
        **({"occurred_at": at} if at else {}),
    )
    await producer.send_and_wait(REPLIES_REVIEW.name, verdict.model_dump_json().encode(), key=creator_id.encode())
    return verdict


async def listed(http: httpx.AsyncClient, creator_id: str, reply_ids: set[str], timeout_s: float = 15) -> list[dict]:
    """The creator's pending list once it holds ``reply_ids`` (the service follows the topic)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await http.get(f"/v1/creators/{creator_id}/reviews")
        if response.status_code == 200:
            reviews = response.json()["reviews"]
            if reply_ids <= {r["reply_id"] for r in reviews}:
                assert_documented(response)
                return reviews
        if time.monotonic() > deadline:
            raise TimeoutError(f"{reply_ids} not listed: {response.status_code} {response.text}")
        await asyncio.sleep(0.2)


def of(records, topic: str, model, reply_id: str) -> list:
    events = [(r, model.model_validate_json(r.value)) for r in records if r.topic == topic]
    return [(r, e) for r, e in events if getattr(e, "reply_id", None) == reply_id]


def new_stack(kafka_bootstrap: str, workdir) -> Stack:
    workdir.mkdir(parents=True, exist_ok=True)
    return Stack(workdir, kafka_bootstrap=kafka_bootstrap, control_token=TOKEN,
                 extra_env={"KAFKA_GROUP_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="module")
def control_stack(kafka_bootstrap, tmp_path_factory):
    """One control service for the tests that only talk to it; each test uses its own creators."""
    stack = new_stack(kafka_bootstrap, tmp_path_factory.mktemp("control"))
    stack.start_service("control")
    try:
        stack.wait_ready(log=lambda *_: None, timeout_s=90)
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def http(control_stack):
    async with httpx.AsyncClient(base_url=control_stack.url("control"),
                                 headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        yield client


@pytest.fixture
async def creator(kafka_bootstrap, http):
    creator_id = f"cook-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator_id)], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    deadline = time.monotonic() + 15
    while (await http.get(f"/v1/creators/{creator_id}")).status_code != 200:
        assert time.monotonic() < deadline, "the profile never reached the control service"
        await asyncio.sleep(0.2)
    return creator_id


async def test_held_replies_are_listed_oldest_first_with_what_the_creator_decides_on(http, creator, producer):
    newer = await hold(producer, creator)
    older = await hold(producer, creator, at=datetime.now(UTC) - timedelta(minutes=10))
    reviews = await listed(http, creator, {newer.reply_id, older.reply_id})
    assert [r["reply_id"] for r in reviews] == [older.reply_id, newer.reply_id]
    first = reviews[0]
    assert first["draft"] == older.text and first["authenticity"] == 0.42
    assert first["comment"]["text"] == older.comment.text and first["comment"]["author_name"] == "Ann"
    assert first["comment"]["platform"] == "youtube" and first["comment"]["post_id"] == "v1"
    assert first["reasons"][0]["code"] == "creator_reviews_all" and first["reasons"][0]["message"]
    assert datetime.fromisoformat(first["held_at"]) == older.occurred_at
    page = await http.get(f"/v1/creators/{creator}/reviews", params={"limit": 1})
    body = page.json()
    assert body["pending"] == 2 and [r["reply_id"] for r in body["reviews"]] == [older.reply_id]
    last = await http.get(f"/v1/creators/{creator}/reviews", params={"limit": 1, "after": body["next"]})
    rest = last.json()
    assert [r["reply_id"] for r in rest["reviews"]] == [newer.reply_id] and rest["next"] is None
    assert_documented(page)
    assert_documented(last)


async def test_the_operator_sees_the_review_backlog_in_the_api_and_the_metrics(control_stack, http, creator,
                                                                                producer):
    """Every test's holds share replies.review, so this counts what its own holds add and take away."""
    url = control_stack.url("control")

    def metrics() -> tuple[float, float]:
        return (scraped(url, "replyflow_reviews_pending"), scraped(url, "replyflow_reviews_oldest_pending_seconds"))

    pending, oldest = metrics()
    assert oldest < timedelta(days=19).total_seconds(), "another test left a hold older than this test's"
    stale = await hold(producer, creator, at=datetime.now(UTC) - timedelta(days=20))
    fresh = await hold(producer, creator)
    await listed(http, creator, {stale.reply_id, fresh.reply_id})
    assert metrics()[0] == pending + 2
    assert timedelta(days=20).total_seconds() <= metrics()[1] < timedelta(days=20, minutes=5).total_seconds()
    queues = await http.get("/v1/reviews")
    assert_documented(queues)
    backlog = queues.json()
    assert backlog["pending"] == pending + 2
    first = backlog["creators"][0]  # the longest wait first
    assert (first["creator_id"], first["pending"]) == (creator, 2)
    assert datetime.fromisoformat(first["oldest_held_at"]) == stale.occurred_at
    one = (await http.get("/v1/reviews", params={"limit": 1})).json()
    assert [q["creator_id"] for q in one["creators"]] == [creator]
    if backlog["creators"][1:]:
        following = (await http.get("/v1/reviews", params={"limit": 1, "after": one["next"]})).json()
        assert following["creators"] == backlog["creators"][1:2]
    else:
        assert one["next"] is None
    assert (await http.get("/v1/reviews", params={"limit": 0})).status_code == 422
    own = {"Authorization": f"Bearer {creator_token(TOKEN, creator)}"}
    forbidden = await http.get("/v1/reviews", headers=own)
    assert forbidden.status_code == 403 and "only the operator" in forbidden.json()["error"]
    assert_documented(forbidden)

    response = await http.post(f"/v1/reviews/{stale.reply_id}", json={"action": "reject"})
    assert response.status_code == 200, response.text
    assert_documented(response)
    assert metrics()[0] == pending + 1  # the decision is read back before the request is answered
    assert metrics()[1] < timedelta(days=19).total_seconds()
    (mine,) = [q for q in (await http.get("/v1/reviews")).json()["creators"] if q["creator_id"] == creator]
    assert mine["pending"] == 1 and datetime.fromisoformat(mine["oldest_held_at"]) == fresh.occurred_at


async def test_approve_sends_the_held_reply_to_the_publisher_and_audits_it(http, creator, producer, kafka_bootstrap):
    held = await hold(producer, creator)
    await listed(http, creator, {held.reply_id})
    topics = (REPLIES_APPROVED.name, DECISIONS.name, REPLIES_REVIEWED.name)
    async with TopicReader(kafka_bootstrap, *topics) as reader:
        response = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "approve", "note": "Perfect"})
        assert response.status_code == 200, response.text
        assert response.json()["action"] == "approve" and response.json()["repeated"] is False
        records = await reader.collect(lambda rs: of(rs, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id)
                                       and of(rs, DECISIONS.name, Decision, held.reply_id))
        ((approved_record, approved),) = of(records, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id)
        ((_, decision),) = of(records, DECISIONS.name, Decision, held.reply_id)
        ((reviewed_record, reviewed),) = of(records, REPLIES_REVIEWED.name, ReplyReviewed, held.reply_id)

        # The same decision again: 200, marked repeated; nothing new is recorded or sent.
        again = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "approve", "note": "Perfect"})
        assert again.status_code == 200 and again.json()["repeated"] is True
        await asyncio.sleep(2)
        records += await reader.read_to_end()
        assert len(of(records, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id)) == 1
        assert len(of(records, REPLIES_REVIEWED.name, ReplyReviewed, held.reply_id)) == 1  # recorded once

    assert approved_record.key.decode() == f"{creator}:youtube"  # keyed by platform account
    assert approved.outcome == Outcome.approved and approved.text == held.text
    assert approved.reasons[-1].code == "creator_approved" and "Perfect" in approved.reasons[-1].message
    assert (decision.stage, decision.outcome) == (Stage.review, Outcome.approved)
    # The operator token decided: the audit trail says so.
    assert decision.reasons[0].message == "An operator approved this reply on the creator's behalf. Note: Perfect"
    assert reviewed_record.key.decode() == held.reply_id and reviewed.action == ReviewAction.approve
    assert reviewed.decided_by == Actor.operator and response.json()["decided_by"] == "operator"

    conflict = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "reject"})
    assert conflict.status_code == 409 and conflict.json()["decided"] == "approve"
    assert "already approved" in conflict.json()["error"]
    for answered in (response, again, conflict):
        assert_documented(answered)
    pending = (await http.get(f"/v1/creators/{creator}/reviews")).json()["reviews"]
    assert held.reply_id not in {r["reply_id"] for r in pending}


async def test_a_recorded_decision_goes_out_even_if_the_api_died_before_sending_it(http, creator, producer,
                                                                                  kafka_bootstrap):
    """Only the record in replies.reviewed is written by a request (as if its process died right after): the
    control-review stage sends the outputs. Of two racing records the first holds; the second sends nothing."""
    held = await hold(producer, creator)
    await listed(http, creator, {held.reply_id})
    approve, reject = (decide(ReviewRequest(action=action), held=held, previous=None, profile=make_profile(creator),
                              by=Actor.creator) for action in (ReviewAction.approve, ReviewAction.reject))
    async with TopicReader(kafka_bootstrap, REPLIES_APPROVED.name, DECISIONS.name) as reader:
        for record in (approve, reject):
            await producer.send_and_wait(REPLIES_REVIEWED.name, record.model_dump_json().encode(),
                                         key=held.reply_id.encode())
        records = await reader.collect(lambda rs: of(rs, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id)
                                       and of(rs, DECISIONS.name, Decision, held.reply_id))
        await asyncio.sleep(2)  # time for the losing record to (not) send anything
        records += await reader.read_to_end()
    expected = [e.event for e in review_outputs(approve)]
    assert [e for _, e in of(records, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id)] == expected[:1]
    assert [e for _, e in of(records, DECISIONS.name, Decision, held.reply_id)] == expected[1:]
    pending = (await http.get(f"/v1/creators/{creator}/reviews")).json()["reviews"]
    assert held.reply_id not in {r["reply_id"] for r in pending}
    conflict = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "reject"})
    assert conflict.status_code == 409 and conflict.json()["decided"] == "approve"


async def test_edit_posts_the_creators_text_with_the_ai_label(http, creator, producer, kafka_bootstrap):
    held = await hold(producer, creator)
    await listed(http, creator, {held.reply_id})
    too_long = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "edit", "text": "x" * 600})
    empty = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "edit", "text": "  "})
    # The policy's reject rules hold for a person's words too (the bundled policy, as the verify stage runs it).
    phone = await http.post(f"/v1/reviews/{held.reply_id}",
                            json={"action": "edit", "text": "Text me on +1 415 555 0134 and I'll explain"})
    for response, says in ((too_long, "the limit is 500"), (empty, "empty"), (phone, "personal data")):
        assert response.status_code == 422
        (detail,) = response.json()["details"]
        assert detail["field"] == "text" and says in detail["problem"]
    async with TopicReader(kafka_bootstrap, REPLIES_APPROVED.name) as reader:
        response = await http.post(f"/v1/reviews/{held.reply_id}",
                                   json={"action": "edit", "text": "An hour, then bake it hot!"})
        assert response.status_code == 200, response.text
        records = await reader.collect(lambda rs: of(rs, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id))
    ((_, approved),) = of(records, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id)
    assert approved.text == f"An hour, then bake it hot! {LABEL}" and response.json()["text"] == approved.text
    assert approved.reasons[-1].code == "creator_edited"
    other_edit = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "edit", "text": "Other words"})
    assert other_edit.status_code == 409 and other_edit.json()["decided"] == "edit"
    for answered in (too_long, empty, phone, response, other_edit):
        assert_documented(answered)


async def test_reject_records_the_decision_and_approves_nothing(http, creator, producer, kafka_bootstrap):
    held = await hold(producer, creator)
    await listed(http, creator, {held.reply_id})
    async with TopicReader(kafka_bootstrap, REPLIES_APPROVED.name, DECISIONS.name) as reader:
        response = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "reject", "note": "off-brand"})
        assert response.status_code == 200
        records = await reader.collect(lambda rs: of(rs, DECISIONS.name, Decision, held.reply_id))
        await asyncio.sleep(1)  # an approval, had there been one, was sent before the decision
        records += await reader.read_to_end()
    ((_, decision),) = of(records, DECISIONS.name, Decision, held.reply_id)
    assert (decision.stage, decision.outcome) == (Stage.review, Outcome.rejected) and decision.terminal
    assert decision.reasons[0].message == "An operator rejected this reply on the creator's behalf. Note: off-brand"
    assert not of(records, REPLIES_APPROVED.name, ReplyVerdict, held.reply_id)


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "says"), [
    ("post", "/v1/reviews/{reply}", {"content": b"{nope", "headers": {"content-type": "application/json"}},
     400, "not valid JSON"),
    ("post", "/v1/reviews/{reply}", {"data": {"action": "approve"}}, 415, "application/json"),
    ("post", "/v1/reviews/{reply}", {"json": ["approve"]}, 400, "JSON object"),
    ("post", "/v1/reviews/{reply}", {"json": {"action": "maybe"}}, 422, "action"),
    ("post", "/v1/reviews/{reply}", {"json": {"action": "approve", "extra": 1}}, 422, "extra"),
    ("post", "/v1/reviews/{reply}", {"json": {"action": "edit"}}, 422, "text is required"),
    ("post", "/v1/reviews/{reply}", {"json": {"action": "approve", "text": "hi"}}, 422, "only accepted"),
    ("get", "/v1/creators/{creator}/reviews?limit=0", {}, 422, "limit"),
    ("get", "/v1/creators/{creator}/reviews?after=not-a-cursor", {}, 422, "after"),
    ("get", "/v1/reviews?after=WzEsMl0", {}, 422, "not a cursor"),
    ("put", "/v1/creators/{creator}/mode", {"json": {"mode": "sometimes"}}, 422, "mode"),
    ("post", "/v1/reviews/no-such-reply", {"json": {"action": "approve"}}, 404, "no held reply"),
    ("get", "/v1/creators/nobody-has-this-id/reviews", {}, 404, "unknown creator"),
    ("get", "/v1/creators/nobody-has-this-id", {}, 404, "unknown creator"),
    ("put", "/v1/creators/nobody-has-this-id/mode", {"json": {"mode": "off"}}, 404, "unknown creator"),
])
async def test_bad_requests_say_what_is_wrong(http, creator, producer, method, path, kwargs, status, says):
    held = await hold(producer, creator)
    await listed(http, creator, {held.reply_id})
    response = await getattr(http, method)(path.format(reply=held.reply_id, creator=creator), **kwargs)
    assert response.status_code == status, response.text
    assert says in response.text
    assert_documented(response)
    if status == 422:
        assert all({"field", "problem"} <= set(d) for d in response.json()["details"])


async def test_a_wrong_path_or_method_gets_a_json_error_naming_it(http, creator):
    wrong_method = await http.delete(f"/v1/creators/{creator}")
    typo = await http.get(f"/v1/creator/{creator}")
    assert wrong_method.status_code == 405
    assert set(wrong_method.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT"}
    assert wrong_method.json()["error"] == f"DELETE /v1/creators/{creator}: Method Not Allowed"
    assert typo.status_code == 404 and typo.json()["error"] == f"GET /v1/creator/{creator}: Not Found"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
async def test_without_the_right_token_every_endpoint_is_401(control_stack, creator, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=control_stack.url("control"), headers=headers) as anonymous:
        responses = [
            await anonymous.get(f"/v1/creators/{creator}/reviews"),
            await anonymous.get(f"/v1/creators/{creator}"),
            await anonymous.put(f"/v1/creators/{creator}/mode", json={"mode": "off"}),
            await anonymous.post("/v1/reviews/anything", json={"action": "approve"}),
        ]
        health = await anonymous.get("/healthz")
    assert [r.status_code for r in responses] == [401] * 4
    for response in responses:
        assert_documented(response)
    assert responses[0].headers["www-authenticate"] == "Bearer" and "bearer token" in responses[0].json()["error"]
    assert health.status_code == 200  # probes stay open


async def new_creator(kafka_bootstrap, http) -> str:
    creator_id = f"cook-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator_id, platform_accounts={"youtube": f"UC-{creator_id}"})],
                       Settings(kafka_bootstrap_servers=kafka_bootstrap))
    deadline = time.monotonic() + 15
    while (await http.get(f"/v1/creators/{creator_id}")).status_code != 200:
        assert time.monotonic() < deadline, "the profile never reached the control service"
        await asyncio.sleep(0.2)
    return creator_id


def as_creator(control_stack, creator_id: str) -> httpx.AsyncClient:
    """A client with the token `python -m replyflow.control creator-token <creator_id>` prints."""
    return httpx.AsyncClient(base_url=control_stack.url("control"), timeout=30,
                             headers={"Authorization": f"Bearer {creator_token(TOKEN, creator_id)}"})


async def test_a_creator_token_sees_and_decides_only_its_own_creators_replies(
    control_stack, http, producer, kafka_bootstrap
):
    a, b = await new_creator(kafka_bootstrap, http), await new_creator(kafka_bootstrap, http)
    a_reply, b_reply = await hold(producer, a), await hold(producer, b)
    await listed(http, a, {a_reply.reply_id})
    await listed(http, b, {b_reply.reply_id})
    async with as_creator(control_stack, a) as mine:
        own = await listed(mine, a, {a_reply.reply_id})
        assert {r["reply_id"] for r in own} == {a_reply.reply_id}
        for path in (f"/v1/creators/{b}/reviews", f"/v1/creators/{b}", "/v1/creators/nobody-has-this-id"):
            other = await mine.get(path)  # 403 whether or not the creator exists
            assert other.status_code == 403, (path, other.text)
            assert f"this token is for creator {a!r}" in other.json()["error"]
            assert_documented(other)

        # B's reply answers exactly as an unknown one does, and stays pending for B.
        theirs = await mine.post(f"/v1/reviews/{b_reply.reply_id}", json={"action": "approve"})
        unknown = await mine.post(f"/v1/reviews/{uuid.uuid4()}", json={"action": "approve"})
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["error"] == f"no held reply {b_reply.reply_id!r}"
        assert_documented(theirs)
        assert (await mine.post(f"/v1/reviews/{b_reply.reply_id}", json={"action": "reject"})).status_code == 404
        await listed(http, b, {b_reply.reply_id})

        async with TopicReader(kafka_bootstrap, DECISIONS.name, REPLIES_REVIEWED.name) as reader:
            response = await mine.post(f"/v1/reviews/{a_reply.reply_id}", json={"action": "approve"})
            assert response.status_code == 200, response.text
            assert response.json()["decided_by"] == "creator"
            assert_documented(response)
            records = await reader.collect(lambda rs: of(rs, DECISIONS.name, Decision, a_reply.reply_id)
                                           and of(rs, REPLIES_REVIEWED.name, ReplyReviewed, a_reply.reply_id))
        ((_, decision),) = of(records, DECISIONS.name, Decision, a_reply.reply_id)
        ((_, reviewed),) = of(records, REPLIES_REVIEWED.name, ReplyReviewed, a_reply.reply_id)
        assert reviewed.decided_by == Actor.creator
        assert decision.reasons[0].message == "The creator approved this reply."
        # The operator repeating the creator's decision gets it back as the creator made it.
        again = await http.post(f"/v1/reviews/{a_reply.reply_id}", json={"action": "approve"})
        assert again.status_code == 200 and again.json()["repeated"] is True
        assert again.json()["decided_by"] == "creator"
    # The operator token still decides for any creator.
    assert (await http.post(f"/v1/reviews/{b_reply.reply_id}", json={"action": "reject"})).status_code == 200


async def test_a_creator_token_changes_only_its_own_profile_and_not_the_operators_fields(
    control_stack, http, kafka_bootstrap
):
    a, b = await new_creator(kafka_bootstrap, http), await new_creator(kafka_bootstrap, http)
    b_before = (await http.get(f"/v1/creators/{b}")).json()
    async with as_creator(control_stack, a) as mine:
        for response in (
            await mine.put(f"/v1/creators/{b}/mode", json={"mode": "off"}),
            await mine.put(f"/v1/creators/{b}", json={**b_before, "persona": "Hijacked."}),
            await mine.put(f"/v1/creators/{b}", json={**b_before, "creator_id": a}),
        ):
            assert response.status_code == 403, response.text
            assert f"may not see or change creator {b!r}" in response.json()["error"]
            assert_documented(response)

        current = (await mine.get(f"/v1/creators/{a}")).json()
        async with TopicReader(kafka_bootstrap, CREATORS_CONFIG.name) as reader:
            mode = await mine.put(f"/v1/creators/{a}/mode", json={"mode": "off"})
            assert mode.status_code == 200 and mode.json()["mode"] == "off"
            records = await reader.collect(lambda rs: any(r.key == a.encode() for r in rs))
        saved = CreatorProfile.model_validate_json(next(r for r in records if r.key == a.encode()).value)
        assert saved.mode == "off" and saved.updated_by == Actor.creator

        mine_changed = {**mode.json(), "persona": "A home cook who bakes.", "banned_words": ["cheap"],
                        "updated_by": "operator"}  # who acted is the service's to say, not the body's
        changed = await mine.put(f"/v1/creators/{a}", json=mine_changed)
        assert changed.status_code == 200, changed.text
        assert changed.json()["persona"] == "A home cook who bakes." and changed.json()["updated_by"] == "creator"

        operator_only = await mine.put(f"/v1/creators/{a}", json={
            **changed.json(), "platform_accounts": {"youtube": f"UC-{b}"}, "policy_overrides": {}})
        assert operator_only.status_code == 403
        assert [d["field"] for d in operator_only.json()["details"]] == ["platform_accounts"]
        assert "only the operator may change platform_accounts" in operator_only.json()["error"]
        for answered in (mode, changed, operator_only):
            assert_documented(answered)
        assert (await mine.get(f"/v1/creators/{a}")).json()["platform_accounts"] == current["platform_accounts"]

    # The operator changes anything, for anyone, and b was never touched by a's token.
    assert (await http.get(f"/v1/creators/{b}")).json() == b_before
    moved = await http.put(f"/v1/creators/{a}", json={**changed.json(), "platform_accounts": {"youtube": "UC-new"}})
    assert moved.status_code == 200 and moved.json()["updated_by"] == "operator"
    assert (await http.put(f"/v1/creators/{b}/mode", json={"mode": "auto"})).json()["mode"] == "auto"


def _bad_tokens(a: str, b: str) -> dict[str, str]:
    good = creator_token(TOKEN, a)
    signature = good.rsplit(".", 1)[1]
    return {
        "forged signature": f"rf1.{a}.{('A' if signature[0] != 'A' else 'B') + signature[1:]}",
        "other creator's id": f"rf1.{b}.{signature}",
        "old operator token": creator_token("the-control-token-before-rotation", a),
        "malformed": f"rf1.{a}",
    }


@pytest.mark.parametrize("kind", ["forged signature", "other creator's id", "old operator token", "malformed"])
async def test_a_forged_or_revoked_creator_token_is_401_everywhere(control_stack, http, kafka_bootstrap, kind):
    a, b = await new_creator(kafka_bootstrap, http), await new_creator(kafka_bootstrap, http)
    token = _bad_tokens(a, b)[kind]
    async with httpx.AsyncClient(base_url=control_stack.url("control"),
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        responses = [
            await client.get(f"/v1/creators/{a}/reviews"), await client.get(f"/v1/creators/{b}/reviews"),
            await client.get(f"/v1/creators/{a}"), await client.put(f"/v1/creators/{a}/mode", json={"mode": "off"}),
            await client.post("/v1/reviews/anything", json={"action": "approve"}),
        ]
    assert [r.status_code for r in responses] == [401] * 5
    assert all(r.headers["www-authenticate"] == "Bearer" for r in responses)
    for response in responses:
        assert_documented(response)
    assert "creator token not valid" in responses[0].json()["error"]
    assert (await http.get(f"/v1/creators/{a}")).json()["mode"] == "review"


async def test_profile_put_reaches_creators_config_with_a_new_version(http, creator, kafka_bootstrap):
    current = (await http.get(f"/v1/creators/{creator}")).json()
    wanted = {**current, "persona": "A warm home cook who bakes sourdough.", "version": 1}
    mismatch = await http.put(f"/v1/creators/{creator}", json={**wanted, "creator_id": "someone-else"})
    assert mismatch.status_code == 422 and mismatch.json()["details"][0]["field"] == "creator_id"
    invalid = await http.put(f"/v1/creators/{creator}", json={**wanted, "reply_budget_per_hour": -1})
    assert invalid.status_code == 422 and invalid.json()["details"][0]["field"] == "reply_budget_per_hour"
    async with TopicReader(kafka_bootstrap, CREATORS_CONFIG.name) as reader:
        response = await http.put(f"/v1/creators/{creator}", json=wanted)
        assert response.status_code == 200, response.text
        records = await reader.collect(lambda rs: any(r.key == creator.encode() for r in rs))
    saved = CreatorProfile.model_validate_json(next(r for r in records if r.key == creator.encode()).value)
    assert saved.persona == wanted["persona"] and saved.version == current["version"] + 1
    assert saved.updated_by == Actor.operator
    assert (await http.get(f"/v1/creators/{creator}")).json()["version"] == saved.version  # read your write
    unchanged = await http.put(f"/v1/creators/{creator}", json=wanted)
    assert unchanged.status_code == 200 and unchanged.json()["version"] == saved.version
    for answered in (mismatch, invalid, response, unchanged):
        assert_documented(answered)


async def test_a_stale_profile_put_is_409_and_changes_of_one_creator_are_serialised(http, creator):
    await http.put(f"/v1/creators/{creator}/mode", json={"mode": "auto"})
    read = (await http.get(f"/v1/creators/{creator}")).json()  # the creator's screen, mode auto
    off = await http.put(f"/v1/creators/{creator}/mode", json={"mode": "off"})  # the operator's kill switch
    assert off.status_code == 200 and off.json()["version"] == read["version"] + 1
    stale = await http.put(f"/v1/creators/{creator}", json={**read, "topics_to_avoid": ["politics"]})
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"].startswith(
        f"the profile changed since version {read['version']} (current {read['version'] + 1}): re-read it")
    assert_documented(stale)
    assert (await http.get(f"/v1/creators/{creator}")).json()["mode"] == "off"

    # Re-read and sent again: saved on top of the kill switch.
    current = (await http.get(f"/v1/creators/{creator}")).json()
    redone = await http.put(f"/v1/creators/{creator}", json={**current, "topics_to_avoid": ["politics"]})
    assert redone.status_code == 200 and redone.json()["mode"] == "off"
    assert redone.json()["version"] == current["version"] + 1

    # Two changes read at the same version: one is saved as the next version, the other is told to re-read.
    base = redone.json()
    racing = await asyncio.gather(*(http.put(f"/v1/creators/{creator}", json={**base, "banned_words": [word]})
                                    for word in ("cheap", "free")))
    assert sorted(r.status_code for r in racing) == [200, 409], [r.text for r in racing]
    assert next(r for r in racing if r.status_code == 200).json()["version"] == base["version"] + 1
    # Without a version each replaces what is current, one version after the other.
    unversioned = {k: v for k, v in base.items() if k != "version"}
    answers = await asyncio.gather(*(http.put(f"/v1/creators/{creator}", json={**unversioned, "banned_words": [w]})
                                     for w in ("a", "b")))
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    assert sorted(r.json()["version"] for r in answers) == [base["version"] + 2, base["version"] + 3]
    # The kill switch racing a change read before it: whichever goes first, mode stays off.
    await http.put(f"/v1/creators/{creator}/mode", json={"mode": "auto"})
    read = (await http.get(f"/v1/creators/{creator}")).json()
    mode, change = await asyncio.gather(http.put(f"/v1/creators/{creator}/mode", json={"mode": "off"}),
                                        http.put(f"/v1/creators/{creator}", json={**read, "persona": "Late."}))
    assert mode.status_code == 200 and change.status_code in (200, 409), change.text
    assert (await http.get(f"/v1/creators/{creator}")).json()["mode"] == "off"


async def test_two_control_replicas_racing_on_one_version_save_one_change_and_refuse_the_other(
        http, creator, control_stack):
    """Production runs 2 to 4 control replicas, and Kafka cannot compare-and-set. Each creator's changes have one
    writer, the replica that owns the creator's partition of creators.changes: two changes read at the same
    version and sent to two replicas at the same moment are made one after the other, so one is saved and the
    other is stale (409), and a kill switch racing a change read before it stays on, whichever replica takes what."""
    control_stack.start_service("control", instance="control-b")
    try:
        async with httpx.AsyncClient(base_url=control_stack.url("control-b"),
                                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as other:
            deadline = time.monotonic() + 90
            while not await ready(other):
                assert time.monotonic() < deadline, "the second control replica never got ready"
                await asyncio.sleep(0.5)
            base = (await http.get(f"/v1/creators/{creator}")).json()
            for round_ in range(3):
                racing = await asyncio.gather(
                    http.put(f"/v1/creators/{creator}", json={**base, "banned_words": [f"cheap{round_}"]}),
                    other.put(f"/v1/creators/{creator}", json={**base, "banned_words": [f"free{round_}"]}))
                assert sorted(r.status_code for r in racing) == [200, 409], [r.text for r in racing]
                saved, stale = sorted(racing, key=lambda r: r.status_code)
                assert saved.json()["version"] == base["version"] + 1
                assert stale.json()["error"].startswith(f"the profile changed since version {base['version']} ")
                assert_documented(stale)
                base = saved.json()
                # Both replicas read back the one saved, and nothing else.
                assert await profile_on(http, creator, base["version"]) == base
                assert await profile_on(other, creator, base["version"]) == base

            # The kill switch on one replica, a change read before it on the other, at the same moment.
            await http.put(f"/v1/creators/{creator}/mode", json={"mode": "auto"})
            read = await profile_on(other, creator, base["version"] + 1)
            mode, change = await asyncio.gather(
                http.put(f"/v1/creators/{creator}/mode", json={"mode": "off"}),
                other.put(f"/v1/creators/{creator}", json={**read, "persona": "Late."}))
            assert mode.status_code == 200 and change.status_code in (200, 409), [mode.text, change.text]
            last = max(mode.json()["version"], change.json().get("version", 0))
            for replica in (http, other):
                now = await profile_on(replica, creator, last)
                assert now["mode"] == "off" and now["version"] == last
                assert now["persona"] == ("Late." if change.status_code == 200 else read["persona"])
    finally:
        await asyncio.to_thread(control_stack.stop_process, "control-b")


async def writer_of(creator_id: str, control_stack, kafka_bootstrap: str) -> AIOKafkaProducer:
    """A producer claiming ``creator_id``'s partition of creators.changes, as the control service's writer does (its
    transactions stay open up to 60 s)."""
    settings = Settings(kafka_group_prefix=control_stack.extra_env["KAFKA_GROUP_PREFIX"])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transaction_timeout_ms=60_000,
                                transactional_id=writer_transactional_id(
                                    settings.group_id(PROFILE_WRITER_STAGE), CREATORS_CHANGES.name,
                                    partition_of(creator_id, CREATORS_CHANGES.partitions)))
    await producer.start()
    return producer


async def stalled_save(writer: AIOKafkaProducer, current: dict) -> None:
    """``writer`` stalls in the middle of a save: the next version of ``current`` (mode auto, persona "Stale.") sent,
    not committed."""
    stale = CreatorProfile.model_validate({**current, "version": current["version"] + 1, "mode": "auto",
                                           "persona": "Stale."})
    await writer.begin_transaction()
    await writer.send_and_wait(CREATORS_CONFIG.name, stale.model_dump_json().encode(), key=stale.creator_id.encode())


async def test_a_writer_stalled_mid_save_is_fenced_by_the_partitions_next_claim(http, creator, control_stack,
                                                                            kafka_bootstrap):
    """A control replica that stalls past its session timeout in the middle of a save loses the creator's partition,
    and its save must not land after the next owner's changes. The stalled writer here is a producer holding the
    partition's transactional id, as the replica's own would, that sent a save (mode auto: what it read before the
    creator switched off) and has not committed. The kill switch then goes through the API: the writer's batch
    claims the transactional id, which aborts the stalled save (its transaction would otherwise stay open 60 s and
    hold every reader of the partition back, far past the API's 15 s wait) and fences it: its commit fails, no
    service ever reads it, and mode off stands."""
    before = (await http.get(f"/v1/creators/{creator}")).json()
    stalled = await writer_of(creator, control_stack, kafka_bootstrap)
    try:
        async with TopicReader(kafka_bootstrap, CREATORS_CONFIG.name) as everything, \
                TopicReader(kafka_bootstrap, CREATORS_CONFIG.name, committed_only=True) as committed:
            await stalled_save(stalled, before)
            response = await http.put(f"/v1/creators/{creator}/mode", json={"mode": "off"})
            assert response.status_code == 200, response.text
            assert (response.json()["version"], response.json()["mode"]) == (before["version"] + 1, "off")
            with pytest.raises(ProducerFenced):
                await stalled.commit_transaction()

            def of_creator(records: list) -> list[CreatorProfile]:
                return [CreatorProfile.model_validate_json(r.value) for r in records if r.key == creator.encode()]

            written = of_creator(await everything.collect(lambda rs: len(of_creator(rs)) >= 2))
            read = of_creator(await committed.collect(lambda rs: len(of_creator(rs)) >= 1))
        assert [p.persona for p in written] == ["Stale.", before["persona"]]  # the stalled save did reach Kafka
        assert [(p.version, p.mode, p.persona) for p in read] == [
            (before["version"] + 1, ReplyMode.off, before["persona"])]
        assert (await profile_on(http, creator, before["version"] + 1))["mode"] == "off"
    finally:
        with contextlib.suppress(KafkaError):
            await stalled.stop()


async def test_the_writer_makes_no_change_twice_and_drops_one_that_waited_too_long(http, creator, kafka_bootstrap):
    """Changes written to creators.changes as the control API writes them: one answered already (its writer died
    before committing) is not made again; one that waited past CHANGE_MAX_WAIT is answered 409, not made; the
    next one is made."""
    before = (await http.get(f"/v1/creators/{creator}")).json()
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    answered = ProfileChange(change_id=f"ch-{uuid.uuid4().hex}", creator_id=creator, by=Actor.operator, profile=None,
                             version_sent=False, mode=ReplyMode.auto)
    late = ProfileChange(change_id=f"ch-{uuid.uuid4().hex}", creator_id=creator, by=Actor.operator, profile=None,
                         version_sent=False, mode=ReplyMode.auto,
                         occurred_at=datetime.now(UTC) - CHANGE_MAX_WAIT - timedelta(minutes=1))
    made = ProfileChange(change_id=f"ch-{uuid.uuid4().hex}", creator_id=creator, by=Actor.operator,
                         profile=CreatorProfile.model_validate({**before, "persona": "Made once."}), version_sent=True,
                         mode=None)
    earlier = ProfileChangeResult(change_id=answered.change_id, creator_id=creator, status=200,
                                  profile=CreatorProfile.model_validate(before), error=None, details=[])
    async with TopicReader(kafka_bootstrap, CREATORS_CHANGE_RESULTS.name) as results, \
            EventProducer(settings, "test", [CREATORS_CHANGES, CREATORS_CHANGE_RESULTS]) as producer:
        await producer.publish([Emit(CREATORS_CHANGE_RESULTS, earlier)])
        await producer.publish([Emit(CREATORS_CHANGES, c) for c in (answered, late, made)])
        ids = {late.change_id, made.change_id}
        records = await results.collect(lambda rs: ids <= {ProfileChangeResult.model_validate_json(r.value).change_id
                                                           for r in rs})
    answers = {a.change_id: a for a in (ProfileChangeResult.model_validate_json(r.value) for r in records)}
    assert answered.change_id not in answers or answers[answered.change_id] == earlier  # answered once, not again
    assert answers[late.change_id].status == 409 and answers[late.change_id].error.startswith("not made: it waited")
    assert answers[made.change_id].status == 200
    now = await profile_on(http, creator, before["version"] + 1)
    assert (now["version"], now["mode"], now["persona"]) == (before["version"] + 1, before["mode"], "Made once.")


async def test_a_change_the_writer_cannot_read_is_dead_lettered_and_answered_not_made(creator, kafka_bootstrap,
                                                                                      producer):
    """A change from a newer release's control replica (a mode this one does not know) mid rollout."""
    change_id = f"ch-{uuid.uuid4().hex}"
    value = json.dumps({"change_id": change_id, "creator_id": creator, "by": "operator", "profile": None,
                        "version_sent": False, "mode": "paused"}).encode()
    async with TopicReader(kafka_bootstrap, CREATORS_CHANGE_RESULTS.name, CREATORS_CHANGES.dlq) as reader:
        await producer.send_and_wait(CREATORS_CHANGES.name, value, key=creator.encode())
        records = await reader.collect(lambda rs: {r.topic for r in rs if change_id.encode() in r.value} == {
            CREATORS_CHANGE_RESULTS.name, CREATORS_CHANGES.dlq})
    (answer,) = [ProfileChangeResult.model_validate_json(r.value) for r in records
                 if r.topic == CREATORS_CHANGE_RESULTS.name and change_id.encode() in r.value]
    assert answer.status == 503 and answer.error.startswith("not made: the control service could not read")


async def test_a_mode_change_for_an_id_no_creator_can_have_is_404(http):
    response = await http.put("/v1/creators/no%20such%20creator/mode", json={"mode": "off"})
    assert response.status_code == 404 and response.json()["error"] == "unknown creator 'no such creator'"
    assert_documented(response)


async def ready(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def profile_on(client: httpx.AsyncClient, creator_id: str, version: int, timeout_s: float = 15) -> dict:
    """The creator's profile as the replica behind ``client`` has it, once it has read ``version``."""
    deadline = time.monotonic() + timeout_s
    while (profile := (await client.get(f"/v1/creators/{creator_id}")).json())["version"] < version:
        assert time.monotonic() < deadline, f"version {version} never reached {client.base_url}"
        await asyncio.sleep(0.1)
    return profile


@pytest.mark.parametrize("change, field, says", [
    ({"policy_overrides": {"verify.link": {"enabled": False}}}, "policy_overrides", "'verify.link'"),
    ({"policy_overrides": {"screen.topics_to_avoid": {}}}, "policy_overrides", "verify.topics_to_avoid"),
    ({"topics_to_avoid": [f"topic {i}" for i in range(20_000)]}, "topics_to_avoid", "at most 200 items"),
    ({"banned_words": ["x" * 201]}, "banned_words.0", "at most 200 characters"),
    ({"allowed_links": [f"s{i}.example" for i in range(201)]}, "allowed_links", "at most 200 items"),
    ({"example_replies": ["Thanks!", "x" * 1_001]}, "example_replies.1", "at most 1000 characters"),
])
async def test_an_unknown_policy_override_or_an_oversized_list_is_422_naming_the_field(
    http, creator, change, field, says
):
    current = (await http.get(f"/v1/creators/{creator}")).json()
    response = await http.put(f"/v1/creators/{creator}", json={**current, **change})
    assert response.status_code == 422, response.text
    (detail,) = response.json()["details"]
    assert detail["field"] == field and says in detail["problem"], detail
    assert_documented(response)
    assert (await http.get(f"/v1/creators/{creator}")).json() == current


async def test_load_profiles_publishes_each_profile_as_its_creators_next_version(
    http, creator, kafka_bootstrap, tmp_path
):
    await http.put(f"/v1/creators/{creator}/mode", json={"mode": "off"})
    current = (await http.get(f"/v1/creators/{creator}")).json()
    assert current["version"] > 1
    file = tmp_path / "profiles.json"
    file.write_text(make_profile(creator, banned_words=["cheap"]).model_dump_json(exclude={"version"}).join("[]"))
    (loaded,) = await load_profiles(file, Settings(kafka_bootstrap_servers=kafka_bootstrap))
    assert loaded.version == current["version"] + 1  # the file says nothing (1): not an older version
    deadline = time.monotonic() + 15
    while (saved := (await http.get(f"/v1/creators/{creator}")).json())["version"] != loaded.version:
        assert time.monotonic() < deadline, f"the loaded profile never reached the control service: {saved}"
        await asyncio.sleep(0.2)
    assert saved["banned_words"] == ["cheap"] and saved["mode"] == "review"


async def test_load_profiles_claims_the_creators_partition_like_the_writer_and_the_writer_goes_on_after_it(
        http, creator, control_stack, kafka_bootstrap, tmp_path):
    """``admin load-profiles`` (a seed, or profiles put back while control is down) saves as the control service's
    writer does: it claims the creator's partition first, so a save a stalled writer left open is aborted and never
    read, and the loaded profile is the next version of what was committed. The control service's writer (fenced
    too, had it been mid-batch: it would make the batch again) claims the partition anew at its next batch, so the
    next change through the API is made on top of the loaded profile."""
    before = (await http.get(f"/v1/creators/{creator}")).json()
    stalled = await writer_of(creator, control_stack, kafka_bootstrap)
    try:
        await stalled_save(stalled, before)
        file = tmp_path / "profiles.json"
        file.write_text(make_profile(creator, banned_words=["cheap"]).model_dump_json(exclude={"version"}).join("[]"))
        settings = Settings(kafka_bootstrap_servers=kafka_bootstrap,
                            kafka_group_prefix=control_stack.extra_env["KAFKA_GROUP_PREFIX"])
        (loaded,) = await load_profiles(file, settings)
        with pytest.raises(ProducerFenced):
            await stalled.commit_transaction()
    finally:
        with contextlib.suppress(KafkaError):
            await stalled.stop()
    assert loaded.version == before["version"] + 1
    response = await http.put(f"/v1/creators/{creator}/mode", json={"mode": "off"})
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["version"], after["mode"], after["banned_words"]) == (before["version"] + 2, "off", ["cheap"])
    assert after["persona"] != "Stale."


async def test_mode_off_is_honoured_by_the_services_and_blocks_approvals(
    http, creator, producer, kafka_bootstrap, control_stack
):
    held = await hold(producer, creator)
    await listed(http, creator, {held.reply_id})
    group = f"{control_stack.extra_env['KAFKA_GROUP_PREFIX']}.policy-screen"
    await group_starts_at_end(kafka_bootstrap, group, COMMENTS_RECEIVED.name)
    control_stack.start_service("policy")
    control_stack.wait_ready(log=lambda *_: None, timeout_s=90)
    try:
        response = await http.put(f"/v1/creators/{creator}/mode", json={"mode": "off"})
        assert response.status_code == 200 and response.json()["mode"] == "off"
        approve = await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "approve"})
        assert approve.status_code == 409 and "mode off" in approve.json()["error"]
        assert_documented(response)
        assert_documented(approve)
        assert (await http.post(f"/v1/reviews/{held.reply_id}", json={"action": "reject"})).status_code == 200

        # The policy service follows creators.config: a new comment is skipped, reason reply_mode_off.
        deadline = time.monotonic() + 10
        async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
            while True:
                comment = make_comment(creator)
                await producer.send_and_wait(COMMENTS_RECEIVED.name, CommentReceived(comment=comment)
                                             .model_dump_json().encode(), key=comment.comment_id.encode())
                records = await reader.collect(lambda rs, c=comment: any(
                    Decision.model_validate_json(r.value).comment_id == c.comment_id for r in rs))
                decision = next(d for d in (Decision.model_validate_json(r.value) for r in records)
                                if d.comment_id == comment.comment_id)
                if decision.outcome == Outcome.skipped or time.monotonic() > deadline:
                    break
        assert decision.outcome == Outcome.skipped and decision.reasons[0].code == "reply_mode_off"
    finally:
        control_stack.stop_process("policy")
        control_stack.ports.pop("policy", None)


async def test_the_pending_list_and_decisions_survive_a_restart(kafka_bootstrap, tmp_path, producer):
    creator_id = f"cook-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator_id)], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    decided, waiting = await hold(producer, creator_id), await hold(producer, creator_id)
    stack = new_stack(kafka_bootstrap, tmp_path / "restart")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        stack.start_service("control")
        stack.wait_ready(log=lambda *_: None, timeout_s=90)
        async with httpx.AsyncClient(base_url=stack.url("control"), headers=headers) as http:
            await listed(http, creator_id, {decided.reply_id, waiting.reply_id})
            assert (await http.post(f"/v1/reviews/{decided.reply_id}", json={"action": "reject"})).status_code == 200
        stack.stop_process("control")
        stack.start_service("control")  # same port, fresh process: everything is read back from Kafka
        stack.wait_ready(log=lambda *_: None, timeout_s=90)
        async with httpx.AsyncClient(base_url=stack.url("control"), headers=headers) as http:
            reviews = (await http.get(f"/v1/creators/{creator_id}/reviews")).json()["reviews"]
            assert [r["reply_id"] for r in reviews] == [waiting.reply_id]
            conflict = await http.post(f"/v1/reviews/{decided.reply_id}", json={"action": "approve"})
            repeat = await http.post(f"/v1/reviews/{decided.reply_id}", json={"action": "reject"})
        assert conflict.status_code == 409 and conflict.json()["decided"] == "reject"
        assert repeat.status_code == 200 and repeat.json()["repeated"] is True
    finally:
        stack.stop()


async def test_a_held_draft_approved_by_the_creator_is_published_exactly_once(kafka_bootstrap, tmp_path, producer):
    """policy holds the draft → the control API lists it → approve (twice) → the publisher posts it once."""
    creator_id = f"cook-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator_id)], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    stack = new_stack(kafka_bootstrap, tmp_path / "e2e")
    prefix = stack.extra_env["KAFKA_GROUP_PREFIX"]
    for stage, topic in (("policy-verify", REPLIES_DRAFTED), ("policy-screen", COMMENTS_RECEIVED),
                         ("publisher", REPLIES_APPROVED), ("control-review", REPLIES_REVIEWED)):
        await group_starts_at_end(kafka_bootstrap, f"{prefix}.{stage}", topic.name)  # this test's records only
    comment = make_comment(creator_id)
    draft = ReplyDrafted(comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id),
                         text="Let it rest for an hour, then bake it hot.", profile_version=1,
                         generation=GenerationStats(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1))
    with serve_in_thread(SimulatorConfig()) as platform:
        stack.extra_env["PLATFORM_BASE_URL"] = platform.url
        try:
            for name in ("policy", "publisher", "control"):
                stack.start_service(name)
            stack.wait_ready(log=lambda *_: None, timeout_s=120)
            async with httpx.AsyncClient(base_url=stack.url("control"),
                                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http, \
                    TopicReader(kafka_bootstrap, REPLIES_PUBLISHED.name) as published:
                await producer.send_and_wait(REPLIES_DRAFTED.name, draft.model_dump_json().encode(),
                                             key=comment.comment_id.encode())
                (review,) = [r for r in await listed(http, creator_id, {draft.reply_id}, timeout_s=60)
                             if r["reply_id"] == draft.reply_id]
                assert review["draft"].endswith(LABEL)
                assert (await http.post(f"/v1/reviews/{draft.reply_id}", json={"action": "approve"})).status_code == 200
                records = await published.collect(lambda rs: of(rs, REPLIES_PUBLISHED.name, ReplyPublished,
                                                                 draft.reply_id), timeout_s=60)
                again = await http.post(f"/v1/reviews/{draft.reply_id}", json={"action": "approve"})
                assert again.status_code == 200 and again.json()["repeated"] is True
                await asyncio.sleep(3)  # give the re-sent approval time to (not) go out again
                records += await published.read_to_end()
            metrics = httpx.get(f"{stack.url('publisher')}/metrics", timeout=5).text
            posts = httpx.get(f"{platform.url}/v1/posts", params={"comment_id": comment.comment_id}).json()["posts"]
        finally:
            stack.stop()
    assert len(posts) == 1 and posts[0]["text"] == review["draft"]
    out = of(records, REPLIES_PUBLISHED.name, ReplyPublished, draft.reply_id)
    assert out and {e.platform_reply_id for _, e in out} == {posts[0]["platform_reply_id"]}
    # Its end-to-end latency includes the creator's wait, so it is kept apart from the pipeline's own.
    # (Counted per platform and route, not per reply: another test's late approval may be counted too.)
    counts = [line for line in metrics.splitlines() if line.startswith("replyflow_end_to_end_seconds_count{")]
    assert counts and all(line.startswith(f'replyflow_end_to_end_seconds_count{{platform="{comment.platform}",'
                                          'route="review"}') for line in counts), counts


async def test_the_creators_edits_teach_the_verify_stage_their_voice(
    http, producer, kafka_bootstrap, control_stack
):
    """Edits made through the control API reach the policy service (replies.reviewed) as voice examples."""
    creator_id = f"baker-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator_id, example_replies=BAKER[:3])],
                       Settings(kafka_bootstrap_servers=kafka_bootstrap))
    group = f"{control_stack.extra_env['KAFKA_GROUP_PREFIX']}.policy-verify"
    await group_starts_at_end(kafka_bootstrap, group, REPLIES_DRAFTED.name)
    control_stack.start_service("policy")
    control_stack.wait_ready(log=lambda *_: None, timeout_s=90)

    async def authenticity_of_a_terse_draft() -> float:
        comment = make_comment(creator_id, text="Is it any good?")
        draft = ReplyDrafted(comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id),
                             text=REVIEWER[7], profile_version=1,
                             generation=GenerationStats(model="m", prompt_tokens=1, completion_tokens=1, latency_ms=1))
        async with TopicReader(kafka_bootstrap, REPLIES_REVIEW.name) as reader:
            await producer.send_and_wait(REPLIES_DRAFTED.name, draft.model_dump_json().encode(),
                                         key=comment.comment_id.encode())
            records = await reader.collect(lambda rs: of(rs, REPLIES_REVIEW.name, ReplyVerdict, draft.reply_id))
        ((_, held),) = of(records, REPLIES_REVIEW.name, ReplyVerdict, draft.reply_id)
        assert held.authenticity is not None
        return held.authenticity

    try:
        before = await authenticity_of_a_terse_draft()
        as_creator = {"Authorization": f"Bearer {creator_token(TOKEN, creator_id)}"}  # an operator's edit won't do
        for text in REVIEWER[:6]:  # the creator rewrites held drafts in their own terse style
            reply = await hold(producer, creator_id)
            await listed(http, creator_id, {reply.reply_id})
            response = await http.post(f"/v1/reviews/{reply.reply_id}", json={"action": "edit", "text": text},
                                       headers=as_creator)
            assert response.status_code == 200, response.text
        deadline = time.monotonic() + 15
        while (after := await authenticity_of_a_terse_draft()) <= before:
            assert time.monotonic() < deadline, f"edits did not reach the verify stage ({before} -> {after})"
            await asyncio.sleep(0.5)
        ready = httpx.get(f"{control_stack.url('policy')}/readyz").json()
        assert ready[REPLIES_REVIEWED.name] is True
    finally:
        control_stack.stop_process("policy")
        control_stack.ports.pop("policy", None)

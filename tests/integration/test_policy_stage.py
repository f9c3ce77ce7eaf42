"""The policy service against a real broker: reasons reach the audit topic, held replies the review
topic, malformed events the dead-letter topic with context, and profile changes apply in seconds."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from replyflow.admin import put_profiles
from replyflow.events import (
    Comment,
    CommentReceived,
    CreatorProfile,
    Decision,
    GenerationStats,
    Outcome,
    ReplyDrafted,
    ReplyMode,
    ReplyVerdict,
    Stage,
    reply_id_for,
)
from replyflow.kafka import DEAD_LETTER_HEADERS, group_starts_at_end
from replyflow.local.stack import Stack
from replyflow.policy.rules import PolicySource
from replyflow.settings import Settings
from replyflow.topics import (
    COMMENTS_RECEIVED,
    COMMENTS_SCREENED,
    DECISIONS,
    REPLIES_APPROVED,
    REPLIES_DRAFTED,
    REPLIES_REVIEW,
)
from tests.helpers import OtlpReceiver, TopicReader, scraped, wait_for

pytestmark = pytest.mark.kafka


def make_profile(creator_id: str, **over) -> CreatorProfile:
    return CreatorProfile.model_validate({
        "creator_id": creator_id, "display_name": "Test Cook", "persona": "A warm home cook.",
        "mode": "auto", "allowed_links": ["testcook.example"], **over,
    })


def make_comment(creator_id: str, text: str = "How long should the dough rest?") -> Comment:
    return Comment(platform="youtube", comment_id=f"pt-{uuid.uuid4().hex[:10]}", creator_id=creator_id,
                   post_id="v1", author_id="a1", author_name="Ann", text=text, created_at=datetime.now(UTC))


def draft_of(comment: Comment, text: str) -> ReplyDrafted:
    return ReplyDrafted(comment=comment, reply_id=reply_id_for(comment.platform, comment.comment_id), text=text,
                        profile_version=1, generation=GenerationStats(model="m", prompt_tokens=1,
                                                                      completion_tokens=1, latency_ms=1))


async def send(producer, topic: str, key: str, event) -> None:
    await producer.send_and_wait(topic, event.model_dump_json().encode(), key=key.encode())


def decisions_for(records, comment_id: str) -> list[Decision]:
    out = []
    for r in records:
        if r.topic == DECISIONS.name:
            d = Decision.model_validate_json(r.value)
            if d.comment_id == comment_id:
                out.append(d)
    return out


@pytest.fixture
async def policy(stack, kafka_bootstrap):
    creator = f"cook-{uuid.uuid4().hex[:6]}"
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    await put_profiles([make_profile(creator), make_profile(f"{creator}-reviews", mode="review")], settings)
    stack.start_service("policy")
    stack.wait_ready(log=lambda *_: None, timeout_s=90)
    return creator, settings


@pytest.mark.usefixtures("policy")
async def test_screen_decision_with_reasons_reaches_the_audit_topic(producer, kafka_bootstrap):
    comment = make_comment("nobody-has-this-id")
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        await send(producer, COMMENTS_RECEIVED.name, comment.comment_id, CommentReceived(comment=comment))
        records = await reader.collect(lambda rs: decisions_for(rs, comment.comment_id))
    (decision,) = decisions_for(records, comment.comment_id)
    assert decision.outcome == Outcome.skipped and decision.terminal
    assert decision.reasons[0].code == "unknown_creator" and decision.reasons[0].message
    assert decision.policy_version


async def send_traced_comment(producer, kafka_bootstrap: str, upstream: str) -> str:
    """Send a comment carrying the W3C ``upstream`` traceparent; returns its decision's traceparent."""
    comment = make_comment("nobody-has-this-id")
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        body = CommentReceived(comment=comment).model_dump_json().encode()
        await producer.send_and_wait(COMMENTS_RECEIVED.name, body, key=comment.comment_id.encode(),
                                     headers=[("traceparent", upstream.encode())])
        records = await reader.collect(lambda rs: decisions_for(rs, comment.comment_id))
    record = next(r for r in records if decisions_for([r], comment.comment_id))
    return dict(record.headers)["traceparent"].decode()


@pytest.mark.usefixtures("policy")
async def test_without_an_exporter_the_comments_trace_context_passes_through(producer, kafka_bootstrap):
    # OTEL_TRACES_EXPORTER=none records no spans, but a downstream service that exports must
    # still see the comment's trace: the decision carries the upstream context unchanged.
    upstream = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    assert await send_traced_comment(producer, kafka_bootstrap, upstream) == upstream


async def test_with_otlp_the_policy_span_reaches_the_collector_inside_the_comments_trace(
    producer, kafka_bootstrap, tmp_path
):
    trace_id, upstream_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with OtlpReceiver() as collector:
        stack = Stack(tmp_path / "traced", kafka_bootstrap=kafka_bootstrap, extra_env={
            "KAFKA_GROUP_PREFIX": f"test-{uuid.uuid4().hex[:8]}", "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        })
        (tmp_path / "traced").mkdir()
        stack.start_service("policy")
        try:
            stack.wait_ready(log=lambda *_: None, timeout_s=90)
            traceparent = await send_traced_comment(producer, kafka_bootstrap, f"00-{trace_id}-{upstream_span}-01")
            _, carried_trace, carried_span, flags = traceparent.split("-")
            assert carried_trace == trace_id and carried_span != upstream_span and flags == "01"
            # The BatchSpanProcessor exports every few seconds.
            wait_for(lambda: any(s.span_id == carried_span for s in collector.spans), 20,
                     "the policy span at the collector")
        finally:
            stack.stop()
    span = next(s for s in collector.spans if s.span_id == carried_span)
    assert span.service == "replyflow-policy" and span.trace_id == trace_id
    assert span.parent_span_id == upstream_span  # a child of the ingest span the comment arrived with


@pytest.mark.usefixtures("policy")
async def test_an_event_from_a_newer_producer_is_processed_and_a_breaking_one_dead_lettered(
        producer, kafka_bootstrap):
    """Mid rolling deploy a newer producer may add (optional) fields: this consumer leaves them out and decides
    as usual. A breaking change bumps schema_version, which it cannot read: that goes to the dead-letter topic."""
    newer, breaking = make_comment("nobody-has-this-id"), make_comment("nobody-has-this-id")
    newer_body = json.loads(CommentReceived(comment=newer).model_dump_json())
    newer_body["ingest_region"] = "eu-west-1"
    newer_body["comment"]["author_verified"] = True
    breaking_body = {**json.loads(CommentReceived(comment=breaking).model_dump_json()), "schema_version": 2}
    async with TopicReader(kafka_bootstrap, DECISIONS.name, COMMENTS_RECEIVED.dlq) as reader:
        for comment, body in ((newer, newer_body), (breaking, breaking_body)):
            await producer.send_and_wait(COMMENTS_RECEIVED.name, json.dumps(body).encode(),
                                         key=comment.comment_id.encode())
        records = await reader.collect(lambda rs: decisions_for(rs, newer.comment_id) and any(
            r.topic == COMMENTS_RECEIVED.dlq and breaking.comment_id.encode() in r.value for r in rs))
    (decision,) = decisions_for(records, newer.comment_id)
    assert decision.stage == Stage.screen and decision.reasons[0].code == "unknown_creator"
    assert not any(r.topic == COMMENTS_RECEIVED.dlq and newer.comment_id.encode() in r.value for r in records)
    (dead,) = [r for r in records if r.topic == COMMENTS_RECEIVED.dlq and breaking.comment_id.encode() in r.value]
    assert "schema_version" in dict(dead.headers)["x-exception-message"].decode()


@pytest.mark.usefixtures("policy")
async def test_events_whose_headers_are_not_text_are_processed_not_skipped(producer, kafka_bootstrap):
    # Kafka header values are bytes, or null: another producer's binary header must not lose the comment (nor
    # the rest of its batch, which the next commit would skip).
    binary, null, after = (make_comment("nobody-has-this-id") for _ in range(3))
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        for comment, headers in ((binary, [("x-upstream-id", b"\xff\xfe\x00")]), (null, [("x-flag", None)]),
                                 (after, [])):
            await producer.send_and_wait(COMMENTS_RECEIVED.name, CommentReceived(comment=comment)
                                         .model_dump_json().encode(), key=comment.comment_id.encode(),
                                         headers=headers)
        records = await reader.collect(lambda rs: all(decisions_for(rs, c.comment_id) for c in (binary, null, after)))
    for comment in (binary, null, after):
        (decision,) = decisions_for(records, comment.comment_id)
        assert decision.reasons[0].code == "unknown_creator"


@pytest.mark.usefixtures("policy")
async def test_malformed_event_goes_to_the_dead_letter_topic_with_context(producer, kafka_bootstrap):
    bad = json.dumps({"comment": {"comment_id": "broken-1", "creator_id": "x"}}).encode()
    async with TopicReader(kafka_bootstrap, f"{COMMENTS_RECEIVED.name}.dlq") as reader:
        meta = await producer.send_and_wait(COMMENTS_RECEIVED.name, bad, key=b"broken-1")
        records = await reader.collect(lambda rs: any(r.value == bad for r in rs))
    record = next(r for r in records if r.value == bad)
    headers = {k: v.decode() for k, v in record.headers}
    assert {k for k in headers if k.startswith("x-")} == set(DEAD_LETTER_HEADERS)  # as schemas/asyncapi.yaml says
    assert headers["x-original-topic"] == COMMENTS_RECEIVED.name
    assert headers["x-original-partition"] == str(meta.partition)
    assert headers["x-original-offset"] == str(meta.offset)
    assert headers["x-consumer-group"].endswith(".policy-screen")
    assert headers["x-exception-class"] == "ValidationError"
    assert "platform" in headers["x-exception-message"]


async def test_a_comment_the_platform_delivers_twice_is_screened_and_drafted_once(stack, producer, kafka_bootstrap):
    # e.g. a connector that never got its 202 POSTs the comment again: a second event for the same comment.
    creator = f"cook-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator)], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    group = Settings(kafka_group_prefix=stack.extra_env["KAFKA_GROUP_PREFIX"]).group_id("policy-screen")
    await group_starts_at_end(kafka_bootstrap, group, COMMENTS_RECEIVED.name)  # only this test's deliveries count
    stack.extra_env["POLICY_STAGES"] = "screen"
    stack.start_service("policy")
    stack.wait_ready(log=lambda *_: None, timeout_s=90)
    comment, marker = make_comment(creator), make_comment("nobody-has-this-id")
    async with TopicReader(kafka_bootstrap, DECISIONS.name, COMMENTS_SCREENED.name) as reader:
        # Same key, so one partition and in order: the marker's decision comes after the repeat was handled.
        for event in (CommentReceived(comment=comment), CommentReceived(comment=comment),
                      CommentReceived(comment=marker)):
            await send(producer, COMMENTS_RECEIVED.name, comment.comment_id, event)
        records = await reader.collect(lambda rs: decisions_for(rs, marker.comment_id))
        records += await reader.read_to_end()
    # One outcome per comment: the repeat adds no decision of its own, and nothing more to draft.
    assert [d.outcome for d in decisions_for(records, comment.comment_id)] == [Outcome.eligible]
    screened = [r for r in records if r.topic == COMMENTS_SCREENED.name and comment.comment_id.encode() in r.value]
    assert len(screened) == 1
    assert scraped(stack.url("policy"), "replyflow_duplicate_deliveries_total", platform="youtube") == 1


async def test_held_replies_reach_the_review_topic_labelled(policy, producer, kafka_bootstrap):
    creator = policy[0]
    comment = make_comment(f"{creator}-reviews")
    async with TopicReader(kafka_bootstrap, REPLIES_REVIEW.name, REPLIES_APPROVED.name) as reader:
        await send(producer, REPLIES_DRAFTED.name, comment.comment_id, draft_of(comment, "Rest it for an hour!"))
        records = await reader.collect(lambda rs: any(comment.comment_id.encode() in r.value for r in rs))
    (record,) = [r for r in records if comment.comment_id.encode() in r.value]
    verdict = ReplyVerdict.model_validate_json(record.value)
    assert record.topic == REPLIES_REVIEW.name and verdict.outcome == Outcome.held
    assert "creator_reviews_all" in {r.code for r in verdict.reasons}
    assert verdict.text.endswith(make_profile(creator).disclosure_label)
    assert verdict.disclosure_label == make_profile(creator).disclosure_label  # so a later label replaces it


async def test_turning_replies_off_takes_effect_within_seconds(policy, producer, kafka_bootstrap):
    creator, settings = policy
    before = make_comment(creator)
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        await send(producer, COMMENTS_RECEIVED.name, before.comment_id, CommentReceived(comment=before))
        records = await reader.collect(lambda rs: decisions_for(rs, before.comment_id))
    assert decisions_for(records, before.comment_id)[0].outcome == Outcome.eligible

    await put_profiles([make_profile(creator, mode=ReplyMode.off, version=2)], settings)
    changed_at = time.monotonic()
    # Keep commenting until the kill switch shows, and then it must stay on. How soon is measured by
    # `make bench-policy` (kill-switch.json); the 30 s bound here only catches a change never applied.
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        while True:
            after = make_comment(creator)
            await send(producer, COMMENTS_RECEIVED.name, after.comment_id, CommentReceived(comment=after))
            records = await reader.collect(lambda rs, a=after: decisions_for(rs, a.comment_id), timeout_s=10)
            decision = decisions_for(records, after.comment_id)[0]
            if decision.outcome == Outcome.skipped:
                break
            assert time.monotonic() - changed_at < 30, "mode off never applied"
    assert decision.reasons[0].code == "reply_mode_off"
    last = make_comment(creator)
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        await send(producer, COMMENTS_RECEIVED.name, last.comment_id, CommentReceived(comment=last))
        records = await reader.collect(lambda rs: decisions_for(rs, last.comment_id), timeout_s=10)
    assert decisions_for(records, last.comment_id)[0].outcome == Outcome.skipped


async def test_a_new_banned_word_takes_effect_within_seconds(policy, producer, kafka_bootstrap):
    creator, settings = policy
    text = "Rest it for an hour, then bake it hot. Crispy edges guaranteed!"
    first = make_comment(creator)
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        await send(producer, REPLIES_DRAFTED.name, first.comment_id, draft_of(first, text))
        records = await reader.collect(lambda rs: decisions_for(rs, first.comment_id))
    assert decisions_for(records, first.comment_id)[0].outcome == Outcome.approved

    await put_profiles([make_profile(creator, banned_words=["crispy"], version=2)], settings)
    changed_at = time.monotonic()
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        while True:
            later = make_comment(creator)
            await send(producer, REPLIES_DRAFTED.name, later.comment_id, draft_of(later, text))
            records = await reader.collect(lambda rs, c=later: decisions_for(rs, c.comment_id), timeout_s=10)
            decision = decisions_for(records, later.comment_id)[0]
            if decision.outcome != Outcome.approved:
                break
            assert time.monotonic() - changed_at < 30, "banned word never applied"
    assert decision.outcome == Outcome.rejected
    assert "banned_words" in {r.check for r in decision.reasons}


async def test_a_draft_delivered_again_keeps_its_first_verdict(stack, policy, producer, kafka_bootstrap):
    # After a crash between sending a batch's outputs and committing it, its drafts come again. The creator banned
    # a word meanwhile: checked again, the reply would be rejected, or held while it is being posted.
    creator, settings = policy
    comment = make_comment(creator)
    draft = draft_of(comment, "Rest it for an hour, then bake it hot. Crispy edges guaranteed!")
    async with TopicReader(kafka_bootstrap, DECISIONS.name, REPLIES_APPROVED.name, REPLIES_REVIEW.name) as reader:
        await send(producer, REPLIES_DRAFTED.name, comment.comment_id, draft)
        records = await reader.collect(lambda rs: any(r.topic == REPLIES_APPROVED.name
                                                      and draft.reply_id.encode() in r.value for r in rs))
        await put_profiles([make_profile(creator, banned_words=["crispy"], version=2)], settings)
        await asyncio.sleep(2)  # the profile change is applied (seconds), and the approval read back
        again = draft.model_copy(update={"event_id": str(uuid.uuid4())})
        await send(producer, REPLIES_DRAFTED.name, comment.comment_id, again)
        records += await reader.collect(lambda rs: len(decisions_for(rs, comment.comment_id)) == 1, timeout_s=20)
        await asyncio.sleep(1)
        records += await reader.read_to_end()
    decisions = decisions_for(records, comment.comment_id)
    assert [d.outcome for d in decisions] == [Outcome.approved, Outcome.approved]
    assert decisions[1].profile_version == decisions[0].profile_version == 1
    outputs = [r.topic for r in records if r.topic in (REPLIES_APPROVED.name, REPLIES_REVIEW.name)
               and draft.reply_id.encode() in r.value]
    assert outputs == [REPLIES_APPROVED.name]  # sent once
    assert scraped(stack.url("policy"), "replyflow_drafts_decided_before_total") >= 1  # other tests' drafts too


async def test_a_policy_file_change_that_cannot_be_used_keeps_the_last_good_one_and_says_so(
        stack, producer, kafka_bootstrap, tmp_path):
    # A typo pushed to the policy ConfigMap: comments go on being screened under the last good policy (none
    # dead-lettered), and the pods say why they are not ready until it is fixed.
    creator = f"cook-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator)], Settings(kafka_bootstrap_servers=kafka_bootstrap))
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(PolicySource().path.read_text())
    stack.extra_env.update({"POLICY_STAGES": "screen", "POLICY_FILE": str(policy_file)})
    stack.start_service("policy")
    stack.wait_ready(log=lambda *_: None, timeout_s=90)
    url = stack.url("policy")
    policy_file.write_text(policy_file.read_text().replace('"screen"', '"sceen"', 1))
    wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 503, 10, "unready on the bad policy file")
    assert "policy.json cannot be used" in httpx.get(f"{url}/readyz").text
    comment = make_comment(creator)
    async with TopicReader(kafka_bootstrap, DECISIONS.name, COMMENTS_RECEIVED.dlq) as reader:
        await send(producer, COMMENTS_RECEIVED.name, comment.comment_id, CommentReceived(comment=comment))
        records = await reader.collect(lambda rs: decisions_for(rs, comment.comment_id))
    assert decisions_for(records, comment.comment_id)[0].outcome == Outcome.eligible
    assert not [r for r in records if r.topic == COMMENTS_RECEIVED.dlq and comment.comment_id.encode() in r.value]
    policy_file.write_text(PolicySource().path.read_text())  # fixed
    wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 10, "ready again once fixed")


async def test_two_screen_replicas_spend_one_reply_budget_between_them(stack, producer, kafka_bootstrap):
    creator = f"cook-{uuid.uuid4().hex[:6]}"
    await put_profiles([make_profile(creator, reply_budget_per_hour=4)],
                       Settings(kafka_bootstrap_servers=kafka_bootstrap))
    stack.extra_env["POLICY_STAGES"] = "screen"
    for instance in ("policy", "policy-2"):
        stack.start_service("policy", instance=instance)
    group = Settings(kafka_group_prefix=stack.extra_env["KAFKA_GROUP_PREFIX"]).group_id("policy-screen")

    def owned(instance: str) -> int:
        ready = httpx.get(f"{stack.url(instance)}/readyz", timeout=5)
        return len(ready.json()["groups"][group]) if ready.status_code == 200 else 0

    wait_for(lambda: owned("policy") == owned("policy-2") == COMMENTS_RECEIVED.partitions // 2, 90,
             "each replica owning half the partitions")
    comments = [make_comment(creator, f"How long should dough number {i} rest?") for i in range(40)]
    ids = {c.comment_id for c in comments}
    async with TopicReader(kafka_bootstrap, DECISIONS.name) as reader:
        for comment in comments:
            await send(producer, COMMENTS_RECEIVED.name, comment.comment_id, CommentReceived(comment=comment))
        records = await reader.collect(lambda rs: ids <= {d.comment_id for d in decisions_for_any(rs, ids)}, 60)
    decisions = decisions_for_any(records, ids)
    # Counted per replica, each would allow 4 (8 in all). Together: the budget, or one more when both spent the
    # last reply before either saw the other's spend (at most one per extra replica).
    eligible = sum(d.outcome == Outcome.eligible for d in decisions)
    assert 4 <= eligible <= 5
    skipped = [d for d in decisions if d.outcome == Outcome.skipped]
    assert len(skipped) == 40 - eligible and all(d.reasons[-1].code == "reply_budget_exhausted" for d in skipped)


def decisions_for_any(records, comment_ids: set[str]) -> list[Decision]:
    found = [Decision.model_validate_json(r.value) for r in records if r.topic == DECISIONS.name]
    return [d for d in found if d.comment_id in comment_ids and d.stage == Stage.screen]

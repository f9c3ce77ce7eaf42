"""``python -m replyflow.admin replay-dead-letters`` against a real broker: a stage's dead letter goes back to
its topic unchanged, a webhook change for an account no profile named goes through ingest's mapping once a
profile names it, and the selection and dry run send nothing they should not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from replyflow import admin
from replyflow.admin import put_profiles, replay_transactional_id
from replyflow.dead_letters import Selection
from replyflow.events import Comment, CommentReceived, CreatorProfile, Decision
from replyflow.kafka import EventProducer, Fenced, PermanentError, dead_letter, group_starts_at_end, subscribe_stage
from replyflow.service import service_parts
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_RECEIVED, COMMENTS_SCREENED, DECISIONS
from tests.helpers import TopicReader, wait_for
from tests.integration.conftest import signed

pytestmark = pytest.mark.kafka


async def replay(kafka_bootstrap: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replyflow.admin", "replay-dead-letters", *args,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def dead_lettered(kafka_bootstrap: str, producer, topic: str, key: bytes, value: bytes,
                        error: Exception) -> None:
    """Dead-letter a record the way a stage does: read it back from ``topic``, hand it to kafka.dead_letter."""
    meta = await producer.send_and_wait(topic, value, key=key)
    async with EventProducer(Settings(kafka_bootstrap_servers=kafka_bootstrap), "test", [DECISIONS]) as stage:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, meta.partition)
            consumer.assign([tp])
            consumer.seek(tp, meta.offset)
            record = (await consumer.getmany(tp, timeout_ms=10_000))[tp][0]
        finally:
            await consumer.stop()
        await dead_letter(stage, record, error, group="replyflow.generation", service="test", attempts=3)


async def test_a_stage_dead_letter_goes_back_to_its_topic_unchanged_and_only_the_selected_ones(kafka_bootstrap,
                                                                                               producer):
    started = datetime.now(UTC) - timedelta(seconds=1)
    wanted, other = (f"replay-{uuid.uuid4().hex[:8]}".encode() for _ in range(2))
    await dead_lettered(kafka_bootstrap, producer, COMMENTS_SCREENED.name, wanted, b'{"comment": "' + wanted + b'"}',
                        RuntimeError("the model server answered 400"))
    await dead_lettered(kafka_bootstrap, producer, COMMENTS_SCREENED.name, other, b'{"comment": "' + other + b'"}',
                        KeyError("not this one"))
    since = ["--failed-after", started.isoformat()]

    code, out, _ = await replay(kafka_bootstrap, COMMENTS_SCREENED.dlq, *since, "--dry-run")
    assert code == 0 and "would send back 2 of 2 selected" in out

    async with TopicReader(kafka_bootstrap, COMMENTS_SCREENED.name) as reader:
        code, out, err = await replay(kafka_bootstrap, COMMENTS_SCREENED.dlq, *since, "--exception-class",
                                      "RuntimeError")
        assert code == 0, err
        assert "sent back 1 of 1 selected dead letters; 0 sent back before; 0 stay" in out
        records = await reader.read_to_end()
    # Only the RuntimeError's record came back (the dry run sent nothing), with its key and value as they were.
    (back,) = [r for r in records if r.key in (wanted, other)]
    assert (back.key, back.value) == (wanted, b'{"comment": "' + wanted + b'"}')
    where = dict(back.headers)["x-replayed-from"].decode()
    assert where.startswith(f"{COMMENTS_SCREENED.dlq}@")

    # A second run leaves out the letter the first sent back (the ledger says when) and sends the other one.
    async with TopicReader(kafka_bootstrap, COMMENTS_SCREENED.name) as reader:
        code, out, err = await replay(kafka_bootstrap, COMMENTS_SCREENED.dlq, *since)
        assert code == 0, err
        assert "sent back 1 of 2 selected dead letters; 1 sent back before; 0 stay" in out
        assert f"{where}: left out, sent back at " in out and "to comments.screened (--again" in out
        records = await reader.read_to_end()
    assert [r.key for r in records if r.key in (wanted, other)] == [other]

    # --again sends both once more, and says so beforehand in a dry run.
    code, out, err = await replay(kafka_bootstrap, COMMENTS_SCREENED.dlq, *since, "--again", "--dry-run")
    assert code == 0 and "would send back 2 of 2 selected dead letters; 0 sent back before" in out, err
    async with TopicReader(kafka_bootstrap, COMMENTS_SCREENED.name) as reader:
        code, out, err = await replay(kafka_bootstrap, COMMENTS_SCREENED.dlq, *since, "--again")
        assert code == 0, err
        records = await reader.collect(lambda rs: {wanted, other} <= {r.key for r in rs})
    assert sorted(r.key for r in records if r.key in (wanted, other)) == sorted([wanted, other])


async def test_a_webhook_change_for_an_unknown_account_comes_in_once_a_profile_names_it(
        instagram_webhook, kafka_bootstrap):
    url, _, _ = instagram_webhook
    started = datetime.now(UTC) - timedelta(seconds=1)
    account, comment_id = str(17842400000000000 + uuid.uuid4().int % 10**9), f"179{uuid.uuid4().int % 10**14}"
    delivery = {"object": "instagram", "entry": [{"id": account, "time": 1_764_400_000, "changes": [
        {"field": "comments", "value": {"id": comment_id, "text": "Is the shop open?",
                                        "from": {"id": "9001", "username": "ann"}, "media": {"id": "18000000001"}}},
    ]}]}
    body = json.dumps(delivery).encode()
    response = httpx.post(f"{url}/v1/webhooks/instagram", content=body, headers=signed(body))
    assert response.json()["left_out"] == {"unknown_account": 1}
    since = ["--failed-after", started.isoformat()]

    # No profile names the account yet: the dead letter stays, and says why.
    code, out, err = await replay(kafka_bootstrap, COMMENTS_RECEIVED.dlq, *since)
    assert code == 1 and f"Instagram account {account} is no creator's" in err and "0 of 1" in out
    assert "0 sent back before; 1 stay" in out  # a letter that stayed is not recorded: the next run tries it

    creator = f"shop-{uuid.uuid4().hex[:6]}"
    await put_profiles([CreatorProfile(creator_id=creator, display_name="Shop", persona="A shop.",
                                       platform_accounts={"instagram": account})],
                       Settings(kafka_bootstrap_servers=kafka_bootstrap))
    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        code, out, err = await replay(kafka_bootstrap, COMMENTS_RECEIVED.dlq, *since)
        assert code == 0, err
        records = await reader.collect(lambda rs: any(comment_id.encode() in r.value for r in rs))
    (record,) = [r for r in records if comment_id.encode() in r.value]
    comment = CommentReceived.model_validate_json(record.value).comment
    assert (comment.comment_id, comment.creator_id, comment.text) == (comment_id, creator, "Is the shop open?")
    assert record.key == comment_id.encode()


async def test_a_topic_that_collects_no_dead_letters_is_refused(kafka_bootstrap):
    code, _, err = await replay(kafka_bootstrap, COMMENTS_RECEIVED.name)
    assert code == 2 and "comments.received is no dead-letter topic" in err


async def test_a_stages_dead_letter_its_decision_and_its_replay_stay_in_the_comments_trace(kafka_bootstrap,
                                                                                          producer):
    """A stage dead-letters in the poison record's own span, not its micro-batch's; tracing off here, so the
    comment's traceparent is passed on as it came (README: a service without tracing keeps the chain)."""
    started = datetime.now(UTC) - timedelta(seconds=1)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_group_prefix=f"test-{uuid.uuid4().hex[:8]}")
    parts = service_parts("dead-letter-trace", settings, sends=[DECISIONS])
    poison = f"poison-{uuid.uuid4().hex[:8]}"

    async def handle(events: list[CommentReceived]) -> list:
        if any(e.comment_id == poison for e in events):
            raise PermanentError("this comment can never be answered")
        return []

    subscribe_stage(parts, stage="dead-letter-trace", topic=COMMENTS_RECEIVED, handle=handle)
    await group_starts_at_end(kafka_bootstrap, settings.group_id("dead-letter-trace"), COMMENTS_RECEIVED.name)
    upstream = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    comment = Comment(platform="youtube", comment_id=poison, creator_id="mara", post_id="v1", author_id="a1",
                      author_name="Ann", text="Hi", created_at=datetime.now(UTC))

    def ours(records) -> dict:
        return {r.topic: r for r in records if r.key == poison.encode() or (
            r.topic == DECISIONS.name and Decision.model_validate_json(r.value).comment_id == poison)}

    await parts.producer.start()
    await parts.broker.start()
    try:
        async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.dlq, DECISIONS.name) as reader:
            await producer.send_and_wait(COMMENTS_RECEIVED.name, CommentReceived(comment=comment).model_dump_json()
                                         .encode(), key=poison.encode(), headers=[("traceparent", upstream.encode())])
            out = ours(await reader.collect(lambda rs: len(ours(rs)) == 2))
    finally:
        await parts.broker.stop()
        await parts.producer.stop()
    assert {topic: dict(r.headers).get("traceparent") for topic, r in out.items()} == {
        COMMENTS_RECEIVED.dlq: upstream.encode(), DECISIONS.name: upstream.encode()}

    async with TopicReader(kafka_bootstrap, COMMENTS_RECEIVED.name) as reader:
        code, _, err = await replay(kafka_bootstrap, COMMENTS_RECEIVED.dlq, "--failed-after", started.isoformat(),
                                    "--exception-class", "PermanentError")
        assert code == 0, err
        (back,) = [r for r in await reader.read_to_end() if r.key == poison.encode()]
    assert dict(back.headers)["traceparent"] == upstream.encode()


async def test_a_replay_that_died_part_way_is_undone_by_the_next_run_so_a_stage_gets_each_letter_once(
        kafka_bootstrap, producer):
    """A run that dies after sending a letter back but before recording it: the next run would send it again and
    the stage process it twice. Here the dead run is a producer holding the replay's transactional id that sent the
    letter back and never committed (its transaction would stay open 60 s). The next run's start aborts it; the
    stage, reading read_committed, gets the letter once, from the run that recorded it; the dead run cannot commit.
    A marker sent after the replay, on the letter's partition, shows the stage has read past everything."""
    started = datetime.now(UTC) - timedelta(seconds=1)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_group_prefix=f"test-{uuid.uuid4().hex[:8]}")
    key = f"once-{uuid.uuid4().hex[:8]}"

    def comment_received(comment_id: str) -> bytes:
        return CommentReceived(comment=Comment(
            platform="youtube", comment_id=comment_id, creator_id="mara", post_id="v1", author_id="a1",
            author_name="Ann", text="Hi", created_at=datetime.now(UTC))).model_dump_json().encode()

    await dead_lettered(kafka_bootstrap, producer, COMMENTS_RECEIVED.name, key.encode(), comment_received(key),
                        RuntimeError("the model server answered 400"))
    parts = service_parts("replay-once", settings, sends=[DECISIONS])
    seen: list[str] = []

    async def handle(events: list[CommentReceived]) -> list:
        seen.extend(e.comment_id for e in events if e.comment_id.startswith(key))
        return []

    subscribe_stage(parts, stage="replay-once", topic=COMMENTS_RECEIVED, handle=handle)
    await group_starts_at_end(kafka_bootstrap, settings.group_id("replay-once"), COMMENTS_RECEIVED.name)
    dead_run = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transaction_timeout_ms=60_000,
                                transactional_id=replay_transactional_id(Settings(), COMMENTS_RECEIVED.dlq))
    await dead_run.start()
    await parts.producer.start()
    await parts.broker.start()
    try:
        await dead_run.begin_transaction()
        await dead_run.send_and_wait(COMMENTS_RECEIVED.name, comment_received(key), key=key.encode())
        code, out, err = await replay(kafka_bootstrap, COMMENTS_RECEIVED.dlq, "--failed-after", started.isoformat(),
                                      "--exception-class", "RuntimeError")
        assert code == 0 and "sent back 1 of 1 selected dead letters" in out, err
        with pytest.raises(ProducerFenced):
            await dead_run.commit_transaction()
        marker = f"{key}-marker"  # same key, so the same partition, after the letter
        await producer.send_and_wait(COMMENTS_RECEIVED.name, comment_received(marker), key=key.encode())
        await asyncio.to_thread(wait_for, lambda: marker in seen, 30, "the stage to read the marker")
    finally:
        await parts.broker.stop()
        await parts.producer.stop()
        with contextlib.suppress(KafkaError):
            await dead_run.stop()
    assert seen == [key, marker]


async def screened_letters(kafka_bootstrap: str, producer, n: int, error: Exception) -> tuple[list[bytes], Selection]:
    """``n`` comments.screened records dead-lettered with ``error``, and the selection of just those (its class
    names them)."""
    started = datetime.now(UTC) - timedelta(seconds=1)
    keys = [f"letter-{uuid.uuid4().hex[:8]}".encode() for _ in range(n)]
    for key in keys:
        await dead_lettered(kafka_bootstrap, producer, COMMENTS_SCREENED.name, key, b'{"comment": "' + key + b'"}',
                            error)
    return keys, Selection(started, None, type(error).__name__)


class ChunkedReplayError(Exception):
    """Names the letters of the test below (their x-exception-class)."""


async def test_a_replay_larger_than_one_transaction_sends_and_records_every_letter(kafka_bootstrap, producer,
                                                                                    monkeypatch):
    monkeypatch.setattr(admin, "REPLAY_TRANSACTION_LETTERS", 2)
    transactions = []
    transaction = EventProducer.transaction

    def counted(producer: EventProducer):
        transactions.append(producer.transactional_id)
        return transaction(producer)

    monkeypatch.setattr(EventProducer, "transaction", counted)
    keys, selection = await screened_letters(kafka_bootstrap, producer, 5, ChunkedReplayError("three transactions"))
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    async with TopicReader(kafka_bootstrap, COMMENTS_SCREENED.name, committed_only=True) as reader:
        replay = await admin.replay_dead_letters(settings, COMMENTS_SCREENED.dlq, selection, dry_run=False)
        records = await reader.collect(lambda rs: set(keys) <= {r.key for r in rs})
    assert len(replay.sent) == 5 and sorted(r.key for r in records if r.key in keys) == sorted(keys)
    assert len(transactions) == 3  # 2 + 2 + 1 letters
    again = await admin.replay_dead_letters(settings, COMMENTS_SCREENED.dlq, selection, dry_run=True)
    assert (len(again.before), again.sent) == (5, [])  # every one recorded


class TwoRunsError(Exception):
    """Names the letters of the test below (their x-exception-class)."""


async def test_of_two_replays_at_once_each_letter_goes_back_once(kafka_bootstrap, producer, monkeypatch):
    """Two operators replay the same dead-letter topic at once; each letter goes back once, however they interleave.
    Here the second run does all its work while the first waits to claim the topic's transactional id (which a run
    does before it reads its ledger): the first then finds both letters recorded and sends none. A run reading its
    ledger before it claims would have chosen both letters already and send them again. And a run fenced after it
    chose (the second's claim coming after the first's) sends nothing: it stops with ``Fenced``."""
    keys, selection = await screened_letters(kafka_bootstrap, producer, 2, TwoRunsError("two operators"))
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    waiting, go_on = asyncio.Event(), asyncio.Event()
    start = EventProducer.start

    async def first_claim_waits(producer: EventProducer) -> None:
        if producer.transactional_id is not None and not waiting.is_set():
            waiting.set()
            await go_on.wait()
        await start(producer)

    monkeypatch.setattr(EventProducer, "start", first_claim_waits)
    async with TopicReader(kafka_bootstrap, COMMENTS_SCREENED.name, committed_only=True) as reader:
        first = asyncio.create_task(admin.replay_dead_letters(settings, COMMENTS_SCREENED.dlq, selection,
                                                              dry_run=False))
        await waiting.wait()
        second = await admin.replay_dead_letters(settings, COMMENTS_SCREENED.dlq, selection, dry_run=False)
        go_on.set()
        late = await first
        records = await reader.read_to_end()
    assert (len(second.sent), len(late.sent), len(late.before)) == (2, 0, 2)
    assert sorted(r.key for r in records if r.key in keys) == sorted(keys)  # once each

    # The other order: a run claims, reads and chooses, then another claims before it sends.
    await dead_lettered(kafka_bootstrap, producer, COMMENTS_SCREENED.name, keys[0], b'{"comment": "again"}',
                        TwoRunsError("two operators, again"))
    chose, go_on = asyncio.Event(), asyncio.Event()
    transaction = EventProducer.transaction

    @contextlib.asynccontextmanager
    async def first_send_waits(producer: EventProducer):
        if not chose.is_set():
            chose.set()
            await go_on.wait()
        async with transaction(producer):
            yield

    monkeypatch.setattr(EventProducer, "start", start)
    monkeypatch.setattr(EventProducer, "transaction", first_send_waits)
    first = asyncio.create_task(admin.replay_dead_letters(settings, COMMENTS_SCREENED.dlq, selection, dry_run=False))
    await chose.wait()
    second = await admin.replay_dead_letters(settings, COMMENTS_SCREENED.dlq, selection, dry_run=False)
    go_on.set()
    with pytest.raises(Fenced):
        await first
    assert len(second.sent) == 1

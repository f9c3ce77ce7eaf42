"""TopicTable, the in-memory copy of the state every service follows, against a real broker."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from prometheus_client import REGISTRY
from pydantic import ValidationError

from replyflow.events import CreatorProfile, ReplyMode
from replyflow.kafka import TopicTable, ensure_topics, parse_ignoring_unknown_fields, partition_of
from replyflow.service import service_parts
from replyflow.settings import Settings
from replyflow.topics import CREATORS_CONFIG

pytestmark = pytest.mark.kafka


def profile_json(creator_id: str, **over) -> dict:
    return {"creator_id": creator_id, "display_name": "Test Cook", "persona": "A warm home cook.", **over}


def test_fields_a_newer_version_added_are_left_out_top_level_and_nested():
    data = profile_json("c1", mode="off", added_later=1, generation={"temperature": 0.5, "also_new": True})
    profile = parse_ignoring_unknown_fields(CreatorProfile, json.dumps(data).encode())
    assert profile.mode == ReplyMode.off and profile.generation.temperature == 0.5


def test_a_record_that_is_wrong_in_a_known_field_still_fails():
    data = profile_json("c1", mode="sometimes", added_later=1)
    with pytest.raises(ValidationError, match="mode"):
        parse_ignoring_unknown_fields(CreatorProfile, json.dumps(data).encode())


async def test_a_kill_switch_written_by_a_newer_version_still_applies(kafka_bootstrap):
    # During a rolling deploy a newer pod may write a field this version does not know; the
    # older pods must still apply the creator's mode change instead of skipping the record.
    creator = f"cook-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        record = profile_json(creator, mode="off", version=2, updated_by_team="trust-and-safety")
        await producer.send_and_wait(CREATORS_CONFIG.name, json.dumps(record).encode(), key=creator.encode())
    finally:
        await producer.stop()
    table = TopicTable[CreatorProfile](kafka_bootstrap, CREATORS_CONFIG, lambda p: p.creator_id)
    await table.start()
    try:
        profile = table.get(creator)
        assert profile is not None and profile.mode == ReplyMode.off and profile.version == 2
    finally:
        await table.stop()


async def test_a_forgotten_key_stays_out_whether_its_records_come_before_or_after(kafka_bootstrap):
    # The control API forgets a decided reply's hold: the row leaves memory and a later copy of the
    # record (a re-read from the start, a redelivered hold) must not bring it back.
    kept, forgotten = f"cook-{uuid.uuid4().hex[:6]}", f"cook-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def write(creator: str, **over) -> None:
        await producer.send_and_wait(CREATORS_CONFIG.name, json.dumps(profile_json(creator, **over)).encode(),
                                     key=creator.encode())

    table = TopicTable[CreatorProfile](kafka_bootstrap, CREATORS_CONFIG, lambda p: p.creator_id)
    try:
        await write(forgotten)
        await table.start()
        assert forgotten in table
        table.forget(forgotten)
        assert forgotten not in table and table.get(forgotten) is None
        await write(forgotten, mode="off")
        await write(kept, mode="off")
        assert await table.wait_until(lambda: kept in table, 10)
        assert forgotten not in table and kept in table
        # /metrics reports what the table holds, so an SRE sees what fills a pod's memory.
        rows = REGISTRY.get_sample_value("replyflow_table_rows", {"topic": CREATORS_CONFIG.name})
        assert rows == len(table.rows()) and rows >= 1
    finally:
        await table.stop()
        await producer.stop()


async def test_read_to_end_waits_for_every_record_written_before_it(kafka_bootstrap):
    # A control replica taking a creator's partition over makes the next change on the profile last written,
    # maybe by another replica a moment ago.
    creators = [f"cook-{uuid.uuid4().hex[:6]}" for _ in range(20)]
    table = TopicTable[CreatorProfile](kafka_bootstrap, CREATORS_CONFIG, lambda p: p.creator_id)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await table.start()
    await producer.start()
    try:
        for creator in creators:
            await producer.send_and_wait(CREATORS_CONFIG.name, json.dumps(profile_json(creator)).encode(),
                                         key=creator.encode())
        assert await table.read_to_end(10)
        assert all(creator in table for creator in creators)
    finally:
        await producer.stop()
        await table.stop()


async def test_an_open_transaction_holds_back_reading_to_the_end_of_its_partition_only(kafka_bootstrap):
    """The table reads read_committed: a transaction still open (a writer killed mid-save) holds its partition back
    until it ends; read_to_end for keys on other partitions does not wait for it, and none of it is ever a row."""
    table = TopicTable[CreatorProfile](kafka_bootstrap, CREATORS_CONFIG, lambda p: p.creator_id)
    creators = [f"cook-{uuid.uuid4().hex[:6]}" for _ in range(30)]
    stalled_on = creators[0]
    elsewhere = next(c for c in creators if partition_of(c, CREATORS_CONFIG.partitions)
                     != partition_of(stalled_on, CREATORS_CONFIG.partitions))
    stalled = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"test-{uuid.uuid4().hex}",
                               transaction_timeout_ms=60_000)
    await table.start()
    await stalled.start()
    try:
        await stalled.begin_transaction()
        await stalled.send_and_wait(CREATORS_CONFIG.name, json.dumps(profile_json(stalled_on)).encode(),
                                    key=stalled_on.encode())
        assert await table.read_to_end(3, keys=[elsewhere])
        assert not await table.read_to_end(3, keys=[stalled_on])
        await stalled.abort_transaction()
        assert await table.read_to_end(10, keys=[stalled_on]) and stalled_on not in table
    finally:
        await stalled.stop()
        await table.stop()


async def test_a_partition_emptied_by_retention_does_not_stop_the_table_catching_up(kafka_bootstrap):
    # A quiet partition of a topic deleting by age ends up with no records and an end offset > 0: the
    # table must still count as read to the end, or the service never gets ready (publisher, control).
    topic = dataclasses.replace(CREATORS_CONFIG, name=f"table-test-{uuid.uuid4().hex[:8]}", partitions=2,
                                compacted=False)  # deleting by age, like replies.published
    await ensure_topics(kafka_bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic.name, json.dumps(profile_json(f"old-{i}")).encode(),
                                        key=b"k", partition=0)
        kept = profile_json("kept")
        await producer.send_and_wait(topic.name, json.dumps(kept).encode(), key=b"k", partition=1)
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic.name, 0): RecordsToDelete(before_offset=3)}, timeout_ms=10000)
    finally:
        await admin.close()
    table = TopicTable[CreatorProfile](kafka_bootstrap, topic, lambda p: p.creator_id)
    await table.start(catch_up_timeout_s=15)
    try:
        assert table.caught_up.is_set()
        assert [p.creator_id for p in table.rows()] == ["kept"]
    finally:
        await table.stop()


async def test_a_table_of_the_last_hours_leaves_out_and_drops_older_records(kafka_bootstrap):
    # The publisher's ledger: memory and start-up time bounded by a window, not by the topic's retention.
    topic = dataclasses.replace(CREATORS_CONFIG, name=f"table-test-{uuid.uuid4().hex[:8]}", partitions=2,
                                compacted=False)
    await ensure_topics(kafka_bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    now_ms = int(time.time() * 1000)

    async def write(creator: str, age_s: float, partition: int) -> None:
        await producer.send_and_wait(topic.name, json.dumps(profile_json(creator)).encode(), key=creator.encode(),
                                     partition=partition, timestamp_ms=now_ms - int(age_s * 1000))

    table = TopicTable[CreatorProfile](kafka_bootstrap, topic, lambda p: p.creator_id, since_s=3600)
    try:
        await write("two-hours-old", 7200, 0)
        await write("old-on-its-own", 7200, 1)  # a partition with nothing in the window: start at its end
        await write("recent", 60, 0)
        await table.start(catch_up_timeout_s=15)
        assert [p.creator_id for p in table.rows()] == ["recent"]
        await write("new", 0, 1)
        await write("almost-expired", 3598, 1)  # read in, then dropped when a later batch finds it too old
        assert await table.wait_until(lambda: "new" in table, 10)
        await asyncio.sleep(3)
        await write("newer", 0, 0)
        assert await table.wait_until(lambda: "newer" in table and "almost-expired" not in table, 10)
        assert {p.creator_id for p in table.rows()} == {"recent", "new", "newer"}
    finally:
        await table.stop()
        await producer.stop()


async def test_a_profile_this_version_cannot_read_leaves_its_creator_unknown_not_on_the_older_profile(
        kafka_bootstrap):
    """A newer release may write what this one refuses (an override of a check it does not know): the services must
    not go on answering with the creator's previous profile (mode auto, say), which could also undo a kill switch
    sent with it. The creator counts as unknown (nothing replied) until this version can read a profile again."""
    creator = f"cook-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for record in (profile_json(creator, mode="auto", version=1),
                       profile_json(creator, mode="off", version=2,
                                    policy_overrides={"verify.tone_check": {"action": "review"}})):
            await producer.send_and_wait(CREATORS_CONFIG.name, json.dumps(record).encode(), key=creator.encode())
    finally:
        await producer.stop()
    services = service_parts("policy", Settings(kafka_bootstrap_servers=kafka_bootstrap), sends=[]).profiles
    without = TopicTable[CreatorProfile](kafka_bootstrap, CREATORS_CONFIG, lambda p: p.creator_id)
    for table in (services, without):
        await table.start()
    try:
        assert services.get(creator) is None
        assert without.get(creator).mode == ReplyMode.auto  # what the services did before: the older profile
    finally:
        for table in (services, without):
            await table.stop()

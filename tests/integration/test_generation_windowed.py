"""WindowedConsumer against a real broker: many messages in flight, out-of-order completion,
a rebalance in the middle of the load, and a stop that finishes busy work and hands back the rest."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from replyflow.kafka import ensure_topics
from replyflow.topics import COMMENTS_SCREENED
from replyflow.windowed import WindowedConsumer, busy

pytestmark = pytest.mark.kafka


async def new_topic(bootstrap: str, partitions: int) -> str:
    topic = dataclasses.replace(COMMENTS_SCREENED, name=f"windowed-test-{uuid.uuid4().hex[:8]}", partitions=partitions)
    await ensure_topics(bootstrap, [topic])
    return topic.name


async def produce(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, str(i).encode(), key=str(i).encode()) for i in range(n)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed_and_end(bootstrap: str, topic: str, group: str) -> tuple[dict, dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        committed = {tp: await consumer.committed(tp) for tp in partitions}
        return committed, await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_rebalance_mid_load_loses_nothing_and_commits_everything(kafka_bootstrap):
    topic = await new_topic(kafka_bootstrap, 4)
    group = f"windowed-{uuid.uuid4().hex[:8]}"
    total, limit = 300, 12
    await produce(kafka_bootstrap, topic, total)
    handled: list[tuple[int, int]] = []
    running = {"now": 0, "most": 0}

    def consumer() -> WindowedConsumer:
        async def handle(record) -> None:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
            try:
                with busy():  # finished even while its partition is being revoked
                    await asyncio.sleep(random.uniform(0.01, 0.15))
                handled.append((record.partition, record.offset))
            finally:
                running["now"] -= 1

        return WindowedConsumer(bootstrap_servers=kafka_bootstrap, topic=topic, group_id=group, handle=handle,
                                limit=lambda: limit, drain_timeout_s=10)

    a, b = consumer(), consumer()
    await a.start()
    try:
        await wait_until(lambda: len(handled) >= 60, 30, "first consumer made no progress")
        await b.start()  # joins the group: every partition of `a` is revoked (drained) and reassigned
        await wait_until(lambda: b.assigned, 30, "second consumer got no partitions")
        await wait_until(lambda: len(set(handled)) >= total, 60, "not every message was handled")
    finally:
        await asyncio.gather(a.stop(grace_s=10), b.stop(grace_s=10))
    assert running["most"] <= 2 * limit
    duplicates = len(handled) - len(set(handled))
    assert duplicates <= 2 * limit  # only what was in flight when a partition changed hands
    committed, end = await committed_and_end(kafka_bootstrap, topic, group)
    assert committed == end


async def test_stop_finishes_busy_work_abandons_waiting_work_and_commits_below_it(kafka_bootstrap):
    topic = await new_topic(kafka_bootstrap, 1)
    group = f"windowed-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, 20)
    finished: list[int] = []
    handed_back: list[int] = []

    async def handle(record) -> None:
        if record.offset < 5:  # "calling the model": worth finishing
            with busy():
                await asyncio.sleep(1.0)
        else:  # "waiting for a slot": handed back at once
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                handed_back.append(record.offset)
                raise
        finished.append(record.offset)

    consumer = WindowedConsumer(bootstrap_servers=kafka_bootstrap, topic=topic, group_id=group, handle=handle,
                                limit=lambda: 20, drain_timeout_s=10)
    await consumer.start()
    await wait_until(lambda: consumer.in_flight == 20, 30, "window did not fill")
    assert consumer.paused
    # A stop that waited for the waiting work too would use up the whole grace period: far past this bound.
    await asyncio.wait_for(consumer.stop(grace_s=600), timeout=60)
    assert sorted(finished) == [0, 1, 2, 3, 4]
    assert sorted(handed_back) == list(range(5, 20))
    committed, _ = await committed_and_end(kafka_bootstrap, topic, group)
    assert committed == {TopicPartition(topic, 0): 5}  # the abandoned ones are redelivered, none skipped


async def test_a_handler_bug_is_retried_and_reported_not_skipped_and_the_partition_commits_on(kafka_bootstrap):
    topic = await new_topic(kafka_bootstrap, 1)
    group = f"windowed-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, 5)
    finished: list[int] = []
    fixed = asyncio.Event()

    async def handle(record) -> None:
        if record.offset == 2 and not fixed.is_set():
            raise KeyError("a field the code forgot")
        finished.append(record.offset)

    consumer = WindowedConsumer(bootstrap_servers=kafka_bootstrap, topic=topic, group_id=group, handle=handle,
                                limit=lambda: 5, handler_retry_max_s=0.05)
    await consumer.start()
    try:
        await wait_until(lambda: consumer.failing is not None and len(finished) == 4, 30, "the bug never showed")
        assert f"{topic}[0]@2: KeyError" in consumer.failing  # what readiness reports while it lasts
        committed, _ = await committed_and_end(kafka_bootstrap, topic, group)
        assert committed.get(TopicPartition(topic, 0)) in (None, 2)  # never past the failing message
        fixed.set()  # the bug fixed (in life: a new image); the message goes through in its slot
        await wait_until(lambda: len(finished) == 5, 30, "the failing message never finished")
        assert consumer.failing is None
        await consumer.commit()
    finally:
        await consumer.stop()
    assert sorted(finished) == [0, 1, 2, 3, 4] and finished.count(2) == 1
    committed, end = await committed_and_end(kafka_bootstrap, topic, group)
    assert committed == end  # committed past the message that failed, once it went through

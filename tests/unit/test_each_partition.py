"""each_partition: a stage handler called per partition of a micro-batch, its answers joined as one."""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord

from replyflow.events import ProfileChangeResult
from replyflow.kafka import Deferred, Emit, each_partition
from replyflow.topics import CREATORS_CHANGE_RESULTS


def record(partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord("creators.changes", partition, offset, 0, 0, b"k", b"{}", None, 1, 2, [])


def emit(event_id: str) -> Emit:
    return Emit(CREATORS_CHANGE_RESULTS, ProfileChangeResult(change_id=event_id, creator_id="c", status=200,
                                                             profile=None, error=None, details=[]))


def test_each_partition_gets_its_events_in_order_and_the_emits_are_joined():
    records = [record(2, 10), record(0, 5), record(2, 11), record(0, 6)]
    events = ["a", "b", "c", "d"]
    calls = []

    async def handle(partition: int, batch: list[str]) -> list[Emit]:
        calls.append((partition, batch))
        return [emit(f"{partition}{e}") for e in batch]

    answer = asyncio.run(each_partition(handle, records, events))
    assert calls == [(0, ["b", "d"]), (2, ["a", "c"])]
    assert [e.event.change_id for e in answer] == ["0b", "0d", "2a", "2c"]


def test_a_partition_that_defers_waits_with_its_own_events_only_the_others_emit():
    records = [record(1, 0), record(0, 0), record(1, 1), record(0, 1)]

    async def handle(partition: int, batch: list[str]) -> list[Emit] | Deferred:
        if partition == 1:  # the second event of partition 1 waits
            return Deferred([emit("1a")], {1}, "handed over", failing=False)
        return [emit(f"0{e}") for e in batch]

    answer = asyncio.run(each_partition(handle, records, ["a", "b", "c", "d"]))
    assert isinstance(answer, Deferred)
    assert answer.waiting == {2}  # record(1, 1): the batch's third event
    assert [e.event.change_id for e in answer.emits] == ["0b", "0d", "1a"]
    assert (answer.why, answer.failing) == ("handed over", False)


def test_one_failing_wait_makes_the_joined_wait_failing():
    async def handle(partition: int, batch: list[str]) -> Deferred:
        return Deferred([], {0}, f"p{partition}", failing=partition == 1)

    answer = asyncio.run(each_partition(handle, [record(0, 0), record(1, 0)], ["a", "b"]))
    assert isinstance(answer, Deferred) and answer.waiting == {0, 1} and answer.failing and answer.why == "p0"

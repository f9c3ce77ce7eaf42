"""PartitionWriters, the fencing that makes a stage its partitions' one writer, against a real broker: a
partition's writer under a new assignment fences the one before it, whose next transaction fails and writes
nothing; a fenced writer stays fenced until its own next assignment, so two replicas never take turns fencing each
other. (A save in flight when its writer is fenced is aborted and never read: test_control_api's stalled writer.)"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition

from replyflow.events import ProfileChangeResult
from replyflow.kafka import Emit, Fenced, GroupMembership, PartitionWriters
from replyflow.settings import Settings
from replyflow.topics import CREATORS_CHANGE_RESULTS, CREATORS_CHANGES
from tests.helpers import TopicReader, collect_fenced_producers

pytestmark = pytest.mark.kafka


CREATOR = f"fence-{uuid.uuid4().hex[:8]}"  # whose answers this module writes


def answer(tag: str) -> Emit:
    return Emit(CREATORS_CHANGE_RESULTS, ProfileChangeResult(
        change_id=f"{tag}-{uuid.uuid4().hex[:8]}", creator_id=CREATOR, status=409, profile=None, error=tag,
        details=[]))


def replica(settings: Settings, group: str) -> tuple[GroupMembership, PartitionWriters]:
    membership = GroupMembership(group, CREATORS_CHANGES.name, rejoin_s=60)
    return membership, PartitionWriters(settings, "test", [CREATORS_CHANGE_RESULTS], membership)


async def test_the_next_owner_fences_the_last_and_a_fenced_writer_waits_for_its_next_assignment(kafka_bootstrap):
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    group = f"fence-{uuid.uuid4().hex[:8]}"
    partition_0 = [TopicPartition(CREATORS_CHANGES.name, 0)]
    first, first_writers = replica(settings, group)
    second, second_writers = replica(settings, group)
    written: list[str] = []
    try:
        async with TopicReader(kafka_bootstrap, CREATORS_CHANGE_RESULTS.name, committed_only=True) as committed:
            first.assigned(partition_0)
            writer = await first_writers.of(0)
            assert await first_writers.of(0) is writer  # one producer per assignment
            await writer.publish([one := answer("first-owner")])
            written.append(one.event.change_id)

            second.assigned(partition_0)  # the partition moved while the first replica stalled
            await (await second_writers.of(0)).publish([one := answer("second-owner")])
            written.append(one.event.change_id)
            with pytest.raises(Fenced):  # the stalled replica wakes up: same assignment, same (fenced) producer
                await (await first_writers.of(0)).publish([answer("zombie")])

            first.assigned(partition_0)  # its next assignment: it owns the partition again, anew
            await (await first_writers.of(0)).publish([one := answer("first-again")])
            written.append(one.event.change_id)
            with pytest.raises(Fenced):
                await (await second_writers.of(0)).publish([answer("zombie-again")])

            def ours(records: list) -> list[str]:
                return [r.change_id for r in (ProfileChangeResult.model_validate_json(r.value) for r in records)
                        if r.creator_id == CREATOR]

            read = ours(await committed.collect(lambda rs: len(ours(rs)) >= len(written)))
        assert sorted(read) == sorted(written)  # nothing of a fenced writer's transactions
    finally:
        await first_writers.stop()
        await second_writers.stop()
        collect_fenced_producers()

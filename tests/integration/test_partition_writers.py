"""PartitionWriters, the fencing that makes a stage its partitions' only writer, against a real broker: each claim of
a partition fences the writer that claimed it before, whose writes then fail and write nothing, however often it
tries; a fenced writer's next claim works again (a writer fenced by its own slow transaction recovers at its next
batch), and fences in turn. (A save in flight when its writer is fenced is aborted and never read:
test_control_api's stalled writer.)"""

from __future__ import annotations

import uuid

import pytest

from replyflow.events import ProfileChangeResult
from replyflow.kafka import Emit, Fenced, PartitionWriters
from replyflow.settings import Settings
from replyflow.topics import CREATORS_CHANGE_RESULTS, CREATORS_CHANGES
from tests.helpers import TopicReader

pytestmark = pytest.mark.kafka

CREATOR = f"fence-{uuid.uuid4().hex[:8]}"  # whose answers this module writes


def answer(tag: str) -> Emit:
    return Emit(CREATORS_CHANGE_RESULTS, ProfileChangeResult(
        change_id=f"{tag}-{uuid.uuid4().hex[:8]}", creator_id=CREATOR, status=409, profile=None, error=tag,
        details=[]))


async def test_each_claim_fences_the_last_and_a_fenced_writer_writes_nothing_until_it_claims_again(kafka_bootstrap):
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    group = f"fence-{uuid.uuid4().hex[:8]}"
    first, second = (PartitionWriters(settings, "test", [CREATORS_CHANGE_RESULTS], group, CREATORS_CHANGES.name)
                     for _ in range(2))
    written: list[str] = []

    async def publish(writer, tag: str) -> None:
        await writer.publish([one := answer(tag)])
        written.append(one.event.change_id)

    async with TopicReader(kafka_bootstrap, CREATORS_CHANGE_RESULTS.name, committed_only=True) as committed:
        async with first.claim(0) as stalled:
            await publish(stalled, "first")
            async with second.claim(0) as owner:  # the partition moved on while the first replica stalled
                await publish(owner, "second")
                for _ in range(2):  # the stalled replica wakes up: fenced, and stays so
                    with pytest.raises(Fenced):
                        await stalled.publish([answer("zombie")])
                await publish(owner, "second-again")
        async with first.claim(0) as again:  # its next batch claims anew: it writes, and fences the second
            await publish(again, "first-again")
            async with second.claim(1) as elsewhere:  # another partition's claim fences no one here
                await publish(elsewhere, "second-elsewhere")
                await publish(again, "first-still")

        def ours(records: list) -> list[str]:
            return [r.change_id for r in (ProfileChangeResult.model_validate_json(r.value) for r in records)
                    if r.creator_id == CREATOR]

        read = ours(await committed.collect(lambda rs: len(ours(rs)) >= len(written)))
    assert sorted(read) == sorted(written)  # nothing of a fenced writer's transactions

"""Readiness of a consumer: in its group with partitions, or with none because the group has more members
than the topic has partitions (legitimately idle); not while it has never joined or a rejoin drags on."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from replyflow.kafka import GroupMembership
from replyflow.service import build_app, service_parts
from replyflow.settings import Settings
from replyflow.topics import COMMENTS_RECEIVED, REPLIES_DRAFTED
from tests.helpers import serving, wait_for

pytestmark = pytest.mark.kafka


class Follow(ConsumerRebalanceListener):
    def __init__(self, membership: GroupMembership) -> None:
        self.membership = membership

    async def on_partitions_revoked(self, revoked) -> None:
        self.membership.revoked()

    async def on_partitions_assigned(self, assigned) -> None:
        self.membership.assigned(assigned)


async def until(condition, what: str, timeout_s: float = 30) -> None:
    await asyncio.to_thread(wait_for, condition, timeout_s, what)


async def test_the_member_without_a_partition_is_idle_and_still_in_its_group(kafka_bootstrap):
    topic, group = f"membership-{uuid.uuid4().hex[:8]}", f"membership-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    memberships = [GroupMembership(group, topic, rejoin_s=30) for _ in range(2)]
    assert not any(m.in_group() for m in memberships) and memberships[0].describe() == "joining"
    consumers = []
    for membership in memberships:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
        consumer.subscribe([topic], listener=Follow(membership))
        await consumer.start()
        consumers.append(consumer)

    async def polling() -> None:  # a member must poll to take part in rebalances
        while True:
            await asyncio.gather(*(c.getmany(timeout_ms=100) for c in consumers))

    poll = asyncio.create_task(polling())
    try:
        await until(lambda: sorted(str(m.describe()) for m in memberships) == ["[0]", "[]"], "one owner, one idle")
        assert all(m.in_group() for m in memberships)
        owner = next(i for i, m in enumerate(memberships) if m.partitions)
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
        await consumers.pop(owner).stop()  # leaves the group: the idle member takes the partition
        idle = memberships[1 - owner]
        poll = asyncio.create_task(polling())
        await until(lambda: idle.describe() == [0], "the idle member owning the partition")
        assert idle.in_group()
    finally:
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()


def test_a_rejoin_longer_than_the_rebalance_timeout_makes_the_consumer_unready():
    membership = GroupMembership("g", "t", rejoin_s=0.0)
    membership.assigned(set())
    assert membership.in_group() and membership.describe() == []
    membership.revoked()  # a rebalance began; with no time to rejoin in, it is out at once
    assert not membership.in_group() and membership.describe() == "joining"
    sharing = GroupMembership("g", "t", rejoin_s=60.0, topic_partitions=6)
    assert sharing.share == 1.0  # nothing assigned yet
    sharing.assigned({TopicPartition("t", 0), TopicPartition("t", 4)})
    sharing.revoked()
    assert sharing.share == 2 / 6  # the partitions last owned, through a rebalance
    patient = GroupMembership("g", "t", rejoin_s=60.0)
    assert not patient.in_group()  # never joined: not ready, however patient
    patient.assigned(set())
    patient.revoked()
    assert patient.in_group()  # a rebalance in progress, within the timeout


async def test_the_policy_service_is_ready_once_both_its_stages_are_in_their_groups(stack):
    stack.start_service("policy")
    stack.wait_ready(log=lambda *_: None, timeout_s=90)
    ready = httpx.get(f"{stack.url('policy')}/readyz").json()
    prefix = stack.extra_env["KAFKA_GROUP_PREFIX"]
    groups = {Settings(kafka_group_prefix=prefix).group_id(stage): topic for stage, topic in (
        ("policy-screen", COMMENTS_RECEIVED), ("policy-verify", REPLIES_DRAFTED))}
    # The only replica: every partition of each stage's topic is its own.
    assert ready["groups"] == {group: list(range(topic.partitions)) for group, topic in groups.items()}


async def test_a_ready_check_that_names_a_problem_makes_the_service_unready_and_says_why(kafka_bootstrap):
    # How the generation service reports a message its handler keeps failing on (WindowedConsumer.failing).
    parts = service_parts("readiness-test", Settings(kafka_bootstrap_servers=kafka_bootstrap), sends=[])
    problem: dict[str, str | None] = {"now": "handler failed on comments.screened[0]@7: KeyError: 'x'"}
    parts.ready_checks.append(lambda: problem["now"])
    async with serving(build_app(parts)) as url, httpx.AsyncClient(base_url=url) as http:
        unready = await http.get("/readyz")
        assert unready.status_code == 503 and unready.json()["failing"] == problem["now"]
        problem["now"] = None
        assert (await http.get("/readyz")).status_code == 200

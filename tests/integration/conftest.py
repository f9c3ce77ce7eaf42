from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer

from replyflow.local.stack import Stack


@pytest.fixture
def stack(kafka_bootstrap, tmp_path):
    """Services as real processes against the session's Kafka; each test gets its own consumer groups."""
    s = Stack(tmp_path / "stack", kafka_bootstrap=kafka_bootstrap,
              extra_env={"KAFKA_GROUP_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})
    (tmp_path / "stack").mkdir()
    yield s
    s.stop()


@pytest.fixture
async def producer(kafka_bootstrap):
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()

from __future__ import annotations

import asyncio
import gc
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from replyflow.admin import put_profiles
from replyflow.events import CreatorProfile
from replyflow.ingest import meta_signature
from replyflow.local.stack import Stack
from replyflow.settings import Settings


@pytest.fixture(autouse=True)
def garbage_collected_after_each_test():
    """aiokafka leaves a fenced transactional producer's internal futures with their ProducerFenced unretrieved.
    Collected when their test ends, their "never retrieved" log runs then; left to the cyclic GC it may run inside a
    later ``ast.parse`` (pytest's assertion rewriting, traceback carets), whose CPython 3.11 recursion check then
    fails with a SystemError."""
    yield
    gc.collect()


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


APP_SECRET, VERIFY_TOKEN = "meta-app-secret", "verify-me"


@pytest.fixture
async def instagram_webhook(stack, kafka_bootstrap):
    """Ingest with the Instagram webhook on, and a creator whose Instagram account receives the comments."""
    creator, account = f"cook-{uuid.uuid4().hex[:6]}", str(17841400000000000 + uuid.uuid4().int % 10**9)
    await put_profiles([CreatorProfile(creator_id=creator, display_name="Cook", persona="A cook.",
                                       platform_accounts={"instagram": account})],
                       Settings(kafka_bootstrap_servers=kafka_bootstrap))
    stack.extra_env.update({"INSTAGRAM_APP_SECRET": APP_SECRET, "INSTAGRAM_WEBHOOK_VERIFY_TOKEN": VERIFY_TOKEN})
    stack.start_service("ingest")
    await asyncio.to_thread(stack.wait_ready, lambda *_: None, 60)
    return stack.url("ingest"), creator, account


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-hub-signature-256": meta_signature(secret, body)}

"""Session-wide real infrastructure: an Apache Kafka broker and, for end-to-end tests, llama.cpp.

Set KAFKA_BOOTSTRAP_SERVERS / LLM_BASE_URL to use running ones instead of starting them.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from replyflow.kafka import ensure_topics
from replyflow.local.kafka_server import LocalKafka
from tests.helpers import llama_server


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory) -> str:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        asyncio.run(ensure_topics(existing))
        yield existing
        return
    kafka = LocalKafka(tmp_path_factory.mktemp("kafka"))
    bootstrap = kafka.start()
    asyncio.run(ensure_topics(bootstrap))
    yield bootstrap
    kafka.stop()


@pytest.fixture(scope="session")
def llm_base_url(tmp_path_factory) -> str:
    existing = os.environ.get("LLM_BASE_URL")
    if existing:
        yield existing
        return
    with llama_server(tmp_path_factory.mktemp("llm")) as url:
        yield url

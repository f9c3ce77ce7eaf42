"""Session-wide real infrastructure: an Apache Kafka broker and, for end-to-end tests, llama.cpp.

Set KAFKA_BOOTSTRAP_SERVERS / LLM_BASE_URL to use running ones instead of starting them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from replyflow.kafka import ensure_topics
from replyflow.local.kafka_server import LocalKafka, free_port
from replyflow.local.model_server import llama_server_command
from tests.helpers import wait_for


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
    port = free_port()
    log = open(Path(tmp_path_factory.mktemp("llm")) / "llm.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(llama_server_command(port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    wait_for(lambda: httpx.get(f"{url}/models", timeout=2).status_code == 200, timeout_s=120, what="llama.cpp")
    yield url
    proc.terminate()
    proc.wait(30)
    log.close()

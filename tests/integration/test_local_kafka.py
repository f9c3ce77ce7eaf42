"""The embedded broker used by `make run` and the tests."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

from replyflow.local.kafka_server import LocalKafka


async def _cluster_id(bootstrap: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return (await admin.describe_cluster())["cluster_id"]
    finally:
        await admin.close()


def test_cluster_id_starting_with_a_dash_formats_and_starts(tmp_path) -> None:
    # One random id in 64 starts with "-"; the storage tool once read it as an unknown option.
    kafka = LocalKafka(tmp_path / "kafka", cluster_id="-6KXs1HcRFC3py9VRZIfCA")
    try:
        assert asyncio.run(_cluster_id(kafka.start())) == "-6KXs1HcRFC3py9VRZIfCA"
    finally:
        kafka.stop()

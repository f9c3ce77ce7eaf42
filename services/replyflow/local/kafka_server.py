"""A real single-node Apache Kafka 4.x broker (KRaft) on loopback, for `make run` and the tests.

The broker jars come from Maven Central through `mvn` into a cache folder, storage is formatted,
the broker runs as a child process with its log dir on disk, and stops cleanly.

    python -m replyflow.local.kafka_server fetch          # download the jars once
    python -m replyflow.local.kafka_server run --dir D    # run in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).with_name("kafka-pom.xml")


def cache_dir() -> Path:
    return Path(os.environ.get("REPLYFLOW_CACHE_DIR", Path.home() / ".cache" / "replyflow"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch_kafka_jars() -> Path:
    """Resolve the broker's jars with Maven once; later calls reuse the cache."""
    libs = cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed to fetch Apache Kafka from Maven Central")
    libs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn", "-q", "-B", "-f", str(POM),
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    marker.touch()
    return libs


@dataclass
class LocalKafka:
    """One broker+controller process. ``start()`` returns once clients can use it."""

    workdir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = "768m"
    cluster_id: str = field(default_factory=lambda: _cluster_id())
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={data}",
                    # Topics are created explicitly with their partition counts; a typo must fail loudly.
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.cleaner.min.compaction.lag.ms=0",
                ]
            )
            + "\n"
        )
        return config

    def _java(self, libs: Path, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap}", "-Xss1m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{libs}/*", *args,
        ]

    def start(self, timeout_s: float = 90.0) -> str:
        libs = fetch_kafka_jars()
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.workdir / "data" / "meta.properties").exists():
            # "--cluster-id=": a random id may start with "-", which would otherwise read as an option.
            subprocess.run(
                self._java(libs, "kafka.tools.StorageTool", "format",
                           f"--cluster-id={self.cluster_id}", "-c", str(config)),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        log = open(self.workdir / "broker.log", "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            self._java(libs, "kafka.Kafka", str(config)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the broker in order
        )
        self._wait_ready(timeout_s)
        return self.bootstrap_servers

    def _wait_ready(self, timeout_s: float) -> None:
        async def probe() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.list_topics()
                return True
            except Exception:
                return False
            finally:
                await admin.close()

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}; see {self.workdir}/broker.log")
            if _port_open(self.port) and asyncio.run(probe()):
                return
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"Kafka was not ready within {timeout_s}s; see {self.workdir}/broker.log")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the broker jars into the cache")
    run = sub.add_parser("run", help="run a broker in the foreground")
    run.add_argument("--dir", type=Path, default=Path(".run/kafka"))
    run.add_argument("--port", type=int, default=9092)
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch_kafka_jars())
        return 0
    kafka = LocalKafka(args.dir, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Kafka ready on {kafka.start()}", flush=True)
    try:
        while kafka.process and kafka.process.poll() is None:
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        kafka.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

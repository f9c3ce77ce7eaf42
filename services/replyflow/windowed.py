"""A consumer that keeps many messages in flight at once without giving up at-least-once.

The model server only reaches its throughput with many concurrent requests (continuous
batching), so the generation stage hands out up to ``window`` messages across its partitions at
once. Completions finish out of order; ``OffsetTracker`` commits each partition only up to its
lowest unfinished offset, so a crash re-delivers (never skips) whatever was in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)


class OffsetTracker:
    """Per partition: which handed-out offsets are unfinished, and how far it is safe to commit.

    The commit point of a partition is its lowest unfinished offset, or one past the highest
    handed-out offset when nothing is unfinished. Offsets are handed out in increasing order.
    """

    def __init__(self) -> None:
        self._unfinished: dict[TopicPartition, list[int]] = {}  # min-heap, lazily pruned
        self._finished: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        heapq.heappush(self._unfinished.setdefault(tp, []), offset)
        self._finished.setdefault(tp, set())
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def finished(self, tp: TopicPartition, offset: int) -> None:
        if tp in self._finished:
            self._finished[tp].add(offset)

    def in_flight(self, tp: TopicPartition | None = None) -> int:
        parts = [tp] if tp is not None else list(self._unfinished)
        return sum(len(self._unfinished.get(p, ())) - len(self._finished.get(p, ())) for p in parts)

    def commit_point(self, tp: TopicPartition) -> int | None:
        heap, done = self._unfinished.get(tp), self._finished.get(tp)
        if heap is None or done is None:
            return None
        while heap and heap[0] in done:
            done.discard(heapq.heappop(heap))
        return heap[0] if heap else self._next[tp]

    def to_commit(self) -> dict[TopicPartition, int]:
        """Partitions whose commit point moved since the last ``committed()``."""
        points = {tp: self.commit_point(tp) for tp in list(self._unfinished)}
        return {tp: p for tp, p in points.items() if p is not None and p > self._committed.get(tp, -1)}

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            for table in (self._unfinished, self._finished, self._next, self._committed):
                table.pop(tp, None)

    def partitions(self) -> set[TopicPartition]:
        return set(self._unfinished)


class WindowedConsumer:
    """Consume ``topic`` keeping up to ``limit()`` messages in flight, committing safely.

    ``handle(record)`` must finish only when the message's outcome is durable (output acked by
    the broker, or dead-lettered); it retries transient failures itself and keeps its slot while
    it does, so a down dependency fills the window and consumption pauses by itself.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        handle: Callable[[ConsumerRecord], Awaitable[None]],
        limit: Callable[[], int],
        commit_interval_s: float = 0.2,
        client_id: str = "replyflow",
        revoke_timeout_s: float = 20.0,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self._handle = handle
        self._limit = limit
        self._commit_interval_s = commit_interval_s
        self._revoke_timeout_s = revoke_timeout_s
        self.tracker = OffsetTracker()
        self._tasks: dict[asyncio.Task, TopicPartition] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._paused = False
        self._loop_task: asyncio.Task | None = None
        self.assigned: set[TopicPartition] = set()
        self._consumer_options = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
        }
        self.consumer: AIOKafkaConsumer | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def paused(self) -> bool:
        return self._paused

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(**self._consumer_options)  # needs the running loop
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        await self.consumer.start()
        self._loop_task = asyncio.create_task(self._run(), name=f"windowed-consumer-{self.topic}")

    async def _run(self) -> None:
        last_commit = time.monotonic()
        while not self._stopping:
            room = self._limit() - len(self._tasks)
            self._set_paused(room <= 0)
            # getmany keeps the consumer alive in its group even while paused.
            batches = await self.consumer.getmany(timeout_ms=100, max_records=max(room, 1) if room > 0 else 1)
            for tp, records in batches.items():
                if tp not in self.assigned:
                    continue
                for record in records:
                    self.tracker.started(tp, record.offset)
                    task = asyncio.create_task(self._process(tp, record))
                    self._tasks[task] = tp
            if time.monotonic() - last_commit >= self._commit_interval_s:
                await self.commit()
                last_commit = time.monotonic()
            if room <= 0 and not batches:
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), timeout=0.5)

    def _set_paused(self, paused: bool) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        partitions = list(self.consumer.assignment())
        if paused:
            self.consumer.pause(*partitions)
        else:
            self.consumer.resume(*partitions)

    async def _process(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        try:
            await self._handle(record)
        except asyncio.CancelledError:
            return  # abandoned (revoked or shutting down): not finished, so never committed past
        except Exception:
            log.exception("handler failed; the offset stays uncommitted and is redelivered after restart")
            return
        else:
            self.tracker.finished(tp, record.offset)
        finally:
            self._tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self._slot_freed.set()

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        offsets = self.tracker.to_commit()
        if partitions is not None:
            offsets = {tp: o for tp, o in offsets.items() if tp in partitions}
        offsets = {tp: o for tp, o in offsets.items() if tp in self.assigned}
        if not offsets:
            return
        await self.consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        self.tracker.committed(offsets)

    async def _drain(self, partitions: set[TopicPartition], timeout_s: float) -> None:
        """Let in-flight work of ``partitions`` finish (or abandon it at the deadline), then commit."""
        tasks = [t for t, tp in self._tasks.items() if tp in partitions]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.commit(partitions)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._drain(revoked, self._revoke_timeout_s)
        self.assigned -= revoked
        self.tracker.forget(revoked)

    async def stop(self, grace_s: float) -> None:
        """Stop fetching, finish in-flight work within ``grace_s``, commit, leave the group."""
        self._stopping = True
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        await self._drain(set(self.assigned), grace_s)
        await self.consumer.stop()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: WindowedConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owner.assigned |= set(assigned)
        if self.owner.paused:
            self.owner.consumer.pause(*assigned)

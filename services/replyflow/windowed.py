"""A consumer that keeps many messages in flight at once without giving up at-least-once.

The model server only reaches its throughput with many concurrent requests (continuous
batching), so the generation stage hands out up to ``limit()`` messages across its partitions
at once. Completions finish out of order; ``OffsetTracker`` commits each partition only up to
its lowest unfinished offset, so a crash re-delivers (never skips) whatever was in flight.

Flow control: when the window is full the consumer stops taking records (``paused``). It keeps
calling ``getmany`` so it stays in its group; only when the window stays full for a while (a
dependency is down) are the partitions paused in the client too (aiokafka drops a paused
partition's prefetched records, so this is not done for the short stalls of normal operation).

Revocation and shutdown drain the window: work that is in a ``busy()`` section (a model call,
a publish) may finish within the drain timeout; work that is only waiting (for a model slot,
for a retry backoff) is abandoned at once. Abandoned work is never marked finished, so nothing
is committed past it and it is redelivered to whoever owns the partition next.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from replyflow.kafka import GroupMembership

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


class Abandoned(Exception):  # it is a signal, not an error
    """Raised inside a handler whose message is being handed back (revoked or shutting down)."""


@dataclass
class _Work:
    tp: TopicPartition
    record: ConsumerRecord
    busy: int = 0


_current: contextvars.ContextVar[_Work | None] = contextvars.ContextVar("windowed_work", default=None)


@contextlib.contextmanager
def busy() -> Iterator[None]:
    """Mark the current message's work as worth finishing during a drain (a model call, a publish).

    Outside a ``busy()`` section a message whose partition is revoked or whose consumer stops is
    abandoned at once. A no-op outside a ``WindowedConsumer`` task.
    """
    work = _current.get()
    if work is None:
        yield
        return
    work.busy += 1
    try:
        yield
    finally:
        work.busy -= 1


class WindowedConsumer:
    """Consume ``topic`` keeping up to ``limit()`` messages in flight, committing safely.

    ``handle(record)`` must finish only when the message's outcome is durable (output acked by
    the broker, or dead-lettered); it retries transient failures itself and keeps its slot while
    it does, so a down dependency fills the window and consumption pauses by itself. It may
    raise ``Abandoned`` (or be cancelled) when ``abandoning(record)`` is true: the message then
    stays uncommitted. Anything else it raises is a bug: the message is retried (backoff up to
    ``handler_retry_max_s``), and ``failing`` says why until it goes through.
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
        drain_timeout_s: float = 20.0,
        pause_after_s: float = 5.0,
        handler_retry_max_s: float = 30.0,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self._handle = handle
        self._limit = limit
        self._commit_interval_s = commit_interval_s
        self._drain_timeout_s = drain_timeout_s
        self._pause_after_s = pause_after_s
        self._handler_retry_max_s = handler_retry_max_s
        self._failing: dict[tuple[TopicPartition, int], str] = {}  # messages whose handler raised, retried: why
        self.tracker = OffsetTracker()
        self._tasks: dict[asyncio.Task, _Work] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = False
        self._full_since: float | None = None
        self._client_paused = False
        self._loop_task: asyncio.Task | None = None
        self.assigned: set[TopicPartition] = set()
        self._revoking: set[TopicPartition] = set()
        rebalance_timeout_s = drain_timeout_s + 10  # how long the coordinator waits for our revoke listener's drain
        self.membership = GroupMembership(group_id, topic, rebalance_timeout_s)
        self._consumer_options = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "rebalance_timeout_ms": int(rebalance_timeout_s * 1000),
            "isolation_level": "read_committed",  # as every stage (kafka.subscribe_stage)
        }
        self.consumer: AIOKafkaConsumer | None = None

    @property
    def in_flight(self) -> int:
        """Messages taken and not yet finished or abandoned."""
        return len(self._tasks)

    @property
    def paused(self) -> bool:
        """True while the window is full and no records are taken."""
        return self._full_since is not None

    @property
    def stopping(self) -> bool:
        return self._stopping

    def abandoning(self, record: ConsumerRecord) -> bool:
        """Whether the message's work should stop now (its partition is being handed back)."""
        return self._stopping or TopicPartition(record.topic, record.partition) in self._revoking

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(**self._consumer_options)  # needs the running loop
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        await self.consumer.start()
        self._loop_task = asyncio.create_task(self._run(), name=f"windowed-consumer-{self.topic}")

    async def _run(self) -> None:
        last_commit = time.monotonic()
        while not self._stopping:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep consuming; aiokafka recovers from broker errors itself
                log.exception("consumer loop error; retrying")
                await asyncio.sleep(1.0)
            if time.monotonic() - last_commit >= self._commit_interval_s:
                try:
                    await self.commit()
                except Exception:  # a failed commit is retried next round; nothing is skipped
                    log.warning("offset commit failed; will retry", exc_info=True)
                last_commit = time.monotonic()

    async def _step(self) -> None:
        room = self._limit() - len(self._tasks)
        now = time.monotonic()
        if room > 0:
            self._full_since = None
            if self._client_paused:
                self._set_client_paused(False)
            batches = await self.consumer.getmany(timeout_ms=100, max_records=room)
            for tp, records in batches.items():
                if tp not in self.assigned or tp in self._revoking:
                    continue  # stale records of a partition being handed back: never started, never committed
                for record in records:
                    self._start(tp, record)
            return
        # Window full: take nothing until a message finishes.
        if self._full_since is None:
            self._full_since = now
        if not self._client_paused and now - self._full_since >= self._pause_after_s:
            self._set_client_paused(True)
        if self._client_paused:
            # getmany on paused partitions returns nothing but keeps us in the group (max.poll.interval).
            await self.consumer.getmany(timeout_ms=0)
        self._slot_freed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._slot_freed.wait(), timeout=0.5)

    def _start(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        self.tracker.started(tp, record.offset)
        work = _Work(tp, record)
        context = contextvars.copy_context()
        context.run(_current.set, work)
        task = asyncio.get_running_loop().create_task(self._process(work), context=context)
        self._tasks[task] = work

    def _set_client_paused(self, paused: bool) -> None:
        self._client_paused = paused
        partitions = list(self.consumer.assignment())
        if paused:
            log.info("window full for %.0fs: pausing %d partitions", self._pause_after_s, len(partitions))
            self.consumer.pause(*partitions)
        else:
            log.info("window has room again: resuming %d partitions", len(partitions))
            self.consumer.resume(*partitions)

    async def _process(self, work: _Work) -> None:
        record = work.record
        try:
            failures = 0
            while True:
                try:
                    await self._handle(record)
                    break
                except (asyncio.CancelledError, Abandoned):
                    return  # abandoned (revoked or shutting down): not finished, so never committed past
                except Exception as error:
                    # handle() owns retries and dead letters, so this is a bug. Skipping the message would lose
                    # it, and leaving it unfinished would stop the partition's commits behind a green pod: it is
                    # retried in its slot, and ``failing`` says so (readiness fails) until it goes through.
                    failures += 1
                    log.exception("handler failed (a bug); retrying the message", extra={"fields": {
                        "topic": record.topic, "partition": record.partition, "offset": record.offset,
                        "failures": failures}})
                    self._failing[(work.tp, record.offset)] = (
                        f"handler failed on {record.topic}[{record.partition}]@{record.offset}: "
                        f"{type(error).__name__}: {error}")
                    await asyncio.sleep(min(self._handler_retry_max_s, 0.5 * 2 ** (failures - 1)))
                    if self.abandoning(record):
                        return
            self.tracker.finished(work.tp, record.offset)
        finally:
            self._failing.pop((work.tp, record.offset), None)
            self._tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self._slot_freed.set()

    @property
    def failing(self) -> str | None:
        """Why a message keeps failing in its handler (a bug), while one does; else None."""
        return next(iter(self._failing.values()), None)

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        """Commit how far each partition is done; ``partitions`` limits it (e.g. to revoked ones)."""
        offsets = self.tracker.to_commit()
        owned = self.assigned if partitions is None else partitions & (self.assigned | self._revoking)
        offsets = {tp: o for tp, o in offsets.items() if tp in owned}
        if not offsets:
            return
        await self.consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        self.tracker.committed(offsets)

    async def _drain(self, partitions: set[TopicPartition], timeout_s: float) -> None:
        """Finish busy work of ``partitions`` (abandon the rest, and whatever is left at the deadline)."""
        deadline = time.monotonic() + timeout_s
        while True:
            tasks = {t: w for t, w in self._tasks.items() if w.tp in partitions}
            idle = [t for t, w in tasks.items() if not w.busy and not t.done()]
            for task in idle:
                task.cancel()
            if idle:
                await asyncio.gather(*idle, return_exceptions=True)
            busy_tasks = [t for t in tasks if t not in idle and not t.done()]
            if not busy_tasks:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("drain timeout: abandoning %d messages in flight", len(busy_tasks))
                for task in busy_tasks:
                    task.cancel()
                await asyncio.gather(*busy_tasks, return_exceptions=True)
                break
            # Wake when one finishes or soon anyway: a task may leave its busy section and become idle.
            await asyncio.wait(busy_tasks, timeout=min(left, 0.05), return_when=asyncio.FIRST_COMPLETED)
        try:
            await self.commit(partitions)
        except Exception:  # not committed = redelivered, never skipped
            log.warning("commit of drained partitions failed; their messages will be redelivered", exc_info=True)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.membership.revoked()
        self._revoking |= revoked
        try:
            await self._drain(revoked, self._drain_timeout_s)
        finally:
            self.assigned -= revoked
            self._revoking -= revoked
            self.tracker.forget(revoked)
        log.info("partitions revoked and drained: %s", sorted(tp.partition for tp in revoked))

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.membership.assigned(assigned)
        self.assigned |= assigned
        if self._client_paused:
            self.consumer.pause(*assigned)
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop fetching, finish busy work within ``grace_s``, commit, leave the group."""
        self._stopping = True
        if self._loop_task is not None:
            self._slot_freed.set()
            _, pending = await asyncio.wait([self._loop_task], timeout=2.0)
            for task in pending:  # stuck in a fetch (e.g. a rebalance): records it gets are never started
                task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self.consumer is None:
            return
        await self._drain(set(self.assigned), self._drain_timeout_s if grace_s is None else grace_s)
        await self.consumer.stop()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: WindowedConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owner.on_assigned(set(assigned))

"""Operator commands.

    python -m replyflow.admin topics [--replication-factor 3]  # create the missing topics (idempotent)
    python -m replyflow.admin load-profiles FILE.json  # publish creator profiles to creators.config, next versions
    python -m replyflow.admin replay-dead-letters comments.screened.dlq [--failed-after 2026-11-29T08:00Z]
        [--failed-before T] [--exception-class ValidationError] [--again] [--dry-run]   # send dead letters back
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import TypeAdapter

from replyflow.dead_letters import (
    DeadLetter,
    Selection,
    dead_letter_topics,
    records_to_send,
    sent_back,
    sent_back_before,
)
from replyflow.events import CreatorProfile, DeadLetterReplayed, Platform
from replyflow.ingest import creator_of_account
from replyflow.kafka import (
    Emit,
    EventProducer,
    Fenced,
    PartitionWriters,
    Record,
    TopicTable,
    TransientError,
    ensure_topics,
    partition_of,
)
from replyflow.settings import Settings
from replyflow.topics import (
    ALL_TOPICS,
    CREATORS_CHANGES,
    CREATORS_CONFIG,
    DEAD_LETTERS_REPLAYED,
    PROFILE_WRITER_STAGE,
    Topic,
)

_profiles = TypeAdapter(list[CreatorProfile])


@asynccontextmanager
async def followed(settings: Settings, topic: Topic) -> AsyncIterator[TopicTable]:
    """``topic`` read to its end (the latest record of each key), and followed until the block ends."""
    table = TopicTable(settings.kafka_bootstrap_servers, topic, topic.key)
    await table.start()
    try:
        yield table
    finally:
        await table.stop()


def next_versions(profiles: list[CreatorProfile],
                  current: Callable[[str], CreatorProfile | None]) -> list[CreatorProfile]:
    """``profiles``, each the next version of its creator's ``current`` one (1: a new creator), whatever the file
    says: services cache per version, so a reload at the same version would be picked up only in part, and a
    lower one would replace a newer profile. A creator listed twice gets one version after the other."""
    versions: dict[str, int] = {}
    numbered = []
    for profile in profiles:
        now = current(profile.creator_id)
        versions[profile.creator_id] = versions.get(profile.creator_id, now.version if now else 0) + 1
        numbered.append(profile.model_copy(update={"version": versions[profile.creator_id]}))
    return numbered


def new_creators(profiles: list[CreatorProfile],
                 current: Callable[[str], CreatorProfile | None]) -> list[CreatorProfile]:
    """The ``profiles`` of creators with no profile yet: a seed loaded again must not undo what creators changed
    since (a mode switched off among them)."""
    return [p for p in profiles if current(p.creator_id) is None]


async def load_profiles(path: Path, settings: Settings, *, only_new: bool = False) -> list[CreatorProfile]:
    """Validate every profile in the file first, then save them (key = creator_id) as next versions the way the
    control service's profile writer saves changes, so neither undoes the other: claim the partitions of
    ``creators.changes`` the creators are on (a writer of theirs mid-batch is fenced and makes its batch again on top
    of these), read ``creators.config`` to its end, then write each partition's creators' next versions in one
    transaction. A writer that claims a partition back first fences this instead: it claims again, up to
    LOAD_ATTEMPTS times. Works without a control service too (a seed, or profiles put back while it is down), but
    only with the control service's ``KAFKA_GROUP_PREFIX``. ``only_new``: only those of creators creators.config
    does not have. Returns what was saved, in the file's order."""
    profiles = _profiles.validate_json(path.read_bytes())
    writers = PartitionWriters(settings, "admin", [CREATORS_CONFIG], settings.group_id(PROFILE_WRITER_STAGE),
                               CREATORS_CHANGES.name)
    async with EventProducer(settings, "admin", []) as metadata:
        partitions = await metadata.partition_count(CREATORS_CHANGES.name)
    of_partition: dict[int, list[tuple[int, CreatorProfile]]] = {}
    for i, profile in enumerate(profiles):
        of_partition.setdefault(partition_of(profile.creator_id, partitions), []).append((i, profile))
    saved: dict[int, CreatorProfile] = {}  # by the profile's place in the file
    done: set[int] = set()  # partitions saved
    async with AsyncExitStack() as following:
        current: TopicTable | None = None
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            try:
                async with AsyncExitStack() as claimed:
                    claims = {p: await claimed.enter_async_context(writers.claim(p))
                              for p in sorted(set(of_partition) - done)}
                    if current is None:  # read after the claims: what a fenced writer left open is not waited for
                        current = await following.enter_async_context(followed(settings, CREATORS_CONFIG))
                    elif not await current.read_to_end(LOAD_READ_TO_END_S, keys=[p.creator_id for p in profiles]):
                        raise TransientError(f"{CREATORS_CONFIG.name} was not read to its end in "
                                             f"{LOAD_READ_TO_END_S:.0f} s")
                    for partition, producer in claims.items():
                        entries = of_partition[partition]
                        if only_new:
                            kept = {id(p) for p in new_creators([p for _, p in entries], current.get)}
                            entries = [(i, p) for i, p in entries if id(p) in kept]
                        numbered = next_versions([p for _, p in entries], current.get)
                        await producer.publish(profile_emits(numbered))
                        saved.update(zip((i for i, _ in entries), numbered, strict=True))
                        done.add(partition)
                break
            except Fenced:
                if attempt == LOAD_ATTEMPTS:
                    raise
    return [saved[i] for i in sorted(saved)]


def profile_emits(profiles: list[CreatorProfile]) -> list[Emit]:
    return [Emit(CREATORS_CONFIG, p) for p in profiles]


async def put_profiles(profiles: list[CreatorProfile], settings: Settings) -> None:
    """Publish profiles as given, versions included, straight to creators.config, outside any claim: for tests
    seeding their creators, and the kill-switch bench's baseline (no service writes profiles so)."""
    async with EventProducer(settings, "admin", [CREATORS_CONFIG]) as producer:
        await producer.publish(profile_emits(profiles))


READ_STALL_S = 30.0  # reading a dead-letter topic that long without a record: give up, say so
LOAD_ATTEMPTS = 3  # claims of load-profiles a profile writer may take back before it gives up
# creators.config read to its end again after a claim taken back: a transaction left open ends within ~20 s
LOAD_READ_TO_END_S = 30.0
REPLAY_TRANSACTION_LETTERS = 500  # letters sent back per transaction (each with its ledger record)


async def read_dead_letters(settings: Settings, dlq: str) -> list[DeadLetter]:
    """Every record of the dead-letter topic up to its end now (what is dead-lettered meanwhile is not read)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        # start() fetched the metadata of every topic
        partitions = [TopicPartition(dlq, p) for p in sorted(consumer.partitions_for_topic(dlq) or ())]
        if not partitions:
            raise ValueError(f"topic {dlq} does not exist")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        last_progress = time.monotonic()
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            if time.monotonic() - last_progress > READ_STALL_S:
                raise ValueError(f"reading {dlq} made no progress for {READ_STALL_S:.0f} s (its partition "
                                 f"leader unavailable?); read {len(letters)} records, sent nothing")
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                letters += [DeadLetter.of(r) for r in records if r.offset < ends[tp]]
                last_progress = time.monotonic()
        return letters
    finally:
        await consumer.stop()


@dataclass
class Replay:
    """What a replay of dead letters did (or, dry, would do)."""

    selected: int = 0
    sent: list[tuple[DeadLetter, list[Record]]] = field(default_factory=list)
    before: list[tuple[DeadLetter, DeadLetterReplayed]] = field(default_factory=list)  # sent back by an earlier run
    stayed: list[tuple[DeadLetter, str]] = field(default_factory=list)  # and why


async def replay_dead_letters(settings: Settings, dlq: str, selection: Selection, *, dry_run: bool,
                              again: bool = False) -> Replay:
    """Send the selected records of ``dlq`` back where they came from, but not those an earlier run sent back
    (unless ``again``), and record each one sent (see replyflow.dead_letters)."""
    if dlq not in dead_letter_topics():
        raise ValueError(f"{dlq} is no dead-letter topic; one of {', '.join(sorted(dead_letter_topics()))}")
    letters = [letter for letter in await read_dead_letters(settings, dlq) if selection.takes(letter)]
    replay = Replay(selected=len(letters))
    async with AsyncExitStack() as stack:
        # Claimed before the ledger is read: of two runs at once, the later fences the earlier (which sends nothing
        # more) and reads what it committed, so no letter goes back twice.
        producer = None if dry_run else await stack.enter_async_context(EventProducer(
            settings, "admin", ALL_TOPICS, transactional_id=replay_transactional_id(settings, dlq)))
        ledger = await stack.enter_async_context(followed(settings, DEAD_LETTERS_REPLAYED))
        # webhook changes map an account to its creator with the profiles as they are now
        profiles = await stack.enter_async_context(followed(settings, CREATORS_CONFIG))
        for letter in letters:
            recorded = ledger.get(letter.where)
            if not again and sent_back_before(letter, recorded):
                replay.before.append((letter, recorded))
                continue
            answer = records_to_send(letter, lambda account: creator_of_account(
                profiles.rows(), Platform.instagram, account))
            if isinstance(answer, str):
                replay.stayed.append((letter, answer))
            else:
                replay.sent.append((letter, answer))
        if producer is not None:
            # Letters and their ledger records together, in transactions short enough for TRANSACTION_TIMEOUT_MS:
            # a run that dies part way has sent only what it recorded.
            for first in range(0, len(replay.sent), REPLAY_TRANSACTION_LETTERS):
                chunk = replay.sent[first:first + REPLAY_TRANSACTION_LETTERS]
                async with producer.transaction():
                    await producer.send([record for _, records in chunk for record in records])
                    await producer.publish([Emit(DEAD_LETTERS_REPLAYED, sent_back(letter, records))
                                            for letter, records in chunk])
    return replay


def replay_transactional_id(settings: Settings, dlq: str) -> str:
    """One per dead-letter topic (and namespace): two replays of one topic at once, the later fences the earlier."""
    return f"{settings.kafka_group_prefix}.replay-dead-letters.{dlq}"


def utc_time(text: str) -> datetime:
    """An ISO 8601 time for the command line; without an offset it is UTC."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replyflow.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tp = sub.add_parser("topics", help="create replyflow's missing topics and dead-letter topics, with the "
                        "partitions, cleanup and retention of k8s/base/topics.yaml")
    tp.add_argument("--replication-factor", type=int, default=1,
                    help="copies of each partition (3 on a production cluster: min.insync.replicas is then 2)")
    lp = sub.add_parser("load-profiles", help="publish a JSON list of creator profiles, each as the next version "
                        "of the creator's profile on creators.config (the file's versions are not used)")
    lp.add_argument("file", type=Path)
    lp.add_argument("--only-new", action="store_true", help="only the creators creators.config does not have yet "
                    "(a seed run again leaves the creators' own changes alone)")
    rp = sub.add_parser("replay-dead-letters", help="send dead letters back to the topic they came from, once "
                        "what stopped them is fixed; a letter an earlier run sent back is left out "
                        "(deadletters.replayed records them)")
    rp.add_argument("dlq", help="the dead-letter topic, e.g. comments.received.dlq")
    rp.add_argument("--failed-after", type=utc_time, help="only those dead-lettered at or after this ISO time (UTC "
                    "unless it has an offset)")
    rp.add_argument("--failed-before", type=utc_time, help="only those dead-lettered before this ISO time")
    rp.add_argument("--exception-class", help="only those with this x-exception-class (e.g. ValidationError)")
    rp.add_argument("--again", action="store_true", help="also those an earlier run sent back (their comments may "
                    "then be drafted and, on YouTube and Instagram, posted a second time)")
    rp.add_argument("--dry-run", action="store_true", help="list what would be sent back, send nothing")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "topics":
        created = asyncio.run(ensure_topics(settings.kafka_bootstrap_servers,
                                            replication_factor=args.replication_factor))
        print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
    elif args.command == "replay-dead-letters":
        selection = Selection(args.failed_after, args.failed_before, args.exception_class)
        try:
            replay = asyncio.run(replay_dead_letters(settings, args.dlq, selection, dry_run=args.dry_run,
                                                     again=args.again))
        except (ValueError, RuntimeError) as e:  # RuntimeError: a topic missing (TopicTable says which)
            print(e, file=sys.stderr)
            return 2
        except TransientError as e:  # Kafka, or another run of this topic that started meanwhile
            print(f"stopped: {e}. What went back before is recorded; run again to send the rest.", file=sys.stderr)
            return 2
        verb = "would send" if args.dry_run else "sent"
        for letter, records in replay.sent:
            print(f"{letter.where} ({letter.headers.get('x-exception-class')}): {verb} "
                  f"{len(records)} record(s) to {', '.join(sorted({r[0] for r in records})) or 'nothing'}")
        for letter, recorded in replay.before:
            print(f"{letter.where}: left out, sent back at {recorded.occurred_at:%Y-%m-%d %H:%M:%S} UTC to "
                  f"{', '.join(recorded.sent_to) or 'nothing'} (--again sends it anyway)")
        for letter, why in replay.stayed:
            print(f"{letter.where}: stays, {why}", file=sys.stderr)
        print(f"{verb} back {len(replay.sent)} of {replay.selected} selected dead letters; {len(replay.before)} sent "
              f"back before; {len(replay.stayed)} stay")
        return 1 if replay.stayed else 0
    else:
        try:
            profiles = asyncio.run(load_profiles(args.file, settings, only_new=args.only_new))
        except (TransientError, RuntimeError, TimeoutError) as e:  # RuntimeError: a topic missing; TimeoutError:
            # creators.config not read to its end in time
            print(f"stopped: {e}. Some creators' profiles may be saved already; loading the file again saves each "
                  "profile as its creator's next version.", file=sys.stderr)
            return 2
        print(f"published {len(profiles)} profiles: {', '.join(p.creator_id for p in profiles)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

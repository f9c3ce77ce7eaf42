"""Operator commands.

    python -m replyflow.admin topics [--replication-factor 3]  # create the missing topics (idempotent)
    python -m replyflow.admin load-profiles FILE.json     # publish creator profiles to creators.config
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import TypeAdapter

from replyflow.events import CreatorProfile
from replyflow.kafka import Emit, EventProducer, ensure_topics
from replyflow.settings import Settings
from replyflow.topics import CREATORS_CONFIG

_profiles = TypeAdapter(list[CreatorProfile])


async def load_profiles(path: Path, settings: Settings) -> list[CreatorProfile]:
    """Validate every profile in the file first, then publish them all (key = creator_id)."""
    profiles = _profiles.validate_json(path.read_bytes())
    await put_profiles(profiles, settings)
    return profiles


def profile_emits(profiles: list[CreatorProfile]) -> list[Emit]:
    return [Emit(CREATORS_CONFIG, p) for p in profiles]


async def put_profiles(profiles: list[CreatorProfile], settings: Settings) -> None:
    """Publish profiles as given (versions included); the control API bumps versions itself."""
    async with EventProducer(settings, "admin", [CREATORS_CONFIG]) as producer:
        await producer.publish(profile_emits(profiles))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replyflow.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tp = sub.add_parser("topics", help="create replyflow's missing topics and dead-letter topics, with the "
                        "partitions, cleanup and retention of k8s/base/topics.yaml")
    tp.add_argument("--replication-factor", type=int, default=1,
                    help="copies of each partition (3 on a production cluster: min.insync.replicas is then 2)")
    lp = sub.add_parser("load-profiles", help="publish a JSON list of creator profiles")
    lp.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "topics":
        created = asyncio.run(ensure_topics(settings.kafka_bootstrap_servers,
                                            replication_factor=args.replication_factor))
        print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
    else:
        profiles = asyncio.run(load_profiles(args.file, settings))
        print(f"published {len(profiles)} profiles: {', '.join(p.creator_id for p in profiles)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

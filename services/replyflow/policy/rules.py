"""Policy as data: which checks run, their thresholds and what a hit does.

The platform default lives in ``default_policy.json`` (or the file named by the ``POLICY_FILE`` setting);
a creator's ``policy_overrides`` replace single check rules (keyed ``<stage>.<check>``, one of
``OVERRIDE_KEYS``). ``PolicySource`` re-reads the file when it changes, so a new policy applies without a
restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from replyflow.events import CheckRule, CreatorProfile
from replyflow.kafka import TransientError
from replyflow.watched import WatchedFile

log = logging.getLogger(__name__)
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.json")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    screen: dict[str, CheckRule]
    verify: dict[str, CheckRule]

    def rule(self, stage: str, check: str, profile: CreatorProfile | None = None) -> CheckRule:
        override = profile.policy_overrides.get(f"{stage}.{check}") if profile else None
        if override is not None:
            return override
        rules = self.screen if stage == "screen" else self.verify
        return rules.get(check, CheckRule(enabled=False))


# What a creator's policy_overrides may be keyed by: each check the default policy has a rule for, as
# ``rule`` looks it up. CreatorProfile refuses other keys, which would be ignored.
OVERRIDE_KEYS = frozenset(f"{stage}.{check}" for stage, rules in Policy.model_validate_json(
    DEFAULT_POLICY_FILE.read_bytes()).model_dump(include={"screen", "verify"}).items() for check in rules)


class PolicySource(WatchedFile[Policy]):
    """The current policy, re-read from disk when the file changes (checked at most every second)."""

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__(Path(path) if path else DEFAULT_POLICY_FILE, Policy, on_change=lambda policy: log.info(
            "policy changed", extra={"fields": {"version": policy.version}}))

    def current(self, now: float) -> Policy:
        try:
            return super().current(now)
        except (OSError, ValueError) as e:  # no good version yet: wait for the fix, dead-letter nothing
            raise TransientError(f"POLICY_FILE {self.path} cannot be used: {type(e).__name__}: {e}"[:500]) from e

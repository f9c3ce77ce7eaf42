"""The creator's own words from the control API: replies they edited before approving them.

DESIGN: "edits are kept as new examples of the creator's voice" (the creator's own edits; an
operator's edit on their behalf is not their voice). The verify stage follows
``replies.reviewed`` and fits each creator's authenticity model on their profile's example
replies plus their latest edits, so the model learns from every correction.
"""

from __future__ import annotations

import bisect
from datetime import datetime

from replyflow.events import Actor, CreatorProfile, ReplyReviewed, ReviewAction
from replyflow.policy.verify_checks import strip_disclosure

# Enough to move the model, few enough that the profile's curated examples still count.
EDITS_PER_CREATOR = 20


class CreatorEdits:
    """The latest edited replies per creator, as extra examples for ``ModelCache.get``."""

    def __init__(self, per_creator: int = EDITS_PER_CREATOR) -> None:
        self._per_creator = per_creator
        # Per creator, by when they were decided: replies.reviewed's partitions are read in no set order.
        self._texts: dict[str, list[tuple[datetime, str]]] = {}
        # Per creator: the label the texts were stripped with, and the examples; rebuilt on a new edit.
        self._examples: dict[str, tuple[str, tuple[str, ...]]] = {}

    def add(self, reviewed: ReplyReviewed) -> None:
        # An operator's edit, made on the creator's behalf, is not the creator's voice.
        if reviewed.action != ReviewAction.edit or not reviewed.text or reviewed.decided_by == Actor.operator:
            return
        texts = self._texts.setdefault(reviewed.creator_id, [])
        bisect.insort(texts, (reviewed.occurred_at, reviewed.text))
        del texts[:-self._per_creator]
        self._examples.pop(reviewed.creator_id, None)

    def examples(self, profile: CreatorProfile) -> tuple[str, ...]:
        """The creator's edits without the AI label (the model scores drafts without it too)."""
        texts = self._texts.get(profile.creator_id)
        if not texts:
            return ()
        cached = self._examples.get(profile.creator_id)
        if cached is None or cached[0] != profile.disclosure_label:
            body = tuple(strip_disclosure(t, profile.disclosure_label) for _, t in texts)
            cached = self._examples[profile.creator_id] = (profile.disclosure_label, body)
        return cached[1]

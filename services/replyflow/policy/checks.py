"""The checks each policy stage runs, assembled in one place."""

from __future__ import annotations

import re

from replyflow.events import Comment, CreatorProfile
from replyflow.policy.findings import Finding

MAX_REPLY_CHARS = 500
_URL = re.compile(r"(?:https?://)?(?:www\.)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:/\S*)?", re.IGNORECASE)


def screen_findings(comments: list[Comment], profiles: list[CreatorProfile | None]) -> list[list[Finding]]:
    return [[] for _ in comments]


def verify_findings(draft: str, comment: Comment, profile: CreatorProfile) -> list[Finding]:
    findings = []
    if not draft.strip():
        findings.append(Finding("length", "reply_empty", "The model produced an empty reply."))
    elif len(draft) > MAX_REPLY_CHARS:
        findings.append(Finding("length", "reply_too_long", f"The reply is longer than {MAX_REPLY_CHARS} characters."))
    allowed = {d.lower() for d in profile.allowed_links}
    for match in _URL.finditer(draft):
        domain = match.group(1).lower()
        if not any(domain == a or domain.endswith("." + a) for a in allowed):
            findings.append(Finding("links", "link_not_allowed", f"The reply links to {domain}, which is not on the creator's list."))
    return findings


def with_disclosure(text: str, label: str) -> str:
    text = text.replace(label, "").strip()
    return f"{text} {label}"

"""The result type every policy check returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One thing a check found: ``check`` names the check, ``code`` the reason (snake_case)."""

    check: str
    code: str
    message: str
    score: float | None = None

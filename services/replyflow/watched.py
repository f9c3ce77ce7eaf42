"""Configuration files that apply without a restart: the policy file, the platform credentials (a Secret)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class WatchedFile(Generic[M]):
    """A JSON file parsed into ``model``, read again when it changes (modification time or size, looked at most
    every ``check_every_s``). Errors reading or parsing it (OSError, ValidationError) reach the caller."""

    def __init__(self, path: Path, model: type[M], *, on_change: Callable[[M], None] | None = None,
                 check_every_s: float = 1.0) -> None:
        self.path = path
        self._model, self._on_change, self._every = model, on_change, check_every_s
        self._stamp: tuple[int, int] | None = None
        self._value: M | None = None
        self._checked_at = 0.0

    def current(self, now: float) -> M:
        if self._value is None or now - self._checked_at >= self._every:
            self._checked_at = now
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                value = self._model.model_validate_json(self.path.read_bytes())
                if self._value is not None and self._on_change is not None:
                    self._on_change(value)
                self._value, self._stamp = value, stamp
        assert self._value is not None
        return self._value

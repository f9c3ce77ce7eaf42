"""Configuration files that apply without a restart: the policy file, the platform credentials (a Secret)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)


class WatchedFile(Generic[M]):
    """A JSON file parsed into ``model``, read again when it changes (modification time or size, looked at most
    every ``check_every_s``).

    A change that cannot be read or parsed (a typo in a ConfigMap, a Secret half written) does not stop the
    service: the last good version stays in use and ``problem`` says what is wrong (for readiness) until the file
    is fixed. Only with no good version yet do the errors (OSError, UnusableFile) reach the caller."""

    def __init__(self, path: Path, model: type[M], *, on_change: Callable[[M], None] | None = None,
                 check_every_s: float = 1.0) -> None:
        self.path = path
        self._model, self._on_change, self._every = model, on_change, check_every_s
        self._stamp: tuple[int, int] | None = None  # of the version last read, good or not
        self._good_stamp: tuple[int, int] | None = None  # of the version in use
        self._value: M | None = None
        self._checked_at = 0.0
        self.problem: str | None = None

    def current(self, now: float) -> M:
        if self._value is None or now - self._checked_at >= self._every:
            self._checked_at = now
            try:
                self._read_if_changed()
            except (OSError, ValueError) as e:  # pydantic's ValidationError is a ValueError
                if self._value is None:
                    raise
                if self.problem is None:
                    log.error("config file cannot be used; keeping its last good version", extra={"fields": {
                        "path": str(self.path), "error": f"{type(e).__name__}: {e}"[:1000]}})
                self.problem = f"{self.path} cannot be used (its last good version is): {type(e).__name__}: {e}"[:500]
        assert self._value is not None
        return self._value

    def unusable(self, now: float) -> str | None:
        """Why the file cannot be used, looked at again if due (so readiness notices a bad change with no traffic),
        or None."""
        try:
            WatchedFile.current(self, now)  # the errors themselves, not what a subclass turns them into
        except (OSError, ValueError) as e:
            return f"{self.path} cannot be used: {type(e).__name__}: {e}"[:500]
        return self.problem

    def _read_if_changed(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._good_stamp and self._value is not None:
            self.problem = None  # the version in use, back after a moment away (moved, unreadable)
            return
        if stamp == self._stamp and self._value is not None:
            return  # a bad version already reported
        self._stamp = stamp  # a bad version is parsed once, not at every look
        try:
            value = self._model.model_validate_json(self.path.read_bytes())
        except ValidationError as e:
            raise UnusableFile(what_is_wrong(e)) from None
        if self._value is not None and self._on_change is not None:
            self._on_change(value)
        self._value, self._good_stamp, self.problem = value, stamp, None


class UnusableFile(ValueError):
    """The file does not parse into its model; the message names where and why, never a value from the file."""


def what_is_wrong(error: ValidationError) -> str:
    """Where and why a file does not parse. pydantic's own message quotes the values (``input_value=``) and its
    JSON errors the text around them: in a credentials Secret those are tokens, and this goes to logs and
    ``/readyz``."""
    problems = [f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}"
                for e in error.errors(include_input=False, include_url=False, include_context=False)]
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"{error.error_count()} problem(s): " + "; ".join(problems[:5]) + more

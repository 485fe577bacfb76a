"""What a running handler reports (ctx.report_progress, ctx.update_meta), kept per execution.

The handler's thread only records here; it never waits on the database. The progress saver
(maintenance.py) writes what changed at most about once a second per job, fenced by the lease,
and the outcome carries the last state, so a report made just before the handler returns is
saved with the finish and never lost. After the lease is lost, a report raises LeaseLost.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from durableq.core.errors import InvalidInput
from durableq.core.outcomes import NOTHING_REPORTED, Report
from durableq.core.payloads import encode
from durableq.handlers.outcomes import LeaseLost

SAVE_EVERY = 1.0  # seconds: at most one progress write per job per second
MAX_MESSAGE = 1000
MAX_META_BYTES = 64 * 1024


class Reporting:
    def __init__(self, job_id: int, meta: Mapping[str, Any] | None, lost: Callable[[], bool]):
        self.job_id = job_id
        self._lost = lost
        self._lock = threading.Lock()
        self._meta: dict[str, Any] | None = dict(meta) if meta else None
        self._meta_changed = False
        self._progress: float | None = None
        self._message: str | None = None
        self._reported = False  # anything at all, ever: the outcome then carries it
        self._unsaved = False
        self._saved_at = -math.inf

    # -- the handler's side (through JobContext) --------------------------------------------

    def report(
        self,
        progress: float | None = None,
        message: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if self._lost():
            raise LeaseLost(
                f"job {self.job_id}: this worker lost its lease; stop, nothing more is saved"
            )
        checked = _checked_meta(meta) if meta is not None else None
        with self._lock:
            if progress is not None:
                self._progress = _checked_progress(progress)
                self._message = _checked_message(message)
            if checked is not None:
                merged = {**(self._meta or {}), **checked}
                if len(encode(merged)) > MAX_META_BYTES:
                    raise InvalidInput(f"the job's metadata would pass {MAX_META_BYTES} bytes")
                self._meta, self._meta_changed = merged, True
            self._reported = self._unsaved = True

    def count(self, key: str) -> None:
        """durableq's own bookkeeping in the metadata (snoozes)."""
        with self._lock:
            meta = self._meta or {}
            self._meta = {**meta, key: int(meta.get(key, 0)) + 1}
            self._meta_changed = self._reported = True

    def note(self, key: str, value: Any) -> None:
        with self._lock:
            self._meta = {**(self._meta or {}), key: value}
            self._meta_changed = self._reported = True

    # -- the saver's side ------------------------------------------------------------------

    def due(self, now_mono: float) -> Report | None:
        """What to save now, if anything changed and the last save was long enough ago."""
        with self._lock:
            if not self._unsaved or now_mono - self._saved_at < SAVE_EVERY:
                return None
            self._unsaved, self._saved_at = False, now_mono
            return self._report()

    def unsaved(self) -> None:
        """The save failed (the database was away): try again at the next round."""
        with self._lock:
            self._unsaved, self._saved_at = True, -math.inf

    def final(self) -> Report:
        """The whole last state, saved with the outcome (whether or not a save came first)."""
        with self._lock:
            return self._report() if self._reported else NOTHING_REPORTED

    def _report(self) -> Report:
        return Report(
            progress=self._progress,
            progress_message=self._message,
            meta_json=encode(self._meta) if self._meta_changed and self._meta is not None else None,
        )


def _checked_progress(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInput(f"invalid progress {value!r}: use a fraction from 0 to 1")
    return float(value)


def _checked_message(message: str | None) -> str | None:
    if message is None:
        return None
    if not isinstance(message, str):
        raise InvalidInput(f"invalid progress message {message!r}: use a string")
    return message[:MAX_MESSAGE]


def _checked_meta(values: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        raise InvalidInput("metadata must be a mapping with string keys")
    checked = dict(values)
    try:
        encode(checked)
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidInput(f"metadata must be JSON-serialisable: {error}") from None
    return checked

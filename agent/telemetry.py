"""What the core reports about its own work, for whoever exports metrics.

The core counts nothing itself: it tells a :class:`Telemetry` what happened, and the bot
decides how to expose it (Prometheus text on ``/metrics``). Tests and the CLI pass nothing.
"""

from __future__ import annotations

from typing import Protocol


class Telemetry(Protocol):
    """Receives events from the core; every method must be cheap and must not raise."""

    def turn_finished(self, seconds: float, *, failed: bool) -> None:
        """A turn ended after ``seconds`` (queueing included); ``failed`` if it had no answer."""

    def passages_loaded(self, count: int) -> None:
        """A load added ``count`` passages to the archive."""


class JobTelemetry(Protocol):
    """Receives a worker's events; cheap and never raising, as :class:`Telemetry`."""

    def job_finished(self, outcome: str) -> None:
        """A load job ended: ``loaded``, ``not loaded``, ``failed``, ``cancelled`` or
        ``requeued`` (stopped by a shutdown, for another worker)."""


class NoTelemetry:
    """Reports go nowhere."""

    def turn_finished(self, seconds: float, *, failed: bool) -> None:
        """Ignore a finished turn."""

    def passages_loaded(self, count: int) -> None:
        """Ignore a load."""

    def job_finished(self, outcome: str) -> None:
        """Ignore a job."""

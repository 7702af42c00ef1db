"""Which platform events were already handled, remembered across restarts.

Slack re-delivers events it thinks were missed, also to a bot that restarted in between,
which must still answer each once. Keys are kept for a day, longer than Slack retries.
"""

from __future__ import annotations

import time

from agent.db import Database

RETENTION_SECONDS = 86_400.0
# Old keys are swept on one call in this many, so the sweep costs nothing noticeable.
_SWEEP_EVERY = 500


class Deliveries:
    """A durable set of event keys, each claimed once."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._calls = 0

    async def first(self, key: str) -> bool:
        """True for the first claim of ``key``; False for every later one (within a day)."""
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            await self._db.write(
                "DELETE FROM deliveries WHERE seen_at < ?", (time.time() - RETENTION_SECONDS,)
            )
        rows = await self._db.write(
            "INSERT INTO deliveries (key, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING"
            " RETURNING key",
            (key[:200], time.time()),
        )
        return bool(rows)

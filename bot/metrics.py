"""Prometheus metrics: the core's telemetry and the LLM's calls, as ``/metrics`` text.

Each :class:`Metrics` has its own registry, so two bots in one process (tests) never share
counters, and nothing is registered at import time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from agent.mind.llm import LLM, Completion, DeltaSink, LLMUnavailable

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Turns wait on a model: most take seconds, a heartbeat chain can take a minute.
_TURN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Queues(Protocol):
    """Where the queue gauges are read from when scraped (the core)."""

    @property
    def queued(self) -> int:
        """Messages waiting behind another in their conversation."""
        ...

    @property
    def active(self) -> int:
        """Conversations with a live worker."""
        ...


class Running(Protocol):
    """Where the running-jobs gauge is read from when scraped (a worker's job runner)."""

    @property
    def running(self) -> int:
        """Load jobs under way."""
        ...


class _Labelled:
    """Every series of ``registry`` with the replica's label added, so that the processes of
    one installation can be told apart (and summed) once scraped. ``replica``, not
    ``instance``: Prometheus sets that one itself, from the scrape target."""

    def __init__(self, registry: CollectorRegistry, replica: str) -> None:
        self._registry = registry
        self._replica = replica

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [
                sample._replace(labels={**sample.labels, "replica": self._replica})
                for sample in family.samples
            ]
            yield family


class Metrics:
    """Counters for turns, LLM calls and loads, and gauges read when scraped."""

    def __init__(self, replica: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposed = _Labelled(self.registry, replica) if replica else self.registry
        self.failed_turns = 0
        """Turns that ended without an answer (read by ``archivist chat`` for its exit code)."""
        self._turns = Counter(
            "archivist_turns", "Turns answered, by outcome.", ["outcome"], registry=self.registry
        )
        self._turn_seconds = Histogram(
            "archivist_turn_seconds",
            "Seconds from a message's arrival to its reply, queueing included.",
            buckets=_TURN_BUCKETS,
            registry=self.registry,
        )
        self._llm_calls = Counter(
            "archivist_llm_calls", "Chat completions requested.", registry=self.registry
        )
        self._llm_errors = Counter(
            "archivist_llm_errors",
            "Chat completions that failed after retries, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self._passages = Counter(
            "archivist_passages_loaded", "Passages added to the archive.", registry=self.registry
        )
        self._jobs = Counter(
            "archivist_load_jobs",
            "Load jobs run to an end by this process (a worker), by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self._queue_depth = Gauge(
            "archivist_queue_depth",
            "Messages waiting behind another in their conversation.",
            registry=self.registry,
        )
        self._active = Gauge(
            "archivist_active_conversations",
            "Conversations with a live worker.",
            registry=self.registry,
        )

    def watch_jobs(self, runner: Running) -> None:
        """Expose a worker's jobs under way, read from ``runner`` at each scrape."""
        running = Gauge(
            "archivist_load_jobs_running", "Load jobs under way.", registry=self.registry
        )
        running.set_function(lambda: runner.running)

    def job_finished(self, outcome: str) -> None:
        """Count a load job that ended."""
        self._jobs.labels(outcome=outcome).inc()

    def watch(self, queues: Queues) -> None:
        """Read the queue gauges from ``queues`` at each scrape."""
        self._queue_depth.set_function(lambda: queues.queued)
        self._active.set_function(lambda: queues.active)

    def turn_finished(self, seconds: float, *, failed: bool) -> None:
        """Count a turn and observe its latency."""
        self._turns.labels(outcome="failed" if failed else "answered").inc()
        self.failed_turns += int(failed)
        self._turn_seconds.observe(seconds)

    def passages_loaded(self, count: int) -> None:
        """Count passages a load added."""
        self._passages.inc(count)

    def llm_called(self, error: LLMUnavailable | None) -> None:
        """Count one completion and, if it failed, its kind of failure."""
        self._llm_calls.inc()
        if error is not None:
            self._llm_errors.labels(kind=error.kind).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self._exposed)


class MeteredLLM:
    """An LLM whose completions are counted."""

    def __init__(self, inner: LLM, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @property
    def model(self) -> str:
        """The wrapped model's name."""
        return self._inner.model

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int | None = None,
        on_delta: DeltaSink | None = None,
    ) -> Completion:
        """Complete through the wrapped model, counting the call and any failure."""
        try:
            completion = await self._inner.complete(
                messages, tools, max_tokens=max_tokens, on_delta=on_delta
            )
        except LLMUnavailable as exc:
            self._metrics.llm_called(exc)
            raise
        self._metrics.llm_called(None)
        return completion

    async def context_window(self) -> int | None:
        """The wrapped model's server window."""
        return await self._inner.context_window()

    async def ping(self) -> None:
        """Ping the wrapped model (not counted: probes are not calls)."""
        await self._inner.ping()

    async def aclose(self) -> None:
        """Close the wrapped model."""
        await self._inner.aclose()

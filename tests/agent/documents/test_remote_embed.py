"""The OpenAI-compatible embedding backend against a local fake server."""

from __future__ import annotations

import hashlib
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from agent.documents.embed import Embedder, build_embedder
from agent.errors import EmbedderUnavailable

API_KEY = "sk-test-do-not-leak-4242"


def fake_vector(text: str) -> list[float]:
    """Eight deterministic, unnormalised numbers per text."""
    return [byte - 127.5 for byte in hashlib.sha256(text.encode()).digest()[:8]]


class FakeEndpoint:
    """``POST /v1/embeddings``; the model name picks the behaviour."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.batch_sizes: list[int] = []
        self.base_url = ""

    async def embeddings(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        body = await request.json()
        model = body["model"]
        self.calls[model] += 1
        if model == "always-down":
            error = {"error": {"message": "overloaded", "type": "server_error"}}
            return web.json_response(error, status=503, headers={"retry-after-ms": "10"})
        if model == "rate-limited" and self.calls[model] == 1:
            error = {"error": {"message": "slow down", "type": "rate_limit_exceeded"}}
            return web.json_response(error, status=429, headers={"Retry-After": "1"})
        texts = body["input"]
        self.batch_sizes.append(len(texts))
        data = [
            {"object": "embedding", "index": index, "embedding": fake_vector(text)}
            for index, text in enumerate(texts)
        ]
        # Out of order on purpose: clients must go by "index".
        data.reverse()
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})


@pytest.fixture
async def endpoint() -> AsyncIterator[FakeEndpoint]:
    fake = FakeEndpoint()
    app = web.Application()
    app.router.add_post("/v1/embeddings", fake.embeddings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    yield fake
    await runner.cleanup()


def remote(base_url: str, model: str, *, max_retries: int = 4, dim: int | None = None) -> Embedder:
    return build_embedder(
        "openai",
        model=model,
        cache_dir=Path("unused"),
        base_url=base_url,
        api_key=API_KEY,
        batch_size=3,
        max_concurrency=2,
        threads=0,
        max_retries=max_retries,
        dim=dim,
    )


async def test_openai_backend_batches_normalises_and_keeps_order(endpoint: FakeEndpoint) -> None:
    embedder = remote(endpoint.base_url, "fake-embed")
    texts = [f"passage number {i}" for i in range(8)]
    try:
        with pytest.raises(RuntimeError):
            _ = embedder.dim  # not known before the first answer
        vectors = await embedder.embed(texts)
        assert embedder.dim == 8
        assert embedder.model_id == "fake-embed"
        assert embedder.max_text_tokens == 512
        assert embedder.token_spans("two words") == [(0, 3), (4, 9)]
    finally:
        await embedder.aclose()
    expected = np.array([fake_vector(text) for text in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    assert sorted(endpoint.batch_sizes) == [2, 3, 3]


async def test_openai_backend_retries_after_429(endpoint: FakeEndpoint) -> None:
    embedder = remote(endpoint.base_url, "rate-limited")
    try:
        vectors = await embedder.embed(["one text"])
    finally:
        await embedder.aclose()
    assert endpoint.calls["rate-limited"] == 2
    assert vectors.shape == (1, 8)


async def test_openai_backend_gives_up_with_embedder_unavailable(
    endpoint: FakeEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    embedder = remote(endpoint.base_url, "always-down")
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(EmbedderUnavailable) as caught:
            await embedder.embed(["one text"])
    finally:
        await embedder.aclose()
    assert endpoint.calls["always-down"] == 5, "the first try and the 4 default retries"
    message = str(caught.value)
    # The sentence may reach a chat: the address goes to the operator's log only.
    assert "127.0.0.1" not in message and endpoint.base_url in caplog.text
    assert "503" in message
    assert API_KEY not in message and API_KEY not in caplog.text


async def test_openai_backend_unreachable_or_inconsistent(endpoint: FakeEndpoint) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    nobody = remote(f"http://127.0.0.1:{closed_port}/v1", "fake-embed", max_retries=0)
    wrong_dim = remote(endpoint.base_url, "fake-embed", dim=384)
    try:
        with pytest.raises(EmbedderUnavailable, match="could not be reached"):
            await nobody.embed(["hello"])
        with pytest.raises(EmbedderUnavailable, match="8-dimensional vectors, but 384"):
            await wrong_dim.embed(["hello"])
    finally:
        await nobody.aclose()
        await wrong_dim.aclose()

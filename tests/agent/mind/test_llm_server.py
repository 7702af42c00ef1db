"""The server's own context window, asked the way llama.cpp and vLLM answer."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from agent.mind.llm_server import probe_context_window
from tests.fake_openai import FakeOpenAI

Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/v1"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_llama_cpp_says_its_running_window_in_props(serve: Serve) -> None:
    async def props(request: web.Request) -> web.Response:
        return web.json_response({"default_generation_settings": {"n_ctx": 2048}})

    app = web.Application()
    app.router.add_get("/props", props)
    assert await probe_context_window(await serve(app), None) == 2048


async def test_vllm_says_it_with_each_model(serve: Serve) -> None:
    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "qwen", "max_model_len": 4096}]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    assert await probe_context_window(await serve(app), "sk-any") == 4096


async def test_a_server_that_does_not_say_leaves_the_configured_window(
    fake_openai: FakeOpenAI,
) -> None:
    assert await probe_context_window(fake_openai.base_url, None) is None


async def test_a_server_that_is_down_leaves_the_configured_window() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert await probe_context_window(f"http://127.0.0.1:{port}/v1", None) is None

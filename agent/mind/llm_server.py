"""What a model server says about itself beyond the OpenAI API: its real context window.

llama.cpp serves ``GET /props`` (``n_ctx`` of the running server) beside ``/v1``; vLLM
lists ``max_model_len`` with each model in ``GET /v1/models``. Servers that say neither
(OpenAI itself, Ollama's compatible API) leave the configured window in force.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import aiohttp

logger = logging.getLogger(__name__)

_PROBE_TIMEOUT: Final = 5.0


async def probe_context_window(base_url: str, api_key: str | None) -> int | None:
    """The server's context window in tokens, or None if it does not say (or cannot)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    root = base_url.rstrip("/").removesuffix("/v1")
    timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            props = await _json(session, f"{root}/props")
            window = _positive(_get(props, "default_generation_settings", "n_ctx"))
            window = window or _positive(_get(props, "n_ctx"))
            if window is None:
                models = await _json(session, f"{base_url.rstrip('/')}/models")
                data = models.get("data") if isinstance(models, dict) else None
                lengths = [
                    _positive(m.get("max_model_len")) for m in data or [] if isinstance(m, dict)
                ]
                window = min((n for n in lengths if n), default=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.info("could not ask %s for its context window: %r", root, exc)
        return None
    return window


async def _json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        if response.status != 200:
            return None
        try:
            return await response.json(content_type=None)
        except ValueError:
            return None


def _get(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

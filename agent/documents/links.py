"""Which sources an agent reads: attaching, detaching and listing them.

A link is a row in the state file and nothing else (passages are never copied), so linking
needs neither the archive nor the model: the library links through this, and the command
line does too while a running bot holds the Milvus Lite file.
"""

from __future__ import annotations

from agent.documents.registry import Source, SourceRegistry, mismatch_message
from agent.errors import EmbeddingMismatch, SourceNotReady, quoted_name


class Links:
    """Attach, detach and list the sources linked to agents.

    ``model_id`` and ``dim`` are the embedding model searches use: a source embedded with
    another cannot be attached. ``dim`` is None where only the name is known (an
    OpenAI-compatible model whose dimension the first embedding tells).
    """

    def __init__(self, registry: SourceRegistry, *, model_id: str, dim: int | None) -> None:
        self._registry = registry
        self._model_id = model_id
        self._dim = dim

    def check_model(self, source: Source) -> None:
        """Refuse a source embedded with another model than the configured one."""
        if source.embedding_model != self._model_id or self._dim not in (
            None,
            source.embedding_dim,
        ):
            raise EmbeddingMismatch(mismatch_message(source, self._model_id, self._dim))

    async def attach(
        self, agent_key: str, scope: str, name: str, *, by: str
    ) -> tuple[Source, bool]:
        """Link a source to an agent; the flag says whether it was newly linked."""
        source = await self._registry.resolve(scope, name)
        self.check_model(source)
        if source.status == "failed":
            raise SourceNotReady(
                f"Source {quoted_name(source.name)} failed to load ({source.error}): load it again."
            )
        return source, await self._registry.attach(agent_key, source.id, attached_by=by)

    async def detach(self, agent_key: str, scope: str, name: str) -> tuple[Source, bool]:
        """Unlink a source from an agent; the flag says whether a link was removed."""
        source = await self._registry.resolve(scope, name)
        return source, await self._registry.detach(agent_key, source.id)

    async def attached(self, agent_key: str) -> list[Source]:
        """Sources linked to an agent."""
        return await self._registry.attached(agent_key)

"""PDF attachments into sources: download, load with a progress message, attach."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path

import discord

from adapters.discord.places import Place
from adapters.loading import outcome_line, progress_line
from adapters.progress import ThrottledEdit
from agent.core import Core, FileInput

log = logging.getLogger(__name__)


def is_pdf(attachment: discord.Attachment) -> bool:
    """Whether an attachment claims to be a PDF (the loader checks the bytes themselves)."""
    return attachment.filename.lower().endswith(".pdf") or (
        attachment.content_type or ""
    ).startswith("application/pdf")


class Uploads:
    """Loads attachments into a guild's sources and attaches them to a channel's agent."""

    def __init__(self, core: Core, *, max_bytes: int) -> None:
        self._core = core
        self._max_bytes = max_bytes

    async def load(
        self,
        place: Place,
        attachment: discord.Attachment,
        name: str,
        *,
        by: str,
        origin: str | None,
        show: ThrottledEdit,
    ) -> str:
        """Load one attachment; returns the closing line (success or the reason it failed)."""
        if attachment.size > self._max_bytes:
            return (
                f"{attachment.filename} is {attachment.size / 2**20:.0f} MB; the limit is"
                f" {self._max_bytes / 2**20:.0f} MB."
            )
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="archivist-upload-"))
        try:
            path = folder / "upload.pdf"
            try:
                data = await attachment.read()
            except discord.HTTPException as exc:
                # Not the URL: it is a signed link to a file that may come from a private channel.
                log.warning("download of attachment %s failed: %s", attachment.id, exc)
                return f"Could not download {attachment.filename} from Discord: try again."
            await asyncio.to_thread(path.write_bytes, data)
            report = await self._core.load(
                place.conversation,
                place.scope,
                name,
                [FileInput(path, name=attachment.filename, origin=origin)],
                by=by,
                progress=lambda p: show.update(progress_line(p)),
            )
            return outcome_line(report, getattr(place.channel, "mention", "this channel"))
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

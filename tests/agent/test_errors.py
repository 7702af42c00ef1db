"""Messages never carry credentials, whatever URL the operator configured."""

from __future__ import annotations

import pytest

from agent.documents.archive import MilvusArchive
from agent.errors import ArchiveUnavailable, shown_url


def test_shown_url_drops_credentials_and_query() -> None:
    assert shown_url("http://root:Milvus@milvus.internal:19530/db?token=abc") == (
        "http://milvus.internal:19530/db"
    )
    assert shown_url("https://[::1]:8000/v1") == "https://[::1]:8000/v1"
    assert shown_url("data/milvus.db") == "data/milvus.db"


async def test_an_unreachable_server_message_has_no_password() -> None:
    with pytest.raises(ArchiveUnavailable) as caught:
        await MilvusArchive.connect(
            "http://admin:hunter2-secret@127.0.0.1:9", collection="c", dim=4, timeout=2
        )
    assert "hunter2-secret" not in str(caught.value)
    assert "http://127.0.0.1:9" in str(caught.value)
